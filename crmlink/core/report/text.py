"""Pieces shared by the table and Markdown renderers."""

from __future__ import annotations

from crmlink.core.document import AccountEntry, AuditDocument
from crmlink.core.findings import Finding, ScoreDefinition

#: How a report shows a score that is null (no evidence) or missing: never as 0.
NO_SCORE = "–"


def share(value: float | None) -> str:
    return "-" if not value else f"{value:.0%}"


def delta(now: float | None, before: float | None) -> str:
    if now is None or before is None or round(now) == round(before):
        return ""
    return f" ({now - before:+.0f})"


def score(value: float | None) -> str:
    """A score rounded to a whole number, or "–" when it is null or missing."""
    return NO_SCORE if value is None else f"{value:.0f}"


def score_cell(account: AccountEntry, definition: ScoreDefinition) -> str:
    """The account's score; the overall score with its change since the previous period."""
    value = account.scores.get(definition.name)
    if not definition.overall:
        return score(value)
    return score(value) + delta(value, account.previous_scores.get(definition.name))


def summary_lines(doc: AuditDocument) -> list[str]:
    s = doc.summary
    severities = ", ".join(f"{n} {sev}" for sev, n in s.findings_by_severity.items() if n) or "none"
    effort = "  ".join(f"{t} {v:.0%}" for t, v in s.effort_share_by_tier.items())
    tiers = "  ".join(f"{t} {n}" for t, n in sorted(s.accounts_by_tier.items()))
    return [
        f"crmlink audit as of {doc.as_of}: {s.accounts} accounts, {s.opportunities} opportunities",
        f"Findings: {severities}",
        f"Accounts by tier: {tiers}",
        f"Effort by tier:   {effort}",
    ]


def finding_lines(finding: Finding, mark: str) -> list[str]:
    lines = [f" {mark}[{finding.severity}] {finding.code}: {finding.message}"]
    if finding.action:
        lines.append(f"      -> {finding.action}")
    return lines
