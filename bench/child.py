"""One benchmark phase, run in a child process: ``python -m bench.child PHASE RESULT ARGS``.

The phase's own wall time (without interpreter start-up and imports) goes to the JSON
file RESULT; the parent reads the child's peak memory from ``os.wait4``. With
``--profile FILE`` the phase runs under cProfile and its top entries go to FILE.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crmlink.cli import cli
from crmlink.core.store import Store

AS_OF = "2026-11-20"  # the seeded generator's last day


def generate(args: argparse.Namespace) -> dict[str, Any]:
    from crmlink.testing.generate import generate as write

    made = write(args.folder, args.accounts, args.interactions, contacts=args.contacts, profile=args.people)
    return {"interactions": made.n_interactions, "accounts": len(made.plans),
            "contacts": sum(len(p.contacts) for p in made.plans)}


def _cli(argv: list[str]) -> None:
    code = cli.main(argv, standalone_mode=False)
    if code:
        raise SystemExit(f"crmlink {' '.join(argv)} exited {code}")


def csv_import(args: argparse.Namespace) -> dict[str, Any]:
    """The import, and the peaks of this process and of its largest worker (the
    aggregates' build at the end of the sync forks them, ``[audit] workers``)."""
    _cli(["sync", "csv", args.folder, "--db", args.db])
    return {"interactions": Store(args.db).count("interaction"),
            "own_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "worker_peak_mib": _worker_peak_mib()}


def read_floor(args: argparse.Namespace) -> dict[str, Any]:
    """Read the interactions exactly as the audit does, for each source: its query, its
    columns (``INTERACTION_COLUMNS``), its cut-off at the end of the as-of day, batches
    of plain tuples from the DB-API cursor; nothing done with them. The least an audit
    that reads every interaction pays."""
    from datetime import date

    from crmlink.core.analysis.audit import as_of_timestamp
    from crmlink.core.store import interaction_batches

    store = Store(args.db)
    until = as_of_timestamp(date.fromisoformat(AS_OF))
    rows = 0
    with store.engine.connect() as conn:
        for source in store.sources():
            for batch in interaction_batches(conn, source, until):
                rows += len(batch)
    return {"rows": rows}


def audit(args: argparse.Namespace) -> dict[str, Any]:
    """``crmlink audit`` (with ``--workers`` when given); the worker count it used, and
    the peak memory of its largest worker (the parent's own comes from ``os.wait4``)."""
    extra = ["--config", args.config] if args.config else []
    extra += ["--workers", str(args.workers)] if args.workers else []
    start, cpu = time.perf_counter(), _cpu_seconds()
    _cli(["audit", "--db", args.db, "--as-of", AS_OF, "--format", args.format, "--output", args.output, *extra])
    figures: dict[str, Any] = {"timed_seconds": time.perf_counter() - start,  # the command alone
                               "timed_cpu_seconds": round(_cpu_seconds() - cpu, 2),
                               # the command's peak, not the document's reading back below
                               "own_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                               "workers": _audit_workers(args), "worker_peak_mib": _worker_peak_mib()}
    if args.format != "json":
        return figures
    document = json.loads(Path(args.output).read_text(encoding="utf-8"))
    return {"accounts": document["summary"]["accounts"],
            "findings": sum(document["summary"]["findings_by_severity"].values()), **figures}


def _audit_workers(args: argparse.Namespace) -> int:
    """The processes the audit scored the largest unit with ([audit] workers, --workers)."""
    from crmlink.core.analysis.audit import Audit
    from crmlink.core.analysis.config import load_config
    from crmlink.core.host import get_plugin_host

    settings = load_config(args.config)
    if args.workers:
        settings["audit"]["workers"] = args.workers
    store = Store(args.db)
    accounts = max((store.count("account", source=s) for s in store.sources()), default=0)
    return Audit(store, get_plugin_host(), settings).workers(accounts)


def _worker_peak_mib() -> float | None:
    """The peak resident memory of the largest finished child process (a worker), if any."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(peak / 1024, 1) if peak else None


#: above this many interactions the fold phase skips the eleven month ends through every
#: row: that fold keeps every account's aggregates for twelve dates (past 9.7 GB at 10M)
ROWS_HISTORY_LIMIT = 2_000_000


def fold(args: argparse.Namespace) -> dict[str, Any]:
    """The fold alone (the records of each unit loaded untimed): the audit date with the
    previous period, and the eleven earlier month ends of the health history, through the
    aggregates and through every row (the month ends through every row only up to
    :data:`ROWS_HISTORY_LIMIT` interactions)."""
    from datetime import date

    from crmlink.core.analysis.audit import Audit, as_of_timestamp
    from crmlink.core.analysis.config import load_config
    from crmlink.core.analysis.history import month_ends
    from crmlink.core.host import get_plugin_host

    store, host, settings = Store(args.db), get_plugin_host(), load_config()
    big = store.count("interaction") > ROWS_HISTORY_LIMIT
    day = date.fromisoformat(AS_OF)
    ends = [as_of_timestamp(end) for end in month_ends(day)[:-1]]
    result: dict[str, Any] = {}
    for name, config in (("aggregates", settings), ("rows", settings | {"audit": {"aggregates": False}})):
        audit = Audit(store, host, config, day)
        spent = [0.0, 0.0]
        for unit in audit.units(None):
            start = time.perf_counter()
            audit.fold(unit)
            middle = time.perf_counter()
            if not (big and name == "rows"):
                audit._fold(unit, ends)
            spent[0] += middle - start
            spent[1] += time.perf_counter() - middle
        skipped = big and name == "rows"
        result[name] = {"audit_date_seconds": round(spent[0], 3),
                        "history_seconds": "not run" if skipped else round(spent[1], 3),
                        "from_aggregates": audit.fold_counts.aggregated, "from_rows": audit.fold_counts.raw}
    return result


def aggregate(args: argparse.Namespace) -> dict[str, Any]:
    """``crmlink aggregate --rebuild``: every aggregate built from the interactions."""
    _cli(["aggregate", "--db", args.db, "--rebuild"])
    return {}


def apply_changes(store: Store, changes: int, seed: int = 7) -> dict[str, int]:
    """A small sync's worth of changes to the first source, written through the store's
    write path in one transaction, as a sync writes them: ``changes`` interactions
    (seeded choice), two in three of them edited in the CRM (moved a day earlier, their
    direction turned) and one in three copied as a new interaction (a new remote id, the
    same account and people, the day before the as-of date: logged since the last sync).
    How many of each."""
    import dataclasses
    import random
    from datetime import datetime, timedelta, timezone

    from crmlink.core.model import Interaction

    source = store.sources()[0]
    with store.engine.connect() as conn:
        ids = sorted(store.live_ids(conn, "interaction", source))
    rng = random.Random(seed)
    chosen = rng.sample(ids, min(changes, len(ids)))
    found = sorted((r for r in store.find("interaction", chosen, [source]) if isinstance(r, Interaction)),
                   key=lambda r: r.remote_id)
    turned = {"inbound": "outbound", "outbound": "inbound", "two_way": "outbound"}
    new = len(found) // 3
    day = datetime.fromisoformat(AS_OF).replace(tzinfo=timezone.utc) - timedelta(days=1)
    added = [dataclasses.replace(r, remote_id=f"{r.remote_id}-bench-new",
                                 occurred_at=day + timedelta(seconds=rng.randrange(8 * 3600, 18 * 3600)))
             for r in found[:new]]
    edited = [dataclasses.replace(r, occurred_at=r.occurred_at - timedelta(days=1) if r.occurred_at else None,
                                  direction=turned.get(r.direction or "", "inbound")) for r in found[new:]]
    with store.transaction() as conn:
        store.upsert(conn, [*edited, *added])
    return {"changed": len(edited), "added": len(added)}


def change(args: argparse.Namespace) -> dict[str, Any]:
    """A small sync's worth of changes: an audit first (the one before the sync, which
    leaves the audit's cache of the store as it is now; timed apart), then
    :func:`apply_changes` (``--changes`` interactions edited or added), then the refresh
    a sync ends with, then the audit again (both timed)."""
    from crmlink.core.analysis.aggregate_build import refresh
    from crmlink.core.analysis.config import load_config
    from crmlink.core.host import get_plugin_host

    before, before_cpu = time.perf_counter(), _cpu_seconds()
    _cli(["audit", "--db", args.db, "--as-of", AS_OF, "--format", "json", "--output", args.output])
    before, before_cpu = time.perf_counter() - before, _cpu_seconds() - before_cpu
    store = Store(args.db)
    written = apply_changes(store, args.changes)
    start, cpu = time.perf_counter(), _cpu_seconds()
    done = refresh(store, get_plugin_host(), load_config())
    refreshed, refreshed_cpu = time.perf_counter(), _cpu_seconds()
    _cli(["audit", "--db", args.db, "--as-of", AS_OF, "--format", "json", "--output", args.output])
    # CPU seconds beside wall ones: on a shared machine the wall time says how busy it was
    return {**written, "rebuilt": sum(d.built for d in done),
            "unchanged": sum(d.unchanged for d in done),
            "audit_before_seconds": round(before, 3), "audit_before_cpu_seconds": round(before_cpu, 2),
            "refresh_seconds": round(refreshed - start, 3), "refresh_cpu_seconds": round(refreshed_cpu - cpu, 2),
            "audit_seconds": round(time.perf_counter() - refreshed, 3),
            "audit_cpu_seconds": round(_cpu_seconds() - refreshed_cpu, 2)}


def html_directory(args: argparse.Namespace) -> dict[str, Any]:
    """The audit document with its monthly history, then the HTML report directory of it
    (timed on its own), then the index opened in headless Chromium when there is one."""
    from datetime import date

    from crmlink.core.analysis.audit import Audit
    from crmlink.core.analysis.config import load_config
    from crmlink.core.host import get_plugin_host
    from crmlink.core.report import htmldir

    start = time.perf_counter()
    document = Audit(Store(args.db), get_plugin_host(), load_config(), date.fromisoformat(AS_OF)).document(
        history=True)
    audited, cpu = time.perf_counter(), _cpu_seconds()
    target = Path(args.output)
    pages = htmldir.write(document, target)
    written, cpu = time.perf_counter(), _cpu_seconds() - cpu
    files = [p for p in target.rglob("*") if p.is_file()]
    return {"accounts": pages, "audit_seconds": round(audited - start, 2),
            "write_seconds": round(written - audited, 2), "write_cpu_seconds": round(cpu, 2),
            "workers": htmldir.default_workers(pages),
            "index_kib": round((target / htmldir.INDEX).stat().st_size / 1024, 1),
            "directory_mib": round(sum(p.stat().st_size for p in files) / 2**20, 1),
            "index_load_seconds": _index_load(target / htmldir.INDEX)}


def _cpu_seconds() -> float:
    """User and system CPU time of this process and its finished children (the forked
    page workers): the write's cost apart from what other jobs on the machine take."""
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def _index_load(index: Path) -> float | None:
    """Seconds from navigation to the first page of account rows drawn, in headless
    Chromium (None when Chromium or Playwright is missing)."""
    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not chromium.exists():
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto("about:blank")
            start = time.perf_counter()
            page.goto(index.resolve().as_uri(), wait_until="load")
            page.wait_for_function("document.querySelectorAll('#account-table tbody tr').length > 0")
            return round(time.perf_counter() - start, 3)
        finally:
            browser.close()


def api_sync(args: argparse.Namespace) -> dict[str, Any]:
    from bench.api import run

    return run(args.crm, args.contacts, args.delay, args.db)


def mail_generate(args: argparse.Namespace) -> dict[str, Any]:
    from bench.mail import write_mbox

    return write_mbox(Path(args.mbox), args.messages)


def mail_sync(args: argparse.Namespace) -> dict[str, Any]:
    """``crmlink sync mail`` of the generated mbox into a store holding the sample CRM."""
    _cli(["sync", "mail", args.mbox, "--db", args.db, "-q"])
    store = Store(args.db)
    return {"interactions": store.count("interaction", source="mail")}


def graph_sync(args: argparse.Namespace) -> dict[str, Any]:
    from bench.graph import sync

    return sync(args.db, args.url, args.ca, args.tenant, args.mailboxes)


def imap_sync(args: argparse.Namespace) -> dict[str, Any]:
    from bench.imap import sync

    return sync(args.db, args.url, args.ca)


PHASES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "generate": generate, "import": csv_import, "floor": read_floor, "audit": audit, "api": api_sync,
    "aggregate": aggregate, "change": change, "fold": fold,
    "mailgen": mail_generate, "mail": mail_sync,
    "htmldir": html_directory, "graph": graph_sync, "imap": imap_sync}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=sorted(PHASES))
    parser.add_argument("result")
    parser.add_argument("--folder")
    parser.add_argument("--db")
    parser.add_argument("--accounts", type=int)
    parser.add_argument("--contacts", type=int)
    parser.add_argument("--interactions", type=int)
    parser.add_argument("--format", default="json")
    parser.add_argument("--output")
    parser.add_argument("--crm")
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--profile")
    parser.add_argument("--mbox")
    parser.add_argument("--url")
    parser.add_argument("--ca")
    parser.add_argument("--tenant")
    parser.add_argument("--mailboxes")
    parser.add_argument("--messages", type=int)
    parser.add_argument("--people", default="default")
    parser.add_argument("--config")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--changes", type=int, default=300)
    args = parser.parse_args(argv)
    profiler = cProfile.Profile() if args.profile else None
    start, cpu = time.perf_counter(), _cpu_seconds()
    if profiler:
        profiler.enable()
    figures = PHASES[args.phase](args)
    if profiler:
        profiler.disable()
    # a phase that does more than it measures (the audit reads its document back to count
    # it) says what it timed; otherwise the whole phase is the figure
    figures["seconds"] = figures.pop("timed_seconds", time.perf_counter() - start)
    # this process's and its workers' (not a database server's)
    figures["cpu_seconds"] = figures.pop("timed_cpu_seconds", round(_cpu_seconds() - cpu, 2))
    Path(args.result).write_text(json.dumps(figures), encoding="utf-8")
    if profiler:
        Path(args.profile).write_text(_top(profiler), encoding="utf-8")


def _top(profiler: cProfile.Profile, entries: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(entries)
    stats.sort_stats("cumulative").print_stats(entries)
    return out.getvalue()


if __name__ == "__main__":
    main()
