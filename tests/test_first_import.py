"""A first import into empty tables takes the fast path of each store (SQLite builds the
secondary indexes once at the end; PostgreSQL copies each batch straight into the table)
and stores, counts and refuses exactly what an import into tables that hold rows does:
the same rows, the same summary, the same located error for an id given twice in two
batches, and nothing stored when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmlink.cli import cli

ACCOUNTS = "id,name,tier\nA1,Acme,S\nA2,Globex,B\nA3,Initech,C\n"
CONTACTS = "id,account_id,name\nC1,A1,Ann\nC2,A2,Bo\nC3,A3,Cy\n"
INTERACTIONS = ("id,account_id,occurred_at,kind,contact_ids\n" +
                "".join(f"I{k},A{1 + k % 3},2026-0{1 + k % 9}-1{k % 10}T10:00:00Z,call,C{1 + k % 3}\n" for k in range(9)))


def export(folder: Path, interactions: str = INTERACTIONS) -> Path:
    folder.mkdir(parents=True)
    for name, text in (("accounts", ACCOUNTS), ("contacts", CONTACTS), ("interactions", interactions)):
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def sync(folder: Path, url: str, source: str, *extra: str) -> Result:
    return CliRunner(env={"CRMLINK_BATCH_SIZE": "2"}).invoke(
        cli, ["sync", "csv", str(folder), "--db", url, "--source", source, *extra])


def rows(url: str, source: str) -> dict[str, list[tuple[object, ...]]]:
    """The rows of ``source`` in the record tables, without their pk and run id."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = {}
            for table in ("accounts", "contacts", "interactions"):
                result = conn.exec_driver_sql(f'select * from "{table}" where source = \'{source}\'')
                keep = [k for k, name in enumerate(result.keys()) if name not in ("pk", "run_id")]
                found[table] = sorted(tuple(row[k] for k in keep) for row in result)
            return found
    finally:
        engine.dispose()


def test_a_first_import_stores_what_an_import_into_full_tables_does(store_url: str, tmp_path: Path) -> None:
    first = sync(export(tmp_path / "one"), store_url, "crm")  # empty tables: the fast path
    assert first.exit_code == 0, first.output
    later = sync(export(tmp_path / "two"), store_url, "other")  # the tables hold crm's rows: the upsert
    assert later.exit_code == 0, later.output
    assert first.stdout.splitlines()[1:] == later.stdout.splitlines()[1:]  # the counts of each stream
    assert any(line.split()[:3] == ["interactions", "9", "9"] for line in first.stdout.splitlines()), first.stdout
    ours, theirs = rows(store_url, "crm"), rows(store_url, "other")
    assert len(ours["interactions"]) == 9
    for table in ours:
        assert ours[table] == [tuple("crm" if v == "other" else v for v in r) for r in theirs[table]]


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_an_id_given_twice_in_two_batches_of_a_first_import(store_url: str, tmp_path: Path, mode: str) -> None:
    twice = INTERACTIONS + "I1,A3,2026-09-01T10:00:00Z,meeting,C3\n"  # I1 again, 9 rows later
    result = sync(export(tmp_path / "twice", twice), store_url, "crm", "--on-error", mode)
    if mode == "fail":
        assert result.exit_code == 3, result.output
        assert "interactions.csv:11:1" in result.stderr and "appears twice" in result.stderr, result.stderr
        assert rows(store_url, "crm") == {"accounts": [], "contacts": [], "interactions": []}
        return
    assert result.exit_code == 0, result.output
    assert "skipped interactions" in result.stdout and "interactions.csv:11:1" in result.stdout
    stored = {r[0]: r for r in rows(store_url, "crm")["interactions"]}
    assert len(stored) == 9 and "call" in stored["I1"]  # the first row of I1 is kept


def _later_indexes(url: str) -> set[str]:
    """The secondary indexes of the record tables that the PostgreSQL store at ``url`` has."""
    from crmlink.core import schema

    wanted = {str(i.name) for t in schema.TABLES.values() for i in schema.later_indexes(t)}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return wanted & set(conn.exec_driver_sql("SELECT indexname FROM pg_indexes").scalars())
    finally:
        engine.dispose()


def test_postgresql_builds_a_tables_secondary_indexes_with_its_first_rows(postgres_url: str, tmp_path: Path) -> None:
    """A PostgreSQL store is made without its record tables' secondary indexes; the import
    that writes a table's first rows creates them before it commits (one that fails leaves
    them missing, with the rows), and readers never wait on that transaction's locks."""
    from datetime import datetime, timezone

    from crmlink.core import schema
    from crmlink.core.model import Interaction
    from crmlink.core.store import Store

    store = Store(postgres_url)
    assert _later_indexes(postgres_url) == set()
    twice = INTERACTIONS + "I1,A3,2026-09-01T10:00:00Z,meeting,C3\n"
    assert sync(export(tmp_path / "bad", twice), postgres_url, "crm").exit_code == 3
    assert _later_indexes(postgres_url) == set()
    with store.transaction() as conn:  # first rows, not committed yet: readers read
        store.upsert(conn, [Interaction(remote_id="i1", source="crm", account_id="A1",
                                        occurred_at=datetime(2026, 1, 2, tzinfo=timezone.utc))])
        store._deferred[conn].restore(conn)  # the indexes made, as before the commit
        reader = sa.create_engine(postgres_url)
        with reader.connect() as other:
            other.exec_driver_sql("SET lock_timeout = '5s'")
            assert other.exec_driver_sql("SELECT count(*) FROM interactions WHERE account_id = 'A1'").scalar() == 0
        reader.dispose()
        conn.rollback()
    assert _later_indexes(postgres_url) == set() and Store(postgres_url).count("interaction") == 0
    result = sync(export(tmp_path / "good"), postgres_url, "crm")
    assert result.exit_code == 0, result.output
    made = {str(i.name) for name in ("account", "contact", "interaction") for i in schema.later_indexes(schema.TABLES[name])}
    assert made and made <= _later_indexes(postgres_url)
    again = sync(export(tmp_path / "again"), postgres_url, "other")  # tables with rows and indexes
    assert again.exit_code == 0, again.output
    assert rows(postgres_url, "crm")["interactions"] == [
        tuple("crm" if v == "other" else v for v in r) for r in rows(postgres_url, "other")["interactions"]]
