"""The one place the audit document is built: from the scored views to the typed
:class:`~crmlink.core.document.AuditDocument`."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmlink.core.analysis.coverage import PortfolioCoverageTally
from crmlink.core.analysis.detail import relationship_map
from crmlink.core.analysis.summary import AccountSummary, OpportunitySummary
from crmlink.core.analysis.view import AccountView, OpportunityView
from crmlink.core.document import (
    AccountCoverage,
    AccountEntry,
    Departure,
    HistoryPoint,
    IdentityConflict,
    MergedRecord,
    MergeSummary,
    OpportunityEntry,
    Personalization,
    RelationshipEntry,
    RelationshipMap,
    Summary,
    UnknownPersonEntry,
)
from crmlink.core.findings import SEVERITIES, SEVERITY_RANK, URGENT_SEVERITIES, Finding
from crmlink.core.ltc import phase_of
from crmlink.core.merge import ACCOUNT, CONTACT, USER, Conflict, Joined
from crmlink.core.model import Record

if TYPE_CHECKING:
    from crmlink.core.analysis.units import MergedUnit

TIER_RANK = {"S": 0, "A": 1, "B": 2, "C": 3}


def attention_key(account: AccountView | AccountSummary, overall: str | None) -> tuple[int, int, bool, float, str]:
    """Where an account (its view, or its summary) stands among those that need
    attention first: worst finding, then tier, then the overall score (lowest first; a
    missing one, for want of evidence, after every known one), then remote id."""
    score = account.scores.get(overall) if overall else None
    return (-_worst(account.findings), TIER_RANK.get(account.tier or "", 4), score is None, score or 0.0,
            account.account.remote_id)


def _worst(findings: Sequence[Finding]) -> int:
    return max((SEVERITY_RANK[f.severity] for f in findings), default=-1)


def account_entry(view: AccountView, departure: Departure | None, history: list[HistoryPoint] | None,
                  merged_from: Sequence[tuple[Joined, bool]] | None = None,
                  contacts_from: Mapping[str, Sequence[tuple[Joined, bool]]] | None = None) -> AccountEntry:
    """The account's entry; ``merged_from`` are the source records of a merged account and
    ``contacts_from`` those of its merged contacts (by contact id), with how each joined."""
    p = view.personalization
    return AccountEntry(
        *_ids(view.account), view.account.name, view.account.tier, view.account.tier_source, _owner(view),
        dict(view.scores), dict(view.previous.scores) if view.previous else {}, view.score_evidence,
        Personalization(p["top_holder"], p["top_share"], p["effective_holders"], p["bus_factor"],
                        p["inactive_share"]),
        list(view.findings), account_coverage(view),
        relationship_map(view, departure, {c: _merged(j) for c, j in contacts_from.items()} if contacts_from else None),
        [UnknownPersonEntry(p.address, p.name, p.messages) for p in view.unknown_people], history,
        *_relationship(view),
        _merged(merged_from) if merged_from else None)


def _merged(joined: Sequence[tuple[Joined, bool]]) -> list[MergedRecord]:
    return [MergedRecord(j.source, j.remote_id, primary, j.rule, j.value) for j, primary in joined]


def _relationship(view: AccountView) -> tuple[str | None, str | None, RelationshipEntry | None]:
    found = view.relationship
    if found is None:
        return None, None, None
    return found.stage, found.level, RelationshipEntry(
        found.stage_source, found.level_source, found.explanation, list(found.stage_because),
        list(found.stage_next), list(found.level_because), list(found.level_next), found.evidence)


def _owner(view: AccountView) -> str | None:
    owner_id = view.account.owner_id
    if not owner_id:
        return None
    owner = view.users.get(owner_id)
    return (owner.name if owner is not None else None) or owner_id


def account_coverage(view: AccountView) -> AccountCoverage:
    c = view.coverage
    return AccountCoverage(
        view.assessment, c.ratio, c.window_days, c.contacts, c.classified, c.titled, c.with_department,
        c.with_seniority, c.with_role, c.interactions, c.with_contact, c.with_user, c.paired,
        c.contacts_reached, c.our_people, c.opportunities, c.open_opportunities, c.open_pipeline,
        list(c.gaps), list(c.thin))


def opportunity_entry(view: OpportunityView, findings: list[Finding],
                      ids: tuple[str, str, str, str | None]) -> OpportunityEntry:
    """The deal's entry; ``ids`` are its global id, source and remote id as its CRM has
    them and its account's global id in the audit."""
    opp = view.opportunity
    days = view.days_in_stage
    return OpportunityEntry(
        *ids, opp.name,
        str(opp.amount) if opp.amount is not None else None, opp.currency, opp.stage_label or opp.stage_id,
        view.ltc_stage, phase_of(view.ltc_stage), None if days is None else round(days, 1), findings)


def _ids(record: Record) -> tuple[str, str, str]:
    return record.id, record.source, record.remote_id


