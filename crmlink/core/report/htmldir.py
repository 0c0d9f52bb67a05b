"""The HTML report as a directory, for portfolios too large for one file (the layout
coverage.py's ``htmlcov`` made familiar): a small ``index.html`` with the portfolio
overview, the data coverage, the accounts that need attention first and a filter and
sort over every account; one page per account under ``accounts/``; and the shared
``report.css`` and ``report.js``. Nothing in it requests anything but its own files.

The index lists the accounts from a JSON array embedded in it (a row of a few fields per
account), which ``report.js`` filters, sorts and shows a page at a time, so the index
stays small and quick to open at 10,000 accounts. Each account page is the section the
single file has for the account (:mod:`crmlink.core.report.html` draws both).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from markupsafe import Markup

from crmlink.core import parallel
from crmlink.core.document import ASSESSMENTS, AccountEntry, AuditDocument
from crmlink.core.errors import ConfigError
from crmlink.core.findings import SEVERITIES
from crmlink.core.report import html
from crmlink.core.report.text import coverage_cell

INDEX = "index.html"
PAGES = "accounts"
#: a file in every report directory: crmlink replaces only a directory that has it
MARKER = ".crmlink-report"
#: accounts the index shows at a time
PAGE_ROWS = 50
SINGLE_FILE_SUFFIXES = (".html", ".htm")


def is_directory_target(output: str) -> bool:
    """Whether ``--format html --output OUTPUT`` writes a directory: when OUTPUT is an
    existing directory, ends with a slash, or has no ``.html``/``.htm`` suffix. A name
    ending in ``.html`` (or ``.htm``) is the single self-contained file."""
    path = Path(output)
    if path.is_dir() or output.endswith(("/", os.sep)):
        return True
    return path.suffix.lower() not in SINGLE_FILE_SUFFIXES


def write(doc: AuditDocument, target: Path, *, page_rows: int = PAGE_ROWS, workers: int | None = None) -> int:
    """Write the report directory ``target`` and return the number of account pages.

    The report is written next to ``target`` first and moved into place when complete,
    so an interrupted run leaves the previous report as it was. An existing ``target``
    is replaced only if it is empty or a crmlink report (it holds :data:`MARKER`).
    ``workers`` processes draw the account pages (default: see :func:`default_workers`)."""
    _check_target(target)
    with _staging(target) as folder:
        return render_into(doc, folder, page_rows=page_rows, workers=workers)


def _check_target(target: Path) -> None:
    if not target.parent.exists():
        raise ConfigError(f"cannot write {target}: folder {target.parent} does not exist")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"cannot write the HTML report directory {target}: it is a file; give a directory "
                          f"(or a name ending in .html for the single-file report)")
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).exists():
        raise ConfigError(f"cannot write the HTML report into {target}: it is not empty and holds no crmlink "
                          f"report; give an empty or new directory")


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A fresh sibling directory that replaces ``target`` when the block succeeds."""
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
    except OSError as exc:
        raise ConfigError(f"cannot write the HTML report into {target}: {exc.strerror or exc}") from None
    try:
        yield staging
        if target.exists():
            target.rename(old)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def render_into(doc: AuditDocument, folder: Path, *, page_rows: int = PAGE_ROWS,
                workers: int | None = None) -> int:
    """Write the index (showing ``page_rows`` accounts at a time), the account pages and
    the shared files into ``folder``."""
    env = html.environment()
    names = page_names(doc)
    (folder / PAGES).mkdir()
    (folder / "report.css").write_text(html.stylesheet() + _template_text("directory.css"), encoding="utf-8")
    (folder / "report.js").write_text(_template_text("report.js"), encoding="utf-8")
    (folder / MARKER).write_text("A crmlink HTML report: crmlink audit --output replaces this directory.\n",
                                 encoding="utf-8")
    _write_pages(doc, folder / PAGES, names, workers)
    context = html.portfolio_context(doc, lambda a: f"{PAGES}/{names[a.id]}")
    index = env.get_template("index.html.j2").render(**context, **index_table(doc, names, page_rows))
    (folder / INDEX).write_text(index, encoding="utf-8")
    return len(doc.accounts)


#: below this many accounts the pages are drawn in this process (a worker costs more)
PARALLEL_FROM = 400


