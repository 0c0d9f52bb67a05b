"""Where the audit's aggregates live in the store, and how a write marks them stale.

Three tables (:mod:`crmlink.core.schema`): ``aggregates`` (one row per audited source and
account: the encoded aggregate of :mod:`crmlink.core.analysis.aggregates` and who was an
executive when it was built), ``aggregate_sources`` (the fingerprint of the settings and
plugins a source's aggregates were built with) and ``aggregate_stale`` (the accounts whose
aggregate no longer matches their interactions).

A mark is written in the transaction of the write that makes it: :func:`note` for new
and changed interactions (their accounts, own and linked) and for contacts and users (a
mark with the account ``''``: check the executives of every aggregate of the source),
the store's trigger for every update of an interaction (its old and new account:
a changed row, a deletion). A mark's ``generation`` rises with every write that marks it,
so a refresh clears only the marks it saw (:func:`clear`).

This module only reads and writes these tables and the interactions they are made of;
building them is :mod:`crmlink.core.analysis.aggregate_build`, reading them
:mod:`crmlink.core.analysis.aggregates`.
"""

from __future__ import annotations

import time
from collections.abc import Container, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from itertools import chain
from operator import itemgetter
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmlink.core import model, schema
from crmlink.core.rows import fields_of

#: The account of a mark that means "contacts or users of the source changed".
PEOPLE = ""
_CHUNK = 500  # accounts per query
_MARKS = 5000  # marks per statement of :func:`mark` on SQLite


def note(conn: sa.Connection, entity: type[model.Record], rows: Sequence[tuple[Any, ...]],
         kept: Container[tuple[str, str]]) -> None:
    """The store's write hook: mark what the written ``rows`` of ``entity`` (values in
    :func:`~crmlink.core.rows.fields_of` order) make stale, in the caller's transaction,
    except the rows whose ``(source, remote_id)`` is in ``kept`` (stored unchanged)."""
    name = entity.entity
    if name not in ("interaction", "contact", "user") or not rows:
        return
    fields = fields_of(entity)
    rid, source = fields.index("remote_id"), fields.index("source")
    written = [row for row in rows if (row[source], row[rid]) not in kept] if kept else rows
    if name != "interaction":
        mark(conn, {(row[source], PEOPLE) for row in written})
        return
    account, link = fields.index("account_id"), fields.index("link_source")
    marks = {(row[source], row[account]) for row in written if row[account]}
    marks.update((row[link], row[account]) for row in written if row[account] and row[link])
    mark(conn, marks)


def note_deleted(conn: sa.Connection, entity: str, source: str) -> None:
    """The store's hook for records of ``entity`` marked deleted in bulk: contacts and
    users change who is an executive (interactions are marked by the trigger)."""
    if entity in ("contact", "user"):
        mark(conn, [(source, PEOPLE)])