def slim_entry(entry: AccountEntry) -> AccountEntry:
    """``entry`` without its relationship map and score evidence: what the table and
    Markdown reports, saving and the exit status never read."""
    return dataclasses.replace(entry, score_evidence={}, relationship_map=RelationshipMap([], [], [], None))


class PortfolioTally:
    """The document's summary, added up as each account and deal is judged
    (:meth:`add_account`, :meth:`add_deal`, in the audit's order): counts of findings by
    severity and code, effort and accounts per tier, and the portfolio's coverage
    (:class:`.coverage.PortfolioCoverageTally`). The audit keeps its accounts on disk
    past a bound (:mod:`.spill`); counting them as they come reads none of them back."""

    def __init__(self, coverage: Mapping[str, Any]) -> None:
        self.accounts = self.deals = self.deals_with_roles = 0
        self.urgent_deal_findings = 0  # the deals' critical and high findings
        self.severities = dict.fromkeys(reversed(SEVERITIES), 0)
        self.codes: dict[str, int] = defaultdict(int)
        self.effort: dict[str, float] = {"S": 0.0, "A": 0.0, "B": 0.0, "C": 0.0}
        self.tiers: dict[str, int] = defaultdict(int)
        self.coverage = PortfolioCoverageTally(coverage)

    def add_account(self, account: AccountSummary, findings: Iterable[tuple[str, str]] | None = None) -> None:
        """Count ``account``; ``findings``: its findings' severities and codes
        (:func:`finding_pairs`), when at hand (the audit's cache stores them, and reads
        a hit's findings only when something else asks for them)."""
        self.accounts += 1
        _count(finding_pairs(account.findings) if findings is None else findings, self.severities, self.codes)
        tier = account.tier or "none"
        self.effort[tier] = self.effort.get(tier, 0.0) + account.effort
        self.tiers[tier] += 1
        self.coverage.add(account)

    def add_deal(self, deal: OpportunitySummary) -> None:
        self.add_counted_deal(deal_counted(deal))

    def add_counted_deal(self, counted: DealCounted) -> None:
        """Count a deal from what :func:`deal_counted` keeps of it."""
        roles, findings = counted
        self.deals += 1
        self.deals_with_roles += roles
        self.urgent_deal_findings += sum(severity in URGENT_SEVERITIES for severity, _ in findings)
        _count(findings, self.severities, self.codes)

    def summary(self, portfolio: Sequence[Finding]) -> Summary:
        """The summary, with the ``portfolio`` findings counted too."""
        severities, codes = dict(self.severities), defaultdict(int, self.codes)
        _count(finding_pairs(portfolio), severities, codes)
        grand = sum(self.effort.values())
        effort = {tier: round(value / grand, 4) if grand else 0.0 for tier, value in self.effort.items()}
        return Summary(self.accounts, self.deals, severities, dict(sorted(codes.items())), effort,
                       dict(self.tiers), self.coverage.coverage(self.deals_with_roles, self.deals))


#: what :class:`PortfolioTally` counts of a deal: whether it records contact roles, and
#: its findings' severities and codes (:func:`deal_counted`)
DealCounted = tuple[bool, tuple[tuple[str, str], ...]]


def finding_pairs(findings: Iterable[Finding]) -> tuple[tuple[str, str], ...]:
    """The severity and code of each of ``findings``: what :class:`PortfolioTally` counts."""
    return tuple((finding.severity, finding.code) for finding in findings)


def deal_counted(deal: OpportunitySummary) -> DealCounted:
    """What :class:`PortfolioTally` counts of ``deal``."""
    return bool(deal.contact_roles), finding_pairs(deal.findings)


def _count(findings: Iterable[tuple[str, str]], severities: dict[str, int], codes: dict[str, int]) -> None:
    """Add ``findings`` (severity and code of each) to the counts by severity (every
    severity a key) and by code."""
    for severity, code in findings:
        severities[severity] += 1
        codes[code] = codes.get(code, 0) + 1


def merge_summary(unit: MergedUnit) -> MergeSummary:
    """What merging the unit's sources joined and left apart."""
    plan = unit.plan
    return MergeSummary(list(unit.sources), plan.joined_count(ACCOUNT), plan.joined_count(CONTACT),
                        plan.joined_count(USER), [_conflict(c) for c in plan.conflicts])


def _conflict(c: Conflict) -> IdentityConflict:
    return IdentityConflict(c.kind, c.entity, c.value, list(c.records), c.message, c.decide)


def conflict_findings(conflicts: Sequence[Conflict]) -> list[Finding]:
    """One IDENTITY_CONFLICT portfolio finding per conflict the merge left apart."""
    return [Finding("IDENTITY_CONFLICT", "medium", f"Not merged: {c.message}.",
                    {"kind": c.kind, "entity": c.entity, "value": c.value, "records": list(c.records)},
                    f"Decide in the config file: {c.decide}.") for c in conflicts]


def tier_target(config: Mapping[str, Any]) -> dict[str, float]:
    """The target effort ratio per tier, as the config gives it."""
    return dict(config["tiers"]["target"])
