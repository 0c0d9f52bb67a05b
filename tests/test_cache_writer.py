"""The audit's cache written beside the judging (crmlink.core.analysis.cache_writer), on
a real store: a batch at a time, each account under the revision it was judged at,
nothing more once the source's own revisions move, and no thread before ``settled``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmlink import hookimpl
from crmlink.cli import cli
from crmlink.core import revisions, schema
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.cache_writer import BATCH, CacheWriter, pack, unpack
from crmlink.core.analysis.config import load_config
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from crmlink.testing.generate import generate
from tests.conftest import AS_OF

SOURCE = "csv"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with made.transaction() as conn:  # every account at revision 1, the source's own at 1
        revisions.raise_by(conn, {(SOURCE, key): 1 for key in [*ACCOUNTS, revisions.SOURCE_WIDE, revisions.CONTACTS]})
    return made


ACCOUNTS = [f"A{n:04d}" for n in range(2 * BATCH + 50)]  # two full batches and a part


def writer(store: Store, settled: Callable[[], bool] = lambda: True) -> CacheWriter:
    shared = {revisions.SOURCE_WIDE: 1, revisions.CONTACTS: 1}
    return CacheWriter(store, SOURCE, "print", shared, lambda span: f"text {span[1]}".encode(), lambda: None,
                       settled)


def stored(store: Store) -> dict[str, tuple[int, bytes, bytes]]:
    table = schema.audit_cache
    with store.engine.connect() as conn:
        rows = conn.execute(table.select().where(table.c.source == SOURCE)).mappings().all()
    return {row["account_id"]: (row["revision"], unpack(row["judged"]), unpack(row["text"])) for row in rows}


def bump(store: Store, key: str) -> None:
    with store.transaction() as conn:
        revisions.raise_by(conn, {(SOURCE, key): 1})


def kept(key: str, number: int) -> tuple[str, int, tuple[int, int, int], bytes]:
    return key, 1, (0, number, 1), f"form {key}".encode()


def test_a_packed_entry_unpacks_and_anything_else_is_refused() -> None:
    text = b'{"account": "A0001", "scores": {}}' * 40
    assert len(pack(text)) < len(text) // 4 and unpack(pack(text)) == text
    with pytest.raises(ValueError, match="not a packed entry"):
        unpack(text)


def test_every_account_is_stored_under_its_revision_with_its_text(store: Store) -> None:
    cache = writer(store)
    for number, key in enumerate(ACCOUNTS):
        cache.add(kept(key, number))
    cache.finish()
    cache.wait()
    found = stored(store)
    assert found == {key: (1, f"form {key}".encode(), f"text {n}".encode()) for n, key in enumerate(ACCOUNTS)}
    assert cache.stored == len(ACCOUNTS)


def test_an_account_written_meanwhile_is_not_stored_and_the_rest_are(store: Store) -> None:
    cache = writer(store)
    bump(store, ACCOUNTS[3])  # a sync wrote it after the audit read its revision
    for number, key in enumerate(ACCOUNTS):
        cache.add(kept(key, number))
    cache.finish()
    cache.wait()
    assert set(stored(store)) == set(ACCOUNTS) - {ACCOUNTS[3]}


def test_once_the_source_s_revisions_move_nothing_more_is_stored(store: Store) -> None:
    cache = writer(store)
    for number, key in enumerate(ACCOUNTS[:BATCH]):
        cache.add(kept(key, number))
    deadline = time.monotonic() + 30
    while cache.stored < BATCH and time.monotonic() < deadline:  # the first batch written by the thread
        time.sleep(0.01)
    assert cache.stored == BATCH
    bump(store, revisions.CONTACTS)  # a contact written since the audit read the store
    for number, key in enumerate(ACCOUNTS[BATCH:], BATCH):
        cache.add(kept(key, number))
    cache.finish()
    cache.wait()
    assert set(stored(store)) == set(ACCOUNTS[:BATCH])


def test_no_thread_before_no_worker_can_fork(store: Store) -> None:
    settled = False
    cache = writer(store, lambda: settled)
    before = threading.active_count()
    for number, key in enumerate(ACCOUNTS[:BATCH + 10]):
        cache.add(kept(key, number))
    assert threading.active_count() == before and stored(store) == {}
    settled = True
    for number, key in enumerate(ACCOUNTS[BATCH + 10:], BATCH + 10):
        cache.add(kept(key, number))
    cache.finish()
    cache.wait()
    assert set(stored(store)) == set(ACCOUNTS)


class _FailsAt:
    """A plugin whose findings hook fails at the ``at``-th account it is asked about."""

    def __init__(self, at: int) -> None:
        self.at, self.seen = at, 0

    @hookimpl
    def account_findings(self, view: Any) -> list[Any]:
        self.seen += 1
        if self.seen == self.at:
            raise LookupError("no rule for this account")
        return []


def test_an_audit_that_fails_mid_way_leaves_no_writer_waiting(tmp_path: Path) -> None:
    """Past the first batches the judging fails: the writer's thread ends with what it
    was given (no thread left waiting for batches that never come)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    folder = tmp_path / "export"
    generate(folder, 3 * BATCH, 3 * BATCH * 5, contacts=3 * BATCH * 2, profile="multiparty")
    assert CliRunner().invoke(cli, ["sync", "csv", str(folder), "--db", url]).exit_code == 0
    host = get_plugin_host(load_entrypoints=False)
    host.register("fails", _FailsAt(2 * BATCH + 10))
    config = load_config(None)
    config["audit"]["workers"] = 1
    with pytest.raises(LookupError, match="no rule for this account"):
        Audit(Store(url), host, config, date.fromisoformat(AS_OF)).stream()
    writers = [t for t in threading.enumerate() if t.name.startswith("crmlink-cache-")]
    for thread in writers:
        thread.join(30)
    assert not [t for t in writers if t.is_alive()]
