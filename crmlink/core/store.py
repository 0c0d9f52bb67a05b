"""The store: canonical records in any SQL database SQLAlchemy speaks (SQLite by default).

Writes are upserts keyed by ``(source, remote_id)`` per entity table. The sync engine
opens one transaction per batch (or per run, for atomic connectors) and writes the
stream's cursor in the same transaction, so a crash never leaves a cursor ahead of the
data it covers.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain, count
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmlink.core import aggregate_store, locks, model, revisions, schema
from crmlink.core.engine import WRITE, lock_key, make_engine, raise_store_failure
from crmlink.core.errors import StoreError
from crmlink.core.rows import RowBatch, like, record_maker
from crmlink.core.upsert import Bound, Upsert, binder

R = TypeVar("R", bound=model.Record)
#: Told of each write of records (:meth:`Store.watching`): the entity, the rows written
#: (as stored), the keys of those among them that were left as stored.
Watcher = Callable[[type[model.Record], Sequence[tuple[Any, ...]], set[tuple[str, str]]], None]

DEFAULT_DB_ENV = "CRMLINK_DB"
#: (source, remote_id) of a row: the first two fields of every record
_KEY = itemgetter(1, 0)
_REMOTE_ID = itemgetter(0)
#: SQLite's page cache, in KiB, for a write transaction once it writes records
#: (:meth:`Store.upsert_rows`). One big transaction, a CSV import, keeps its changed pages
#: there until they no longer fit, then writes them to the WAL and reads them back as it
#: goes on. A bound, not a growing cost: measured at 1M interactions, 64 MiB took about a
#: fifth off the import's CPU time.
SQLITE_CACHE_KIB = 64 * 1024
#: SQLite's page cache, in KiB, while a first import builds the indexes it set aside
#: (:meth:`Store.restore_indexes`). SQLite sorts an index's keys within as many bytes as
#: the page cache may hold, beside the cache itself: with 64 MiB an import's peak grew
#: from 181 MiB at 1M interactions to 241 MiB at 3M, once the keys of the interactions'
#: indexes outgrew the sort's memory. With 16 MiB the 3M peak was 189 MiB and the
#: indexes took no longer (5.1 s against 5.9 s).
SQLITE_SORT_KIB = 16 * 1024
#: SQLite's own default page cache, in KiB, which every connection has outside that
SQLITE_DEFAULT_CACHE_KIB = 2000


def default_url() -> str:
    """``$CRMLINK_DB``, else ``crmlink.db`` in the current directory."""
    return os.environ.get(DEFAULT_DB_ENV) or "sqlite:///crmlink.db"


@dataclass
class UpsertResult:
    created: int = 0
    #: rows whose stored values changed
    updated: int = 0
    duplicates: list[str] = field(default_factory=list)
    #: remote ids of records equal to what was stored (not rewritten)
    unchanged: list[str] = field(default_factory=list)


def sqlite_path(url: sa.URL) -> Path | None:
    """The file a SQLite store's URL names; ``None`` for a store in memory, a ``file:`` URI
    (SQLite reads its path itself) or another database."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class Store:
    """A canonical-model database. ``Store(url)`` creates the schema if it is missing."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self._upserts: dict[str, Upsert] = {}
        self._binders: dict[str, Callable[[list[tuple[Any, ...]]], Bound]] = {}
        #: the open transactions of :meth:`transaction`, and the indexes each set aside
        self._deferred: dict[sa.Connection, _Deferred] = {}
        #: who is told of each write of records on a connection (:meth:`watching`)
        self._watchers: dict[sa.Connection, Watcher] = {}
        self.engine = make_engine(self.url)
        if self.engine.dialect.name == "sqlite":
            self._ensure_sqlite_dir()
        elif self.engine.dialect.name == "postgresql":
            _many_rows_a_statement(self.engine)
        self._init_schema()

    def _ensure_sqlite_dir(self) -> None:
        path = sqlite_path(self.engine.url)
        if path is None:
            return
        if path.is_dir():  # SQLite says only "unable to open database file"
            raise StoreError(f"the store URL {self.display_url} names a folder, not a store's file: give a "
                             f"file's path, an existing store or one to create (sqlite:///{str(path).rstrip('/')}"
                             "/crmlink.db)")
        path.parent.mkdir(parents=True, exist_ok=True)

    def _init_schema(self) -> None:
        """Create or upgrade the schema in one transaction that holds the store's schema
        lock (PostgreSQL's advisory lock, SQLite's write lock), so that processes starting
        at once on a fresh or older store create and upgrade it once."""
        try:
            if self._current_schema():
                return
            with self.transaction() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key("crmlink schema"))))
                if _schema_version(conn) == schema.SCHEMA_VERSION:
                    # made or upgraded by another process while this one waited for the
                    # lock: replacing its triggers now would lock tables its sync writes
                    return
                schema.metadata.create_all(conn)
                schema.create_triggers(conn)
                schema.column_storage(conn)
                found = _schema_version(conn)
                if found is None:
                    if conn.dialect.name == "postgresql":
                        schema.without_later_indexes(conn)
                    conn.execute(schema.meta_table.insert().values(
                        key="schema_version", value=str(schema.SCHEMA_VERSION)))
                elif found > schema.SCHEMA_VERSION:
                    raise StoreError(
                        f"the store was written by a newer crmlink (schema {found}, this crmlink "
                        f"knows {schema.SCHEMA_VERSION}); upgrade crmlink")
                elif found < schema.SCHEMA_VERSION:  # made by an earlier crmlink
                    schema.upgrade(conn)
                    conn.execute(schema.meta_table.update().where(
                        schema.meta_table.c.key == "schema_version").values(value=str(schema.SCHEMA_VERSION)))
        except sa.exc.DBAPIError as exc:  # unreachable, refused, no permission to create tables
            # (a full disk, damaged data or a read-only store is told by the engine's error event)
            raise StoreError(f"cannot open the store at {self.display_url}: {exc.orig}") from None

    def _current_schema(self) -> bool:
        """Whether the store has this crmlink's schema already: a read, so that opening a
        store never waits for a sync that is writing to it."""
        with self.engine.connect() as conn:
            return _schema_version(conn) == schema.SCHEMA_VERSION

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(schema.meta_table.c.value).where(
                schema.meta_table.c.key == "schema_version")).scalar_one())

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction (on SQLite it takes the write lock when it begins).

        On SQLite, once the transaction writes records its page cache is
        :data:`SQLITE_CACHE_KIB` (SQLite's default again when it ends, so the pooled
        connection does not keep it), and a table that is empty when the transaction first
        writes to it gets its secondary indexes back only at the end (:class:`_Deferred`):
        a first import then builds each index once, sorted, instead of maintaining it row
        by row."""
        with self.engine.connect() as conn:
            conn.execution_options(**WRITE)
            deferred = self._deferred[conn] = _Deferred()
            try:
                with conn.begin():
                    yield conn
                    deferred.restore(conn)
            except Exception as exc:  # the driver's own cursors' errors too
                raise_store_failure(conn, exc)
                raise
            finally:
                del self._deferred[conn]
                if deferred.seen and conn.dialect.name == "sqlite":
                    conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_DEFAULT_CACHE_KIB}")

    def restore_indexes(self, conn: sa.Connection) -> None:
        """Build now, in the transaction of :meth:`transaction` on ``conn``, the indexes it
        would build at its end (:class:`_Deferred`): for a caller whose writes of records
        are done and who has other work before the commit (a first import waiting for
        its aggregates' builder), so that the two overlap. A later write of records to a
        table the transaction had not written yet sets that table's indexes aside again."""
        deferred = self._deferred.get(conn)
        if deferred is not None:
            deferred.restore(conn)

    # -- writing ---------------------------------------------------------------------------

    def _insert(self, table: sa.Table) -> Any:
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            return sqlite.insert(table)
        if dialect == "postgresql":
            return postgresql.insert(table)
        raise StoreError(f"upserts are not implemented for {dialect}; use SQLite or PostgreSQL")

    def upsert(self, conn: sa.Connection, records: Sequence[model.Record],
               run_id: int | None = None) -> UpsertResult:
        """Insert or update records of one entity: :meth:`upsert_rows` of their values."""
        if not records:
            return UpsertResult()
        return self.upsert_rows(conn, RowBatch.of(model.ENTITIES[records[0].entity], records), run_id)

    def upsert_rows(self, conn: sa.Connection, batch: RowBatch, run_id: int | None = None) -> UpsertResult:
        """Insert or update the rows of one entity, in one statement per batch
        (:mod:`crmlink.core.upsert`): every write of records to the store comes here.

        A stored row whose values equal the new ones is left as it is (only its ``run_id``
        moves to this run) and reported in ``unchanged``, not counted as updated. A key
        given twice is written once, its first row; the repeats are reported in
        ``duplicates``, and so is, with a ``run_id``, a key the same run already wrote.
        """
        result = UpsertResult()
        if not batch.rows:
            return result
        entity = batch.entity.entity
        writer = self._upserter(conn, entity)
        deferred = self._deferred.get(conn)
        if deferred is not None:
            deferred.first_write(conn, schema.TABLES[entity], run_id)
        fresh = deferred is not None and schema.TABLES[entity].name in deferred.fresh
        counting = deferred.counting(conn, entity, run_id) if deferred is not None else None
        rows = batch.rows
        # distinct remote ids are distinct keys (a set of them costs half one of the keys)
        if len(set(map(_REMOTE_ID, rows))) < len(rows) and len(set(map(_KEY, rows))) < len(rows):
            first: dict[tuple[str, str], tuple[Any, ...]] = {}
            for row in rows:
                key = _KEY(row)
                if key in first:
                    result.duplicates.append(row[0])
                else:
                    first[key] = row
            rows = like(rows, first.values())  # stored rows stay marked as such
        bound = self._binders[entity](rows)
        written = writer.write(conn, bound, run_id, fresh=fresh)
        kept = {*written.unchanged, *written.duplicates}
        if counting is not None:  # the rows inserted: all but those left as they were
            revisions.raise_by(conn, counting(rows if not kept else [row for row in rows if _KEY(row) not in kept]))
        aggregate_store.note(conn, batch.entity, rows, kept)
        watcher = self._watchers.get(conn)
        if watcher is not None:
            watcher(batch.entity, bound.rows, kept)
        result.created, result.updated = written.created, written.updated
        result.unchanged = [rid for _, rid in written.unchanged]
        result.duplicates.extend(rid for _, rid in written.duplicates)
        return result

    @contextmanager
    def watching(self, conn: sa.Connection, watcher: Watcher) -> Iterator[None]:
        """While inside, call ``watcher(entity, rows, kept)`` after each write of records
        on ``conn`` (:meth:`upsert_rows`): the rows written, each key once, with their
        values as the database stores them and gives them back (in
        :func:`~crmlink.core.rows.fields_of` order: times as epoch seconds, id lists as
        ``;``-joined text), and the keys ``(source, remote_id)`` among them that were
        stored already and left as they were (unchanged, or repeats of a key the run
        wrote before)."""
        self._watchers[conn] = watcher
        try:
            yield
        finally:
            del self._watchers[conn]

    def _upserter(self, conn: sa.Connection, entity: str) -> Upsert:
        found = self._upserts.get(entity)
        if found is None:
            table = schema.TABLES[entity]
            found = self._upserts[entity] = Upsert(table, conn.dialect)
            self._binders[entity] = binder(table, conn.dialect)
        return found

    def mark_unseen_deleted(self, conn: sa.Connection, entity: str, source: str, run_id: int) -> int:
        """Mark deleted every live row of ``source`` that run ``run_id`` did not write
        (a full export no longer contains it)."""
        table = schema.TABLES[entity]
        done = conn.execute(table.update().where(
            table.c.source == source, table.c.deleted.is_(False),
            sa.or_(table.c.run_id.is_(None), table.c.run_id != run_id)).values(deleted=True)).rowcount
        if done:
            aggregate_store.note_deleted(conn, entity, source)
        return int(done)

    def mark_seen(self, conn: sa.Connection, entity: str, source: str, remote_ids: Sequence[str],
                  run_id: int) -> None:
        """Count rows as seen by run ``run_id`` without changing them (a skipped bad row of a
        full export still exists, so :meth:`mark_unseen_deleted` must not delete it)."""
        table = schema.TABLES[entity]
        for chunk in model.chunked(list(remote_ids), 900):
            conn.execute(table.update().where(table.c.source == source, table.c.remote_id.in_(chunk))
                         .values(run_id=run_id))

    def mark_deleted(self, conn: sa.Connection, entity: str, source: str, remote_ids: Sequence[str]) -> int:
        table = schema.TABLES[entity]
        done = 0
        for chunk in model.chunked(remote_ids, 900):
            done += conn.execute(table.update().where(
                table.c.source == source, table.c.remote_id.in_(chunk), table.c.deleted.is_(False)
            ).values(deleted=True)).rowcount
        if done:
            aggregate_store.note_deleted(conn, entity, source)
        return done

    # -- cursors and runs ------------------------------------------------------------------

    def get_state(self, source: str, stream: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(schema.sync_state.c.state).where(
                schema.sync_state.c.source == source, schema.sync_state.c.stream == stream)).scalar()

    def set_state(self, conn: sa.Connection, source: str, stream: str, state: dict[str, Any]) -> None:
        stmt = self._insert(schema.sync_state).values(
            source=source, stream=stream, state=state, updated_at=_now())
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["source", "stream"], set_={"state": state, "updated_at": _now()}))

    def clear_state(self, source: str) -> None:
        with self.transaction() as conn:
            conn.execute(schema.sync_state.delete().where(schema.sync_state.c.source == source))

    @contextmanager
    def sync_lock(self, source: str) -> Iterator[None]:
        """Hold the sync lock of ``source`` for the block (:mod:`crmlink.core.locks`): raise
        :class:`SyncBusyError` when another sync of it still runs after
        :func:`crmlink.core.locks.wait_seconds`. On SQLite the lock is
        the running row :meth:`start_run` writes; this refuses early, without waiting for
        the other sync's write transaction."""
        if self.engine.dialect.name == "postgresql":
            with locks.advisory(self.engine, source, locks.wait_seconds()):
                yield
            return
        holder = locks.live_holder(self.engine, source, locks.wait_seconds())
        if holder is not None:
            raise locks.busy(source, holder)
        yield

    def start_run(self, source: str, connector: str, full: bool) -> int:
        """Open a run record. Earlier runs of ``source`` still marked running never
        finished (the process was killed or the machine stopped): they become
        ``interrupted``, since this run resumes from their last checkpoint. On SQLite a
        running one whose process is alive stops this one with :class:`SyncBusyError`
        (on PostgreSQL :meth:`sync_lock` has made sure there is none)."""
        runs = schema.sync_runs
        with self.transaction() as conn:
            if conn.dialect.name != "postgresql":
                for row in locks.running(conn, source):
                    if locks.alive(row.pid, row.host, row.started_at):
                        raise locks.busy(source, row)
            conn.execute(runs.update().where(runs.c.source == source, runs.c.status == "running")
                         .values(status="interrupted", error=INTERRUPTED))
            return _new_id(conn.execute(runs.insert().values(
                source=source, connector=connector, started_at=_now(), status="running",
                full=full, pid=os.getpid(), host=locks.host())))

    def finish_run(self, run_id: int, status: str, counts: dict[str, Any], error: str | None,
                   skips: Sequence[tuple[str, str | None, str]] = ()) -> None:
        """Close the run record, with the records it skipped (stream, remote id, reason)."""
        with self.transaction() as conn:
            conn.execute(schema.sync_runs.update().where(schema.sync_runs.c.id == run_id).values(
                finished_at=_now(), status=status, counts=counts, error=error))
            if skips:
                conn.execute(schema.skipped_records.insert(), [
                    {"run_id": run_id, "stream": stream, "remote_id": rid, "reason": reason}
                    for stream, rid, reason in skips])

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.sync_runs).order_by(
                schema.sync_runs.c.id.desc()).limit(limit)).mappings().all()
            return [dict(r) for r in rows]

    def skipped(self, run_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.skipped_records).where(
                schema.skipped_records.c.run_id == run_id)).mappings().all()
            return [dict(r) for r in rows]

    # -- reading ---------------------------------------------------------------------------

    def records(self, entity: str, *, source: str | None = None,
                include_deleted: bool = False) -> Iterator[model.Record]:
        """Stream records of one entity as canonical dataclasses (no re-validation)."""
        cls = model.ENTITIES[entity]
        with self.engine.connect() as conn:
            shape = _shape(conn, cls)
            mark = shape.mark
            where = [f"source = {mark}"] if source is not None else []
            if not include_deleted:
                where.append("NOT deleted")
            sql = shape.select(" AND ".join(where) or "1 = 1")
            yield from shape.records(conn, sql, [source] if source is not None else [], name="crmlink_records")

    def find(self, entity: str, remote_ids: Sequence[str],
             sources: Sequence[str] | None = None) -> list[model.Record]:
        """The live records of ``entity`` with one of ``remote_ids``, in any of ``sources``
        (every source holding ``entity`` when ``None``): a probe of the unique
        ``(source, remote_id)`` index per pair, cheap enough to ask once per message."""
        if not remote_ids:
            return []
        table = schema.TABLES[entity]
        cls = model.ENTITIES[entity]
        if sources is None:
            sources = self.sources_of(entity)
        query = sa.select(*[table.c[f.name] for f in dataclasses.fields(cls)]).where(
            table.c.source.in_(list(sources)), table.c.remote_id.in_(list(remote_ids)),
            table.c.deleted.is_(False))
        with self.engine.connect() as conn:
            return list(map(_shape(conn, cls).converted, conn.execute(query)))

    def sources_of(self, entity: str) -> list[str]:
        """The sources holding rows of ``entity``."""
        table = schema.TABLES[entity]
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(table.c.source).distinct()).scalars())

    def records_of(self, cls: type[R], *, source: str | None = None,
                   include_deleted: bool = False) -> Iterator[R]:
        """:meth:`records` of the entity ``cls`` models, typed as ``cls``."""
        for record in self.records(cls.entity, source=source, include_deleted=include_deleted):
            yield cast(R, record)

    def count(self, entity: str, *, source: str | None = None, include_deleted: bool = False) -> int:
        table = schema.TABLES[entity]
        query = sa.select(sa.func.count()).select_from(table)
        if source is not None:
            query = query.where(table.c.source == source)
        if not include_deleted:
            query = query.where(table.c.deleted.is_(False))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def sources(self) -> list[str]:
        table = schema.TABLES["account"]
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(table.c.source).distinct()).scalars())

    def live_ids(self, conn: sa.Connection, entity: str, source: str) -> Iterator[str]:
        """The remote ids of the rows of ``entity`` in ``source`` not marked deleted."""
        table = schema.TABLES[entity]
        return conn.execute(sa.select(table.c.remote_id).where(
            table.c.source == source, table.c.deleted.is_(False))).scalars()

    def interaction_rows(self, source: str | None, until: float) -> Iterator[tuple[Any, ...]]:
        """The live interactions of ``source`` (every source when ``None``) that occurred
        at or before ``until`` (epoch seconds), as plain DB-API tuples of
        :data:`INTERACTION_COLUMNS` exactly as stored: times as epoch seconds, id lists as
        ``;``-joined text, no per-row conversion. In storage order; made for one streaming
        pass over millions of rows. The interactions of other sources linked to ``source``
        (``link_source``: a mailbox's messages with its people) follow its own."""
        return chain.from_iterable(self._interaction_batches(source, until))

    def correspondent_rows(self, link_source: str, until: float) -> list[tuple[str, str, str | None, float, bool]]:
        """``(account_id, address, name, occurred_at, sent)`` of the live unknown people
        (:class:`~crmlink.core.model.Correspondent`) linked to ``link_source`` at or before
        ``until`` (epoch seconds): one row per person and message or meeting."""
        with self.engine.connect() as conn:
            return correspondent_rows(conn, link_source, until)

    def _interaction_batches(self, source: str | None, until: float) -> Iterator[Sequence[tuple[Any, ...]]]:
        with self.engine.connect() as conn:
            yield from interaction_batches(conn, source, until)


