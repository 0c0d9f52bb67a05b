"""The store's queries, on real SQLite and PostgreSQL stores: what each read returns and
leaves out."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from crmlink import Account, Interaction
from crmlink.core.store import INTERACTION_COLUMNS, Store, interaction_batches

T0 = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def store(store_url: str) -> Store:
    store = Store(store_url)
    with store.transaction() as conn:
        store.upsert(conn, [Account(remote_id="A", source="s1", name="Acme"),
                            Account(remote_id="B", source="s2", name="Beta")])
        store.upsert(conn, [
            Interaction(remote_id="i1", source="s1", kind="meeting", occurred_at=T0, account_id="A",
                        user_ids="u1;u2", contact_ids="c1", direction="two_way", subject="Kick-off"),
            Interaction(remote_id="i2", source="s1", kind="email", occurred_at="2026-02-01T00:00:00Z",
                        contact_ids="c2", recipient_count=3),
            Interaction(remote_id="i3", source="s1", kind="call", occurred_at=T0, deleted=True),
        ])
        store.upsert(conn, [Interaction(remote_id="i1", source="s2", kind="visit", occurred_at=T0)])
    return store


def test_interaction_rows_are_stored_tuples_in_column_order(store: Store) -> None:
    rows = list(store.interaction_rows("s1", T0.timestamp()))
    assert rows == [("A", "meeting", "two_way", None, T0.timestamp(), "u1;u2", "c1", None, None,
                     "Kick-off", None)]
    assert len(rows[0]) == len(INTERACTION_COLUMNS) and INTERACTION_COLUMNS[4] == "occurred_at"


def test_interaction_rows_leave_out_later_deleted_and_other_sources(store: Store) -> None:
    until = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()
    assert [row[1] for row in store.interaction_rows("s1", until)] == ["meeting", "email"]
    assert sorted(row[1] for row in store.interaction_rows(None, until)) == ["email", "meeting", "visit"]
    assert list(store.interaction_rows("s1", T0.timestamp() - 1e-3)) == []
    assert list(store.interaction_rows("nope", until)) == []


def test_interaction_rows_from_the_accumulate_module_delegate_to_the_store(store: Store) -> None:
    from crmlink.core.analysis.accumulate import interaction_rows

    until = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()
    with store.engine.connect() as conn:
        assert list(interaction_rows(conn, "s1", until)) == list(store.interaction_rows("s1", until))


def test_live_ids_leave_out_deleted_rows_and_other_sources(store: Store) -> None:
    with store.transaction() as conn:
        assert sorted(store.live_ids(conn, "interaction", "s1")) == ["i1", "i2"]
        assert list(store.live_ids(conn, "interaction", "s2")) == ["i1"]
        assert list(store.live_ids(conn, "account", "s3")) == []


def test_a_store_of_schema_3_gains_the_sync_lock_columns(store_url: str) -> None:
    import sqlalchemy as sa

    from crmlink.core import schema

    Store(store_url)
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:  # make it what crmlink wrote before schema 4
        conn.exec_driver_sql("ALTER TABLE sync_runs DROP COLUMN pid")
        conn.exec_driver_sql("ALTER TABLE sync_runs DROP COLUMN host")
        conn.exec_driver_sql("UPDATE crmlink_meta SET value = '3' WHERE key = 'schema_version'")
    engine.dispose()
    store = Store(store_url)
    assert store.schema_version == schema.SCHEMA_VERSION >= 4
    run = store.start_run("crm", "csv", full=False)
    assert store.runs()[0]["id"] == run and store.runs()[0]["pid"] == os.getpid()


def test_a_store_of_schema_5_gains_the_competitor_and_case_tables(store_url: str) -> None:
    import sqlalchemy as sa

    from crmlink import Competitor, SupportCase
    from crmlink.core import schema

    Store(store_url)
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:  # make it what crmlink wrote before schema 6
        conn.exec_driver_sql("DROP TABLE competitors")
        conn.exec_driver_sql("DROP TABLE support_cases")
        conn.exec_driver_sql("UPDATE crmlink_meta SET value = '5' WHERE key = 'schema_version'")
    engine.dispose()
    store = Store(store_url)
    assert store.schema_version == schema.SCHEMA_VERSION >= 6
    with store.transaction() as conn:
        store.upsert(conn, [Competitor(remote_id="c1", source="s1", opportunity_id="o1", name="Acme")])
        store.upsert(conn, [SupportCase(remote_id="k1", source="s1", account_id="a1", opened_at="2026-01-02")])
    assert [c.name for c in store.records_of(Competitor)] == ["Acme"]
    assert [c.account_id for c in store.records_of(SupportCase)] == ["a1"]


def test_the_sqlite_audit_read_scans_the_table_rather_than_walk_an_index(tmp_path: Path) -> None:
    """The audit's read keeps nearly every row: through the occurred_at or the source index
    it would read the table in random order."""
    store = Store(f"sqlite:///{tmp_path / 'scan.db'}")
    seen: list[str] = []
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.set_trace_callback(seen.append)
        for source in (None, "s1"):
            seen.clear()
            list(interaction_batches(conn, source, T0.timestamp()))
            raw.set_trace_callback(None)
            plans = [[row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + sql)] for sql in seen]
            raw.set_trace_callback(seen.append)
            assert plans[0] == ["SCAN interactions"], (source, plans)
            if source:  # the linked interactions of other sources, through their index
                assert "USING INDEX ix_interactions_link_source" in plans[1][0], plans


def _binary_storage(url: str) -> dict[str, str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        # a column kept external is never compressed, whatever its compression says
        found = {f"{table}.{column}": storage if storage == "e" else f"{storage}{compression or ''}"
                 for table, column, storage, compression in
                 conn.exec_driver_sql(
                     "SELECT c.relname, a.attname, a.attstorage, a.attcompression FROM pg_attribute a "
                     "JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname IN ('aggregates', 'audit_cache') "
                     "AND a.attname IN ('data', 'text', 'judged')")}
        lz4 = conn.exec_driver_sql("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                   "WHERE name = 'default_toast_compression'").scalar()
    engine.dispose()
    return found | {"lz4": "yes" if lz4 else "no"}


def test_postgresql_keeps_the_binary_columns_out_of_pglz_also_after_an_upgrade(postgres_url: str) -> None:
    """pglz took 7.5 s of the server's CPU to compress the aggregates of a 100k import:
    the aggregates' arrays are compressed with lz4 (not at all without it), and the
    cache's texts and forms, which crmlink compresses, not at all; an older store gains
    it when opened."""
    import sqlalchemy as sa

    from crmlink.core import aggregate_store, schema

    Store(postgres_url)
    found = _binary_storage(postgres_url)
    form = "xl" if found["lz4"] == "yes" else "e"
    wanted = {"aggregates.data": form, "audit_cache.text": "e", "audit_cache.judged": "e"}
    assert {k: v for k, v in found.items() if k != "lz4"} == wanted
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:  # what crmlink made before schema 9: the server's defaults
        conn.exec_driver_sql("ALTER TABLE aggregates ALTER COLUMN data SET STORAGE EXTENDED")
        conn.exec_driver_sql("ALTER TABLE aggregates ALTER COLUMN data SET COMPRESSION pglz")
        for column in ("text", "judged"):
            conn.exec_driver_sql(f'ALTER TABLE audit_cache ALTER COLUMN "{column}" SET STORAGE EXTENDED')
            conn.exec_driver_sql(f'ALTER TABLE audit_cache ALTER COLUMN "{column}" SET COMPRESSION pglz')
        data = bytes(range(256)) * 200  # compressible: stored compressed by pglz
        aggregate_store.write(conn, "crm", "a1", data, {"users": {}})
        conn.exec_driver_sql("UPDATE crmlink_meta SET value = '8' WHERE key = 'schema_version'")
    engine.dispose()
    assert _binary_storage(postgres_url)["aggregates.data"] == "xp"
    store = Store(postgres_url)
    assert store.schema_version == schema.SCHEMA_VERSION >= 9
    assert {k: v for k, v in _binary_storage(postgres_url).items() if k != "lz4"} == wanted
    with store.engine.connect() as conn:  # the pglz one still reads, and a new one is written as set
        assert [(a, d) for a, d, _ in aggregate_store.stored(conn, "crm")] == [("a1", data)]
    with store.transaction() as conn:
        aggregate_store.write(conn, "crm", "a2", data, {"users": {}})
    with store.engine.connect() as conn:
        forms = dict(conn.exec_driver_sql("SELECT account_id, pg_column_compression(data) FROM aggregates").all())
    assert forms == {"a1": "pglz", "a2": "lz4" if found["lz4"] == "yes" else None}


def test_postgresql_streams_the_audits_read_of_every_interaction(postgres_url: str) -> None:
    """A plain cursor would receive every row before the first batch: the read goes
    through server-side cursors (open while a batch is being read, closed after)."""
    store = Store(postgres_url)
    with store.transaction() as conn:
        store.upsert(conn, [Interaction(remote_id=f"i{k}", source="s1", kind="call", occurred_at=T0,
                                        account_id="A") for k in range(30)])
    with store.engine.connect() as conn:
        def cursors() -> list[str]:
            return list(conn.exec_driver_sql("SELECT name FROM pg_cursors").scalars())

        batches = interaction_batches(conn, "s1", T0.timestamp())
        first = next(batches)
        assert len(first) == 30 and [n for n in cursors() if n.startswith("crmlink_interactions_")]
        assert list(batches) == [] and cursors() == []
