"""The SQLAlchemy engine of a store URL, set up for each database crmlink supports.

SQLite (the default):
- WAL, so that readers (an audit) never wait for a writer (a sync);
- real transactions: pysqlite's own implicit ``BEGIN`` is turned off and crmlink begins
  each one itself, ``BEGIN IMMEDIATE`` for writing ones (:data:`WRITE`), so that a
  transaction that reads and then writes never fails halfway because another process
  wrote in between, and ``CREATE TABLE`` is part of its transaction;
- a busy timeout (:data:`BUSY_SECONDS`): a second process waits that long for another's
  write transaction, then gets one sentence (exit 6), never an internal error.

PostgreSQL: ``postgresql://`` means psycopg 3 (the ``postgres`` extra), and psycopg's
automatic server-side prepared statements are off: PostgreSQL would keep one generic plan
for a statement crmlink runs many times, chosen while a table was still small.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import sqlalchemy as sa
import tenacity

from crmlink.core.errors import StoreError
from crmlink.core.upsert import check_sqlite

#: Seconds an SQLite connection waits for another process's write transaction.
BUSY_SECONDS = 30.0
#: Seconds between two asks for the write-ahead log (:func:`_write_ahead_log`).
_SWITCH_PAUSE = 0.01
#: The execution option that makes :func:`make_engine`'s SQLite transactions take the
#: write lock when they begin: ``conn.execution_options(**WRITE)`` before ``conn.begin()``.
WRITE = {"crmlink_begin": "IMMEDIATE"}


def make_engine(url: str) -> sa.Engine:
    """The engine of ``url``; :class:`StoreError` when the URL or its driver is unusable."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"cannot use store URL {url!r}: {exc}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if parsed.drivername == "postgresql+psycopg":
        connect_args["prepare_threshold"] = None
    elif parsed.drivername.startswith("sqlite"):
        check_sqlite()
        connect_args["timeout"] = BUSY_SECONDS
    try:
        engine = sa.create_engine(parsed, connect_args=connect_args)
    except (sa.exc.ArgumentError, ImportError) as exc:
        extra = " (pip install 'crmlink[postgres]')" if parsed.drivername.startswith("postgresql") else ""
        raise StoreError(f"cannot use store URL {parsed.render_as_string(hide_password=True)}: "
                         f"{exc}{extra}") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    sa.event.listen(engine, "handle_error", _store_error)
    return engine


def lock_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64-bit) for ``name``."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # crmlink begins transactions itself
    cursor = dbapi_connection.cursor()
    _write_ahead_log(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _write_ahead_log(cursor: sqlite3.Cursor) -> None:
    """Put the store in WAL mode (a store stays in it once switched). Processes opening a
    new store at once all ask for the switch, and SQLite answers "database is locked" at
    once to those that lose the race, without waiting out the busy timeout (each holds the
    read lock the other must be rid of; measured: one time in four for four processes
    started together): they ask again until the switch is done or the busy timeout passes."""
    for attempt in tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, sqlite3.OperationalError)
                                              and "locked" in str(exc)),
            wait=tenacity.wait_fixed(_SWITCH_PAUSE), stop=tenacity.stop_after_delay(BUSY_SECONDS), reraise=True):
        with attempt:
            cursor.execute("PRAGMA journal_mode=WAL")


def _sqlite_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get("crmlink_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".rstrip())


def _store_error(context: sa.engine.ExceptionContext) -> None:
    """What the database reports that a user can act on, as one sentence (exit 6):
    SQLite's "database is locked" after the busy timeout, and :func:`store_failure`'s.
    Anything else is left as it is."""
    original = context.original_exception
    if isinstance(original, sqlite3.OperationalError) and "locked" in str(original):
        raise StoreError(f"{_where(context.engine)} is busy: another process kept it locked for writing for "
                         f"more than {BUSY_SECONDS:g} s (a long import?); run this again when it has "
                         "finished") from None
    failure = store_failure(original, context.engine, lost=context.is_disconnect)
    if failure is not None:
        raise failure from None