def _many_rows_a_statement(engine: sa.Engine) -> None:
    """PostgreSQL: an ``executemany`` of an ``INSERT`` (the stale marks of each batch of
    an import, the aggregates a refresh writes, the audit's cache entries) goes to the
    server as statements of up to 1,000 rows each (SQLAlchemy's "insertmanyvalues"),
    not one statement a row: each statement fires the revisions' statement triggers
    (:mod:`crmlink.core.revisions`) once, not once a row, and the server parses and
    plans it once. The revisions a write raises are the same: each statement raises an
    account's revision once, and no such ``executemany`` names an account twice."""
    engine.dialect.use_insertmanyvalues_wo_returning = True


def correspondent_rows(conn: sa.Connection, link_source: str, until: float,
                       accounts: Sequence[str] | None = None) -> list[tuple[str, str, str | None, float, bool]]:
    """:meth:`Store.correspondent_rows` on a connection the caller holds; with
    ``accounts``, the rows of those accounts alone (through the ``account_id`` index, in
    the order they were stored: an unknown person's name is the last one seen)."""
    table = schema.TABLES["correspondent"]
    at = sa.type_coerce(table.c.occurred_at, sa.Float())
    query = sa.select(table.c.account_id, table.c.address, table.c.name, at, table.c.sent).where(
        table.c.link_source == link_source, table.c.deleted.is_(False), at <= until)
    if accounts is None:
        return [(str(a), str(addr), name, float(t), bool(sent)) for a, addr, name, t, sent in conn.execute(query)]
    found: list[tuple[str, str, str | None, float, bool]] = []
    for chunk in model.chunked(list(accounts), _IN_CHUNK):
        found.extend((str(a), str(addr), name, float(t), bool(sent)) for a, addr, name, t, sent in conn.execute(
            query.where(table.c.account_id.in_(chunk)).order_by(table.c.pk)))
    return found


