"""A first import's shortcuts store what the row-by-row way stores.

On SQLite a sync run that writes a table's first rows raises the revisions its
accounts, contacts and deals name a batch at a time (:meth:`.store._Deferred.counting`),
not by the insert trigger row by row; and where only the built-in title rules classify
contacts, a CSV import classifies its contacts' rows as they are (:class:`.sync._TitleRules`),
not a record a row through the hook. Each is checked against the way it replaces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import sqlalchemy as sa

from crmlink import Classification, Contact, hookimpl
from crmlink.core import revisions, schema
from crmlink.core.host import get_plugin_host
from crmlink.core.rows import RowBatch
from crmlink.core.store import Store
from crmlink.core.sync import SyncEngine, _TitleRules
from crmlink.plugins.csv import CsvConnector
from crmlink.testing.generate import generate
from tests.test_csv_batches import change, dump, sync


def _row_by_row(run: Callable[[], None]) -> None:
    """``run`` with neither shortcut: the insert triggers and the hook a record."""
    with patch.object(revisions, "COUNTED", ()), patch.object(_TitleRules, "of", classmethod(lambda cls, host: None)):
        run()


def test_an_import_stores_what_the_row_by_row_way_stores(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    generate(folder, accounts=12, interactions=2500, profile="multiparty")
    later = change(folder, tmp_path / "later")
    fast, reference = f"sqlite:///{tmp_path / 'fast.db'}", f"sqlite:///{tmp_path / 'reference.db'}"
    for export in (folder, later):
        sync(CsvConnector, export, fast)
        _row_by_row(lambda: sync(CsvConnector, export, reference))  # noqa: B023 - called at once
    got, expected = dump(fast), dump(reference)
    assert got.keys() == expected.keys()
    for table in expected:
        assert got[table] == expected[table], table
    assert len(expected["audit_revisions"]) > 12


def _contacts() -> list[Contact]:
    return [Contact(remote_id="C1", source="s", account_id="A1", title="VP Sales"),
            Contact(remote_id="C2", source="s", account_id="A1"),
            Contact(remote_id="C3", source="s"),  # no account: the contacts' revision alone
            Contact(remote_id="C1", source="s", account_id="A2"),  # a repeat: written once
            Contact(remote_id="C4", source="s", account_id="A2")]


def _revisions(url: str, writes: list[tuple[list[Contact], int | None]]) -> dict[str, int]:
    store = Store(url)
    with store.transaction() as conn:
        for contacts, run_id in writes:
            store.upsert_rows(conn, RowBatch.of(Contact, contacts), run_id=run_id)
    with store.engine.connect() as conn:
        return revisions.of_source(conn, "s")


def test_revisions_counted_a_batch_at_a_time_are_the_triggers(tmp_path: Path) -> None:
    first = _contacts()
    moved = [dataclasses.replace(first[1], account_id="A3"), Contact(remote_id="C5", source="s", account_id="A3")]
    for name, writes in {"one run": [(first, 1), (first[:2], 1)],
                         "another run after": [(first, 1), (moved, 2), (first[4:], 1)]}.items():
        got = _revisions(f"sqlite:///{tmp_path / f'{name}-counted.db'}", writes)
        with patch.object(revisions, "COUNTED", ()):
            expected = _revisions(f"sqlite:///{tmp_path / f'{name}-triggers.db'}", writes)
        assert got == expected, name
        assert expected[revisions.CONTACTS] >= 4


def test_the_triggers_are_back_when_the_import_commits(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").all()
    _revisions(store.url, [(_contacts(), 1)])
    with store.engine.connect() as conn:
        after = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").all()
    assert after == before
    assert any(name == revisions.insert_trigger("contact") for name, _ in after)


class Titles:
    """A plugin that classifies every contact as a VP of finance."""

    @hookimpl
    def classify_contact(self, contact: Contact) -> Classification:
        return Classification(seniority="vp", department="finance", buying_role=None)


def test_a_plugin_that_classifies_contacts_is_asked_for_each(tmp_path: Path) -> None:
    assert _TitleRules.of(get_plugin_host(load_entrypoints=False)) is not None
    host = get_plugin_host(load_entrypoints=False, extra=[("titles", Titles())])
    assert _TitleRules.of(host) is None
    folder = tmp_path / "export"
    generate(folder, accounts=3, interactions=200)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    SyncEngine(store, host, CsvConnector({"path": str(folder)}), "csv").run()
    table = schema.TABLES["contact"]
    with store.engine.connect() as conn:
        found = set(conn.execute(sa.select(table.c.seniority, table.c.department)).all())
    assert ("vp", "finance") in found  # the plugin's, where the file left both blank
