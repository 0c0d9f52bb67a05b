"""The Markdown report, for wikis and pull requests: the portfolio, then the accounts
that need attention first (every account with ``--all``) with their findings and deals."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from crmlink.core.document import AuditDocument
from crmlink.core.findings import Finding
from crmlink.core.report import changes
from crmlink.core.report.text import (
    ACCOUNT_LIMIT,
    coverage_cell,
    fix_first_text,
    left_out_note,
    listed,
    percent,
    score_cell,
    share,
    summary_lines,
    unknown_people_line,
)


def _cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def render(doc: AuditDocument, limit: int | None = ACCOUNT_LIMIT) -> str:
    """The report with the first ``limit`` accounts in attention order and their deals
    (every account and deal when None)."""
    headline = doc.presentation.headline
    accounts = listed(doc, limit)
    note = left_out_note(doc, len(accounts))
    columns = ["tier", "account", *(d.label for d in headline), "evidence", "top holder share", "findings"]
    out = [f"# Relationship audit, {doc.as_of}", ""]
    out += [f"- {line}" for line in summary_lines(doc)[1:] if not line.startswith(("Data coverage", "Fix first", "  "))]
    out += _coverage(doc)
    if doc.merge is not None and doc.merge.conflicts:
        out += ["", "## Identity conflicts (not merged)", ""]
        out += [f"- {_cell(c.message)}\n  - Decide: {_cell(c.decide)}" for c in doc.merge.conflicts]
    out += ["", *changes.markdown(doc.changes)] if doc.changes is not None else []
    out += ["", "## Accounts", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for a in accounts:
        cells = [_cell(a.tier), _cell(a.name), *(score_cell(a, d) for d in headline), coverage_cell(a),
                 share(a.personalization.top_share), str(len(a.findings))]
        out.append("| " + " | ".join(cells) + " |")
    if note is not None:
        out += ["", f"_{note}_"]
    people = [line for a in accounts if (line := unknown_people_line(a))]
    out += ["", "## People not in the CRM", "", *(f"- {_cell(line)}" for line in people)] if people else []
    if doc.portfolio_findings:
        out += ["", "## Portfolio", ""]
        out += _findings(doc.portfolio_findings)
    out += ["", "## Findings by account", ""]
    for a in accounts:
        if not a.findings:
            continue
        out += [f"### {_cell(a.name)} ({a.tier or 'no tier'})", ""]
        out += [f"_{_cell(a.relationship.explanation)}_", ""] if a.relationship is not None else []
        out += _findings(a.findings)
    out += ["", "## Opportunities", ""]
    opportunities = doc.opportunities
    if note is not None:
        ids = {a.id for a in accounts}
        opportunities = [o for o in doc.opportunities if o.account_id in ids]
        out += [f"_The deals of the {len(accounts):,} accounts listed: {len(opportunities):,} of "
                f"{len(doc.opportunities):,}._", ""]
    out += ["| opportunity | stage | LTC stage | phase | days in stage | findings |", "|---|---|---|---|---|---|"]
    for o in opportunities:
        out.append(f"| {_cell(o.name)} | {_cell(o.stage)} | {o.ltc_stage} | {_cell(o.ltc_phase)} | "
                   f"{_cell(o.days_in_stage)} | {_cell(', '.join(f.code for f in o.findings))} |")
    return "\n".join(out) + "\n"


def _coverage(doc: AuditDocument) -> list[str]:
    c = doc.summary.coverage
    out = ["", "## Data coverage", "",
           f"- Accounts: {c.accounts['assessable']} assessable, {c.accounts['partial']} partly, "
           f"{c.accounts['not_assessable']} not assessable",
           f"- Activities in the last {c.window_days:g} days: {c.interactions}; naming a contact "
           f"{percent(c.linked_to_contact_share)}, one of our people {percent(c.linked_to_our_people_share)}, "
           f"both {percent(c.paired_share)}",
           f"- Contacts: {c.contacts}; with a title {percent(c.titled_share)}, classified "
           f"{percent(c.classified_share)}",
           f"- Deals with contact roles: {c.opportunities_with_contact_roles} of {c.opportunities}"]
    if c.fix_first:
        out += ["- Fix first: " + "; ".join(_cell(fix_first_text(entry)) for entry in c.fix_first)]
    return out


def _findings(findings: Sequence[Finding]) -> list[str]:
    lines = []
    for f in findings:
        lines.append(f"- **{f.severity}** `{f.code}`: {_cell(f.message)}")
        if f.action:
            lines.append(f"  - Action: {_cell(f.action)}")
        lines.append(f"  - Evidence: `{json.dumps(f.evidence, ensure_ascii=False, default=str)[:400]}`")
    return lines
