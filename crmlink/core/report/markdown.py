"""The Markdown report, for wikis and pull requests: every account and finding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from crmlink.core.document import AuditDocument
from crmlink.core.findings import Finding
from crmlink.core.report.text import score_cell, share, summary_lines


def _cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def render(doc: AuditDocument) -> str:
    headline = doc.presentation.headline
    columns = ["tier", "account", *(d.label for d in headline), "top holder share", "findings"]
    out = [f"# Relationship audit, {doc.as_of}", ""]
    out += [f"- {line}" for line in summary_lines(doc)[1:]]
    out += ["", "## Accounts", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for a in doc.accounts:
        cells = [_cell(a.tier), _cell(a.name), *(score_cell(a, d) for d in headline),
                 share(a.personalization.top_share), str(len(a.findings))]
        out.append("| " + " | ".join(cells) + " |")
    if doc.portfolio_findings:
        out += ["", "## Portfolio", ""]
        out += _findings(doc.portfolio_findings)
    out += ["", "## Findings by account", ""]
    for a in doc.accounts:
        if not a.findings:
            continue
        out += [f"### {_cell(a.name)} ({a.tier or 'no tier'})", ""]
        out += _findings(a.findings)
    out += ["", "## Opportunities", "", "| opportunity | stage | LTC stage | phase | days in stage | findings |",
            "|---|---|---|---|---|---|"]
    for o in doc.opportunities:
        out.append(f"| {_cell(o.name)} | {_cell(o.stage)} | {o.ltc_stage} | {_cell(o.ltc_phase)} | "
                   f"{_cell(o.days_in_stage)} | {_cell(', '.join(f.code for f in o.findings))} |")
    return "\n".join(out) + "\n"


def _findings(findings: Sequence[Finding]) -> list[str]:
    lines = []
    for f in findings:
        lines.append(f"- **{f.severity}** `{f.code}`: {_cell(f.message)}")
        if f.action:
            lines.append(f"  - Action: {_cell(f.action)}")
        lines.append(f"  - Evidence: `{json.dumps(f.evidence, ensure_ascii=False, default=str)[:400]}`")
    return lines
