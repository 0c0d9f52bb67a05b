"""``crmlink history``: the audits kept with ``crmlink audit --save``, or one account
through them."""

from __future__ import annotations

import json
from typing import Any

import click

from crmlink.commands.common import db_option, open_store
from crmlink.core.errors import ConfigError
from crmlink.core.evaluation.saved import SavedAudit, SavedAudits
from crmlink.core.evaluation.snapshot import SCORE_NAMES, AccountState
from crmlink.core.evaluation.vocab import label as words
from crmlink.core.report.text import score


def _header(audit: SavedAudit, findings: int) -> dict[str, Any]:
    return {"label": audit.label, "as_of": audit.as_of.isoformat(),
            "saved_at": audit.saved_at.isoformat(timespec="seconds"), "accounts": audit.accounts,
            "findings": findings}


def account_json(state: AccountState, findings: list[tuple[str, str]]) -> dict[str, Any]:
    """One account in one saved audit, as ``history --format json`` prints it."""
    return {"id": state.id, "remote_id": state.remote_id, "name": state.name, **state.scores,
            "tier": state.tier, "stage": state.stage, "level": state.level,
            "coverage_ratio": state.ratio, "assessment": state.assessment,
            "findings": [{"code": code, "severity": severity} for code, severity in findings]}


@click.command("history")
@click.argument("account", required=False)
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def command(account: str | None, db_url: str | None, fmt: str) -> None:
    """List the saved audits (crmlink audit --save), oldest first; with ACCOUNT (its
    remote id, source:id or name), that account's scores, tier, stage, level and findings
    in each of them.

    \b
    Examples:
      crmlink history
      crmlink history ACC-001 --format json
    """
    saved = SavedAudits(open_store(db_url))
    audits = saved.audits()
    counts = saved.finding_counts()
    if account is None:
        rows = [_header(a, counts.get(a.id, 0)) for a in audits]
        click.echo(json.dumps(rows, ensure_ascii=False) if fmt == "json" else _table(rows))
        return
    gids = saved.accounts_named(account)
    if not gids:
        raise ConfigError(f"no saved audit holds an account {account!r}; give its remote id, "
                          "source:remote_id or name (crmlink history lists the saved audits)")
    if len(gids) > 1:
        raise ConfigError(f"{account!r} names {len(gids)} accounts ({', '.join(gids)}); give source:remote_id")
    states = {a.id: s for a, s in saved.account_rows(gids)}
    findings = saved.account_findings(gids[0])
    rows = [_header(a, counts.get(a.id, 0)) | {"account": account_json(states[a.id], findings.get(a.id, []))
                                              if a.id in states else None} for a in audits]
    click.echo(json.dumps(rows, ensure_ascii=False) if fmt == "json" else _account_table(gids[0], rows))


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No saved audits yet: run crmlink audit --save (or set evaluation.save = true)."
    lines = [f"{'label':<22}{'as of':<12}{'saved at (UTC)':<21}{'accounts':>9}{'findings':>10}"]
    lines += [f"{r['label'][:21]:<22}{r['as_of']:<12}{r['saved_at'][:16].replace('T', ' '):<21}"
              f"{r['accounts']:>9,}{r['findings']:>10,}" for r in rows]
    return "\n".join(lines)


def _account_table(gid: str, rows: list[dict[str, Any]]) -> str:
    held = [r for r in rows if r["account"] is not None]
    name = held[-1]["account"]["name"] if held else None
    lines = [f"{name or gid} ({gid}) in {len(held)} of {len(rows)} saved audit(s)", "",
             f"{'label':<22}{'as of':<12}" + "".join(f"{n:>7}" for n in SCORE_NAMES)
             + f"{'tier':>6}  {'stage':<28}{'level':<23}findings"]
    for r in held:
        a = r["account"]
        codes = ", ".join(f["code"] for f in a["findings"][:3]) + (
            f" +{len(a['findings']) - 3}" if len(a["findings"]) > 3 else "")
        lines.append(f"{r['label'][:21]:<22}{r['as_of']:<12}" + "".join(f"{score(a[n]):>7}" for n in SCORE_NAMES)
                     + f"{a['tier'] or '-':>6}  {words(a['stage']):<28}{words(a['level']):<23}{codes}")
    return "\n".join(lines)