#: values in one ``IN (...)`` of a read by keys (SQLite's older builds take 999 at most)
_IN_CHUNK = 500


def records_where(conn: sa.Connection, cls: type[R], source: str, where: Any = None, *,
                  include_deleted: bool = False, by_where: bool = False) -> Iterator[R]:
    """The records of ``cls`` in ``source`` on a connection the caller holds (its
    snapshot), those matching the SQL condition ``where`` on ``cls``'s table when given
    (:data:`crmlink.core.schema.TABLES`), in the order they were stored. ``by_where``:
    ``where`` picks few rows through an index, which SQLite must use rather than the
    ``(source, remote_id)`` index (without statistics it would walk every row of the
    source: ten times slower for a chunk of contacts, measured). For a read by the
    values of one column, :func:`records_in` costs less (no statement to build)."""
    table = schema.TABLES[cls.entity]
    of_source = table.c.source == source
    if by_where and conn.dialect.name == "sqlite":  # SQLite's unary plus: no index for this term
        of_source = sa.literal_column(f"+{table.name}.source", sa.Text()) == source
    query = sa.select(*[table.c[f.name] for f in dataclasses.fields(cls)]).where(of_source)
    if where is not None:
        query = query.where(where)
    if not include_deleted:
        query = query.where(table.c.deleted.is_(False))
    rows = conn.execution_options(yield_per=5000).execute(query.order_by(table.c.pk))
    make = _shape(conn, cls).converted
    return (make(row) for row in rows)