def store_failure(error: BaseException | None, engine: sa.Engine | None, *, lost: bool = False) -> StoreError | None:
    """The one sentence for what ``error`` (the driver's, or SQLAlchemy's wrapping it)
    says of the store itself, whichever path met it (SQLAlchemy's statements or the
    driver's own cursors): the connection to its server was ``lost`` (as the dialect
    tells: :func:`lost_connection`), its disk is full (:func:`disk_full`), its data is
    damaged (:func:`damaged`), or SQLite cannot write it for this user (``SQLITE_READONLY``
    and its kinds). ``None`` for any other error."""
    if lost:
        return StoreError(f"{_where(engine)} went away: the connection to its server was lost "
                          f"({first_line(error)}); what this command had not "
                          "committed was rolled back: run it again once the server is up")
    if disk_full(error):
        disk = "on its server" if engine is not None and engine.dialect.name == "postgresql" else \
            "where its file or SQLite's temporary files are"
        return StoreError(f"{_where(engine)} is out of disk space ({disk}): what this command had not "
                          "committed was rolled back; free some space (a CSV import into SQLite needs about "
                          "twice the store's size while it runs, docs/csv-format.md) and run it again")
    if damaged(error):
        return StoreError(f"{_where(engine)} is damaged ({first_line(error)}): "
                          "restore it from a backup, or sync your sources into a new store (--db) to rebuild it")
    name = _sqlite_name(error)
    if name == "SQLITE_READONLY_DIRECTORY":  # no write-ahead log can be made beside it: even a read fails
        return StoreError(f"{_where(engine)} is in a folder this user cannot write: SQLite creates its "
                          "write-ahead log files beside the store even to read it; make the folder writable "
                          "for this user, or copy the store (with its -wal file, if any) to one that is")
    if name.startswith("SQLITE_READONLY"):
        return StoreError(f"{_where(engine)} cannot be written ({first_line(error)}): give this user write "
                          "access to its file (or drop mode=ro from its URL), or work on a copy")
    return None


def _driver(error: BaseException | None) -> BaseException | None:
    """The driver's error that ``error`` is, or that SQLAlchemy's ``error`` wraps."""
    return getattr(error, "orig", None) or error


def _sqlite_name(error: BaseException | None) -> str:
    """SQLite's name for the driver's ``error`` (``SQLITE_FULL`` ...); ``""`` for any other."""
    error = _driver(error)
    return (getattr(error, "sqlite_errorname", None) or "") if isinstance(error, sqlite3.Error) else ""


#: SQLite's errors for a disk that is full: ``SQLITE_FULL`` ("database or disk is full"),
#: and ``SQLITE_IOERR_SHMSIZE`` ("disk I/O error" while growing the write-ahead log's
#: shared-memory file, which every connection to a store in WAL mode, crmlink's, needs
#: first: what opening a store on a full disk meets)
_SQLITE_FULL = ("SQLITE_FULL", "SQLITE_IOERR_SHMSIZE")


def disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` says the store's disk is full: SQLite's :data:`_SQLITE_FULL`,
    PostgreSQL's ``disk_full`` (SQLSTATE 53100)."""
    error = _driver(error)
    if isinstance(error, sqlite3.OperationalError):
        return _sqlite_name(error) in _SQLITE_FULL or "disk is full" in str(error)
    return getattr(error, "sqlstate", None) == "53100"


def damaged(error: BaseException | None) -> bool:
    """Whether ``error`` says the store's data is damaged: SQLite's ``SQLITE_CORRUPT``
    ("database disk image is malformed") and ``SQLITE_NOTADB``, PostgreSQL's
    ``data_corrupted`` and ``index_corrupted`` (SQLSTATE XX001, XX002)."""
    error = _driver(error)
    if isinstance(error, sqlite3.DatabaseError):
        return _sqlite_name(error) in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in str(error)
    return getattr(error, "sqlstate", None) in ("XX001", "XX002")


def raise_store_failure(conn: sa.Connection, error: BaseException) -> None:
    """Raise :func:`store_failure`'s sentence for the driver's ``error``, met on ``conn``'s
    own DB-API connection (outside SQLAlchemy's statements, whose errors
    :func:`_store_error` tells), if it is one; else return, for the caller to raise
    ``error`` as it is."""
    failure = store_failure(error, conn.engine, lost=lost_connection(conn, error))
    if failure is not None:
        raise failure from None


def lost_connection(conn: sa.Connection, error: BaseException) -> bool:
    """Whether the driver's ``error``, met on ``conn``'s own DB-API connection (outside
    SQLAlchemy's statements, whose errors it tells itself), means the server went away,
    as SQLAlchemy's dialect tells it."""
    try:
        dbapi = None if conn.invalidated or conn.closed else conn.connection.dbapi_connection
        return dbapi is not None and conn.dialect.is_disconnect(error, dbapi, None)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - asked while another error is raised: that one stands
        return False


def first_line(error: BaseException | None) -> str:
    """The first line of ``error``'s message (the driver's, when SQLAlchemy wraps it), or
    its type's name when it has none: what a one-line message quotes of it."""
    error = _driver(error)
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _where(engine: sa.Engine | None) -> str:
    return f"the store {engine.url.render_as_string(hide_password=True)}" if engine is not None else "the store"
