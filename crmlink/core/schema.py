"""The SQL schema of the store, derived from the canonical model (one place).

Every entity gets a table named after it in the plural, with ``(source, remote_id)``
unique. Times are stored as UTC epoch seconds (fast to compare and aggregate on any
database), amounts as exact decimal strings, id lists as ``;``-joined text.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crmlink.core import model

#: 2: ``interactions.link_source`` and the ``correspondents`` table (mail and calendar).
#: 3: the saved audits' tables (:mod:`crmlink.core.evaluation.tables`).
#: 4: ``sync_runs.pid`` and ``sync_runs.host``: which process runs a sync (the sync lock).
#: 5: ``push_runs``, ``push_writes``, ``push_fields`` and ``push_tasks`` (crmlink push).
#: 6: the ``competitors`` and ``support_cases`` tables (competitors on deals, support cases).
#: 7: the audit's aggregates (``aggregates``, ``aggregate_sources``, ``aggregate_stale``) and
#:    the trigger that marks an account's aggregate stale when an interaction of it changes.
#: 8: the incremental audit (:mod:`crmlink.core.revisions`, :mod:`crmlink.core.analysis.cache`):
#:    ``audit_revisions``, ``audit_cache`` and the triggers that raise an account's revision.
#: 9: PostgreSQL: how the server keeps the binary columns (:func:`column_storage`).
#: 10: PostgreSQL: the audit cache's texts and forms kept as they come (crmlink compresses them).
SCHEMA_VERSION = 10


class EpochSeconds(sa.types.TypeDecorator[datetime]):
    """An aware datetime stored as float seconds since the epoch, UTC."""

    impl = sa.Float
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> float | None:
        return None if value is None else value.timestamp()

    def process_result_value(self, value: float | None, dialect: Any) -> datetime | None:
        return None if value is None else datetime.fromtimestamp(value, timezone.utc)


class DecimalText(sa.types.TypeDecorator[Decimal]):
    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class IdList(sa.types.TypeDecorator[tuple[str, ...]]):
    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: tuple[str, ...] | None, dialect: Any) -> str:
        return ";".join(value or ())

    def process_result_value(self, value: str | None, dialect: Any) -> tuple[str, ...]:
        return tuple(value.split(";")) if value else ()


class JsonText(sa.types.TypeDecorator[dict[str, Any]]):
    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Any) -> str | None:
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True) if value else None

    def process_result_value(self, value: str | None, dialect: Any) -> dict[str, Any]:
        return json.loads(value) if value else {}


def _column_type(annotation: str) -> sa.types.TypeEngine[Any]:
    if "datetime" in annotation:
        return EpochSeconds()
    if "Decimal" in annotation:
        return DecimalText()
    if "tuple" in annotation:
        return IdList()
    if "dict" in annotation:
        return JsonText()
    if annotation.startswith("bool"):
        return sa.Boolean()
    if annotation.startswith("int"):
        return sa.Integer()
    if annotation.startswith("float"):
        return sa.Float()
    return sa.Text()


metadata = sa.MetaData()
TABLES: dict[str, sa.Table] = {}

#: Columns worth an index for the analysis queries.
_INDEXED = {"account_id", "opportunity_id", "occurred_at", "contact_id", "link_source"}


def _table_for(cls: type[model.Record]) -> sa.Table:
    hints = typing.get_type_hints(cls)
    columns = [sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
               # the sync run that last wrote the row: finds duplicates within a run and
               # rows a full export no longer contains
               sa.Column("run_id", sa.Integer, nullable=True)]
    for f in dataclasses.fields(cls):
        annotation = str(hints[f.name]) if not isinstance(hints[f.name], type) else hints[f.name].__name__
        nullable = f.name not in ("remote_id", "source", "deleted")
        columns.append(sa.Column(f.name, _column_type(annotation), nullable=nullable,
                                 index=f.name in _INDEXED))
    name = cls.entity + "s" if not cls.entity.endswith("y") else cls.entity[:-1] + "ies"
    return sa.Table(name, metadata, *columns,
                    sa.UniqueConstraint("source", "remote_id", name=f"uq_{name}_source_remote"))


for _cls in model.ENTITIES.values():
    TABLES[_cls.entity] = _table_for(_cls)

meta_table = sa.Table(
    "crmlink_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

sync_state = sa.Table(
    "sync_state", metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("stream", sa.String(200), primary_key=True),
    sa.Column("state", JsonText()),
    sa.Column("updated_at", EpochSeconds()),
)

sync_runs = sa.Table(
    "sync_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("connector", sa.String(200), nullable=False),
    sa.Column("started_at", EpochSeconds(), nullable=False),
    sa.Column("finished_at", EpochSeconds()),
    sa.Column("status", sa.String(20), nullable=False),  # running | ok | failed | partial | interrupted
    sa.Column("full", sa.Boolean, nullable=False, default=False),
    sa.Column("counts", JsonText()),
    sa.Column("error", sa.Text),
    # the process that runs it: a running SQLite sync whose process is gone is interrupted
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.String(255)),
)

skipped_records = sa.Table(
    "skipped_records", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("sync_runs.id"), nullable=False, index=True),
    sa.Column("stream", sa.String(200), nullable=False),
    sa.Column("remote_id", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
)

# -- crmlink push: what was written back into a CRM, and the fields crmlink created there ---
push_runs = sa.Table(
    "push_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("connector", sa.String(200), nullable=False),
    sa.Column("as_of", sa.String(10), nullable=False),
    sa.Column("started_at", EpochSeconds(), nullable=False),
    sa.Column("finished_at", EpochSeconds()),
    # running | dry_run | ok | partial (refused records) | stopped (budget) | failed | interrupted
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("counts", JsonText()),
    sa.Column("error", sa.Text),
)

push_writes = sa.Table(
    "push_writes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("push_runs.id"), nullable=False, index=True),
    sa.Column("object", sa.String(40), nullable=False),
    sa.Column("record_id", sa.String(200), nullable=False),
    sa.Column("field", sa.String(200), nullable=False),
    sa.Column("old", sa.Text),
    sa.Column("new", sa.Text),
    sa.Column("status", sa.String(20), nullable=False),  # written | refused
    sa.Column("message", sa.Text),
    sa.Column("at", EpochSeconds(), nullable=False),
)

push_fields = sa.Table(
    "push_fields", metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("object", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),  # the field's name in the CRM
    sa.Column("key", sa.String(60), nullable=False),  # crmlink's name for it (health ...)
    sa.Column("created_at", EpochSeconds(), nullable=False),
)

push_tasks = sa.Table(
    "push_tasks", metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(400), primary_key=True),  # FINDING_CODE:record id
    sa.Column("task_id", sa.String(200), nullable=False),
    sa.Column("subject", sa.Text),  # as crmlink wrote it: a different one means a person edited it
    sa.Column("owner", sa.String(200)),
    sa.Column("created_at", EpochSeconds(), nullable=False),
    sa.Column("closed_at", EpochSeconds()),
)


# -- the audit's aggregates (crmlink.core.aggregate_store) ----------------------------------
aggregates = sa.Table(
    "aggregates", metadata,
    sa.Column("source", sa.String(200), primary_key=True),  # the audited source
    sa.Column("account_id", sa.String(400), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),  # crmlink.core.analysis.aggregates
    sa.Column("people", JsonText()),  # who was an executive when it was built
)

aggregate_sources = sa.Table(
    "aggregate_sources", metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    # the settings and plugins the aggregates were built with: another one means stale
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("updated_at", EpochSeconds(), nullable=False),
)

aggregate_stale = sa.Table(
    "aggregate_stale", metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    # '' for "contacts or users of the source changed": check every aggregate's people
    sa.Column("account_id", sa.String(400), primary_key=True),
    # raised by every write that marks it: a refresh clears only the mark it saw
    sa.Column("generation", sa.Integer, nullable=False),
)

#: The interaction columns the fold reads (with ``source``, ``link_source`` and ``deleted``):
#: an update that changes one of them makes the old and the new account's aggregate stale.
_FOLDED = ("source", "link_source", "account_id", "deleted", "kind", "direction", "method", "occurred_at",
           "user_ids", "contact_ids", "recipient_count", "opportunity_id", "subject", "campaign")
_TRIGGER = "interactions_mark_aggregates"


def _trigger_sql(dialect: str) -> list[str]:
    """The trigger that marks stale, in the transaction of any update of an interaction
    (an upsert that changed it, a deletion), the aggregates of its old and its new
    account, own and linked. Inserts are marked by :func:`crmlink.core.aggregate_store.note`."""
    name = TABLES["interaction"].name
    keys = ", ".join(f"({side}.{column}, {side}.account_id)" for side in ("OLD", "NEW")
                     for column in ("source", "link_source"))
    if dialect == "sqlite":
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _FOLDED)
        rows = " UNION ".join(f"SELECT {side}.{column} AS s, {side}.account_id AS a" for side in ("OLD", "NEW")
                              for column in ("source", "link_source"))
        return [f"CREATE TRIGGER IF NOT EXISTS {_TRIGGER} AFTER UPDATE ON {name} WHEN {changed} BEGIN "
                f"INSERT INTO aggregate_stale (source, account_id, generation) SELECT s, a, 1 FROM ({rows}) "
                "WHERE s IS NOT NULL AND a IS NOT NULL AND a != '' "
                "ON CONFLICT (source, account_id) DO UPDATE SET generation = generation + 1; END"]
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _FOLDED)
    return [f"CREATE OR REPLACE FUNCTION {_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO aggregate_stale (source, account_id, generation) SELECT DISTINCT s, a, 1 FROM "
            f"(VALUES {keys}) AS k(s, a) WHERE s IS NOT NULL AND a IS NOT NULL AND a <> '' ORDER BY 1, 2 "
            "ON CONFLICT (source, account_id) DO UPDATE SET generation = aggregate_stale.generation + 1; "
            "RETURN NULL; END $$",
            f"DROP TRIGGER IF EXISTS {_TRIGGER} ON {name}",
            f"CREATE TRIGGER {_TRIGGER} AFTER UPDATE ON {name} FOR EACH ROW WHEN ({changed}) "
            f"EXECUTE FUNCTION {_TRIGGER}()"]


# -- the incremental audit (crmlink.core.revisions, crmlink.core.analysis.cache) ------------
audit_revisions = sa.Table(
    "audit_revisions", metadata,
    sa.Column("source", sa.String(200), primary_key=True),  # the audited source
    # an account's remote id; '' for what every account of the source reads
    sa.Column("account_id", sa.String(400), primary_key=True),
    # raised in the transaction of every write that can change what the audit makes of it
    sa.Column("revision", sa.Integer, nullable=False),
)

audit_cache = sa.Table(
    "audit_cache", metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("account_id", sa.String(400), primary_key=True),
    # everything else the account's entry depends on (dates, settings, plugins ...)
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),  # the account's revision it was judged at
    # the source's contacts revision then: while it holds, so do the aggregate's executives
    sa.Column("contacts", sa.Integer, nullable=False),
    # the entry's JSON text (UTF-8), LZ4-compressed (.cache_writer.pack)
    sa.Column("text", sa.LargeBinary, nullable=False),
    sa.Column("judged", sa.LargeBinary, nullable=False),  # what the portfolio step reads, pickled and packed
)


def create_triggers(conn: sa.Connection) -> None:
    """Create (or replace) the store's triggers; SQLite and PostgreSQL."""
    from crmlink.core import revisions

    if conn.dialect.name in ("sqlite", "postgresql"):
        for statement in _trigger_sql(conn.dialect.name) + revisions.trigger_sql(conn.dialect.name):
            conn.exec_driver_sql(statement)