def default_workers(accounts: int) -> int:
    """Processes to draw ``accounts`` pages with (:func:`crmlink.core.parallel.worker_count`):
    one per usable CPU for a large portfolio where the system can fork, else 1."""
    return parallel.worker_count(accounts, PARALLEL_FROM)


#: what forked workers draw from: (document, pages folder, page names), set before forking
_JOB: tuple[AuditDocument, Path, dict[str, str]] | None = None


def _write_pages(doc: AuditDocument, folder: Path, names: dict[str, str], workers: int | None) -> None:
    global _JOB
    count = len(doc.accounts)
    workers = default_workers(count) if workers is None else workers
    if workers <= 1:
        _write_range(doc, folder, names, 0, count)
        return
    _JOB = (doc, folder, names)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for done in [pool.submit(_forked_range, low, high) for low, high in parallel.slices(count, workers)]:
                done.result()
    finally:
        _JOB = None


def _forked_range(low: int, high: int) -> None:
    assert _JOB is not None, "set by _write_pages before the fork"
    _write_range(*_JOB, low, high)


def _write_range(doc: AuditDocument, folder: Path, names: dict[str, str], low: int, high: int) -> None:
    """Draw and write the pages of accounts ``low`` to ``high`` (attention order)."""
    page = html.environment().get_template("account_page.html.j2")
    users, deals, presentation = html.user_names(doc), html.deals_by_account(doc), doc.presentation
    for a in doc.accounts[low:high]:
        item = html.account(a, deals.get(a.id, []), users, presentation)
        (folder / names[a.id]).write_text(page.render(doc=doc, item=item), encoding="utf-8")


def _template_text(name: str) -> str:
    return (html.HERE / "templates" / name).read_text(encoding="utf-8")


def page_names(doc: AuditDocument) -> dict[str, str]:
    """Each account's page file name by global id: its anchor in the single file, with the
    source added where two sources share a remote id (compared ignoring case, for
    file systems that do)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for a in doc.accounts:
        name = html.anchor(a)
        if name.casefold() in taken:
            name = html.anchor(a) + "-" + "".join(ch if ch.isalnum() else "-" for ch in a.source)
        base, n = name, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.casefold())
        names[a.id] = name + ".html"
    return names


# -- the index's table of every account ---------------------------------------------------------


def index_table(doc: AuditDocument, names: dict[str, str], page_rows: int = PAGE_ROWS) -> dict[str, Any]:
    """The rows the index filters and sorts, as embedded JSON, and the filters' choices."""
    headline = doc.presentation.headline
    rows = [_row(a, f"{PAGES}/{names[a.id]}", headline) for a in doc.accounts]
    data = {"page": page_rows, "scores": [d.label for d in headline],
            "overall": next((i for i, d in enumerate(headline) if d.overall), None), "rows": rows}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    codes = sorted({f.code for a in doc.accounts for f in a.findings})
    owners = sorted({a.owner for a in doc.accounts if a.owner}, key=lambda o: (o.casefold(), o))
    return {"rows_json": Markup(text.replace("<", "\\u003c")), "score_labels": data["scores"],
            "filters": {"tiers": [t for t in html.TIER_ROWS if any((a.tier or "none") == t for a in doc.accounts)],
                        "bands": [name for name, _, _ in html.HEALTH_BANDS] + [html.NO_BAND],
                        "owners": owners, "codes": codes, "assessments": list(ASSESSMENTS),
                        "severities": list(reversed(SEVERITIES))},
            "page_rows": page_rows}


def _row(a: AccountEntry, href: str, headline: tuple[Any, ...]) -> list[Any]:
    """One account in the index: page, name, tier, owner, headline scores, worst
    severity, finding codes, assessment, evidence cell, number of findings, band of the
    overall score (the order report.js reads them in)."""
    scores = [a.scores.get(d.name) for d in headline]
    overall = next((a.scores.get(d.name) for d in headline if d.overall), None)
    worst = a.findings[0].severity if a.findings else None
    return [href, a.name or a.remote_id, a.tier or "none", a.owner, scores, worst,
            sorted({f.code for f in a.findings}), a.coverage.assessment, coverage_cell(a),
            len(a.findings), html.band(overall)]