def records_in(conn: sa.Connection, cls: type[R], source: str, column: str, values: Iterable[str], *,
               include_deleted: bool = False) -> Iterator[R]:
    """The records of ``cls`` in ``source`` whose ``column`` is one of ``values``: a read
    through that column's index, a few hundred values a query, each query's records in
    the order they were stored (so the records of one value are in stored order). Made
    for many small reads (a chunk of accounts at a time): the statement's text is made
    without SQLAlchemy's statement building, and the rows come from the DB-API cursor,
    each value converted only where its column's type needs it (:class:`_Shape`)."""
    shape = _shape(conn, cls)
    mark = shape.mark
    of_source = "source"
    if column != "remote_id" and schema.TABLES[cls.entity].c[column].index and conn.dialect.name == "sqlite":
        of_source = "+source"  # SQLite's unary plus: through the column's index (see records_where)
    deleted = "" if include_deleted else " AND NOT deleted"
    for chunk in model.chunked(list(dict.fromkeys(v for v in values if v)), _IN_CHUNK):
        if conn.dialect.name == "postgresql":
            which, args = f"{column} = ANY({mark})", [chunk, source]
        else:
            which, args = f"{column} IN ({', '.join(mark * len(chunk))})", [*chunk, source]
        yield from shape.records(conn, shape.select(f"{which} AND {of_source} = {mark}{deleted}"), args)


