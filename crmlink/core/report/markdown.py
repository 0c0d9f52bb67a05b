"""The Markdown report, for wikis and pull requests: every account and finding."""

from __future__ import annotations

import json
from typing import Any

from crmlink.core.report.text import delta, share, summary_lines


def _cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def render(doc: dict[str, Any]) -> str:
    out = [f"# Relationship audit, {doc['as_of']}", ""]
    out += [f"- {line}" for line in summary_lines(doc)[1:]]
    out += ["", "## Accounts", "", "| tier | account | health | key | broad | org | top holder share | findings |",
            "|---|---|---|---|---|---|---|---|"]
    for a in doc["accounts"]:
        s = a["scores"]
        out.append(f"| {_cell(a['tier'])} | {_cell(a['name'])} | {s.get('health', 0):.0f}"
                   f"{delta(s.get('health'), a.get('previous_scores', {}).get('health'))} | {s.get('key', 0):.0f} | "
                   f"{s.get('broad', 0):.0f} | {s.get('org', 0):.0f} | {share(a['personalization']['top_share'])} | "
                   f"{len(a['findings'])} |")
    if doc["portfolio_findings"]:
        out += ["", "## Portfolio", ""]
        out += _findings(doc["portfolio_findings"])
    out += ["", "## Findings by account", ""]
    for a in doc["accounts"]:
        if not a["findings"]:
            continue
        out += [f"### {_cell(a['name'])} ({a['tier'] or 'no tier'})", ""]
        out += _findings(a["findings"])
    out += ["", "## Opportunities", "", "| opportunity | stage | LTC stage | phase | days in stage | findings |",
            "|---|---|---|---|---|---|"]
    for o in doc["opportunities"]:
        out.append(f"| {_cell(o['name'])} | {_cell(o['stage'])} | {o['ltc_stage']} | {_cell(o['ltc_phase'])} | "
                   f"{_cell(o.get('days_in_stage'))} | {_cell(', '.join(f['code'] for f in o['findings']))} |")
    return "\n".join(out) + "\n"


def _findings(findings: list[dict[str, Any]]) -> list[str]:
    lines = []
    for f in findings:
        lines.append(f"- **{f['severity']}** `{f['code']}`: {_cell(f['message'])}")
        if f.get("action"):
            lines.append(f"  - Action: {_cell(f['action'])}")
        lines.append(f"  - Evidence: `{json.dumps(f['evidence'], ensure_ascii=False, default=str)[:400]}`")
    return lines
