"""Saved audits: the store's bytes per saved audit and the time to save, load and compare,
for ``--weeks`` weekly audits of ``--accounts`` accounts (``python -m bench.saved``).

The saved snapshots are modelled on a real audit: the bundled sample is audited once,
its 50 accounts (their scores, tiers, coverage, stages, levels and findings, deals'
findings included) are cloned up to ``--accounts``, and each week moves every score by
a random step and turns about one finding in ten on or off, so that a year of saves
holds what a year of weekly audits would. Only the saving is measured: auditing 10,000
accounts 52 times is the audit benchmark's business, not this one's.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.evaluation.diff import compare
from crmlink.core.evaluation.saved import SavedAudits
from crmlink.core.evaluation.snapshot import AccountState, FindingState, Snapshot, snapshot_of
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_AS_OF = date(2026, 11, 20)


def template(folder: Path) -> Snapshot:
    """The snapshot of the bundled sample's audit (imported into a store in ``folder``)."""
    from click.testing import CliRunner

    from crmlink.cli import cli

    db = folder / "saved-sample.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    CliRunner().invoke(cli, ["sync", "csv", str(ROOT / "examples" / "sample"), "--db", f"sqlite:///{db}"],
                       catch_exceptions=False)
    store = Store(f"sqlite:///{db}")
    return snapshot_of(Audit(store, get_plugin_host(load_entrypoints=False), load_config(None),
                             SAMPLE_AS_OF).document())


def scaled(base: Snapshot, accounts: int) -> Snapshot:
    """``base`` with its accounts (and their findings) cloned to ``accounts`` accounts."""
    snap = Snapshot(base.as_of)
    originals = list(base.accounts.values())
    by_account: dict[str, list[FindingState]] = {}
    for f in base.findings.values():
        by_account.setdefault(f.account or "", []).append(f)
    for i in range(accounts):
        a = originals[i % len(originals)]
        gid = f"bench:A{i:06d}"
        snap.accounts[gid] = replace(a, id=gid, source="bench", remote_id=f"A{i:06d}", name=f"{a.name} {i}")
        for f in by_account.get(a.id, []):
            subject = gid if f.subject == a.id else f"bench:D{i:06d}-{f.opportunity}"
            opportunity = None if f.subject == a.id else f"D{i:06d}-{f.opportunity}"
            snap.findings[(subject, f.code)] = FindingState(subject, gid, f.code, f.severity, opportunity)
    for f in by_account.get("", []):
        snap.findings[("", f.code)] = f
    return snap


def week_later(snap: Snapshot, rng: random.Random, codes: list[str]) -> Snapshot:
    """The next week: every score moves by up to 3 points, about one finding in ten
    resolves and as many new ones appear."""
    nxt = Snapshot(snap.as_of + timedelta(days=7))
    for gid, a in snap.accounts.items():
        scores = {n: None if v is None else min(100.0, max(0.0, round(v + rng.uniform(-3, 3), 1)))
                  for n, v in a.scores.items()}
        nxt.accounts[gid] = AccountState(a.id, a.source, a.remote_id, a.name, scores, a.tier, a.ratio,
                                         a.assessment, a.stage, a.level)
    nxt.findings = {k: f for k, f in snap.findings.items() if rng.random() > 0.1}
    ids = list(snap.accounts)
    for _ in range(len(snap.findings) // 10):
        gid = rng.choice(ids)
        code = rng.choice(codes)
        nxt.findings.setdefault((gid, code), FindingState(gid, gid, code, rng.choice(("low", "medium", "high"))))
    return nxt


def _bytes(store: Store) -> int:
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
    return int((pages - free) * size)


def run(accounts: int, weeks: int, db: Path) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = Store(f"sqlite:///{db}")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    empty = _bytes(store)
    base = scaled(template(db.parent), accounts)
    codes = sorted({f.code for f in base.findings.values()})
    rng = random.Random(7)
    saved = SavedAudits(store)
    snap, seconds, findings = base, 0.0, 0
    for week in range(weeks):
        snap.label = f"week-{week + 1:02d}"
        started = time.perf_counter()
        saved.save(snap)
        seconds += time.perf_counter() - started
        findings += len(snap.findings)
        snap = week_later(snap, rng, codes)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    total = _bytes(store) - empty
    audits = saved.audits()
    started = time.perf_counter()
    first, last = saved.load(audits[-2]), saved.load(audits[-1])
    load_seconds = (time.perf_counter() - started) / 2
    started = time.perf_counter()
    changes = compare(first, last, load_config(None)["evaluation"])
    compare_seconds = time.perf_counter() - started
    with store.engine.connect() as conn:
        rows = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("saved_accounts", "saved_findings", "saved_subjects")}
    return {"accounts": accounts, "weeks": weeks, "findings_per_audit": round(findings / weeks),
            "bytes": total, "bytes_per_audit": round(total / weeks),
            "bytes_per_account_per_audit": round(total / weeks / accounts, 1),
            "save_seconds_per_audit": round(seconds / weeks, 3), "load_seconds": round(load_seconds, 3),
            "compare_seconds": round(compare_seconds, 3), "moves_last_week": len(changes.moved), "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.saved", description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--db", default=str(ROOT / "bench" / "out" / "saved.db"))
    args = parser.parse_args(argv)
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(args.accounts, args.weeks, Path(args.db)), indent=2))


if __name__ == "__main__":
    main()