class _Shape:
    """How the records of one entity are read on one kind of database: the text of the
    select of their fields (in field order, by stored order), and a function making a
    record from a row of it. A DB-API row's values are converted as SQLAlchemy's result
    processing of each column's type would (the same processors: epoch seconds to
    datetimes, JSON text to dicts, SQLite's 0 and 1 to booleans), only for the columns
    whose type has one; the record is made without ``__init__`` (no validation: it was
    valid when stored) by a function written for the entity's fields, which sets each
    slot directly (five times faster than setting them one call at a time, measured)."""

    def __init__(self, conn: sa.Connection, cls: type[model.Record]) -> None:
        dialect = conn.dialect
        self.cls, self.dialect = cls, dialect
        self.table = schema.TABLES[cls.entity]
        self.names = [f.name for f in dataclasses.fields(cls)]
        self.mark = "%s" if dialect.name == "postgresql" else "?"
        quote = dialect.identifier_preparer.quote
        self.head = f"SELECT {', '.join(quote(n) for n in self.names)} FROM {quote(self.table.name)} WHERE "
        #: from rows SQLAlchemy has converted already (:func:`records_where`)
        self.converted: Callable[[Sequence[Any]], Any] = record_maker(cls)
        self._raw: dict[tuple[Any, ...], Callable[[Sequence[Any]], Any]] = {}

    def select(self, where: str) -> str:
        return f"{self.head}{where} ORDER BY pk"

    def records(self, conn: sa.Connection, sql: str, args: Sequence[Any], *,
                name: str | None = None) -> Iterator[Any]:
        """The records of the rows of ``sql`` (a :meth:`select`) with ``args``."""
        batches = cursor_batches(conn, sql, args, 5000, name=name, description=True)
        codes: tuple[Any, ...] = next(batches)
        make = None
        for batch in batches:
            if make is None:
                make = self._raw.get(codes) or self._raw.setdefault(codes, self._made(codes))
            yield from map(make, batch)

    def _made(self, codes: Sequence[Any]) -> Callable[[Sequence[Any]], Any]:
        """The record maker for rows whose columns have the DB-API type ``codes``."""
        processors = []
        for name, code in zip(self.names, codes):
            kind = self.table.c[name].type.dialect_impl(self.dialect)
            processors.append(kind.result_processor(self.dialect, code))
        return record_maker(self.cls, processors)


