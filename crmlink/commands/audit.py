"""``crmlink audit``: score every account and list what needs attention."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import click

from crmlink.commands.common import (
    ProgressLine,
    as_of_option,
    config,
    config_option,
    db_option,
    host_of,
    open_store,
    output_file,
    stderr_is_terminal,
    write_output,
)
from crmlink.commands.sync import nothing_synced, sync_folder
from crmlink.core.analysis.audit import Audit
from crmlink.core.document import ASSESSMENTS, AuditDocument, audit_schema
from crmlink.core.errors import ConfigError, ExitCode
from crmlink.core.evaluation.diff import changes_since_saved
from crmlink.core.evaluation.saved import SavedAudits
from crmlink.core.evaluation.snapshot import Snapshot, snapshot_of
from crmlink.core.evaluation.trend import saved_trend
from crmlink.core.findings import SEVERITIES, SEVERITY_RANK
from crmlink.core.report import markdown, table
from crmlink.core.report.text import ACCOUNT_LIMIT
from crmlink.core.store import Store

#: what --fail-on-coverage accepts: an assessment short of assessable
FAILING_ASSESSMENTS = ASSESSMENTS[1:]


class Format(NamedTuple):
    """An output format: a function of the typed audit document and the number of
    accounts to list (None: all; only the table and Markdown reports limit it), whether
    it draws the monthly health history (which costs one more fold, so only those
    formats get it), and whether it reads nothing of an account's relationship map and
    score evidence (then the audit keeps neither: :meth:`Audit.stream`)."""

    render: Callable[[AuditDocument, int | None], str]
    history: bool = False
    slim: bool = False


def render_json(document: AuditDocument) -> str:
    """The audit document as JSON: indented when a person runs crmlink at a terminal,
    compact otherwise (for a large portfolio it runs to hundreds of megabytes, and the
    indenting encoder is several times slower than the compact one). ``crmlink audit``
    itself streams it (:func:`json_output`)."""
    return document.dumps(indent=json_indent())


def render_html(document: AuditDocument) -> str:
    from crmlink.core.report import html  # imported on use: only the HTML report needs Jinja2

    return html.render(document)


def html_directory(output: str) -> bool:
    """Whether ``--format html --output OUTPUT`` is the directory form (the rule is
    :func:`crmlink.core.report.htmldir.is_directory_target`)."""
    from crmlink.core.report import htmldir

    return htmldir.is_directory_target(output)


def write_html_directory(document: AuditDocument, output: str) -> None:
    from crmlink.core.report import htmldir

    target = Path(output)
    pages = htmldir.write(document, target)
    click.echo(f"Wrote {target / htmldir.INDEX} and {pages} account page(s) in {target / htmldir.PAGES}", err=True)


#: ``--format json``: written as the audit makes it (:func:`json_output`, :meth:`Audit.stream`)
JSON = Format(lambda d, _limit: render_json(d))
BUILTIN_FORMATS = {"table": Format(table.render, slim=True), "json": JSON,
                   "markdown": Format(markdown.render, slim=True),
                   "html": Format(lambda d, _limit: render_html(d), history=True)}


def json_indent() -> int | None:
    """Indented JSON when a person runs crmlink at a terminal (:func:`render_json`)."""
    return 2 if sys.stdout.isatty() else None


@contextmanager
def json_output(output: str | None) -> Iterator[TextIO]:
    """Where the streamed JSON goes: the file ``output`` names
    (:func:`~crmlink.commands.common.output_file`) or stdout."""
    if not output or output == "-":
        stream = sys.stdout
        yield stream
        stream.write("\n")  # as click.echo ends the text
        stream.flush()
        return
    with output_file(output) as handle:
        yield handle
    click.echo(f"Wrote {output}", err=True)


def plugin_format(render: Callable[[dict[str, Any]], str]) -> Format:
    """A plugin's format: ``render`` receives the document's JSON data, with each
    account's ``health_history`` (the ``register_report_formats`` contract)."""
    return Format(lambda document, _limit: render(document.to_json()), history=True)


