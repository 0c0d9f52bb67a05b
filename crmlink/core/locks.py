"""One sync of a source at a time, in any store.

A running sync is a ``sync_runs`` row with status ``running``, the process id and host
that run it. A second sync of the same source waits up to :data:`WAIT` seconds
(``CRMLINK_SYNC_WAIT``), then refuses with :class:`SyncBusyError` (exit 9) while the first runs; it marks the first ``interrupted`` only once that one is
gone, and resumes from its last committed batch.

- PostgreSQL: the sync holds a session advisory lock keyed by the source for its whole
  run (:func:`advisory`). The server drops it with the session, so a killed sync never
  blocks the next one, on any machine; holding the lock proves that every ``running``
  row of the source is left over from a sync that died.
- SQLite: the running row is the lock. It is written in a ``BEGIN IMMEDIATE``
  transaction after checking that no other running row of the source belongs to a live
  process (:func:`alive`): a process that is gone, or whose id was reused by a process
  started after the run, holds nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crmlink.core import schema
from crmlink.core.engine import lock_key
from crmlink.core.errors import ConfigError, SyncBusyError

#: Seconds a second sync of a source waits for the first before it refuses, unless
#: ``$CRMLINK_SYNC_WAIT`` says otherwise (:func:`wait_seconds`).
WAIT = 5.0
WAIT_ENV = "CRMLINK_SYNC_WAIT"
POLL = 0.1


def wait_seconds() -> float:
    """``$CRMLINK_SYNC_WAIT`` (seconds, 0 or more), else :data:`WAIT`."""
    text = os.environ.get(WAIT_ENV, "").strip()
    if not text:
        return WAIT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{WAIT_ENV} must be a number of seconds (0 or more), not {text!r}")
    return value


def host() -> str:
    return socket.gethostname()


def running(conn: sa.Connection, source: str) -> list[sa.Row[Any]]:
    """The runs of ``source`` still marked running: id, started_at, pid, host."""
    runs = schema.sync_runs
    return list(conn.execute(sa.select(runs.c.id, runs.c.started_at, runs.c.pid, runs.c.host).where(
        runs.c.source == source, runs.c.status == "running").order_by(runs.c.id)))


def alive(pid: int | None, where: str | None, started_at: datetime | None) -> bool:
    """Whether the process that wrote a running row may still be running it: not when it
    is this process, not when no process has its id on this host, not when the process
    with its id started after the run did (the id was reused). A run of another host
    counts as alive (crmlink cannot look)."""
    if pid is None or (where is not None and where != host()):
        return pid is not None
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    began = _process_start(pid)
    return not (began is not None and started_at is not None and began > started_at.timestamp() + 2)


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started, in epoch seconds (Linux ``/proc``; else None)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def busy(source: str, holder: sa.Row[Any] | None) -> SyncBusyError:
    """The error of a second sync of ``source``, naming the one that runs."""
    if holder is None:
        return SyncBusyError(f"another sync of {source!r} is starting in this store; run this one "
                             "again when it has finished")
    since = holder.started_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    where = f" on {holder.host}" if holder.host and holder.host != host() else ""
    return SyncBusyError(f"another sync of {source!r} is running since {since}, pid {holder.pid}{where} "
                         f"(run {holder.id}); run this one again when it has finished")


@contextmanager
def advisory(engine: sa.Engine, source: str, wait: float) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock of ``source`` for the block; raise
    :class:`SyncBusyError` when another session still holds it after ``wait`` seconds
    (the session of a sync killed a moment ago may take that long to end)."""
    key = lock_key(f"crmlink sync {source}")
    deadline = time.monotonic() + wait
    with engine.connect() as conn:
        while not conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar():
            conn.commit()
            if time.monotonic() >= deadline:
                found = running(conn, source)
                raise busy(source, found[-1] if found else None)
            time.sleep(POLL)
        conn.commit()
        try:
            yield
        finally:
            try:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()
            except sa.exc.DBAPIError:  # the session is gone, and its lock with it
                conn.invalidate()


def live_holder(engine: sa.Engine, source: str, wait: float) -> sa.Row[Any] | None:
    """The running row of ``source`` whose process is alive (SQLite), polled until there
    is none or ``wait`` seconds have passed: a read, never waiting for a writer."""
    deadline = time.monotonic() + wait
    while True:
        with engine.connect() as conn:
            holder = next((r for r in running(conn, source) if alive(r.pid, r.host, r.started_at)), None)
        if holder is None or time.monotonic() >= deadline:
            return holder
        time.sleep(POLL)


def now() -> datetime:
    return datetime.fromtimestamp(time.time(), timezone.utc)