_SHAPES: dict[tuple[str, str], _Shape] = {}


def _shape(conn: sa.Connection, cls: type[model.Record]) -> _Shape:
    found = _SHAPES.get((conn.dialect.name, cls.entity))
    if found is None:
        found = _SHAPES[(conn.dialect.name, cls.entity)] = _Shape(conn, cls)
    return found


#: The columns of :meth:`Store.interaction_rows`, in order.
INTERACTION_COLUMNS = ("account_id", "kind", "direction", "method", "occurred_at", "user_ids",
                       "contact_ids", "recipient_count", "opportunity_id", "subject", "campaign")


def interaction_batches(conn: sa.Connection, source: str | None,
                        until: float) -> Iterator[Sequence[tuple[Any, ...]]]:
    """:meth:`Store.interaction_rows` on a connection the caller holds, in batches of
    rows, straight from the DB-API cursor."""
    table = schema.TABLES["interaction"]
    query = sa.select(*[table.c[c] for c in INTERACTION_COLUMNS]).where(
        table.c.deleted == sa.false(), table.c.occurred_at <= sa.bindparam("until", type_=sa.Float()))
    values: dict[str, Any] = {"until": until}
    if source is None:
        yield from _batches(conn, query, values, scan=True)
        return
    named = sa.bindparam("source", type_=sa.Text())
    values["source"] = source
    yield from _batches(conn, query.where(table.c.source == named), values, scan=True)
    # two queries rather than one OR: the linked interactions of other sources (a mailbox's)
    # are found through the link_source index
    yield from _batches(conn, query.where(table.c.link_source == named, table.c.source != named), values)


def _batches(conn: sa.Connection, query: sa.Select[Any], values: dict[str, Any],
             scan: bool = False) -> Iterator[Sequence[tuple[Any, ...]]]:
    """Run ``query`` on the DB-API cursor. ``scan``: read the table in storage order, not
    through an index. SQLite's planner, without statistics, would walk the ``occurred_at``
    or the ``(source, remote_id)`` index for a predicate that keeps nearly every row,
    which reads the table in random order and takes up to twice as long; PostgreSQL
    chooses from its statistics. On PostgreSQL through a server-side cursor: a plain
    one receives every row before the first batch (353 MiB for the audit's columns of a
    million interactions)."""
    sql, args = dbapi_statement(conn, query, values)
    if scan and conn.dialect.name == "sqlite":
        name = schema.TABLES["interaction"].name
        sql = re.sub(rf"\bFROM {name}\b", f"FROM {name} NOT INDEXED", sql, count=1)
    return cursor_batches(conn, sql, args, 20_000, name=f"crmlink_interactions_{next(_CURSORS)}")


