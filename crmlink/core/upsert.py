"""Bulk upserts that say what they did, in one statement per batch on every store.

A batch of rows of one entity table is written by ``INSERT ... ON CONFLICT (source,
remote_id) DO UPDATE ... WHERE <the row changed> RETURNING``: a stored row whose values
equal the new ones is not rewritten, and the rows the statement returns are exactly the
created and the updated ones, so no row is looked up before it is written.

- PostgreSQL takes the batch by ``COPY`` into a temporary table, then upserts it from there
  in one statement; it tells an insert from an update by ``xmax = 0``. (An earlier
  version passed one array per column to ``unnest``: three times the client's CPU, and
  slower on the server.) Into a table that was empty when the transaction first wrote
  to it (a first import), the batch is copied straight into the table instead, and
  upserted as above only when that finds a key already stored.
- SQLite takes it as multi-row ``VALUES`` (as many rows as its parameter limit allows); a
  row is new when its ``pk`` is above the table's largest before the statement (SQLite
  has one writer at a time, so nothing else inserts in between).

With a run id, a stored row already written by the same run is a duplicate (left alone),
and an unchanged row is moved to the run by a second statement over the keys the first
did not return (none on a first import).
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from crmlink.core import model
from crmlink.core.errors import StoreError
from crmlink.core.rows import StoredRows

Key = tuple[str, str]
Row = tuple[Any, ...]

#: SQLite before 3.35 has no RETURNING.
SQLITE_MINIMUM = (3, 35, 0)
#: SQLite's limit on parameters in one statement (999 before 3.32).
SQLITE_PARAMETERS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_CHUNK = 900  # keys per IN (...) list on SQLite
#: Rows per upsert statement on SQLite.
SQLITE_ROWS = 256
_KEY = itemgetter(0, 1)
_INSERTED = itemgetter(2)


@dataclass
class Written:
    """What one batch did: how many rows it created and updated, and the other keys."""

    created: int = 0
    updated: int = 0
    #: stored with the same values (moved to the run, when there is one)
    unchanged: list[Key] = field(default_factory=list)
    #: already written by the same run: left as they are
    duplicates: list[Key] = field(default_factory=list)


def value_columns(table: sa.Table) -> list[str]:
    """The columns a bound row holds, in table order: all but ``pk`` and ``run_id``."""
    return [c.name for c in table.columns if c.name not in ("pk", "run_id")]


@dataclass
class Bound:
    """A batch's rows as the database stores them (:func:`binder`)."""

    #: every column of :func:`value_columns`
    rows: Sequence[Row]
    #: SQLite: the columns holding one value in every row (:func:`_shared`), bound once a
    #: statement rather than once a row
    shared: tuple[int, ...] = ()
    #: their values
    values: tuple[Any, ...] = ()
    #: the rows without the shared columns (``rows`` when none is shared)
    narrow: Sequence[Row] = ()

    def __post_init__(self) -> None:
        if not self.shared:
            self.narrow = self.rows


def binder(table: sa.Table, dialect: sa.Dialect) -> Callable[[list[Row]], Bound]:
    """A function from rows of canonical values (the columns of :func:`value_columns`, as
    a :class:`~crmlink.core.rows.RowBatch` holds them) to the rows as the database stores
    them, through the columns' bind processors, one column at a time; on SQLite with the
    columns that hold one value throughout (:func:`_shared`) set apart. Rows already in
    the store's form (:class:`~crmlink.core.rows.StoredRows`) go through the dialect's
    processors alone, not their types' ``process_bind_param`` again."""
    names = value_columns(table)
    processors = [(index, _column_processor(process))
                  for index, name in enumerate(names)
                  if (process := _processor(table.c[name].type, dialect)) is not None]
    after = [(index, _column_processor(process))
             for index, name in enumerate(names)
             if (process := _processor(table.c[name].type, dialect, stored=True)) is not None]
    sqlite = dialect.name == "sqlite"

    def bind(rows: list[Row]) -> Bound:
        if isinstance(rows, StoredRows):
            return _bind(rows, after)
        return _bind(rows, processors)

    def _bind(rows: list[Row], processors: list[tuple[int, Callable[[Sequence[Any]], Sequence[Any]]]]) -> Bound:
        if not rows or not (processors or sqlite):
            return Bound(rows)
        columns: list[Sequence[Any]] = list(zip(*rows))
        for index, process in processors:
            columns[index] = process(columns[index])
        bound = list(zip(*columns)) if processors else rows
        shared = _shared(columns) if sqlite else ()
        if not shared:
            return Bound(bound)
        narrow = list(zip(*(column for index, column in enumerate(columns) if index not in shared)))
        return Bound(bound, shared, tuple(columns[index][0] for index in shared), narrow)

    return bind


