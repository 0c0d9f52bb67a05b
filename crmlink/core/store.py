"""The store: canonical records in any SQL database SQLAlchemy speaks (SQLite by default).

Writes are upserts keyed by ``(source, remote_id)`` per entity table. The sync engine
opens one transaction per batch (or per run, for atomic connectors) and writes the
stream's cursor in the same transaction, so a crash never leaves a cursor ahead of the
data it covers.
"""

from __future__ import annotations

import dataclasses
import operator
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmlink.core import model, schema
from crmlink.core.errors import StoreError

R = TypeVar("R", bound=model.Record)

DEFAULT_DB_ENV = "CRMLINK_DB"


def default_url() -> str:
    """``$CRMLINK_DB``, else ``crmlink.db`` in the current directory."""
    return os.environ.get(DEFAULT_DB_ENV) or "sqlite:///crmlink.db"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@dataclass
class UpsertResult:
    created: int = 0
    #: rows whose stored values changed
    updated: int = 0
    duplicates: list[str] = field(default_factory=list)
    #: remote ids of records equal to what was stored (not rewritten)
    unchanged: list[str] = field(default_factory=list)


class Store:
    """A canonical-model database. ``Store(url)`` creates the schema if it is missing."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self._compiled: dict[str, tuple[str, list[str], int]] = {}
        try:
            self.engine = sa.create_engine(self.url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot use store URL {sa.engine.make_url(self.url).render_as_string(hide_password=True) if '://' in self.url else self.url!r}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self._ensure_sqlite_dir()
        self._init_schema()

    def _ensure_sqlite_dir(self) -> None:
        database = self.engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)

    def _init_schema(self) -> None:
        try:
            schema.metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                found = conn.execute(sa.select(schema.meta_table.c.value).where(
                    schema.meta_table.c.key == "schema_version")).scalar()
                if found is None:
                    conn.execute(schema.meta_table.insert().values(
                        key="schema_version", value=str(schema.SCHEMA_VERSION)))
                elif int(found) > schema.SCHEMA_VERSION:
                    raise StoreError(
                        f"the store was written by a newer crmlink (schema {found}, this crmlink "
                        f"knows {schema.SCHEMA_VERSION}); upgrade crmlink")
                elif int(found) < schema.SCHEMA_VERSION:  # made by an earlier crmlink
                    schema.upgrade(conn)
                    conn.execute(schema.meta_table.update().where(
                        schema.meta_table.c.key == "schema_version").values(value=str(schema.SCHEMA_VERSION)))
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the store at {self.display_url}: {exc.orig}") from None

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
        with self.engine.begin() as conn:
            yield conn

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
        """Insert or update records of one entity.

        A stored row whose values equal the record's is left as it is (only its ``run_id``
        moves to this run) and reported in ``unchanged``, not counted as updated. With a
        ``run_id``, a record whose key was already written by the same run is reported in
        ``duplicates`` and not written again.
        """
        result = UpsertResult()
        if not records:
            return result
        table = schema.TABLES[records[0].entity]
        rows: dict[tuple[str, str], tuple[Any, ...]] = {}
        bind = self._binder(conn, table)
        for record in records:
            key = (record.source, record.remote_id)
            if key in rows:
                result.duplicates.append(record.remote_id)
                continue
            rows[key] = bind(record)
        same: list[int] = []
        for key, pk, previous_run, stored in self._existing(conn, table, list(rows)):
            if run_id is not None and previous_run == run_id:
                result.duplicates.append(key[1])
            elif stored == rows[key]:
                same.append(pk)
                result.unchanged.append(key[1])
            else:
                result.updated += 1
                continue
            del rows[key]
        result.created = len(rows) - result.updated
        if rows:
            self._write(conn, table, list(rows.values()), run_id)
        if run_id is not None:
            for chunk in model.chunked(same, 900):
                conn.execute(table.update().where(table.c.pk.in_(chunk)).values(run_id=run_id))
        return result

    def _upsert_statement(self, table: sa.Table) -> Any:
        stmt = self._insert(table)
        update_cols = {c.name: stmt.excluded[c.name] for c in table.columns
                       if c.name not in ("pk", "source", "remote_id")}
        return stmt.on_conflict_do_update(index_elements=["source", "remote_id"], set_=update_cols)

    def _layout(self, conn: sa.Connection, table: sa.Table) -> tuple[str, list[str], int]:
        """The upsert of ``table`` compiled once: its driver SQL, the columns in parameter
        order (for named parameter styles, the table's order) and where ``run_id`` is."""
        found = self._compiled.get(table.name)
        if found is None:
            keys = [c.name for c in table.columns if c.name != "pk"]
            compiled = self._upsert_statement(table).compile(dialect=conn.dialect, column_keys=keys)
            names = list(compiled.positiontup or keys)
            found = (compiled.string, names, names.index("run_id"))
            self._compiled[table.name] = found
        return found

    def _values(self, conn: sa.Connection, table: sa.Table) -> list[str]:
        """The columns a row of :meth:`_binder` holds: every one but ``pk`` and ``run_id``."""
        _, names, run_at = self._layout(conn, table)
        return names[:run_at] + names[run_at + 1:]

    def _binder(self, conn: sa.Connection, table: sa.Table) -> Any:
        """A function from a record to its row as the database stores it (the columns of
        :meth:`_values`, through their bind processors), so that a stored row can be
        compared with it and the row written from it."""
        names = self._values(conn, table)
        getter = operator.attrgetter(*names)
        processors = [(index, process) for index, name in enumerate(names)
                      if (process := table.c[name].type.bind_processor(conn.dialect)) is not None]

        def bind(record: model.Record) -> tuple[Any, ...]:
            row = list(getter(record))
            for index, process in processors:
                row[index] = process(row[index])
            return tuple(row)

        return bind

    def _write(self, conn: sa.Connection, table: sa.Table, rows: list[tuple[Any, ...]],
               run_id: int | None) -> None:
        """Upsert rows made by :meth:`_binder` through the DB-API's ``executemany``: the
        same SQL and values as SQLAlchemy's executemany, without its per-row parameter
        handling."""
        sql, names, run_at = self._layout(conn, table)
        params: list[Any] = [(*row[:run_at], run_id, *row[run_at:]) for row in rows]
        if conn.dialect.positional:
            conn.exec_driver_sql(sql, params)
        else:
            conn.exec_driver_sql(sql, [dict(zip(names, row)) for row in params])

    def _existing(self, conn: sa.Connection, table: sa.Table, keys: list[tuple[str, str]]
                  ) -> list[tuple[tuple[str, str], int, int | None, tuple[Any, ...]]]:
        """(key, pk, run_id, stored row as :meth:`_binder` makes it) of the stored rows
        with these keys."""
        names = self._values(conn, table)
        raw = [sa.type_coerce(table.c[n], _stored_type(table.c[n].type)) for n in names]
        at = names.index("remote_id")
        found: list[tuple[tuple[str, str], int, int | None, tuple[Any, ...]]] = []
        for source in {s for s, _ in keys}:
            ids = [rid for s, rid in keys if s == source]
            for chunk in model.chunked(ids, 900):
                rows = conn.execute(sa.select(table.c.pk, table.c.run_id, *raw).where(
                    table.c.source == source, table.c.remote_id.in_(chunk))).all()
                found.extend(((source, values[at]), pk, run, tuple(values)) for pk, run, *values in rows)
        return found

    def mark_unseen_deleted(self, conn: sa.Connection, entity: str, source: str, run_id: int) -> int:
        """Mark deleted every live row of ``source`` that run ``run_id`` did not write
        (a full export no longer contains it)."""
        table = schema.TABLES[entity]
        return conn.execute(table.update().where(
            table.c.source == source, table.c.deleted.is_(False),
            sa.or_(table.c.run_id.is_(None), table.c.run_id != run_id)).values(deleted=True)).rowcount

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

    def start_run(self, source: str, connector: str, full: bool) -> int:
        """Open a run record. Earlier runs of ``source`` still marked running never
        finished (the process was killed or the machine stopped): they become
        ``interrupted``, since this run resumes from their last checkpoint."""
        runs = schema.sync_runs
        with self.transaction() as conn:
            conn.execute(runs.update().where(runs.c.source == source, runs.c.status == "running")
                         .values(status="interrupted", error=INTERRUPTED))
            return _new_id(conn.execute(runs.insert().values(
                source=source, connector=connector, started_at=_now(), status="running",
                full=full)))

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
        table = schema.TABLES[entity]
        cls = model.ENTITIES[entity]
        query = sa.select(*[table.c[f.name] for f in dataclasses.fields(cls)])
        if source is not None:
            query = query.where(table.c.source == source)
        if not include_deleted:
            query = query.where(table.c.deleted.is_(False))
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=5000).execute(query.order_by(table.c.pk)):
                yield _build(cls, row._mapping)

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
        table = schema.TABLES["correspondent"]
        at = sa.type_coerce(table.c.occurred_at, sa.Float())
        query = sa.select(table.c.account_id, table.c.address, table.c.name, at, table.c.sent).where(
            table.c.link_source == link_source, table.c.deleted.is_(False), at <= until)
        with self.engine.connect() as conn:
            return [(str(a), str(addr), name, float(t), bool(sent))
                    for a, addr, name, t, sent in conn.execute(query)]

    def _interaction_batches(self, source: str | None, until: float) -> Iterator[Sequence[tuple[Any, ...]]]:
        with self.engine.connect() as conn:
            yield from interaction_batches(conn, source, until)


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
        yield from _batches(conn, query, values)
        return
    named = sa.bindparam("source", type_=sa.Text())
    values["source"] = source
    yield from _batches(conn, query.where(table.c.source == named), values)
    # two indexed queries rather than one OR: each keeps its index
    yield from _batches(conn, query.where(table.c.link_source == named, table.c.source != named), values)


