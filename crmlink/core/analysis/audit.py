"""The audit: load one source's records, fold the interactions, call the scoring and
findings hooks, and assemble the audit document (DESIGN.md's audit JSON contract)."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from crmlink.core.analysis.accumulate import AccountData, Accumulator, interaction_rows
from crmlink.core.analysis.detail import account_detail, add_report_extras
from crmlink.core.analysis.tiers import assign_tier
from crmlink.core.analysis.view import AccountView, OpportunityView, PortfolioView
from crmlink.core.findings import SEVERITIES, SEVERITY_RANK, Finding, Score
from crmlink.core.host import PluginHost
from crmlink.core.ltc import ExecutionIndex, phase_of
from crmlink.core.model import Interaction, Record
from crmlink.core.store import Store


def as_of_timestamp(day: date | None) -> float:
    """The end of ``day`` (UTC) in epoch seconds; today when ``None``."""
    day = day or datetime.now(timezone.utc).date()
    return datetime.combine(day + timedelta(days=1), time(), timezone.utc).timestamp() - 1e-3


class SourceData:
    """Everything but the interactions of one source, keyed by remote id."""

    def __init__(self, store: Store, source: str) -> None:
        def load(entity: str) -> dict[str, Any]:
            return {r.remote_id: r for r in store.records(entity, source=source)}

        self.accounts = load("account")
        self.users = {r.remote_id: r for r in store.records("user", source=source, include_deleted=True)}
        self.contacts = load("contact")
        self.opportunities = load("opportunity")
        self.stages = load("stage")
        self.execution = ExecutionIndex(store.records("execution", source=source))
        self.contacts_by_account: dict[str, list[Any]] = defaultdict(list)
        for contact in self.contacts.values():
            if contact.account_id:
                self.contacts_by_account[contact.account_id].append(contact)
        self.opps_by_account: dict[str, list[Any]] = defaultdict(list)
        for opp in self.opportunities.values():
            self.opps_by_account[opp.account_id or ""].append(opp)
        self.roles: dict[str, list[Any]] = defaultdict(list)
        for role in store.records("opportunity_contact", source=source):
            self.roles[role.opportunity_id or ""].append(role)
        self.history: dict[str, list[Any]] = defaultdict(list)
        for change in store.records("stage_change", source=source):
            self.history[change.opportunity_id or ""].append(change)


class Audit:
    """Runs the audit of one store as of one date."""

    def __init__(self, store: Store, host: PluginHost, config: Mapping[str, Any],
                 as_of: date | None = None) -> None:
        self.store, self.host, self.config = store, host, config
        self.as_of_date = as_of or datetime.now(timezone.utc).date()
        self.as_of = as_of_timestamp(self.as_of_date)
        self.previous = self.as_of - config["findings"]["previous_period_days"] * 86400.0

    # -- folding interactions ---------------------------------------------------------------

    def fold(self, data: SourceData, source: str) -> tuple[dict[str, AccountData], dict[str, AccountData]]:
        """One pass over the interactions: aggregates now and at the previous period."""
        acc = Accumulator(self.config, data.users, data.contacts, self._classify_method)
        now: dict[str, AccountData] = {a: AccountData(self.as_of) for a in data.accounts}
        before: dict[str, AccountData] = {a: AccountData(self.previous) for a in data.accounts}
        slots = {a: (now[a], before[a]) for a in data.accounts}
        with self.store.engine.connect() as conn:
            acc.fold(interaction_rows(conn, source, self.as_of), slots,
                     lambda contacts: self._account_of(data, contacts))
        return now, before

    @staticmethod
    def _account_of(data: SourceData, contacts: tuple[str, ...]) -> str | None:
        for contact_id in contacts:
            contact = data.contacts.get(contact_id)
            if contact is not None and contact.account_id:
                return contact.account_id
        return None

    def _classify_method(self, kind: str, subject: str | None, campaign: str | None) -> str | None:
        probe = Interaction(remote_id="probe", kind=kind, occurred_at=datetime(2000, 1, 1, tzinfo=timezone.utc),
                            subject=subject, campaign=campaign)
        return self.host.hook.classify_interaction(interaction=probe)

    # -- scoring ----------------------------------------------------------------------------

    def score(self, view: AccountView) -> None:
        merged: dict[str, Score] = {}
        for result in self.host.hook.score_account(view=view):
            for score in result or ():
                merged[score.name] = score
        view.scores = {name: round(s.value, 1) for name, s in merged.items()}
        view.score_evidence = {name: s.evidence for name, s in merged.items()}

    def account_views(self, data: SourceData, source: str) -> list[AccountView]:
        now, before = self.fold(data, source)
        views = []
        for remote_id, account in sorted(data.accounts.items()):
            assign_tier(account, self.config["tiers"])
            args = (data.contacts_by_account.get(remote_id, []), data.users,
                    data.opps_by_account.get(remote_id, []), self.config)
            previous = AccountView(account, before[remote_id], *args)
            view = AccountView(account, now[remote_id], *args, previous=previous)
            self.score(previous)
            self.score(view)
            view.findings = _collect(self.host.hook.account_findings(view=view))
            views.append(view)
        return views

    def opportunity_views(self, data: SourceData, views: Mapping[str, AccountView]) -> list[OpportunityView]:
        result = []
        for opp in sorted(data.opportunities.values(), key=lambda o: o.remote_id):
            stage = data.stages.get(opp.stage_id or "") or data.stages.get(opp.stage_label or "")
            ltc = opp.ltc_stage or self.host.hook.ltc_stage(
                opportunity=opp, stage=stage, config=self.config["ltc"],
                execution=data.execution.of(opp)) or "unmapped"
            result.append(OpportunityView(
                opp, views.get(opp.account_id or ""), stage, ltc, data.roles.get(opp.remote_id, []),
                sorted(data.history.get(opp.remote_id, []), key=lambda h: h.entered_at),
                self.config, self.as_of))
        typical = typical_days_in_stage(result)
        for view in result:
            view.typical_days_in_stage = typical
        return result

    # -- the document ------------------------------------------------------------------------

    def run(self, source: str | None = None, *, history: bool = True) -> dict[str, Any]:
        """The audit document; ``history=False`` leaves out each account's
        ``health_history`` (a fold per month end, for the HTML report) to save its cost."""
        from crmlink import __version__

        with _without_cycle_collection():
            return self._run(source, history, __version__)

    def _run(self, source: str | None, history: bool, version: str) -> dict[str, Any]:
        sources = [source] if source else self.store.sources()
        accounts: list[AccountView] = []
        opportunities: list[tuple[OpportunityView, list[Finding]]] = []
        for name in sources:
            data = SourceData(self.store, name)
            views = self.account_views(data, name)
            accounts.extend(views)
            for opp_view in self.opportunity_views(data, {v.account.remote_id: v for v in views}):
                opportunities.append((opp_view, _collect(self.host.hook.opportunity_findings(view=opp_view))))
        portfolio = PortfolioView(accounts, self.config, self.as_of)
        portfolio_findings = _collect(self.host.hook.portfolio_findings(view=portfolio))
        document = {
            "crmlink_version": version,
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "as_of": self.as_of_date.isoformat(),
            "summary": _summary(accounts, opportunities, portfolio_findings),
            "accounts": [_account_json(v) for v in _by_attention(accounts)],
            "opportunities": [_opportunity_json(v, f) for v, f in opportunities],
            "portfolio_findings": [f.to_json() for f in portfolio_findings],
        }
        # For the HTML report (detail.py): health at each of the last 12 month ends, the tier target.
        return add_report_extras(document, self, accounts, history=history)


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector: the audit makes millions of small objects and
    no cycles worth collecting, and full collections over a heap this size made the fold
    grow faster than the data (half the audit's time at 1M interactions)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def typical_days_in_stage(views: list[OpportunityView]) -> dict[str, float]:
    """The 75th percentile of days won deals spent in each native stage, from history."""
    spans: dict[str, list[float]] = defaultdict(list)
    for view in views:
        if not view.opportunity.is_won:
            continue
        history = list(view.stage_history)
        for current, following in zip(history, history[1:]):
            days = (following.entered_at - current.entered_at).total_seconds() / 86400.0
            spans[current.stage_label or current.stage_id or ""].append(days)
    result = {}
    for stage, values in spans.items():
        values.sort()
        result[stage] = values[min(len(values) - 1, int(0.75 * len(values)))]
    return result


def _collect(results: list[list[Finding] | None]) -> list[Finding]:
    found = [f for result in results for f in (result or ())]
    return sorted(found, key=lambda f: (-SEVERITY_RANK[f.severity], f.code))


def _worst(findings: list[Finding]) -> int:
    return max((SEVERITY_RANK[f.severity] for f in findings), default=-1)


def _by_attention(views: list[AccountView]) -> list[AccountView]:
    tier_rank = {"S": 0, "A": 1, "B": 2, "C": 3}
    return sorted(views, key=lambda v: (-_worst(v.findings), tier_rank.get(v.tier or "", 4),
                                        v.scores.get("health", 0), v.account.remote_id))


def _record_ids(record: Record) -> dict[str, str]:
    return {"id": record.id, "source": record.source, "remote_id": record.remote_id}


def _account_json(view: AccountView) -> dict[str, Any]:
    p = view.personalization
    return {
        **_record_ids(view.account),
        "name": view.account.name,
        "tier": view.account.tier,
        "tier_source": view.account.tier_source,
        "scores": view.scores,
        "previous_scores": view.previous.scores if view.previous else {},
        "score_evidence": view.score_evidence,
        "personalization": {"top_holder": p["top_holder"], "top_share": p["top_share"],
                            "effective_holders": p["effective_holders"], "bus_factor": p["bus_factor"],
                            "inactive_share": p["inactive_share"]},
        "findings": [f.to_json() for f in view.findings],
        "relationship_map": account_detail(view),
    }


def _opportunity_json(view: OpportunityView, findings: list[Finding]) -> dict[str, Any]:
    opp = view.opportunity
    return {
        **_record_ids(opp),
        "account_id": f"{opp.source}:{opp.account_id}" if opp.account_id else None,
        "name": opp.name,
        "amount": str(opp.amount) if opp.amount is not None else None,
        "currency": opp.currency,
        "stage": opp.stage_label or opp.stage_id,
        "ltc_stage": view.ltc_stage,
        "ltc_phase": phase_of(view.ltc_stage),
        "days_in_stage": None if view.days_in_stage is None else round(view.days_in_stage, 1),
        "findings": [f.to_json() for f in findings],
    }


def _summary(accounts: list[AccountView], opportunities: list[tuple[OpportunityView, list[Finding]]],
             portfolio: list[Finding]) -> dict[str, Any]:
    counts = dict.fromkeys(reversed(SEVERITIES), 0)
    everything = [f for v in accounts for f in v.findings] + [f for _, fs in opportunities for f in fs] + portfolio
    for finding in everything:
        counts[finding.severity] += 1
    by_code: dict[str, int] = defaultdict(int)
    for finding in everything:
        by_code[finding.code] += 1
    return {
        "accounts": len(accounts),
        "opportunities": len(opportunities),
        "findings_by_severity": counts,
        "findings_by_code": dict(sorted(by_code.items())),
        "effort_share_by_tier": effort_share(accounts),
        "accounts_by_tier": _tier_counts(accounts),
    }


def effort_share(accounts: list[AccountView]) -> dict[str, float]:
    """Share of the decayed interaction weight spent on each tier (``none`` = no tier)."""
    totals: dict[str, float] = {"S": 0.0, "A": 0.0, "B": 0.0, "C": 0.0}
    for view in accounts:
        key = view.tier or "none"
        totals[key] = totals.get(key, 0.0) + view.data.effort
    grand = sum(totals.values())
    return {tier: round(value / grand, 4) if grand else 0.0 for tier, value in totals.items()}


def _tier_counts(accounts: list[AccountView]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for view in accounts:
        counts[view.tier or "none"] += 1
    return dict(counts)