#: PostgreSQL: the binary columns the server should not compress with its default, pglz.
#: An aggregate's arrays (28 KB on average at 100k multi-party interactions) took pglz
#: 7.5 s of the server's CPU for 1,000 aggregates, lz4 0.12 s, for 11 and 10 MB. The
#: cache's JSON texts and pickles come compressed by crmlink (cache format 6): the
#: server stores them as they are.
_BINARY_STORAGE = {("aggregates", "data"): "lz4", ("audit_cache", "text"): "external",
                   ("audit_cache", "judged"): "external"}


def column_storage(conn: sa.Connection) -> list[str]:
    """PostgreSQL: keep the columns of :data:`_BINARY_STORAGE` as it says (``lz4``: lz4
    compression, or no compression when the server was built without lz4 or is older than
    PostgreSQL 14; ``external``: no compression). Changes only what differs (a catalog
    change, no rewrite: rows already stored keep their form until written again) and
    returns what it changed; nothing on SQLite."""
    if conn.dialect.name != "postgresql":
        return []
    lz4 = bool(conn.exec_driver_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'").scalar())
    changed = []
    for (table, column), wanted in _BINARY_STORAGE.items():
        compress = wanted == "lz4" and lz4
        test = "attcompression = 'l'" if compress else "attstorage = 'e'"
        if conn.exec_driver_sql(f"SELECT {test} FROM pg_attribute WHERE attrelid = CAST(%(t)s AS regclass) "
                                "AND attname = %(c)s", {"t": table, "c": column}).scalar():
            continue
        change = "SET COMPRESSION lz4" if compress else "SET STORAGE EXTERNAL"
        conn.exec_driver_sql(f'ALTER TABLE {table} ALTER COLUMN "{column}" {change}')
        changed.append(f"{table}.{column}")
    return changed


def later_indexes(table: sa.Table) -> list[sa.Index]:
    """The indexes of a record table that PostgreSQL builds with the table's first rows
    (:func:`without_later_indexes`): every one but the unique ``(source, remote_id)``."""
    return sorted((index for index in table.indexes if not index.unique), key=lambda index: str(index.name))


def without_later_indexes(conn: sa.Connection) -> None:
    """PostgreSQL, a store just made: drop the :func:`later_indexes` of its empty record
    tables. The transaction that writes a table's first rows creates them before it
    commits, each built once from sorted rows; keeping the four secondary indexes of the
    interactions up to date row by row cost the server more than copying the rows
    (``bench/RESULTS.md``). Creating an index lets readers read (dropping one would lock
    them out), so this is done when the store is made, not at the import."""
    for table in TABLES.values():
        if conn.exec_driver_sql(f'SELECT 1 FROM "{table.name}" LIMIT 1').first() is not None:
            continue  # a table that holds rows already keeps its indexes
        for index in later_indexes(table):
            conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index.name}"')


def upgrade(conn: sa.Connection) -> list[str]:
    """Bring a store made by an earlier crmlink up to this schema: new tables are made by
    ``create_all``; this adds the columns and indexes a table gained since (every such
    column is nullable, so existing rows keep their meaning). Returns what it added."""
    inspector = sa.inspect(conn)
    added = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
            added.append(f"{table.name}.{column.name}")
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)
    create_triggers(conn)
    return added + column_storage(conn)


# The saved audits' tables share this metadata, so every store has them (an older store
# gets them from ``create_all`` when it is opened).
from crmlink.core.evaluation import tables as _saved_audit_tables  # noqa: E402,F401