def dbapi_statement(conn: sa.Connection, query: sa.Select[Any],
                    values: Mapping[str, Any] | None = None) -> tuple[str, Any]:
    """The DB-API text and arguments of ``query`` for :func:`cursor_batches`: the values
    bound in it, and ``values`` by name for its parameters bound without one."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    found = {**compiled.params, **(values or {})}
    return compiled.string, (tuple(found[name] for name in compiled.positiontup or ()) if compiled.positional
                             else found)


def plain_rows(conn: sa.Connection, query: sa.Select[Any], size: int = 5000) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` as plain tuples from the DB-API cursor, ``size`` at a time
    (:func:`cursor_batches`): for reads of tens of thousands of rows (a source's senior
    contacts, its stale marks), where a SQLAlchemy row each cost a small refresh a tenth
    of a second and doubled what reading them held."""
    return chain.from_iterable(cursor_batches(conn, *dbapi_statement(conn, query), size))


#: numbers the server-side cursors of :func:`_batches`: two may be open on a connection
_CURSORS = count()


def cursor_batches(conn: sa.Connection, sql: str, args: Any, size: int, *,
                   name: str | None = None, description: bool = False) -> Iterator[Any]:
    """The rows of ``sql`` (in the DB-API's parameter style) as plain tuples from the
    DB-API cursor of ``conn``, ``size`` at a time: no SQLAlchemy row per row. ``name``
    makes it a server-side cursor on PostgreSQL (the rows are not all sent at once).
    ``description``: first the DB-API type code of each column, as a tuple.

    On PostgreSQL the rows come in the binary format, whose values are the same Python
    values as the text format's: the aggregates' and the cache's ``bytea`` columns
    then travel as they are, not as hexadecimal text twice their size that the server
    encodes and psycopg decodes (reading the aggregates of 3,000 accounts, 84 MB: 0.29
    s of wall time and 0.05 s of the client's CPU, against 1.26 s and 0.34 s)."""
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:  # pragma: no cover - a live Connection always has one
        raise StoreError("the store connection is closed")
    if conn.dialect.name == "postgresql":
        cursor = dbapi.cursor(name=name, binary=True) if name else dbapi.cursor(binary=True)
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql, args)
        if description:
            batch = cursor.fetchmany(size)  # a server-side cursor describes its rows once it has some
            yield tuple(column[1] for column in cursor.description or ())
            if not batch:
                return
            yield batch
        while batch := cursor.fetchmany(size):
            yield batch
    except Exception as exc:  # the driver's, which SQLAlchemy's error events never see
        raise_store_failure(conn, exc)
        raise
    finally:
        cursor.close()


def of_source_in(conn: sa.Connection, table: str, columns: str, source: str,
                 accounts: Sequence[str]) -> tuple[str, list[Any]]:
    """The DB-API text and arguments of ``SELECT columns FROM table`` where ``source``
    and ``account_id`` is one of ``accounts`` (for :func:`cursor_batches`): one array
    argument on PostgreSQL, one parameter an account on SQLite."""
    if conn.dialect.name == "postgresql":
        return f"SELECT {columns} FROM {table} WHERE source = %s AND account_id = ANY(%s)", [source, list(accounts)]
    marks = ", ".join("?" * len(accounts))
    return f"SELECT {columns} FROM {table} WHERE source = ? AND account_id IN ({marks})", [source, *accounts]


def _schema_version(conn: sa.Connection) -> int | None:
    """The schema version the store records, or None for a store not made yet."""
    if not sa.inspect(conn).has_table(schema.meta_table.name):
        return None
    found = conn.execute(sa.select(schema.meta_table.c.value).where(
        schema.meta_table.c.key == "schema_version")).scalar()
    return None if found is None else int(found)


