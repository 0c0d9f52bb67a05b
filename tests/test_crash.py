"""Crash safety: a sync process killed with SIGKILL at random points.

An API sync commits each batch with its cursor, so after any kill the store is intact and
the rerun ends with exactly the source's records. A CSV import is one transaction, so after
any kill the store's data is exactly as before. Both on SQLite and on PostgreSQL. The kill points come from a seeded random
generator; the seed is printed (and in every assertion message) so a failure can be
replayed with ``CRMLINK_CRASH_SEED=<seed>``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmlink.core.store import Store
from crmlink.testing.hubspot_emulator import HubSpotEmulator, RateLimits
from crmlink.testing.hubspot_emulator.seed import seed
from tests.conftest import SAMPLE

SEED = int(os.environ.get("CRMLINK_CRASH_SEED") or random.SystemRandom().randrange(1 << 30))
KILLS = 3


def finish(*args: str, timeout: float = 120) -> None:
    """Run ``crmlink *args`` to its end; it must succeed."""
    done = subprocess.run([sys.executable, "-m", "crmlink", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"seed {SEED}: {done.stderr}"


def crmlink(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CRMLINK_BATCH_SIZE": "40", "CRMLINK_RETRY_INITIAL": "0.01",
           "CRMLINK_RETRY_MAXIMUM": "0.05"}
    return subprocess.Popen([sys.executable, "-m", "crmlink", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"seed {SEED}: the sync ended before {what}: {proc.stderr.read()!r}")
        assert time.monotonic() < deadline, f"seed {SEED}: timed out waiting for {what}"
        time.sleep(0.005)


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL, f"seed {SEED}: the sync finished before the kill"
    proc.stdout.close()
    proc.stderr.close()


def integrity(url: str) -> str:
    """SQLite's integrity check of the store ("ok"); PostgreSQL keeps its own."""
    if not url.startswith("sqlite"):
        return "ok"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def dump(url: str, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every row of every table (in a stable order), except the tables in ``skip``."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = [t for t in sa.inspect(conn).get_table_names() if t not in skip]
            return {t: sorted(map(repr, conn.exec_driver_sql(f'select * from "{t}"'))) for t in tables}
    finally:
        engine.dispose()


def test_killed_hubspot_sync_resumes_to_exactly_the_portal(store_url: str) -> None:
    print(f"crash seed: {SEED} (replay with CRMLINK_CRASH_SEED={SEED})")
    rng = random.Random(SEED)
    db = store_url
    with HubSpotEmulator(rate_limits=RateLimits(burst=5000, search_per_second=500), delay=0.004) as emu:
        seed(emu, 400)
        for cid in emu.objects("contacts")[:4]:
            emu.archive("contacts", cid["id"])
        args = ["sync", "hubspot", "--base-url", emu.url, "--access-token", emu.token, "--db", db, "-q",
                "--page-size", "20", "--rate-limit", "5000", "--search-rate", "500"]
        for number in range(KILLS):
            target = rng.randint(3, 40)  # killed once the emulator has seen this many requests
            emu.reset_log()
            proc = crmlink(*args)
            wait_for(lambda t=target: len(emu.requests) >= t, proc, f"request {target}")
            kill(proc)
            assert integrity(db) == "ok", f"seed {SEED}, kill {number + 1}"
        finish(*args)
        assert integrity(db) == "ok"
        store = Store(db)
        for kind, entity in (("companies", "account"), ("contacts", "contact"), ("deals", "opportunity"),
                             ("calls", "interaction")):
            rows = list(store.records(entity, include_deleted=True))
            if entity == "interaction":
                rows = [r for r in rows if r.kind == "call"]
            ids = [r.remote_id for r in rows]
            assert len(ids) == len(set(ids)), f"seed {SEED}: duplicate {entity}"
            truth = {o["id"]: o["archived"] for o in emu.objects(kind)}
            assert {r.remote_id: r.deleted for r in rows} == truth, f"seed {SEED}: {kind}"
        runs = store.runs()
        assert runs[0]["status"] == "ok" and len(runs) == KILLS + 1
        assert [r["status"] for r in runs[1:]] == ["interrupted"] * KILLS


def big_export(folder: Path, copies: int) -> Path:
    """The bundled sample with its interactions repeated under new ids: a long import."""
    shutil.copytree(SAMPLE, folder)
    lines = (SAMPLE / "interactions.csv").read_text(encoding="utf-8").splitlines()
    with open(folder / "interactions.csv", "a", encoding="utf-8") as out:
        for copy in range(copies):
            for line in lines[1:]:
                rid, rest = line.split(",", 1)
                out.write(f"{rid}-copy{copy},{rest}\n")
    return folder


def test_killed_csv_import_leaves_the_store_exactly_as_before(tmp_path: Path, store_url: str) -> None:
    print(f"crash seed: {SEED} (replay with CRMLINK_CRASH_SEED={SEED})")
    rng = random.Random(SEED + 1)
    db = store_url
    finish("sync", "csv", str(SAMPLE), "--db", db, "-q")
    before = dump(db, skip=("sync_runs",))
    folder = big_export(tmp_path / "big", copies=4)
    for number in range(KILLS):
        runs = len(Store(db).runs(1000))
        proc = crmlink("sync", "csv", str(folder), "--db", db, "-q")
        wait_for(lambda n=runs: len(Store(db).runs(1000)) > n, proc, "the run to start")
        time.sleep(rng.uniform(0.0, 0.8))
        kill(proc)
        assert integrity(db) == "ok", f"seed {SEED}, kill {number + 1}"
        assert dump(db, skip=("sync_runs",)) == before, f"seed {SEED}, kill {number + 1}"
    finish("sync", "csv", str(folder), "--db", db, "-q")
    assert Store(db).count("interaction") == 5 * (len((SAMPLE / "interactions.csv").read_text().splitlines()) - 1)


@pytest.fixture(autouse=True)
def _show_seed(request: pytest.FixtureRequest) -> None:
    request.node.user_properties.append(("crash_seed", SEED))


def audits(url: str) -> tuple[dict[str, object], dict[str, object], int]:
    """The audit document through the aggregates and through the raw fold, and how many
    accounts the first folded from their rows."""
    from crmlink.core.analysis.audit import Audit
    from crmlink.core.analysis.config import load_config
    from crmlink.core.host import get_plugin_host

    store, host = Store(url), get_plugin_host(load_entrypoints=False)
    settings = load_config()
    fast = Audit(store, host, settings)
    through = fast.run(history=False)
    raw = Audit(store, host, settings | {"audit": {"aggregates": False}}).run(history=False)
    for document in (through, raw):
        document.pop("generated_at")
    return through, raw, fast.fold_counts.raw


def stale_marks(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("select count(*) from aggregate_stale").scalar_one())
    finally:
        engine.dispose()


def test_a_sync_killed_while_it_refreshes_the_aggregates_leaves_marks_that_are_repaired(
        tmp_path: Path, store_url: str) -> None:
    """A sync commits its data, then rebuilds the aggregates it made stale: killed in
    between, the marks stay, an audit folds those accounts from their rows, and
    ``crmlink aggregate`` or the next sync rebuilds them."""
    print(f"crash seed: {SEED} (replay with CRMLINK_CRASH_SEED={SEED})")
    rng = random.Random(SEED + 2)
    db = store_url
    finish("sync", "csv", str(SAMPLE), "--db", db, "-q")
    assert stale_marks(db) == 0  # the sync refreshed the aggregates as it ended
    through, raw, folded = audits(db)
    assert through == raw and folded == 0
    # exports large enough that the refresh after the import's commit takes about half a
    # second to a second (measured on a quiet machine): the kill must fall inside it
    for copies, repair in ((4, ["aggregate", "--db", db]), (6, ["sync", "csv", "FOLDER", "--db", db, "-q"])):
        folder = big_export(tmp_path / f"big{copies}", copies)
        watch = Store(db)  # one store polled: a new one each poll costs a connection and its checks
        runs = len(watch.runs(1000))
        proc = crmlink("sync", "csv", str(folder), "--db", db, "-q")
        wait_for(lambda n=runs, watch=watch: sum(r["status"] == "ok" for r in watch.runs(1000)) > n, proc,
                 "the import to commit")
        time.sleep(rng.uniform(0.0, 0.1))
        kill(proc)
        watch.engine.dispose()
        assert integrity(db) == "ok" and stale_marks(db) > 0, f"seed {SEED}"
        through, raw, folded = audits(db)
        assert through == raw and folded > 0, f"seed {SEED}: after the kill"
        argv = [str(folder) if arg == "FOLDER" else arg for arg in repair]
        finish(*argv, timeout=300)
        assert stale_marks(db) == 0, f"seed {SEED}: {repair[0]} left stale marks"
        through, raw, folded = audits(db)
        assert through == raw and folded == 0, f"seed {SEED}: {repair[0]}"


def aggregates(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("select count(*) from aggregates").scalar_one())
    finally:
        engine.dispose()


def aggregate_rows(url: str) -> list[tuple[str, bytes]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted((a, bytes(d)) for a, d in conn.exec_driver_sql("select account_id, data from aggregates"))
    finally:
        engine.dispose()


def built_with_other_settings(db: str) -> None:
    """Make the store's aggregates look built with other settings: the next build drops
    and marks them all, and builds every one again."""
    engine = sa.create_engine(db)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE aggregate_sources SET fingerprint = 'other settings'")
    finally:
        engine.dispose()


def test_a_build_killed_in_its_workers_leaves_marks_that_are_repaired(tmp_path: Path, store_url: str) -> None:
    """``crmlink aggregate --rebuild`` in two worker processes, killed at a random point
    (the parent with SIGKILL; its workers end when they next send): the aggregates
    written are whole and their marks cleared, the others still marked, so the audit
    is the same as through the rows; the next build in two workers writes the bytes of
    a build in one process."""
    from crmlink.testing.generate import generate

    print(f"crash seed: {SEED} (replay with CRMLINK_CRASH_SEED={SEED})")
    rng = random.Random(SEED + 3)
    db = store_url
    generate(tmp_path / "export", 200, 40_000, contacts=2000, profile="multiparty")
    configs = {}
    for workers in (1, 2):
        configs[workers] = str(tmp_path / f"workers{workers}.toml")
        Path(configs[workers]).write_text(f"[audit]\nworkers = {workers}\n", encoding="utf-8")
    finish("sync", "csv", str(tmp_path / "export"), "--db", db, "--config", configs[1], "-q", timeout=300)
    want = aggregate_rows(db)
    assert len(want) == 200 and stale_marks(db) == 0
    built_with_other_settings(db)  # so the rebuild starts over (with the same ones it keeps what holds)
    proc = crmlink("aggregate", "--rebuild", "--db", db, "--config", configs[2])
    wait_for(lambda: 0 < aggregates(db) < len(want), proc, "the first aggregates to be written")
    time.sleep(rng.uniform(0.0, 0.05))
    kill(proc)
    assert integrity(db) == "ok" and stale_marks(db) > 0, f"seed {SEED}"
    written = aggregate_rows(db)
    assert 0 < len(written) < len(want) and set(written) <= set(want), f"seed {SEED}: {len(written)} written"
    through, raw, folded = audits(db)
    assert through == raw and folded > 0, f"seed {SEED}: after the kill"
    finish("aggregate", "--db", db, "--config", configs[2], timeout=300)
    assert stale_marks(db) == 0 and aggregate_rows(db) == want, f"seed {SEED}"
