"""A snapshot of an audit: what a saved audit keeps, made from a saved audit or from a
fresh audit document, so that comparing two of them never asks where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crmlink.core.document import AuditDocument

#: The scores a snapshot keeps, by name; reports call the first one health.
SCORE_NAMES = ("health", "key", "broad", "org")


@dataclass(frozen=True, slots=True)
class AccountState:
    """One account in one audit."""

    id: str
    source: str
    remote_id: str
    name: str | None
    scores: dict[str, float | None]
    tier: str | None
    ratio: float | None
    assessment: str | None
    stage: str | None
    level: str | None


@dataclass(frozen=True, slots=True)
class FindingState:
    """One finding in one audit: about an account, one of its deals, or the portfolio
    (``subject`` empty)."""

    subject: str              # global id of the account or deal; "" for the portfolio
    account: str | None       # global id of the account it concerns, if any
    code: str
    severity: str
    opportunity: str | None = None  # the deal's remote id, for a deal's finding


@dataclass
class Snapshot:
    """An audit's per-account states and findings as of one date."""

    as_of: date
    label: str | None = None
    saved_at: datetime | None = None
    accounts: dict[str, AccountState] = field(default_factory=dict)
    #: (subject, code) -> finding; one per subject and code (the most severe)
    findings: dict[tuple[str, str], FindingState] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The label, or the as-of date of an audit that was not saved."""
        return self.label or self.as_of.isoformat()

    def only_sources(self, sources: set[str]) -> Snapshot:
        """The same audit restricted to the accounts (and their findings) of ``sources``;
        portfolio findings are kept."""
        kept = Snapshot(self.as_of, self.label, self.saved_at)
        kept.accounts = {gid: a for gid, a in self.accounts.items() if a.source in sources}
        kept.findings = {k: f for k, f in self.findings.items()
                         if not f.account or f.account.partition(":")[0] in sources}
        return kept

    def add_finding(self, finding: FindingState, rank: dict[str, int]) -> None:
        key = (finding.subject, finding.code)
        kept = self.findings.get(key)
        if kept is None or rank[finding.severity] > rank[kept.severity]:
            self.findings[key] = finding


def _overall(doc: AuditDocument) -> str:
    overall = doc.presentation.overall
    return overall.name if overall is not None else "health"


def snapshot_of(doc: AuditDocument, label: str | None = None) -> Snapshot:
    """The snapshot of an audit document (``label`` defaults to its as-of date)."""
    from crmlink.core.findings import SEVERITY_RANK

    snap = Snapshot(date.fromisoformat(doc.as_of), label or doc.as_of)
    overall = _overall(doc)
    for a in doc.accounts:
        scores = {name: a.scores.get(overall if name == "health" else name) for name in SCORE_NAMES}
        snap.accounts[a.id] = AccountState(
            a.id, a.source, a.remote_id, a.name, scores, a.tier, a.coverage.ratio, a.coverage.assessment,
            a.stage, a.level)
        for f in a.findings:
            snap.add_finding(FindingState(a.id, a.id, f.code, f.severity), SEVERITY_RANK)
    for o in doc.opportunities:
        for f in o.findings:
            snap.add_finding(FindingState(o.id, o.account_id, f.code, f.severity, o.remote_id), SEVERITY_RANK)
    for f in doc.portfolio_findings:
        snap.add_finding(FindingState("", None, f.code, f.severity), SEVERITY_RANK)
    return snap