class _Deferred:
    """The secondary indexes one transaction builds once its rows are written.

    SQLite: an index of a table that was empty when the transaction first wrote to it is
    dropped then, and created again, with the SQL it was made with, once the
    transaction's work is done. ``CREATE INDEX`` over a million rows sorts them once,
    which costs a fraction of keeping the index up to date row by row; beyond a few dozen
    megabytes an index also no longer fits in SQLite's page cache, and each row's insert
    into it then reads and writes pages at random. It is all one transaction: a failure
    or a crash rolls back the drop with the rows, and other connections (WAL readers)
    keep seeing the indexes of the last commit. The unique ``(source, remote_id)`` index,
    which the upsert needs, is not touched.

    PostgreSQL: dropping an index would lock readers out of the table until the
    transaction ends, so a store is made without its record tables' secondary indexes
    (:func:`crmlink.core.schema.without_later_indexes`), and the transaction that writes
    a table's first rows creates them before it commits (``CREATE INDEX`` lets readers
    read). Two such transactions would each wait for the other's writes to end before
    creating an index, so they take turns: the second waits for the first to commit (an
    advisory lock), and then writes into a table that has its indexes."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        #: the tables that had no rows when the transaction first wrote to them (on
        #: PostgreSQL their batches are copied in, :meth:`.Upsert.write`)
        self.fresh: set[str] = set()
        #: (name, the SQL that creates it) of the dropped indexes, in the order dropped
        self.dropped: list[tuple[str, str]] = []
        #: PostgreSQL: the indexes to create before the commit
        self.missing: list[sa.Index] = []
        #: SQLite: (name, SQL) of the revision triggers dropped (:meth:`counting`)
        self.triggers: list[tuple[str, str]] = []
        #: SQLite: entity -> (the run writing it, what its rows raise) of the tables whose
        #: revisions are raised a batch at a time (:meth:`counting`)
        self.counted: dict[str, tuple[int, Callable[[Sequence[tuple[Any, ...]]], dict[tuple[str, str], int]]]] = {}

    def first_write(self, conn: sa.Connection, table: sa.Table, run_id: int | None = None) -> None:
        """On the transaction's first write to ``table``, note whether it has no rows,
        and if so on SQLite drop its secondary indexes (and for a sync run's write, the
        trigger that raises revisions row by row: :meth:`counting`); on PostgreSQL note
        those it lacks."""
        if table.name in self.seen:
            return
        sqlite = conn.dialect.name == "sqlite"
        if sqlite and not self.seen:  # the transaction's first write of records
            conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        self.seen.add(table.name)
        if not sqlite and _missing_indexes(conn, table):  # first rows: after any other first rows commit
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(FIRST_ROWS_LOCK))))
            self.missing.extend(_missing_indexes(conn, table))  # none once the other committed
        if conn.exec_driver_sql(f'SELECT 1 FROM "{table.name}" LIMIT 1').first() is not None:
            return
        self.fresh.add(table.name)
        if not sqlite:
            return
        indexes = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL "
            "ORDER BY name", (table.name,)).all()
        for name, sql in indexes:
            if sql.lstrip().upper().startswith("CREATE UNIQUE"):
                continue
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
            self.dropped.append((name, sql))
        entity = next((e for e, t in schema.TABLES.items() if t is table), None)
        if run_id is None or entity not in revisions.COUNTED:
            return
        trigger = revisions.insert_trigger(entity)
        found = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                                     (trigger,)).scalar()
        if found is not None:
            conn.exec_driver_sql(f'DROP TRIGGER "{trigger}"')
            self.triggers.append((trigger, found))
            self.counted[entity] = (run_id, revisions.counted(entity))

    def counting(self, conn: sa.Connection, entity: str, run_id: int | None
                 ) -> Callable[[Sequence[tuple[Any, ...]]], dict[tuple[str, str], int]] | None:
        """SQLite, a table of :data:`.revisions.COUNTED` that a sync run's write found
        empty: its insert trigger, which raised the revisions each row names in a
        statement of its own (a tenth of a first import's time for contacts), is
        dropped until the transaction's end, and the caller raises what a batch's
        inserted rows name in one statement (:func:`.revisions.counted`), the same
        revisions. While the writes are that run's: another write to the table (which
        might update a row, the update trigger's work) first gets the trigger back."""
        found = self.counted.get(entity)
        if found is None:
            return None
        if found[0] == run_id:
            return found[1]
        self._triggers_back(conn)
        return None

    def _triggers_back(self, conn: sa.Connection) -> None:
        for _name, sql in self.triggers:
            conn.exec_driver_sql(sql)
        self.triggers.clear()
        self.counted.clear()

    def restore(self, conn: sa.Connection) -> None:
        """Create the dropped or missing indexes (in the transaction, before it commits).
        PostgreSQL: then ``ANALYZE`` the tables that were empty, so that they commit
        with their statistics. Without them, until autovacuum's next pass (a minute or
        more), the planner guessed at the tables of a first import: an audit run right
        after one at 1M read its chunks' contacts by id in 14 s instead of 0.6 s
        (``pg_stat_statements``, 225 reads), the tables' statistics being those of an
        empty table."""
        if self.dropped:  # SQLite's: sorted within a smaller cache (SQLITE_SORT_KIB)
            conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_SORT_KIB}")
            for _name, sql in self.dropped:
                conn.exec_driver_sql(sql)
            conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        self.dropped.clear()
        self._triggers_back(conn)
        for index in self.missing:
            index.create(conn, checkfirst=True)
        self.missing.clear()
        if self.fresh and conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE " + ", ".join(f'"{name}"' for name in sorted(self.fresh)))
            self.fresh.clear()


#: PostgreSQL: the advisory lock of a transaction writing a table's first rows
#: (:class:`_Deferred`)
FIRST_ROWS_LOCK = "crmlink first rows"


def _missing_indexes(conn: sa.Connection, table: sa.Table) -> list[sa.Index]:
    """PostgreSQL: the :func:`~crmlink.core.schema.later_indexes` ``table`` lacks."""
    present = set(conn.exec_driver_sql(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s",
        (table.name,)).scalars())
    return [index for index in schema.later_indexes(table) if index.name not in present]


INTERRUPTED = ("the run stopped before it finished (killed, or the machine stopped); "
               "the next run resumed from its last committed batch")


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every dialect crmlink supports reports it
        raise StoreError("the database did not report the id of the row it inserted")
    return int(key[0])


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), timezone.utc)