def formats(ctx: click.Context) -> dict[str, Format]:
    offered = host_of(ctx).report_formats()
    return {**BUILTIN_FORMATS, **{name: plugin_format(render) for name, render in offered.items()}}


def _print_schema(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(json.dumps(audit_schema(), indent=2, ensure_ascii=False))
        ctx.exit()


@click.command("audit")
@click.argument("path", required=False, type=click.Path(file_okay=False))
@db_option
@click.option("--source", "source", metavar="NAME", help="Audit only this source [default: all; with PATH: csv].")
@as_of_option
@click.option("--format", "fmt", default="table", show_default=True, metavar="FORMAT",
              help="table, json, markdown, html, or a plugin's format.")
@click.option("--output", "-o", metavar="FILE|DIR",
              help="Write the report to FILE instead of stdout. With --format html, a DIR (an existing "
                   "directory or a name without .html) gets an index and a page per account; FILE.html "
                   "is one self-contained file.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), metavar="SEVERITY",
              help="Exit 1 if a finding at or above this severity exists (for CI); DATA_* findings "
                   "(missing or thin data) never count.")
@click.option("--fail-on-coverage", type=click.Choice(FAILING_ASSESSMENTS), metavar="ASSESSMENT",
              help="Exit 1 if an account is assessed this or worse: partial or not_assessable.")
@click.option("--all", "list_all", is_flag=True,
              help=f"table and markdown: list every account, not only the {ACCOUNT_LIMIT} that need "
                   f"attention first (the report says how many it left out).")
@click.option("--save", is_flag=True,
              help="Keep this audit's scores, stages and findings in the store (crmlink history, diff, "
                   "review); config evaluation.save = true saves every audit.")
@click.option("--label", metavar="LABEL",
              help="The saved audit's label [default: the as-of date]; saving a label again replaces it.")
@click.option("--no-merge", "no_merge", is_flag=True,
              help="Audit several CRM sources side by side instead of merging the same companies and "
                   "people into one portfolio ([identity.match] in the config file).")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Score the accounts in N processes [default: [audit] workers in the config file, "
                   "auto: one per usable CPU for a large portfolio].")
@click.option("--no-cache", "no_cache", is_flag=True,
              help="Judge every account again instead of reusing the entries of accounts nothing changed in "
                   "since an earlier audit ([audit] cache in the config file).")
@click.option("--schema", is_flag=True, expose_value=False, is_eager=True, callback=_print_schema,
              help="Print the JSON Schema of the audit document (--format json) and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@config_option
@click.pass_context
def command(ctx: click.Context, path: str | None, db_url: str | None, source: str | None, as_of: Any,
            fmt: str, output: str | None, fail_on: str | None, fail_on_coverage: str | None,
            list_all: bool, save: bool, label: str | None, no_merge: bool, workers: int | None,
            no_cache: bool, quiet: bool, config_file: str | None) -> None:
    """Audit relationships: key, broad and organisational scores, personalisation,
    trends, tiers and LTC stages, with findings and what to do about them.

    With PATH (a folder in the canonical CSV format) the export is synced into the
    store first and audited on its own.

    \b
    Examples:
      crmlink audit examples/sample --as-of 2026-11-20
      crmlink audit --db postgresql://crm@db/crmlink --format json --fail-on high
      crmlink audit --schema > audit-schema.json

    Several CRM sources in one store are audited as one portfolio: the same company
    (by domain) and the same person (by email) in two sources are one account and one
    contact; --no-merge audits them side by side.
    """
    choices = formats(ctx)
    if fmt not in choices:
        raise ConfigError(f"unknown format {fmt!r}; choose one of: {', '.join(sorted(choices))}")
    settings = config(config_file)
    if workers is not None:
        settings["audit"]["workers"] = workers
    if no_cache:
        settings["audit"]["cache"] = False
    if path is not None:
        source = sync_folder(ctx, path, source, db_url)
    store = open_store(db_url)
    if source is not None and source not in store.sources():
        raise ConfigError(f"the store has no source named {source!r}; it has: {', '.join(store.sources()) or 'none (run crmlink sync first)'}")
    if (empty := nothing_synced(store)) is not None:
        if fmt == "table" and not output:
            click.echo(empty)  # instead of an empty table; exit 0: nothing is wrong
            return
        click.echo(f"crmlink: {empty}", err=True)
    chosen = choices[fmt]
    # on a terminal, unless the JSON goes to the same terminal as it is made
    shown = not quiet and stderr_is_terminal() and not (
        chosen is JSON and (not output or output == "-") and sys.stdout.isatty())
    progress = ProgressLine("accounts") if shown else None
    audit = Audit(store, host_of(ctx), settings, as_of, merge=not no_merge, progress=progress)
    # the document's snapshot reads every account and deal (a little of each): made once,
    # and only to be saved or compared with an audit saved before
    snapshot = functools.cache(lambda: snapshot_of(document, label))
    line = progress or nullcontext()  # ended before "Wrote ..." or an error's sentence
    if chosen is JSON:  # written as it is made; what changed since a saved audit is not in the JSON
        with json_output(output) as out, line:
            document = audit.stream(source, out, indent=json_indent())
    else:
        # the JSON texts a slim one makes for the audit's cache indented as a JSON audit run
        # here would make them: the two take their hits from the same entries
        with line:
            document = (audit.stream(source, indent=json_indent()) if chosen.slim
                        else audit.document(source, history=chosen.history))
        document.changes = changes_since_saved(store, host_of(ctx), settings, date.fromisoformat(document.as_of),
                                               snapshot)
    if chosen.history:
        saved_trend(SavedAudits(store), document)
    if save or label or settings["evaluation"]["save"]:
        save_audit(store, snapshot())
    if chosen is not JSON:
        _write(document, chosen, fmt, output, list_all)
    if (fail_on and _worst(document) >= SEVERITY_RANK[fail_on]) or (
            fail_on_coverage and _least_assessed(document) >= ASSESSMENTS.index(fail_on_coverage)):
        ctx.exit(int(ExitCode.FINDINGS))


def _write(document: AuditDocument, chosen: Format, fmt: str, output: str | None, list_all: bool) -> None:
    if fmt == "html" and output and output != "-" and html_directory(output):
        write_html_directory(document, output)
    else:
        write_output(chosen.render(document, None if list_all else ACCOUNT_LIMIT), output)


def _worst(document: AuditDocument) -> int:
    """The rank of the most severe finding, data findings (DATA_*) aside: missing data is
    not a reason to fail a CI run unless ``--fail-on-coverage`` says so."""
    findings = [f for a in document.accounts for f in a.findings]
    findings += [f for o in document.opportunities for f in o.findings] + document.portfolio_findings
    return max((SEVERITY_RANK[f.severity] for f in findings if not f.code.startswith("DATA_")), default=-1)


def _least_assessed(document: AuditDocument) -> int:
    return max((ASSESSMENTS.index(a.coverage.assessment) for a in document.accounts), default=-1)


def save_audit(store: Store, snap: Snapshot) -> None:
    """Keep the audit in the store and say so on stderr (and what it replaced)."""
    from crmlink import __version__

    replaced = SavedAudits(store).save(snap, __version__)
    note = (f" (replacing the audit saved under that label at {replaced.saved_at:%Y-%m-%d %H:%M} UTC)"
            if replaced is not None else "")
    click.echo(f"Saved the audit as {snap.name!r}: {len(snap.accounts)} account(s), "
               f"{len(snap.findings)} finding(s){note}", err=True)
