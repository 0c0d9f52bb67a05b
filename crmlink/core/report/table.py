"""The terminal report: what a sales leader reads first, worst accounts on top."""

from __future__ import annotations

from collections.abc import Iterable

from crmlink.core.document import AccountEntry, AuditDocument, OpportunityEntry
from crmlink.core.findings import URGENT_SEVERITIES, Finding, ScoreDefinition
from crmlink.core.report import changes
from crmlink.core.report.text import (
    ACCOUNT_LIMIT,
    coverage_cell,
    finding_lines,
    left_out_note,
    listed,
    score_cell,
    share,
    summary_lines,
    unknown_people_line,
)

SYMBOL = {"critical": "!!", "high": "! ", "medium": "~ ", "low": ". ", "info": "  "}


def _width(definition: ScoreDefinition) -> int:
    """Room for the label, and for the overall score's change since the previous period."""
    return max(12 if definition.overall else 6, len(definition.label) + 2)


#: the accounts' and the deals' critical and high findings the table shows
URGENT_SHOWN, URGENT_DEALS_SHOWN = 25, 15


def _first_urgent(entries: Iterable[AccountEntry | OpportunityEntry], count: int) -> list[Finding]:
    """The first ``count`` critical and high findings of ``entries``, in their order: the
    entries after them are not read (a large portfolio's are read back from disk)."""
    found: list[Finding] = []
    for entry in entries:
        found += [f for f in entry.findings if f.severity in URGENT_SEVERITIES]
        if len(found) >= count:
            break
    return found[:count]


def render(doc: AuditDocument, limit: int | None = ACCOUNT_LIMIT) -> str:
    """The summary, the first ``limit`` accounts in attention order (all when None) and
    the findings that need attention first."""
    headline = [(d, _width(d)) for d in doc.presentation.headline]
    accounts = listed(doc, limit)
    lines = summary_lines(doc)
    lines += ["", *changes.table(doc.changes)] if doc.changes is not None else []
    lines += ["", f"{'tier':<5}{'account':<34}" + "".join(f"{d.label:>{w}}" for d, w in headline)
                  + f"{'evidence':>10}{'top holder':>12}  findings"]
    for account in accounts:
        codes = ", ".join(f.code for f in account.findings[:3])
        more = len(account.findings) - 3
        lines.append(
            f"{account.tier or '-':<5}{(account.name or account.remote_id)[:33]:<34}"
            + "".join(f"{score_cell(account, d):>{w}}" for d, w in headline)
            + f"{coverage_cell(account):>10}{share(account.personalization.top_share):>12}  {codes}{f' +{more}' if more > 0 else ''}")
    if (note := left_out_note(doc, len(accounts))) is not None:
        lines += ["", note]
    people = [line for a in accounts if (line := unknown_people_line(a))]
    lines += ["", "People not in the CRM (add them as contacts):", *people] if people else []
    lines += ["", "What needs attention first:"]
    lines += [line for finding in _first_urgent(doc.accounts, URGENT_SHOWN)
              for line in finding_lines(finding, SYMBOL[finding.severity])]
    for finding in doc.portfolio_findings:
        lines += finding_lines(finding, SYMBOL[finding.severity])
    at_risk = doc.urgent_deal_findings
    if at_risk is None:  # a document the audit did not count
        at_risk = sum(f.severity in URGENT_SEVERITIES for o in doc.opportunities for f in o.findings)
    if at_risk:
        lines += ["", f"Deals at risk ({at_risk}):"]
        for finding in _first_urgent(doc.opportunities, URGENT_DEALS_SHOWN):
            lines += finding_lines(finding, SYMBOL[finding.severity])
    everything = "json or markdown" if note is None else "json, or markdown with --all,"
    lines += ["", f"Run with --format {everything} for every finding and its evidence."]
    return "\n".join(lines) + "\n"
