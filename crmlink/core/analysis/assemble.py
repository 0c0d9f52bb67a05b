"""The one place the audit document is built: from the scored views to the typed
:class:`~crmlink.core.document.AuditDocument`."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

from crmlink.core.analysis.detail import relationship_map
from crmlink.core.analysis.summary import AccountSummary
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
    PortfolioCoverage,
    RelationshipEntry,
    RelationshipMap,
    Summary,
    UnknownPersonEntry,
)
from crmlink.core.findings import SEVERITIES, SEVERITY_RANK, Finding
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


def summary(accounts: Sequence[AccountSummary], opportunities: Sequence[OpportunityEntry],
            portfolio: Sequence[Finding], coverage: PortfolioCoverage) -> Summary:
    """The document's summary: counts of findings by severity and code, effort and
    accounts per tier, and ``coverage``."""
    everything = chain((f for a in accounts for f in a.findings), (f for o in opportunities for f in o.findings),
                       portfolio)
    counts = dict.fromkeys(reversed(SEVERITIES), 0)
    by_code: dict[str, int] = defaultdict(int)
    for finding in everything:  # counted as they come: the accounts may be read from disk
        counts[finding.severity] += 1
        by_code[finding.code] += 1
    return Summary(len(accounts), len(opportunities), counts, dict(sorted(by_code.items())),
                   effort_share(accounts), _tier_counts(accounts), coverage)


def effort_share(accounts: Sequence[AccountSummary]) -> dict[str, float]:
    """Share of the decayed interaction weight spent on each tier (``none`` = no tier)."""
    totals: dict[str, float] = {"S": 0.0, "A": 0.0, "B": 0.0, "C": 0.0}
    for account in accounts:
        key = account.tier or "none"
        totals[key] = totals.get(key, 0.0) + account.effort
    grand = sum(totals.values())
    return {tier: round(value / grand, 4) if grand else 0.0 for tier, value in totals.items()}


def _tier_counts(accounts: Sequence[AccountSummary]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for account in accounts:
        counts[account.tier or "none"] += 1
    return dict(counts)


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