#: Types of values a column may hold once for every row of a batch (:func:`_shared`).
_ONCE = (str, int, bool, bytes)


def _shared(columns: Sequence[Sequence[Any]]) -> tuple[int, ...]:
    """SQLite: the columns of a batch of two rows or more that hold the same value in
    every row (the source, an empty ``extra``, no modification time): each statement
    binds such a value once rather than once a row, which was most of SQLite's time on a
    first import. The same value means the same stored value: equal, and of one type
    (``1``, ``True`` and ``1.0`` are equal in Python but not stored alike); floats are
    never shared."""
    if not columns or len(columns[0]) < 2:
        return ()
    found: list[int] = []
    for index, column in enumerate(columns):
        first = column[0]
        if first is not None and type(first) not in _ONCE:
            continue
        if column[-1] != first or column[len(column) // 2] != first or column.count(first) != len(column):
            continue
        if first is None or type(first) is str or len(set(map(type, column))) == 1:
            found.append(index)
    return tuple(found)


def _processor(kind: sa.types.TypeEngine[Any], dialect: sa.Dialect, *,
               stored: bool = False) -> Callable[[Sequence[Any]], list[Any]] | None:
    """The column type's bind processor over a column of values. For a type decorator,
    its ``process_bind_param`` then its underlying type's processor, as SQLAlchemy's
    own processor does, but each mapped over the column (no wrapper call a value);
    ``stored``: values that went through ``process_bind_param`` already (:func:`decorator`)."""
    if isinstance(kind, sa.types.TypeDecorator):
        method, after = kind.process_bind_param, kind.impl_instance.bind_processor(dialect)
        if stored:
            return None if after is None else lambda values: list(map(after, values))
        if after is None:
            return lambda values: list(map(method, values, repeat(dialect)))
        return lambda values: list(map(after, map(method, values, repeat(dialect))))
    process = kind.bind_processor(dialect)
    return None if process is None else lambda values: list(map(process, values))


@cache
def decorator(entity: str) -> Callable[[Sequence[Row]], StoredRows]:
    """A function from rows of canonical values of ``entity`` to the same rows in the
    store's form (:class:`~crmlink.core.rows.StoredRows`): each column through its type
    decorator's ``process_bind_param``, the part of binding that is the same on every
    dialect (crmlink's decorators do not look at it), a column at a time. Its
    ``columns`` attribute does the same from the rows' columns (values of one field each)."""
    return _columnwise(entity, _decorate, StoredRows, shared=True)  # type: ignore[no-any-return]


@cache
def undecorator(entity: str) -> Callable[[Sequence[Row]], list[Row]]:
    """The reverse of :func:`decorator`: rows in the store's form as canonical values
    (each decorator's ``process_result_value``, as the store reads them back)."""
    return _columnwise(  # type: ignore[no-any-return]
        entity, lambda kind: (lambda values: list(map(kind.process_result_value, values, repeat(None)))),
        list, shared=False)


def _decorate(kind: sa.types.TypeDecorator[Any]) -> Callable[[Sequence[Any]], list[Any]]:
    """``kind.process_bind_param`` over a column; for id lists and times without a
    ``None``, the same values by their own methods (no call of it a value)."""
    from crmlink.core import schema

    method: Callable[[Any, Any], Any] = kind.process_bind_param
    methods: dict[type[Any], Callable[[Any], Any]] = {schema.IdList: ";".join,
                                                       schema.EpochSeconds: datetime.timestamp}
    fast = methods.get(type(kind))

    def process(values: Sequence[Any]) -> list[Any]:
        if fast is not None and None not in values:
            return list(map(fast, values))
        return list(map(method, values, repeat(None)))

    return process


def _columnwise(entity: str, make: Callable[[Any], Callable[[Sequence[Any]], list[Any]]],
                out: Callable[[Any], Any], *, shared: bool) -> Any:
    """Rows through ``make(type)`` of each column whose type is a decorator; ``shared``:
    a column of one empty value converted once (:func:`_column_processor`; not where the
    values made are dicts, which the records holding them must not share)."""
    from crmlink.core import schema

    table = schema.TABLES[entity]
    once = _column_processor if shared else (lambda process: process)
    processors = [(index, once(make(table.c[name].type)))
                  for index, name in enumerate(value_columns(table))
                  if isinstance(table.c[name].type, sa.types.TypeDecorator)]

    def convert(rows: Sequence[Row]) -> Any:
        return out(rows) if not rows else convert_columns(list(zip(*rows)))

    def convert_columns(columns: Sequence[Sequence[Any]]) -> Any:
        converted = list(columns)
        for index, process in processors:
            converted[index] = process(converted[index])
        return out(zip(*converted))

    convert.columns = convert_columns  # type: ignore[attr-defined]
    return convert


def _column_processor(process: Callable[[Sequence[Any]], list[Any]]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """``process`` over a column. Exports repeat a few values in whole columns (no
    modification time, no extra fields, not deleted): such a column is processed once.
    Canonical values make the checks exact: a column holding ``None`` holds no value
    equal to ``None`` but ``None``, a boolean column only booleans, and an ``extra``,
    ``raw`` or id-list column whose values are all empty stores one value for them all."""
    def column(values: Sequence[Any]) -> Sequence[Any]:
        first = values[0]
        if first is None or first is True or first is False:
            same = values.count(first) == len(values)
        else:
            same = (first == {} or first == ()) and not any(values)
        return process([first]) * len(values) if same else process(values)

    return column


def check_sqlite() -> None:
    """Refuse an SQLite too old for the upsert, with the way out."""
    if sqlite3.sqlite_version_info < SQLITE_MINIMUM:
        raise StoreError(f"crmlink needs SQLite 3.35 or newer for its store; this Python has SQLite "
                         f"{sqlite3.sqlite_version}: use a newer Python build, or PostgreSQL (--db)")


class Upsert:
    """The upsert of one table on one dialect, its SQL built once."""

    def __init__(self, table: sa.Table, dialect: sa.Dialect) -> None:
        self.table, self.dialect = table, dialect
        self.names = value_columns(table)
        self.postgres = dialect.name == "postgresql"
        if not self.postgres and dialect.name != "sqlite":
            raise StoreError(f"upserts are not implemented for {dialect.name}; use SQLite or PostgreSQL")
        self._sql: dict[tuple[bool | None, int, tuple[int, ...]], str] = {}
        #: PostgreSQL: the temporary table a batch is copied into
        self._staging = f'"crmlink_staging_{table.name}"'

    def write(self, conn: sa.Connection, bound: Bound | Sequence[Row], run_id: int | None, *,
              fresh: bool = False) -> Written:
        """Upsert rows (unique keys; bound, :func:`binder`): count the created and updated
        ones, and sort the keys of the others into unchanged and duplicates. ``fresh``: the
        table had no rows when this transaction first wrote to it, so the rows are first
        written without the upsert's checks (PostgreSQL: :meth:`_copy_fresh`, SQLite:
        :meth:`_insert_fresh`)."""
        if not isinstance(bound, Bound):
            bound = Bound(bound)
        rows = bound.rows
        if fresh and self.postgres and self._copy_fresh(conn, rows, run_id):
            return Written(created=len(rows))
        done = Written()
        start = self._insert_fresh(conn, bound, run_id) if fresh and not self.postgres else 0
        done.created = start
        key_of = itemgetter(self.names.index("source"), self.names.index("remote_id"))
        keys: set[Key] = set()  # the rows the statements did not write
        cursor = _cursor(conn)
        try:
            for low, high in self._pieces(len(rows), start):
                found = self._returning(conn, cursor, bound, low, high, run_id)
                inserted = sum(map(_INSERTED, found))
                done.created += inserted
                done.updated += len(found) - inserted
                if len(found) < high - low:  # a first import writes every row: no keys to sort
                    keys.update(set(map(key_of, rows[low:high])).difference(map(_KEY, found)))
        finally:
            cursor.close()
        if run_id is None:
            done.unchanged = sorted(keys)
            return done
        moved = self._claim(conn, sorted(keys), run_id) if keys else set()
        done.unchanged = sorted(moved)
        done.duplicates = sorted(keys - moved)
        return done

    # -- the upsert statement -------------------------------------------------------------

    def _pieces(self, count: int, start: int = 0) -> list[tuple[int, int]]:
        """The rows ``start`` to ``count`` of a batch, as ``(low, high)`` a statement.
        PostgreSQL: the batch in one statement. SQLite: pieces of :data:`SQLITE_ROWS`
        rows (within its parameter limit), the rest in power-of-two pieces, so that a few
        statements of each size serve every batch (SQLite compiles each distinct one)."""
        if start >= count:
            return []
        if self.postgres:
            return [(start, count)]
        size = max(1, min(SQLITE_ROWS, (SQLITE_PARAMETERS - 1) // len(self.names)))
        pieces: list[tuple[int, int]] = []
        while start < count:
            left = count - start
            step = size if left >= size else 1 << (left.bit_length() - 1)
            pieces.append((start, start + step))
            start += step
        return pieces

    def _returning(self, conn: sa.Connection, cursor: Any, bound: Bound, low: int, high: int,
                   run_id: int | None) -> list[tuple[str, str, Any]]:
        """Write the rows ``low`` to ``high``: ``(source, remote_id, inserted)`` of each
        row created or updated."""
        with_run = run_id is not None
        if self.postgres:
            self._stage(cursor, bound.rows[low:high])
            cursor.execute(self._statement(with_run, 0), (run_id,))
            return list(cursor.fetchall())
        cursor.execute(f'SELECT max(pk) FROM "{self.table.name}"')
        top = cursor.fetchone()[0] or 0
        cursor.execute(self._statement(with_run, high - low, bound.shared),
                       (run_id, *bound.values, *chain.from_iterable(bound.narrow[low:high]), top))
        return list(cursor.fetchall())

    def _statement(self, with_run: bool | None, rows: int, shared: tuple[int, ...] = ()) -> str:
        """The statement's SQL, built once: PostgreSQL's upsert from the staging table;
        SQLite's upsert (``with_run`` ``None``: plain insert) of ``rows`` rows."""
        found = self._sql.get((with_run, rows, shared))
        if found is None:
            if self.postgres:
                found = self._postgres_sql(bool(with_run))
            elif with_run is None:
                found = self._insert_sql(rows, shared)
            else:
                found = self._sqlite_sql(with_run, rows, shared)
            self._sql[(with_run, rows, shared)] = found
        return found

    def _conflict(self, with_run: bool, distinct: str) -> str:
        """``ON CONFLICT ... DO UPDATE ... WHERE``: rewrite a stored row only when a value
        differs and (with a run) another run wrote it."""
        t = f'"{self.table.name}"'
        compared = [n for n in self.names if n not in ("source", "remote_id")]
        sets = ", ".join(f'"{n}" = excluded."{n}"' for n in [*compared, "run_id"])
        old = ", ".join(f'{t}."{n}"' for n in compared)
        new = ", ".join(f'excluded."{n}"' for n in compared)
        where = f"({old}) {distinct} ({new})"
        if with_run:
            where = f'{t}."run_id" {distinct} excluded."run_id" AND {where}'
        return f'ON CONFLICT ("source", "remote_id") DO UPDATE SET {sets} WHERE {where}'

    def _postgres_sql(self, with_run: bool) -> str:
        columns = ", ".join(f'"{n}"' for n in self.names)
        return (f'INSERT INTO "{self.table.name}" ("run_id", {columns}) SELECT CAST(%s AS INTEGER), {columns} '
                f"FROM {self._staging} {self._conflict(with_run, 'IS DISTINCT FROM')} "
                'RETURNING "source", "remote_id", (xmax = 0)')

    def _stage(self, cursor: Any, rows: Sequence[Row]) -> None:
        """PostgreSQL: ``COPY`` the rows into a temporary table of the transaction (made
        the first time, emptied each time), whence one statement upserts them."""
        columns = ", ".join(f'"{n}"' for n in self.names)
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {self._staging} ON COMMIT DROP AS "
                       f'SELECT {columns} FROM "{self.table.name}" WITH NO DATA; TRUNCATE {self._staging}')
        with cursor.copy(f"COPY {self._staging} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _copy_fresh(self, conn: sa.Connection, rows: Sequence[Row], run_id: int | None) -> bool:
        """PostgreSQL, a table the transaction found empty: ``COPY`` the rows straight
        into it, which skips the staging table, the conflict checks and the rows sent
        back. Whether it did: a key already stored (by this transaction: the same id in
        two batches) undoes the copy to a savepoint, and the caller upserts the batch as
        usual, which reports the key as a duplicate."""
        from psycopg import errors

        columns = ", ".join(f'"{n}"' for n in ["run_id", *self.names])
        cursor = _cursor(conn)
        transaction = conn.get_transaction()
        try:
            # the savepoint of the previous copy (kept: its release rides with this one)
            held = transaction is not None and transaction in _SAVEPOINTS
            cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}; SAVEPOINT {_SAVEPOINT}" if held
                           else f"SAVEPOINT {_SAVEPOINT}")
            if transaction is not None:
                _SAVEPOINTS.add(transaction)
            try:
                with cursor.copy(f'COPY "{self.table.name}" ({columns}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row((run_id, *row))
            except errors.UniqueViolation:
                cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                return False
            return True
        finally:
            cursor.close()

    def _insert_fresh(self, conn: sa.Connection, bound: Bound, run_id: int | None) -> int:
        """SQLite, a table the transaction found empty: write the rows by plain ``INSERT``
        statements, which SQLite runs in one step each (no row sent back, no conflict
        clause), until one finds a key already stored (this transaction's: the same id in
        two batches). SQLite undoes that statement alone. How many rows were written
        before it; the caller upserts the rest as usual, which reports the key as a
        duplicate."""
        cursor = _cursor(conn)
        try:
            for low, high in self._pieces(len(bound.rows)):
                try:
                    cursor.execute(self._statement(None, high - low, bound.shared),
                                   (run_id, *bound.values, *chain.from_iterable(bound.narrow[low:high])))
                except sqlite3.IntegrityError:
                    return low
        finally:
            cursor.close()
        return len(bound.rows)

    def _select(self, rows: int, shared: tuple[int, ...]) -> str:
        """SQLite: ``SELECT ?, <each column> FROM (VALUES ...)`` of ``rows`` rows, the run
        and the ``shared`` columns a parameter each, the others a column of the values."""
        picked: list[str] = []
        for index in range(len(self.names)):
            picked.append("?" if index in shared else f"column{index + 1 - sum(s < index for s in shared)}")
        one = "(" + ", ".join("?" * (len(self.names) - len(shared))) + ")"
        return f"SELECT ?, {', '.join(picked)} FROM (VALUES {', '.join([one] * rows)})"

    def _insert_sql(self, rows: int, shared: tuple[int, ...]) -> str:
        columns = ", ".join(f'"{n}"' for n in ["run_id", *self.names])
        return f'INSERT INTO "{self.table.name}" ({columns}) {self._select(rows, shared)}'

    def _sqlite_sql(self, with_run: bool, rows: int, shared: tuple[int, ...]) -> str:
        columns = ", ".join(f'"{n}"' for n in ["run_id", *self.names])
        # "WHERE true": SQLite's parser needs it between a SELECT and ON CONFLICT
        return (f'INSERT INTO "{self.table.name}" ({columns}) {self._select(rows, shared)} '
                f"WHERE true {self._conflict(with_run, 'IS NOT')} "
                'RETURNING "source", "remote_id", "pk" > ?')

    # -- unchanged rows join the run ------------------------------------------------------

    def _claim(self, conn: sa.Connection, keys: list[Key], run_id: int) -> set[Key]:
        """Move the stored rows of ``keys`` that another run wrote to ``run_id``; the keys
        moved (the rest were written by this run already)."""
        t = f'"{self.table.name}"'
        moved: set[Key] = set()
        for source in sorted({s for s, _ in keys}):
            ids = [rid for s, rid in keys if s == source]
            if self.postgres:
                found = conn.exec_driver_sql(
                    f'UPDATE {t} SET "run_id" = %s WHERE "source" = %s AND "remote_id" = ANY(CAST(%s AS TEXT[])) '
                    f'AND "run_id" IS DISTINCT FROM %s RETURNING "remote_id"',
                    (run_id, source, ids, run_id)).scalars()
                moved.update((source, rid) for rid in found)
                continue
            for chunk in model.chunked(ids, _CHUNK):
                marks = ", ".join("?" * len(chunk))
                found = conn.exec_driver_sql(
                    f'UPDATE {t} SET "run_id" = ? WHERE "source" = ? AND "remote_id" IN ({marks}) '
                    f'AND "run_id" IS NOT ? RETURNING "remote_id"', (run_id, source, *chunk, run_id)).scalars()
                moved.update((source, rid) for rid in found)
        return moved


#: PostgreSQL: the savepoint before a first import's ``COPY`` (:meth:`Upsert._copy_fresh`)
_SAVEPOINT = "crmlink_copy"
#: The transactions (SQLAlchemy's) in which that savepoint is held: a first import's
#: copy keeps it after a copy that went through, and the next copy releases it in the
#: same round trip as it takes its own (a round trip a batch fewer). A savepoint left
#: held ends with its transaction.
_SAVEPOINTS: weakref.WeakSet[Any] = weakref.WeakSet()


def _cursor(conn: sa.Connection) -> Any:
    """A DB-API cursor in the connection's transaction: the upsert's rows go to the
    driver as they are, and come back as plain tuples."""
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:  # pragma: no cover - a live Connection always has one
        raise StoreError("the store connection is closed")
    return dbapi.cursor()