def mark(conn: sa.Connection, keys: Iterable[tuple[str, str]]) -> None:
    """Mark ``(source, account_id)`` stale, raising the generation of a mark already there
    (in sorted order, so that two writers on PostgreSQL take the rows' locks in one order)."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    table = schema.aggregate_stale
    if conn.dialect.name == "postgresql":  # one statement, not one a row (its triggers fire once)
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} (source, account_id, generation) SELECT s, a, 1 "
            "FROM unnest(CAST(%s AS TEXT[]), CAST(%s AS TEXT[])) AS k (s, a) ORDER BY s, a "
            f"ON CONFLICT (source, account_id) DO UPDATE SET generation = {table.name}.generation + 1",
            ([s for s, _ in ordered], [a for _, a in ordered]))
        return
    statement = sqlite.insert(table).values(generation=1).on_conflict_do_update(
        index_elements=["source", "account_id"], set_={"generation": table.c.generation + 1})
    # a part at a time: a first import's end marks every account, and the parameters of
    # all at once (a dict each, and the driver's copy) held 47 MiB at 10M interactions
    for part in model.chunked(ordered, _MARKS):
        conn.execute(statement, [{"source": s, "account_id": a} for s, a in part])


def mark_all(conn: sa.Connection, source: str) -> None:
    """Mark every account with interactions of ``source`` (own or linked) stale."""
    mark(conn, [(source, account) for account in with_rows(conn, source)])


def with_rows(conn: sa.Connection, source: str) -> set[str]:
    """Every account with interactions of ``source``, own or linked (deleted ones too)."""
    table = schema.TABLES["interaction"]
    own = sa.select(table.c.account_id).where(table.c.source == source)
    linked = sa.select(table.c.account_id).where(table.c.link_source == source, table.c.source != source)
    found: set[str] = set()
    for query in (own, linked):
        found.update(conn.execute(query.where(table.c.account_id.is_not(None), table.c.account_id != "")
                                  .distinct()).scalars())
    return found


def with_aggregates(conn: sa.Connection, source: str) -> set[str]:
    """Every account of ``source`` with a stored aggregate."""
    table = schema.aggregates
    return set(conn.execute(sa.select(table.c.account_id).where(table.c.source == source)).scalars())


def marks(conn: sa.Connection, source: str) -> dict[str, int]:
    """The stale marks of ``source``: account id -> generation (read as plain rows: a
    first import marks every account, 100,000 at 10M interactions)."""
    from crmlink.core.store import plain_rows

    table = schema.aggregate_stale
    return dict(plain_rows(conn, sa.select(table.c.account_id, table.c.generation).where(table.c.source == source)))


def marked_sources(conn: sa.Connection) -> list[str]:
    table = schema.aggregate_stale
    return sorted(conn.execute(sa.select(table.c.source).distinct()).scalars())


def clear(conn: sa.Connection, source: str, account: str, generation: int) -> bool:
    """Remove the mark of ``account`` if it still has ``generation`` (no write marked it
    since it was read); whether it did."""
    table = schema.aggregate_stale
    return bool(conn.execute(table.delete().where(
        table.c.source == source, table.c.account_id == account, table.c.generation == generation)).rowcount)


def drop_marks(conn: sa.Connection, sources: Iterable[str]) -> None:
    """Forget the marks of sources that are not audited (a mailbox's own rows)."""
    table = schema.aggregate_stale
    for source in sources:
        conn.execute(table.delete().where(table.c.source == source))


def built(conn: sa.Connection, source: str) -> str | None:
    """The fingerprint ``source``'s aggregates were built with, or ``None``."""
    table = schema.aggregate_sources
    return conn.execute(sa.select(table.c.fingerprint).where(table.c.source == source)).scalar()


def restart(conn: sa.Connection, source: str, fingerprint: str) -> None:
    """Start ``source``'s aggregates over for ``fingerprint``: drop them, mark every
    account with interactions stale, and record the fingerprint (one transaction)."""
    conn.execute(schema.aggregates.delete().where(schema.aggregates.c.source == source))
    mark_all(conn, source)
    table = schema.aggregate_sources
    conn.execute(table.delete().where(table.c.source == source))
    conn.execute(table.insert().values(source=source, fingerprint=fingerprint,
                                       updated_at=datetime.fromtimestamp(time.time(), timezone.utc)))


def write(conn: sa.Connection, source: str, account: str, data: bytes | None,
          people: dict[str, Any] | None) -> None:
    """Store (or, with no ``data``, remove) one account's aggregate."""
    table = schema.aggregates
    conn.execute(table.delete().where(table.c.source == source, table.c.account_id == account))
    if data is not None:
        conn.execute(table.insert().values(source=source, account_id=account, data=data, people=people))


#: One account's aggregate as a refresh built it: ``(account, generation of its mark as
#: read, or 0 for an account read unmarked, data, people)``; no data: it has no rows.
Built = tuple[str, int, bytes | None, dict[str, Any] | None]


def replace(conn: sa.Connection, source: str, built: Sequence[Built]) -> tuple[set[str], int]:
    """Store the aggregates of a refresh (:data:`Built`; no ``data``: remove it): those
    whose mark still has the generation read, clearing it (as :func:`clear`, then
    :func:`write`), and those read unmarked (a rebuild with the same settings). Returns
    the accounts left, marked again meanwhile (a mark written meanwhile stays, also on
    an account read unmarked), and how many aggregates were the same as the stored ones,
    data and people: those are not written, so their accounts' revisions
    (:mod:`crmlink.core.revisions`) stay where they are and the audit's cache of them
    holds. The database compares them (an upsert that updates only a row that differs):
    the stored aggregates never travel to this process."""
    if not built:
        return set(), 0
    stale = schema.aggregate_stale
    seen = [(account, generation) for account, generation, _, _ in built if generation]
    cleared: set[str] = set()
    if seen:
        # through the key, the accounts named apart: SQLite searched every mark of the
        # source for the pairs (its key does not hold the generation), a statement of 32
        # accounts at a time, 53 s for the 100,000 accounts of a 10M first import; on
        # PostgreSQL the marks of this transaction have no statistics to plan by
        which = sa.and_(stale.c.account_id.in_([account for account, _ in seen]),
                        sa.tuple_(stale.c.account_id, stale.c.generation).in_(seen))
        cleared = set(conn.execute(stale.delete().where(stale.c.source == source, which)
                                   .returning(stale.c.account_id)).scalars())
    done = [item for item in built if item[0] in cleared or not item[1]]
    written = _upsert_changed(conn, source, [item for item in done if item[2] is not None])
    gone = [item[0] for item in done if item[2] is None]
    table = schema.aggregates
    for chunk in model.chunked(gone, _CHUNK):
        written += conn.execute(table.delete().where(table.c.source == source,
                                                     table.c.account_id.in_(chunk))).rowcount
    return {item[0] for item in built if item[1]} - cleared, len(done) - written


def _upsert_changed(conn: sa.Connection, source: str, built: Sequence[Built]) -> int:
    """Insert the aggregates of ``built`` or update the stored ones that differ, data or
    people (an equal one is not written: no revision rises); how many were written."""
    if not built:
        return 0
    table = schema.aggregates
    insert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    statement = insert.on_conflict_do_update(
        index_elements=["source", "account_id"],
        set_={"data": insert.excluded.data, "people": insert.excluded.people},
        where=sa.or_(table.c.data.is_distinct_from(insert.excluded.data),
                     table.c.people.is_distinct_from(insert.excluded.people))).returning(table.c.account_id)
    # in sorted order, as :func:`mark` writes (two writers on PostgreSQL lock the rows in
    # one order); the rows returned are those written (rowcount says -1 on psycopg)
    return len(conn.execute(statement, [{"source": source, "account_id": account, "data": data, "people": people}
                                        for account, _, data, people in sorted(built, key=itemgetter(0))]).all())


def count(conn: sa.Connection, source: str) -> int:
    """How many aggregates ``source`` has."""
    table = schema.aggregates
    return int(conn.execute(sa.select(sa.func.count()).where(table.c.source == source)).scalar_one())


def stored(conn: sa.Connection, source: str,
           accounts: Sequence[str] | None = None) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    """``(account_id, data, people)`` of every stored aggregate of ``source``, streamed;
    with ``accounts``, of those accounts alone (through the primary key, straight from
    the DB-API cursor: a chunked audit reads them a hundred at a time)."""
    table = schema.aggregates
    if accounts is not None:
        yield from _stored_of(conn, source, accounts)
        return
    query = sa.select(table.c.account_id, table.c.data, table.c.people).where(table.c.source == source)
    for account, data, people in conn.execution_options(yield_per=500).execute(query):
        yield account, bytes(data), people or {}


def _stored_of(conn: sa.Connection, source: str, accounts: Sequence[str]) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    from crmlink.core.store import cursor_batches, of_source_in

    table = schema.aggregates
    people_of_text = cast(schema.JsonText, table.c.people.type).process_result_value  # as SQLAlchemy reads it
    for chunk in model.chunked(list(accounts), _CHUNK):
        sql, values = of_source_in(conn, table.name, "account_id, data, people", source, chunk)
        for batch in cursor_batches(conn, sql, values, 500):
            for account, data, people in batch:
                yield account, bytes(data), people_of_text(people, conn.dialect) or {}


def has_accountless(conn: sa.Connection, source: str, until: float) -> bool:
    """Whether ``source`` has live interactions at or before ``until`` that name no
    account, own or linked to it (a HubSpot portal's engagements, say): they belong to
    the account of their first contact that has one, which only every contact knows."""
    table = schema.TABLES["interaction"]

    def column(name: str, kind: Any) -> Any:
        # on SQLite through the account_id index alone (a unary plus keeps a term off the
        # indexes): without statistics it would walk the source's rows
        if conn.dialect.name == "sqlite":
            return sa.literal_column(f"+{table.name}.{name}", kind)
        return sa.type_coerce(table.c[name], kind)

    no_account = sa.and_(sa.or_(table.c.account_id.is_(None), table.c.account_id == ""),
                         table.c.deleted.is_(False), column("occurred_at", sa.Float()) <= until)
    for which in (column("source", sa.Text()) == source,
                  sa.and_(column("link_source", sa.Text()) == source, table.c.source != source)):
        if conn.execute(sa.select(sa.literal(1)).select_from(table).where(no_account, which).limit(1)).first():
            return True
    return False


def people_of(conn: sa.Connection, source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(account_id, people)`` of every stored aggregate of ``source``."""
    table = schema.aggregates
    query = sa.select(table.c.account_id, table.c.people).where(table.c.source == source)
    for account, people in conn.execute(query):
        yield account, people or {}


# -- the interactions of some accounts ----------------------------------------------------------

def account_rows(conn: sa.Connection, source: str, accounts: Sequence[str], until: float | None = None,
                 *, accountless: bool = False) -> Iterator[tuple[Any, ...]]:
    """The live interaction rows (:data:`~crmlink.core.store.INTERACTION_COLUMNS`, as
    :meth:`Store.interaction_rows <crmlink.core.store.Store.interaction_rows>` gives them)
    of ``accounts`` of ``source``, own and linked to it, at or before ``until`` (every one
    when ``None``); with ``accountless``, also the rows naming no account. Read through
    the ``account_id`` index, a chunk of accounts at a time."""
    ids = [a for a in dict.fromkeys(accounts) if a]
    chunks = [ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
    for chunk in chunks:
        yield from _select(conn, source, until, chunk)
    if accountless:
        yield from _select(conn, source, until, None)


def rows_by_account(conn: sa.Connection, source: str, accounts: Sequence[str] | None = None,
                    between: tuple[str, str] | None = None) -> Iterator[tuple[Any, ...]]:
    """The live interaction rows (:data:`~crmlink.core.store.INTERACTION_COLUMNS`) of
    ``source`` that name an account, own and linked to it, sorted by account (in the
    order of Python's ``sorted`` of the ids, code point by code point, on every store)
    and each account's rows in the order they were stored, for a build that hands each
    account on as soon as its rows are in. Every account: one read of the table, sorted
    by the database (on SQLite in its sorter, which spills to a temporary file, so
    memory stays flat); ``between``: of those, the accounts from the first id to the
    second, both included (a worker's share of a build); ``accounts``: theirs alone,
    through the ``account_id`` index, a chunk at a time. On PostgreSQL through a
    server-side cursor."""
    chunks: list[list[str] | None] = [None]
    if accounts is not None:
        ids = sorted({a for a in accounts if a})
        chunks = [ids[start:start + _CHUNK] for start in range(0, len(ids), _CHUNK)]
    return chain.from_iterable(chain.from_iterable(_ordered(conn, source, chunk, between) for chunk in chunks))


def rows_per_account(conn: sa.Connection, accounts: Sequence[str] | None = None) -> dict[str, int]:
    """How many interaction rows name each account (of ``accounts`` alone when given,
    a chunk at a time: a refresh of a few accounts does not count the whole table), of
    every source, deleted or not: an estimate of each account's share of a build (the
    count reads only the ``account_id`` index where the database can)."""
    table = schema.TABLES["interaction"]
    query = sa.select(table.c.account_id, sa.func.count()).group_by(table.c.account_id)
    if accounts is None:
        return dict(conn.execute(query).all())
    found: dict[str, int] = {}
    for chunk in model.chunked(list(accounts), _CHUNK):
        found.update(conn.execute(query.where(table.c.account_id.in_(chunk))).all())
    return found


def _ordered(conn: sa.Connection, source: str, accounts: list[str] | None,
             between: tuple[str, str] | None) -> Iterator[Sequence[tuple[Any, ...]]]:
    from crmlink.core.store import INTERACTION_COLUMNS, cursor_batches

    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    name = schema.TABLES["interaction"].name
    values: list[Any] = [source, source, source]
    which = f"(source = {mark} OR (link_source = {mark} AND source <> {mark}))"
    # code point order: SQLite compares text as UTF-8 bytes, PostgreSQL as collation "C" does
    account = 'account_id COLLATE "C"' if postgres else "account_id"
    if accounts is None:
        table = name if postgres else f"{name} NOT INDEXED"
        which += " AND account_id IS NOT NULL AND account_id <> ''"
        if between is not None:
            which += f" AND {account} >= {mark} AND {account} <= {mark}"
            values.extend(between)
    elif postgres:
        table, which = name, f"account_id = ANY({mark}) AND {which}"
        values.insert(0, accounts)
    else:
        table = f"{name} INDEXED BY ix_{name}_account_id"
        which = f"account_id IN ({', '.join(mark * len(accounts))}) AND {which}"
        values[:0] = accounts
    sql = (f"SELECT {', '.join(INTERACTION_COLUMNS)} FROM {table} WHERE NOT deleted AND {which} "
           f"ORDER BY {account}, pk")
    yield from cursor_batches(conn, sql, values, 5000, name="crmlink_rows_by_account")


def _select(conn: sa.Connection, source: str, until: float | None, accounts: list[str] | None) -> Iterator[tuple[Any, ...]]:
    from crmlink.core.store import INTERACTION_COLUMNS, cursor_batches

    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    name = schema.TABLES["interaction"].name
    table = f"{name} INDEXED BY ix_{name}_account_id" if not postgres else name
    values: list[Any]
    if accounts is None:
        which, values = "(account_id IS NULL OR account_id = '')", []
    elif postgres:
        which, values = f"account_id = ANY({mark})", [accounts]
    else:
        which, values = f"account_id IN ({', '.join(mark * len(accounts))})", list(accounts)
    if until is not None:
        which += f" AND occurred_at <= {mark}"
        values.append(until)
    columns = ", ".join(INTERACTION_COLUMNS)
    base = f"SELECT {columns} FROM {table} WHERE NOT deleted AND {which}"
    for sql, extra in ((f"{base} AND source = {mark}", [source]),
                       (f"{base} AND link_source = {mark} AND source <> {mark}", [source, source])):
        for batch in cursor_batches(conn, sql, (*values, *extra), 5000):
            yield from batch
