"""Run the benchmark phases at each size and report the figures, ratios and targets.

``python -m bench`` runs the default sizes (10k, 100k and 1M interactions), both API
syncs, the mbox read rate (100,000 messages) and the Microsoft Graph sync (10,000 and
100,000 messages); ``--sizes tiny --api-contacts 50 --mail-messages 500
--graph-messages 300 --imap-messages 200`` is about the smoke run CI does. The report goes to
OUT/report.json and OUT/report.md (and the Markdown to stdout).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.report import render
from bench.sizes import DEFAULT, SIZES, Size
from bench.targets import evaluate
from crmlink.testing import generate
from crmlink.testing.generate import PROFILES

ROOT = Path(__file__).resolve().parent.parent
#: interactions past which the run skips the fold phase (a diagnostic: the audit itself
#: folds in chunks of accounts and never holds a whole unit's)
FOLD_LIMIT = 2_000_000


#: where each finished phase's figures go as one JSON line (set by :func:`main`), so a
#: run that fails or is stopped later keeps what it measured
PHASE_LOG: list[Path] = []


def child(phase: str, *args: str, profile: Path | None = None) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its figures plus its own peak memory."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result = Path(handle.name)
    argv = [sys.executable, "-m", "bench.child", phase, str(result), *args]
    if profile is not None:
        argv += ["--profile", str(profile)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"bench: phase {phase} failed (exit {proc.returncode}): {' '.join(argv)}")
    figures = json.loads(result.read_text(encoding="utf-8"))
    result.unlink()
    # KiB on Linux; a phase that reads its output back after its command (the audit)
    # says its peak before that read
    figures["peak_mib"] = figures.get("own_peak_mib") or round(usage.ru_maxrss / 1024, 1)
    for log in PHASE_LOG:
        with log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"phase": phase, "args": list(args), **figures}) + "\n")
    return figures


def _data(size: Size, out: Path, people: str = "default") -> Path:
    """The seeded export for ``size`` (``people``: the generator's profile), generated once
    and reused (it is deterministic)."""
    folder = out / (f"data-{size.name}" if people == "default" else f"data-{size.name}-{people}")
    stamp = folder / ".params.json"
    params = json.dumps([size.accounts, size.contacts, size.interactions, people, generate.VERSION])
    if not (stamp.is_file() and stamp.read_text() == params):
        shutil.rmtree(folder, ignore_errors=True)
        child("generate", "--folder", str(folder), "--accounts", str(size.accounts),
              "--contacts", str(size.contacts), "--interactions", str(size.interactions),
              "--people", people)
        stamp.write_text(params)
    return folder


def _fresh_db(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


class Stores:
    """Where each size's store goes: a fresh SQLite file in OUT, or a fresh database on a
    throwaway PostgreSQL server (crmlink.testing.postgres) started for the run."""

    def __init__(self, kind: str, out: Path) -> None:
        self.kind, self.out = kind, out
        self.server: Any = None
        if kind == "postgresql":
            from crmlink.testing import postgres

            found = postgres.bindir()
            if found is None:
                raise SystemExit("bench: --store postgresql needs a PostgreSQL server (initdb, pg_ctl)")
            self.server = postgres.Server(found, postgres.BENCH)
            self.server.start()

    def fresh(self, name: str) -> str:
        return self.server.create() if self.server else _fresh_db(self.out / f"{name}.db")

    def version(self) -> str:
        import sqlite3

        return f"PostgreSQL {self.server.version()}" if self.server else f"SQLite {sqlite3.sqlite_version}"

    def close(self) -> None:
        if self.server:
            self.server.stop()


def run_size(size: Size, out: Path, profile: bool, stores: Stores | None = None,
             people: str = "default", workers: int | None = None) -> dict[str, Any]:
    """Import, read floor and audit at one size (the floor before and after the audit);
    ``workers``: the audits' ``--workers`` (default: the config's ``[audit] workers``)."""
    folder = _data(size, out, people)
    db = stores.fresh(size.name) if stores else _fresh_db(out / f"{size.name}.db")

    def prof(name: str) -> Path | None:
        return out / f"profile-{size.name}-{name}.txt" if profile else None

    imported = child("import", "--folder", str(folder), "--db", db, profile=prof("import"))
    floors = [child("floor", "--db", db)]
    several = ("--workers", str(workers)) if workers else ()
    audited = child("audit", "--db", db, "--output", str(out / f"audit-{size.name}.json"), *several,
                    profile=prof("audit"))
    raw_config = out / "raw-fold.toml"
    raw_config.write_text("[audit]\naggregates = false\n", encoding="utf-8")
    raw = child("audit", "--db", db, "--output", str(out / f"audit-{size.name}-raw.json"),
                "--config", str(raw_config), *several, profile=prof("audit-raw"))
    # the fold phase folds each unit whole, as the audit does not: skipped past
    # FOLD_LIMIT, where it held every account at once (13.5 GB at 10M)
    folded = child("fold", "--db", db, profile=prof("fold")) if imported["interactions"] <= FOLD_LIMIT else None
    built = child("aggregate", "--db", db)
    changed = child("change", "--db", db, "--changes", "300", "--output", str(out / f"audit-{size.name}-changed.json"))
    floors.append(child("floor", "--db", db))
    floor = min(floors, key=lambda f: f["seconds"])
    n = imported["interactions"]
    again = changed["refresh_seconds"] + changed["audit_seconds"]
    return {
        "size": size.name, "db": db, "accounts": size.accounts, "contacts": size.contacts, "interactions": n,
        "import": {**imported, "rate": round(n / imported["seconds"])},
        "floor": floor,
        "audit": {**audited, "floor_ratio": round(audited["seconds"] / floor["seconds"], 2)},
        "audit_raw": {**raw, "floor_ratio": round(raw["seconds"] / floor["seconds"], 2)},
        "aggregate": {**built, "floor_ratio": round(built["seconds"] / floor["seconds"], 2)},
        **({"fold": {name: {**f, "floor_ratio": round(f["audit_date_seconds"] / floor["seconds"], 2)}
                     for name, f in folded.items() if isinstance(f, dict)}} if folded else {}),
        "change": {**changed, "seconds": round(again, 3), "floor_ratio": round(again / floor["seconds"], 2),
                   "audit_floor_ratio": round(changed["audit_seconds"] / floor["seconds"], 2)},
    }


def run_mail(messages: int, out: Path) -> dict[str, Any]:
    """Read rate of ``crmlink sync mail`` over a generated mbox, into a store that holds
    the bundled sample CRM (the import is not timed)."""
    mbox = out / f"mail-{messages}.mbox"
    made = child("mailgen", "--mbox", str(mbox), "--messages", str(messages))
    db = _fresh_db(out / "mail.db")
    child("import", "--folder", str(ROOT / "examples" / "sample"), "--db", db)
    synced = child("mail", "--mbox", str(mbox), "--db", db)
    mbox.unlink()
    return {**synced, "messages": messages, "mib": made["mib"],
            "rate": round(messages / synced["seconds"]), "mib_per_s": round(made["mib"] / synced["seconds"], 1)}


def growth(runs: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    """Exponent k in time ~ n^k between consecutive sizes (k <= log 11 / log 10 = 1.041
    means ten times the data costs at most eleven times the time)."""
    steps = []
    for small, big in zip(runs, runs[1:]):
        k = math.log(big[phase]["seconds"] / small[phase]["seconds"]) / math.log(
            big["interactions"] / small["interactions"])
        steps.append({"from": small["size"], "to": big["size"], "exponent": round(k, 3),
                      "time_ratio": round(big[phase]["seconds"] / small[phase]["seconds"], 2),
                      "data_ratio": round(big["interactions"] / small["interactions"], 2)})
    return steps


def machine() -> dict[str, Any]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                  if line.startswith("Model name")), platform.processor())
    import sqlite3

    return {"cpu": model, "cpus": os.cpu_count(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "platform": platform.platform()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(DEFAULT),
                        help=f"comma-separated, from {', '.join(SIZES)} [default: %(default)s]")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"), help="work and report folder")
    parser.add_argument("--api-contacts", type=int, default=2000,
                        help="contacts in each emulator for the API syncs (0: skip them)")
    parser.add_argument("--delay", type=float, default=0.05, help="emulator delay per request, s")
    parser.add_argument("--profile", action="store_true", help="cProfile import and audit")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the store of the import, read and audit phases (postgresql: a "
                             "throwaway server on this machine) [default: %(default)s]")
    parser.add_argument("--people", choices=PROFILES, default="default",
                        help="people per interaction in the generated data: default (about 1.7 "
                             "pairs of ours and theirs) or multiparty (up to three on each side, "
                             "about 3.5 pairs) [default: %(default)s]")
    parser.add_argument("--mail-messages", type=int, default=100_000,
                        help="messages in the generated mbox for the mail read rate (0: skip it)")
    parser.add_argument("--no-html", dest="html", action="store_false",
                        help="skip the HTML report directory of the largest size")
    parser.add_argument("--graph-messages", type=int, default=100_000,
                        help="messages in the Graph emulator for the Graph sync, also run at a "
                             "tenth of it (0: skip it)")
    parser.add_argument("--workers", type=int,
                        help="processes the audits score accounts in (crmlink audit --workers) "
                             "[default: the config's [audit] workers, auto]")
    parser.add_argument("--imap-messages", type=int, default=2_000,
                        help="messages in the local IMAP server for the IMAP sync (0: skip it)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    PHASE_LOG[:] = [out / "phases.jsonl"]
    stores = Stores(args.store, out)
    try:
        report = _run(args, out, stores)
    finally:
        stores.close()
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    markdown = render(report)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    print(markdown)


def _run(args: argparse.Namespace, out: Path, stores: Stores) -> dict[str, Any]:
    runs = []
    for name in args.sizes.split(","):
        runs.append(run_size(SIZES[name.strip()], out, args.profile, stores, args.people, args.workers))
        print(f"bench: {name} done", file=sys.stderr)
    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "store": stores.version(), "people": args.people,
        "idle_peak_mib": child("floor", "--db", _fresh_db(out / "idle.db"))["peak_mib"],
        "sizes": runs, "growth": {"import": growth(runs, "import"), "audit": growth(runs, "audit")},
        "api": [],
    }
    if args.html and runs:
        largest = runs[-1]["size"]
        report["html"] = {"size": largest, **child(
            "htmldir", "--db", runs[-1]["db"], "--output", str(out / f"report-{largest}"),
            profile=out / f"profile-{largest}-htmldir.txt" if args.profile else None)}
    if args.api_contacts:
        for crm in ("hubspot", "salesforce"):
            report["api"].append(child("api", "--crm", crm, "--contacts", str(args.api_contacts),
                                       "--delay", str(args.delay),
                                       "--db", _fresh_db(out / f"api-{crm}.db")))
    report["mail"] = run_mail(args.mail_messages, out) if args.mail_messages else None
    if args.graph_messages:
        from bench import graph

        report["graph"] = graph.run(args.graph_messages, out, child, _fresh_db)
    if args.imap_messages:
        from bench import imap

        report["imap"] = imap.run(args.imap_messages, out, child, _fresh_db)
    report["targets"] = evaluate(report)
    return report


if __name__ == "__main__":
    main()
