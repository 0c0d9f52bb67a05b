"""``crmlink audit``: score every account and list what needs attention."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from crmlink.cli import host_of
from crmlink.commands.common import (
    as_of_option,
    config,
    config_option,
    db_option,
    open_store,
    write_output,
)
from crmlink.commands.sync import run_sync
from crmlink.core.analysis.audit import Audit
from crmlink.core.errors import ConfigError, ExitCode
from crmlink.core.findings import SEVERITIES, SEVERITY_RANK
from crmlink.core.report import markdown, table


def render_json(document: dict[str, Any]) -> str:
    """The audit document as JSON: indented when a person runs crmlink at a terminal,
    compact otherwise (for a large portfolio it runs to hundreds of megabytes, and the
    indenting encoder is several times slower than the compact one)."""
    indent = 2 if sys.stdout.isatty() else None
    return json.dumps(document, indent=indent, ensure_ascii=False)


BUILTIN_FORMATS = {"table": table.render, "json": render_json,
                   "markdown": markdown.render,
                   # imported on use: only the HTML report needs Jinja2
                   "html": lambda doc: __import__("crmlink.core.report.html", fromlist=["render"]).render(doc)}

#: Formats that do not show the monthly health history (a plugin's format may, so it gets it).
WITHOUT_HISTORY = frozenset({"table", "json", "markdown"})


def formats(ctx: click.Context) -> dict[str, Any]:
    return {**BUILTIN_FORMATS, **host_of(ctx).report_formats()}


@click.command("audit")
@click.argument("path", required=False, type=click.Path(file_okay=False))
@db_option
@click.option("--source", "source", metavar="NAME", help="Audit only this source [default: all; with PATH: csv].")
@as_of_option
@click.option("--format", "fmt", default="table", show_default=True, metavar="FORMAT",
              help="table, json, markdown, html, or a plugin's format.")
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), metavar="SEVERITY",
              help="Exit 1 if a finding at or above this severity exists (for CI).")
@config_option
@click.pass_context
def command(ctx: click.Context, path: str | None, db_url: str | None, source: str | None, as_of: Any,
            fmt: str, output: str | None, fail_on: str | None, config_file: str | None) -> None:
    """Audit relationships: key, broad and organisational scores, personalisation,
    trends, tiers and LTC stages, with findings and what to do about them.

    With PATH (a folder in the canonical CSV format) the export is synced into the
    store first and audited on its own.

    \b
    Examples:
      crmlink audit examples/sample --as-of 2026-11-20
      crmlink audit --db postgresql://crm@db/crmlink --format json --fail-on high
    """
    renderers = formats(ctx)
    if fmt not in renderers:
        raise ConfigError(f"unknown format {fmt!r}; choose one of: {', '.join(sorted(renderers))}")
    settings = config(config_file)
    if path is not None:
        source = source or "csv"
        run_sync(ctx, host_of(ctx).connector("csv"), {"path": path}, source, db_url, quiet=True)
    store = open_store(db_url)
    if source is not None and source not in store.sources():
        raise ConfigError(f"the store has no source named {source!r}; it has: {', '.join(store.sources()) or 'none (run crmlink sync first)'}")
    document = Audit(store, host_of(ctx), settings, as_of).run(source, history=fmt not in WITHOUT_HISTORY)
    write_output(renderers[fmt](document), output)
    if fail_on and _worst(document) >= SEVERITY_RANK[fail_on]:
        ctx.exit(int(ExitCode.FINDINGS))


def _worst(document: dict[str, Any]) -> int:
    counts = document["summary"]["findings_by_severity"]
    return max((SEVERITY_RANK[s] for s, n in counts.items() if n), default=-1)
