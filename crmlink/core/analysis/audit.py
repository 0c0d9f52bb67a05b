"""The audit: load one source's records, fold the interactions, call the scoring and
findings hooks, and build the audit document (:mod:`.assemble`,
:class:`~crmlink.core.document.AuditDocument`)."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from crmlink.core.analysis.accumulate import AccountData, Accumulator, interaction_rows
from crmlink.core.analysis.assemble import (
    account_entry,
    by_attention,
    opportunity_entry,
    summary,
    tier_target,
)
from crmlink.core.analysis.coverage import portfolio_coverage
from crmlink.core.analysis.history import health_history
from crmlink.core.analysis.people import unknown_people
from crmlink.core.analysis.tiers import assign_tier
from crmlink.core.analysis.view import AccountView, OpportunityView, PortfolioView
from crmlink.core.document import (
    SCHEMA_VERSION,
    AuditDocument,
    Departure,
    OpportunityEntry,
    Presentation,
)
from crmlink.core.evaluation.relationship import with_crm_override
from crmlink.core.findings import SEVERITY_RANK, Finding
from crmlink.core.host import PluginHost
from crmlink.core.ltc import ExecutionIndex
from crmlink.core.model import (
    Account,
    Contact,
    ExecutionRecord,
    Opportunity,
    OpportunityContact,
    Stage,
    StageChange,
    User,
)
from crmlink.core.store import R, Store


def as_of_timestamp(day: date | None) -> float:
    """The end of ``day`` (UTC) in epoch seconds; today when ``None``."""
    day = day or datetime.now(timezone.utc).date()
    return datetime.combine(day + timedelta(days=1), time(), timezone.utc).timestamp() - 1e-3


class SourceData:
    """Everything but the interactions of one source, keyed by remote id."""

    def __init__(self, store: Store, source: str) -> None:
        def load(cls: type[R]) -> dict[str, R]:
            return {r.remote_id: r for r in store.records_of(cls, source=source)}

        self.accounts = load(Account)
        self.users = {r.remote_id: r for r in store.records_of(User, source=source, include_deleted=True)}
        self.contacts = load(Contact)
        self.opportunities = load(Opportunity)
        self.stages = load(Stage)
        self.execution = ExecutionIndex(store.records_of(ExecutionRecord, source=source))
        self.contacts_by_account: dict[str, list[Contact]] = defaultdict(list)
        for contact in self.contacts.values():
            if contact.account_id:
                self.contacts_by_account[contact.account_id].append(contact)
        self.opps_by_account: dict[str, list[Opportunity]] = defaultdict(list)
        for opp in self.opportunities.values():
            self.opps_by_account[opp.account_id or ""].append(opp)
        self.roles: dict[str, list[OpportunityContact]] = defaultdict(list)
        for role in store.records_of(OpportunityContact, source=source):
            self.roles[role.opportunity_id or ""].append(role)
        self.history: dict[str, list[StageChange]] = defaultdict(list)
        for change in store.records_of(StageChange, source=source):
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
        acc = Accumulator(self.config, data.users, data.contacts, self.host.interaction_method)
        now: dict[str, AccountData] = {a: AccountData(self.as_of) for a in data.accounts}
        before: dict[str, AccountData] = {a: AccountData(self.previous) for a in data.accounts}
        slots = {a: (now[a], before[a]) for a in data.accounts}
        with self.store.engine.connect() as conn:
            acc.fold(interaction_rows(conn, source, self.as_of), slots,
                     lambda contacts: self._account_of(data, contacts))
        return now, before

    def fold_at(self, source: str, views: Sequence[AccountView], days: Sequence[date]) -> dict[str, list[AccountData]]:
        """One pass over ``source``'s interactions into each account's aggregates as of the
        end of each of ``days`` (ascending), keyed by the account's remote id."""
        stamps = [as_of_timestamp(day) for day in days]
        users: Mapping[str, Any] = views[0].users if views else {}
        contacts = {c.remote_id: c for v in views for c in v.contacts}
        acc = Accumulator(self.config, users, contacts, self.host.interaction_method)
        data = {v.account.remote_id: [AccountData(stamp) for stamp in stamps] for v in views}
        if not stamps:
            return data

        def account_of(contact_ids: tuple[str, ...]) -> str | None:
            return next((contacts[c].account_id for c in contact_ids
                         if c in contacts and contacts[c].account_id), None)

        with self.store.engine.connect() as conn:
            acc.fold(interaction_rows(conn, source, stamps[-1]), data, account_of)
        return data

    @staticmethod
    def _account_of(data: SourceData, contacts: tuple[str, ...]) -> str | None:
        for contact_id in contacts:
            contact = data.contacts.get(contact_id)
            if contact is not None and contact.account_id:
                return contact.account_id
        return None

    # -- scoring ----------------------------------------------------------------------------

    def score(self, view: AccountView) -> None:
        """Fill ``view.scores`` (rounded to 0.1) and ``view.score_evidence`` from every plugin."""
        merged = self.host.score_account(view)
        view.scores = {name: None if s.value is None else round(s.value, 1) for name, s in merged.items()}
        view.score_evidence = {name: s.evidence for name, s in merged.items()}

    def account_views(self, data: SourceData, source: str) -> list[AccountView]:
        now, before = self.fold(data, source)
        people_now = unknown_people(self.store.correspondent_rows(source, self.as_of))
        people_before = unknown_people(self.store.correspondent_rows(source, self.previous))
        views = []
        for remote_id, account in sorted(data.accounts.items()):
            assign_tier(account, self.config["tiers"])
            args = (data.contacts_by_account.get(remote_id, []), data.users,
                    data.opps_by_account.get(remote_id, []), self.config)
            previous = AccountView(account, before[remote_id], *args,
                                   unknown_people=people_before.get(remote_id, ()))
            view = AccountView(account, now[remote_id], *args, previous=previous,
                               unknown_people=people_now.get(remote_id, ()))
            self.score(previous)
            self.score(view)
            view.relationship = with_crm_override(view, self.host.evaluate_relationship(view))
            view.findings = _by_severity(self.host.account_findings(view))
            views.append(view)
        return views

    def opportunity_views(self, data: SourceData, views: Mapping[str, AccountView]) -> list[OpportunityView]:
        result = []
        for opp in sorted(data.opportunities.values(), key=lambda o: o.remote_id):
            stage = data.stages.get(opp.stage_id or "") or data.stages.get(opp.stage_label or "")
            ltc = opp.ltc_stage or self.host.ltc_stage(
                opp, stage, self.config["ltc"], data.execution.of(opp)) or "unmapped"
            result.append(OpportunityView(
                opp, views.get(opp.account_id or ""), stage, ltc, data.roles.get(opp.remote_id, []),
                sorted(data.history.get(opp.remote_id, []), key=lambda h: (h.entered_at, h.remote_id)),
                self.config, self.as_of))
        typical = typical_days_in_stage(result)
        roles = sum(len(found) for found in data.roles.values())
        for view in result:
            view.typical_days_in_stage = typical
            view.source_contact_roles = roles
        return result

    def departure(self, view: AccountView) -> Departure | None:
        """The departure simulation for the account's top holder, if a plugin offers one."""
        top = view.personalization.get("top_holder")
        return self.host.simulate_departure(view, top) if top else None

    # -- the document ------------------------------------------------------------------------

    def document(self, source: str | None = None, *, history: bool = False) -> AuditDocument:
        """The audit document of ``source`` (every source when ``None``); ``history`` adds
        each account's ``health_history`` (one more fold, for the formats that draw it)."""
        from crmlink import __version__

        with _without_cycle_collection():
            return self._document(source, history, __version__)

    def run(self, source: str | None = None, *, history: bool = True) -> dict[str, Any]:
        """The audit document as JSON data (see :meth:`document`)."""
        return self.document(source, history=history).to_json()

    def _document(self, source: str | None, history: bool, version: str) -> AuditDocument:
        presentation = Presentation(self.host.score_definitions(),
                                    self.config["findings"]["previous_period_days"])
        overall = presentation.overall
        accounts: list[AccountView] = []
        opportunities: list[OpportunityEntry] = []
        deal_views: list[OpportunityView] = []
        for name in [source] if source else self.store.sources():
            data = SourceData(self.store, name)
            views = self.account_views(data, name)
            accounts.extend(views)
            for opp_view in self.opportunity_views(data, {v.account.remote_id: v for v in views}):
                deal_views.append(opp_view)
                opportunities.append(opportunity_entry(opp_view, _by_severity(self.host.opportunity_findings(opp_view))))
        portfolio = PortfolioView(accounts, self.config, self.as_of, deal_views)
        portfolio_findings = _by_severity(self.host.portfolio_findings(portfolio))
        series = (health_history(accounts, self.as_of_date, [s.name for s in presentation.headline],
                                 self.fold_at, self.score) if history else {})
        return AuditDocument(
            crmlink_version=version, schema_version=SCHEMA_VERSION,
            generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            as_of=self.as_of_date.isoformat(),
            summary=summary(accounts, opportunities, portfolio_findings, portfolio_coverage(
                accounts, self.config["coverage"], sum(1 for v in deal_views if v.contact_roles), len(deal_views))),
            accounts=[account_entry(v, self.departure(v), series.get(v.account.id, []) if history else None)
                      for v in by_attention(accounts, overall.name if overall else None)],
            opportunities=opportunities, portfolio_findings=portfolio_findings,
            tier_target=tier_target(self.config), presentation=presentation)


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


def _by_severity(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code))