def _batches(conn: sa.Connection, query: sa.Select[Any], values: dict[str, Any]) -> Iterator[Sequence[tuple[Any, ...]]]:
    compiled = query.compile(dialect=conn.dialect)
    args = tuple(values[name] for name in compiled.positiontup or ()) if compiled.positional else values
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:  # pragma: no cover - a live Connection always has one
        raise StoreError("the store connection is closed")
    cursor = dbapi.cursor()
    try:
        cursor.execute(compiled.string, args)
        while batch := cursor.fetchmany(20_000):
            yield batch
    finally:
        cursor.close()


def _stored_type(kind: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    """The type a column's value is read back as for comparing with bound values: a
    decorated type's underlying one (the epoch float, the JSON text), else itself."""
    return kind.impl_instance if isinstance(kind, sa.types.TypeDecorator) else kind


def _build(cls: type[model.Record], values: Any) -> model.Record:
    """Make a record from stored values, skipping ``__post_init__`` validation."""
    record = object.__new__(cls)
    for key, value in values.items():
        object.__setattr__(record, key, value)
    return record


INTERRUPTED = ("the run stopped before it finished (killed, or the machine stopped); "
               "the next run resumed from its last committed batch")


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every dialect crmlink supports reports it
        raise StoreError("the database did not report the id of the row it inserted")
    return int(key[0])


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), timezone.utc)
