"""Each account's revision: a number the store raises, in the transaction of the write,
whenever something the audit makes of that account may have changed (table
``audit_revisions``; :mod:`crmlink.core.analysis.cache` reuses an account's judged entry
while its revision stays the same).

The revisions are raised by triggers, so whatever writes a row (a sync, a deletion, a
person with SQL) raises them, in the same transaction:

- an account's own row, its contacts, its deals, its deals' contact roles and stage
  history (through the deal's account), and the unknown people of mail and calendar
  sources linked to it raise the account's revision (the old and the new account of a
  row that moves);
- its interactions, own and linked, through the stale marks of the aggregates
  (:mod:`crmlink.core.aggregate_store`: every write of an interaction marks its accounts),
  and every write of its stored aggregate (a refresh);
- our people, the pipeline stages and the execution records (contracts, orders,
  invoices, payments, which a deal can reach through a contract that names no deal)
  raise the revision of the whole source (:data:`SOURCE_WIDE`): every account reads them;
- any contact raises :data:`CONTACTS` too: an aggregate's executive links depend on
  contacts of other accounts, and an audit checks with it that nothing it read changed
  while it ran.

An update that changes no value but the sync run that last saw the row raises nothing.
A revision only rises; its row is never deleted (a missing row is revision 0).

One exception to the row triggers, for speed and with the same outcome: on SQLite a sync
run writing the first rows of accounts, contacts or deals into their table raises the
revisions a batch at a time (:func:`counted`, :func:`raise_by`), their insert trigger set
aside until its transaction ends (:meth:`crmlink.core.store._Deferred.counting`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from crmlink.core import model, schema

#: The account of the revision every account of a source reads (users, stages, execution).
SOURCE_WIDE = ""
#: The account of the revision any contact of a source raises (no remote id starts with a
#: space: the model strips them).
CONTACTS = " contacts"

_DEAL_ACCOUNT = ("(SELECT d.account_id FROM {deals} d WHERE d.source = {r}.source "
                 "AND d.remote_id = {r}.opportunity_id)")

#: entity -> the (source, account) pairs a row of it changes, ``{r}`` the row (OLD or NEW)
_ACCOUNTS: dict[str, list[tuple[str, str]]] = {
    "account": [("{r}.source", "{r}.remote_id")],
    "contact": [("{r}.source", "{r}.account_id"), ("{r}.source", f"'{CONTACTS}'")],
    "opportunity": [("{r}.source", "{r}.account_id")],
    "opportunity_contact": [("{r}.source", _DEAL_ACCOUNT)],
    "stage_change": [("{r}.source", _DEAL_ACCOUNT)],
    "correspondent": [("{r}.link_source", "{r}.account_id")],
    "user": [("{r}.source", f"'{SOURCE_WIDE}'")],
    "stage": [("{r}.source", f"'{SOURCE_WIDE}'")],
    "execution": [("{r}.source", f"'{SOURCE_WIDE}'")],
}


_Table = tuple[str, list[tuple[str, str]], "list[str] | None", bool]


def _tables() -> list[_Table]:
    """Each table with triggers: its name, its pairs, the columns whose change counts
    (``None``: any update), and whether it has deletions worth a trigger."""
    deals = schema.TABLES["opportunity"].name
    found: list[_Table] = []
    for entity, pairs in _ACCOUNTS.items():
        table = schema.TABLES[entity]
        columns = [c.name for c in table.columns if c.name not in ("pk", "run_id")]
        found.append((table.name, [(s, a.replace("{deals}", deals)) for s, a in pairs], columns, True))
    # interactions: every write marks their accounts' aggregates stale (the store's write
    # path for new rows, a trigger for updates), and a refresh rewrites the aggregates
    found.append((schema.aggregate_stale.name, [("{r}.source", "{r}.account_id")], None, False))
    found.append((schema.aggregates.name, [("{r}.source", "{r}.account_id")], None, True))
    return found


def trigger_sql(dialect: str) -> list[str]:
    """The statements that create (or replace) the revision triggers on ``dialect``."""
    statements = []
    for table, pairs, columns, deletes in _tables():
        if dialect == "sqlite":
            statements += _sqlite(table, pairs, columns, deletes)
        elif dialect == "postgresql":
            statements += _postgres(table, pairs, columns, deletes)
    return statements


def _keep(pairs: list[tuple[str, str]]) -> str:
    keep = "s IS NOT NULL AND a IS NOT NULL"
    if all(a != f"'{SOURCE_WIDE}'" for _, a in pairs):  # a row naming no account raises nothing
        keep += " AND a <> ''"
    return keep


def _upsert(rows: str, pairs: list[tuple[str, str]], order: str = "") -> str:
    table = schema.audit_revisions.name
    return (f"INSERT INTO {table} (source, account_id, revision) SELECT DISTINCT s, a, 1 FROM ({rows}) AS k "
            f"WHERE {_keep(pairs)}{order} "
            f"ON CONFLICT (source, account_id) DO UPDATE SET revision = {table}.revision + 1")


def _changed(columns: list[str], old: str, new: str, test: str) -> str:
    return " OR ".join(f'{old}."{c}" {test} {new}."{c}"' for c in columns)


def _name(table: str) -> str:
    return f"crmlink_revise_{table}"


def _sqlite(table: str, pairs: list[tuple[str, str]], columns: list[str] | None, deletes: bool) -> list[str]:
    """Row triggers: raise the revisions the row names (OLD or NEW)."""
    def bump(side: str) -> str:
        rows = " UNION ".join(f"SELECT {s.format(r=side)} AS s, {a.format(r=side)} AS a" for s, a in pairs)
        return _upsert(rows, pairs)

    name = _name(table)
    when = f" WHEN {_changed(columns, 'OLD', 'NEW', 'IS NOT')}" if columns else ""
    found = [f"CREATE TRIGGER IF NOT EXISTS {name}_insert AFTER INSERT ON {table} BEGIN {bump('NEW')}; END",
             f"CREATE TRIGGER IF NOT EXISTS {name}_update AFTER UPDATE ON {table}{when} BEGIN "
             f"{bump('OLD')}; {bump('NEW')}; END"]
    if deletes:
        found.append(f"CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON {table} BEGIN {bump('OLD')}; END")
    return found


def _postgres(table: str, pairs: list[tuple[str, str]], columns: list[str] | None, deletes: bool) -> list[str]:
    """Statement triggers over the statement's rows (transition tables): one sorted
    upsert a statement, so two writers take the revisions' row locks in one order, and a
    first import's ``COPY`` pays one statement, not one call a row."""
    def select(rows: str, alias: str, where: str = "") -> str:
        return " UNION ALL ".join(f"SELECT {s.format(r=alias)} AS s, {a.format(r=alias)} AS a FROM {rows}{where}"
                                  for s, a in pairs)

    name = _name(table)
    updated = "new_rows AS n"
    if columns:
        joined = f"old_rows AS o JOIN new_rows AS n ON o.pk = n.pk WHERE {_changed(columns, 'o', 'n', 'IS DISTINCT FROM')}"
        updated_rows = f"{select(joined, 'o')} UNION ALL {select(joined, 'n')}"
    else:
        updated_rows = f"{select('old_rows AS o', 'o')} UNION ALL {select(updated, 'n')}"
    events = [("insert", "INSERT", "NEW TABLE AS new_rows", select("new_rows AS n", "n")),
              ("update", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", updated_rows)]
    if deletes:
        events.append(("delete", "DELETE", "OLD TABLE AS old_rows", select("old_rows AS o", "o")))
    found = []
    for suffix, event, tables, rows in events:
        function = f"{name}_{suffix}"
        found += [f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  f"{_upsert(rows, pairs, ' ORDER BY 1, 2')}; RETURN NULL; END $$",
                  f"DROP TRIGGER IF EXISTS {function} ON {table}",
                  f"CREATE TRIGGER {function} AFTER {event} ON {table} REFERENCING {tables} "
                  f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"]
    return found


#: The entities whose rows :func:`counted` reads their pairs from (a pair a column or a
#: constant; not a deal's account, which takes a query), and which a first import writes
#: by the thousand.
COUNTED = ("account", "contact", "opportunity")
_COLUMN = re.compile(r"\{r\}\.(\w+)$")
_CONSTANT = re.compile(r"'([^']*)'$")


def insert_trigger(entity: str) -> str:
    """The name of the SQLite trigger that raises revisions for each inserted row of
    ``entity``: what :func:`counted` does for a batch of rows."""
    return f"{_name(schema.TABLES[entity].name)}_insert"


def counted(entity: str) -> Callable[[Sequence[tuple[Any, ...]]], dict[tuple[str, str], int]]:
    """For an entity of :data:`COUNTED`: a function from rows of it (values in
    :func:`~crmlink.core.rows.fields_of` order) to how many of them name each (source,
    account) pair, each row once a pair, pairs in the order their first rows come (each
    row's sorted), leaving out the pairs the insert trigger leaves out: exactly what the
    trigger raises when those rows are inserted one by one (:func:`raise_by`)."""
    from crmlink.core import model
    from crmlink.core.rows import fields_of

    names = fields_of(model.ENTITIES[entity])

    def side(text: str) -> tuple[int | None, str | None]:  # a field's index, or a constant
        column, constant = _COLUMN.match(text), _CONSTANT.match(text)
        if column is not None:
            return names.index(column.group(1)), None
        if constant is not None:
            return None, constant.group(1)
        raise ValueError(f"{entity}: revisions of {text} are raised by its trigger alone")

    spec = [(*side(s), *side(a)) for s, a in _ACCOUNTS[entity]]
    blank = "" if all(a != f"'{SOURCE_WIDE}'" for _, a in _ACCOUNTS[entity]) else None  # an account left out

    def count(rows: Sequence[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
        found: dict[Any, int] = {}
        for row in rows:
            pairs = {(row[si] if si is not None else sc, row[ai] if ai is not None else ac)
                     for si, sc, ai, ac in spec}
            for key in sorted(pair for pair in pairs if pair[0] is not None and pair[1] is not None
                              and pair[1] != blank):
                found[key] = found.get(key, 0) + 1
        return found

    return count


def raise_by(conn: sa.Connection, counts: dict[tuple[str, str], int]) -> None:
    """Raise each pair's revision by its count (a pair with no revision yet gets its
    count), in one statement a batch of pairs, in the order given."""
    if not counts:
        return
    table = schema.audit_revisions.name
    marks = "?" if conn.dialect.name == "sqlite" else "%s"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"INSERT INTO {table} (source, account_id, revision) VALUES ({marks}, {marks}, {marks}) "
            f"ON CONFLICT (source, account_id) DO UPDATE SET revision = {table}.revision + excluded.revision",
            [(s, a, n) for (s, a), n in counts.items()])
    finally:
        cursor.close()


def of_source(conn: sa.Connection, source: str, accounts: Iterable[str] | None = None) -> dict[str, int]:
    """The revisions of ``source`` on ``conn``'s snapshot: account (or :data:`SOURCE_WIDE`,
    :data:`CONTACTS`) -> revision; an account with none has revision 0."""
    table = schema.audit_revisions
    query = sa.select(table.c.account_id, table.c.revision).where(table.c.source == source)
    if accounts is None:
        return {str(a): int(r) for a, r in conn.execute(query)}
    from crmlink.core.store import cursor_batches, of_source_in  # the store imports this module

    found: dict[str, int] = {}
    for chunk in model.chunked(sorted(set(accounts)), 500):  # DB-API rows: a batch of the audit's cache asks each time
        sql, args = of_source_in(conn, table.name, "account_id, revision", source, chunk)
        found.update((str(a), int(r)) for rows in cursor_batches(conn, sql, args, 500) for a, r in rows)
    return found


__all__ = ["CONTACTS", "COUNTED", "SOURCE_WIDE", "counted", "insert_trigger", "of_source", "raise_by", "trigger_sql"]
