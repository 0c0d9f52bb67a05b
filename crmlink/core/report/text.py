"""Pieces shared by the table and Markdown renderers."""

from __future__ import annotations

from typing import Any


def share(value: float | None) -> str:
    return "-" if not value else f"{value:.0%}"


def delta(now: float | None, before: float | None) -> str:
    if now is None or before is None or round(now) == round(before):
        return ""
    return f" ({now - before:+.0f})"


def summary_lines(doc: dict[str, Any]) -> list[str]:
    s = doc["summary"]
    severities = ", ".join(f"{n} {sev}" for sev, n in s["findings_by_severity"].items() if n) or "none"
    effort = "  ".join(f"{t} {v:.0%}" for t, v in s["effort_share_by_tier"].items())
    tiers = "  ".join(f"{t} {n}" for t, n in sorted(s["accounts_by_tier"].items()))
    return [
        f"crmlink audit as of {doc['as_of']}: {s['accounts']} accounts, {s['opportunities']} opportunities",
        f"Findings: {severities}",
        f"Accounts by tier: {tiers}",
        f"Effort by tier:   {effort}",
    ]


def finding_lines(finding: dict[str, Any], mark: str) -> list[str]:
    lines = [f" {mark}[{finding['severity']}] {finding['code']}: {finding['message']}"]
    if finding.get("action"):
        lines.append(f"      -> {finding['action']}")
    return lines
