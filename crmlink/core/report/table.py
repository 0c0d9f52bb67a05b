"""The terminal report: what a sales leader reads first, worst accounts on top."""

from __future__ import annotations

from typing import Any

from crmlink.core.report.text import delta, finding_lines, share, summary_lines

SYMBOL = {"critical": "!!", "high": "! ", "medium": "~ ", "low": ". ", "info": "  "}


def render(doc: dict[str, Any]) -> str:
    lines = summary_lines(doc)
    lines += ["", f"{'tier':<5}{'account':<34}{'health':>12}{'key':>6}{'broad':>7}{'org':>6}"
                  f"{'top holder':>12}  findings"]
    for account in doc["accounts"]:
        scores = account["scores"]
        before = account.get("previous_scores", {}).get("health")
        health = f"{scores.get('health', 0):.0f}{delta(scores.get('health'), before)}"
        codes = ", ".join(f["code"] for f in account["findings"][:3])
        more = len(account["findings"]) - 3
        lines.append(
            f"{account['tier'] or '-':<5}{(account['name'] or account['remote_id'])[:33]:<34}{health:>12}"
            f"{scores.get('key', 0):>6.0f}{scores.get('broad', 0):>7.0f}{scores.get('org', 0):>6.0f}"
            f"{share(account['personalization']['top_share']):>12}  {codes}{f' +{more}' if more > 0 else ''}")
    lines += ["", "What needs attention first:"]
    shown = 0
    for account in doc["accounts"]:
        for finding in account["findings"]:
            if finding["severity"] in ("critical", "high") and shown < 25:
                lines += finding_lines(finding, SYMBOL[finding["severity"]])
                shown += 1
    for finding in doc["portfolio_findings"]:
        lines += finding_lines(finding, SYMBOL[finding["severity"]])
    opp_high = [(o, f) for o in doc["opportunities"] for f in o["findings"] if f["severity"] in ("critical", "high")]
    if opp_high:
        lines += ["", f"Deals at risk ({len(opp_high)}):"]
        for _opp, finding in opp_high[:15]:
            lines += finding_lines(finding, SYMBOL[finding["severity"]])
    lines += ["", "Run with --format json or markdown for every finding and its evidence."]
    return "\n".join(lines) + "\n"
