"""Several crmlink processes on one store at once, on SQLite and on PostgreSQL: a second
sync of a source refuses with one sentence and exit 9 while the first runs, and leaves the
first's run alone; processes opening a fresh store at once create its schema once (and
all switch it to the write-ahead log); syncs of different sources at once both finish."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmlink.core import schema
from crmlink.core.engine import make_engine
from crmlink.core.store import Store
from tests.conftest import SAMPLE
from tests.test_crash import big_export, wait_for

INTERACTIONS = len((SAMPLE / "interactions.csv").read_text(encoding="utf-8").splitlines()) - 1


def crmlink(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "crmlink", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_a_second_sync_of_a_source_refuses_while_the_first_runs(tmp_path: Path, store_url: str) -> None:
    folder = big_export(tmp_path / "big", copies=20)  # long enough to be still writing when the second starts
    first = crmlink("sync", "csv", str(folder), "--db", store_url, "-q")
    wait_for(lambda: any(r["status"] == "running" for r in Store(store_url).runs()), first,  # type: ignore[arg-type]
             "the first run to start")
    second = crmlink("sync", "csv", str(folder), "--db", store_url, "-q", CRMLINK_SYNC_WAIT="0")
    code, err = finish(second)
    still_running = first.poll() is None
    assert code == 9, err
    assert re.fullmatch(rf"Error: another sync of 'csv' is running since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC, "
                        rf"pid {first.pid} \(run \d+\); run this one again when it has finished\n", err), err
    if still_running:  # the refusal left the first run as it was
        assert [r["status"] for r in Store(store_url).runs()] == ["running"]
    assert finish(first)[0] == 0
    runs = Store(store_url).runs()
    assert [r["status"] for r in runs] == ["ok"] and runs[0]["pid"] == first.pid
    assert Store(store_url).count("interaction") == 21 * INTERACTIONS


def open_at_once(url: str, processes: int = 4) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", "import sys; from crmlink.core.store import Store; "
                               "print(Store(sys.argv[1]).schema_version)", url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    results = [proc.communicate(timeout=120) for proc in procs]
    failed = [err for proc, (_, err) in zip(procs, results, strict=True) if proc.returncode]
    if failed:  # every traceback whole (an assertion's message would be cut short)
        pytest.fail("\n".join(failed))
    assert {out.strip() for out, _ in results} == {str(schema.SCHEMA_VERSION)}


def test_processes_opening_a_fresh_or_older_store_at_once_create_and_upgrade_it_once(store_url: str) -> None:
    open_at_once(store_url)
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:  # back to schema 3, before the sync lock's columns
        conn.exec_driver_sql("ALTER TABLE sync_runs DROP COLUMN pid")
        conn.exec_driver_sql("ALTER TABLE sync_runs DROP COLUMN host")
        conn.exec_driver_sql("UPDATE crmlink_meta SET value = '3' WHERE key = 'schema_version'")
    engine.dispose()
    open_at_once(store_url)
    columns = {c["name"] for c in sa.inspect(Store(store_url).engine).get_columns("sync_runs")}
    assert {"pid", "host"} <= columns


def test_syncs_of_two_sources_at_once_both_finish(store_url: str) -> None:
    procs = [crmlink("sync", "csv", str(SAMPLE), "--source", name, "--db", store_url, "-q")
             for name in ("east", "west")]
    results = [finish(proc) for proc in procs]
    assert [code for code, _ in results] == [0, 0], results
    store = Store(store_url)
    assert store.sources() == ["east", "west"]
    assert [store.count("interaction", source=s) for s in ("east", "west")] == [INTERACTIONS] * 2
    assert sorted(r["status"] for r in store.runs()) == ["ok", "ok"]


def test_syncs_of_one_source_started_at_once_never_interrupt_each_other(store_url: str) -> None:
    procs = [crmlink("sync", "csv", str(SAMPLE), "--db", store_url, "-q") for _ in range(2)]
    results = [finish(proc) for proc in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 9]), results  # the second waited for the first, or refused
    for code, err in results:
        if code == 9:
            assert err.startswith("Error: another sync of 'csv' is "), err
    store = Store(store_url)
    assert [r["status"] for r in store.runs()] == ["ok"] * codes.count(0)
    assert store.count("interaction") == INTERACTIONS


def test_a_writer_waiting_too_long_on_sqlite_gets_a_store_error_and_readers_never_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from crmlink.core import engine
    from crmlink.core.errors import StoreError

    monkeypatch.setattr(engine, "BUSY_SECONDS", 0.2)
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    store = Store(url)
    other = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    try:
        assert Store(url).count("interaction") == 0  # opening and reading do not wait
        with pytest.raises(StoreError, match=r"^the store sqlite:///.*busy\.db is busy: another process kept it "
                                             r"locked for writing for more than 0\.2 s"):
            store.start_run("crm", "csv", full=False)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.start_run("crm", "csv", full=False) > 0


def test_a_running_row_holds_the_lock_only_while_its_process_runs() -> None:
    from datetime import datetime, timedelta, timezone

    from crmlink.core import locks

    now = datetime.now(timezone.utc)
    here = locks.host()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert locks.alive(child.pid, here, now)
        if Path("/proc/self/stat").exists():  # the id of a process started after the run: reused
            assert not locks.alive(child.pid, here, now - timedelta(days=1))
        assert locks.alive(child.pid, "another-machine", now - timedelta(days=1))  # cannot look there
    finally:
        child.kill()
        child.wait()
    assert not locks.alive(child.pid, here, now)
    assert not locks.alive(os.getpid(), here, now)  # this process runs no other sync
    assert not locks.alive(None, None, now)  # a run from before crmlink recorded processes


def _connect_at(url: str, start: float, found: Any) -> None:
    """In a forked process: open ``url`` at ``start`` (a connection's set-up switches a
    new store to WAL) and say how that went."""
    while time.time() < start:
        pass
    try:
        make_engine(url).connect().close()
        found.put("ok")
    except Exception as exc:  # what the race gave, to show
        found.put(repr(exc))


def test_processes_connecting_to_a_new_store_at_the_same_instant_all_connect(tmp_path: Path) -> None:
    """Four processes that ask a new SQLite file for the write-ahead log at the same
    instant: without asking again, one of them was told "database is locked" in about one
    try in four (the busy timeout does not apply to that race)."""
    context = multiprocessing.get_context("fork")
    for attempt in range(25):
        url = f"sqlite:///{tmp_path / f'new{attempt}.db'}"
        found = context.Queue()
        start = time.time() + 0.2
        procs = [context.Process(target=_connect_at, args=(url, start, found)) for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [found.get(timeout=5) for _ in procs] == ["ok"] * 4, attempt
