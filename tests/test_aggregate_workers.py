"""The aggregates' build in forked workers gives the bytes of the one-process build.

A sync ends by rebuilding the aggregates it made stale; with ``[audit] workers`` above
one the sorted accounts are cut into slices of about equal rows, each read, classified
and encoded in a forked worker, and the parent alone writes what they send. These tests
build the same store in one process and in two (the whole table read once per slice,
and a few accounts read through the account index), on SQLite and PostgreSQL, compare
every aggregate byte for byte, and lose a worker on purpose: its slice is finished by
the parent, with the same bytes.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmlink import Interaction, hookimpl
from crmlink.cli import cli
from crmlink.core import aggregate_store, parallel, schema
from crmlink.core.analysis import aggregate_build
from crmlink.core.analysis.aggregate_build import refresh
from crmlink.core.analysis.config import DEFAULTS
from crmlink.core.host import PluginHost, get_plugin_host
from crmlink.core.store import Store
from crmlink.testing.generate import generate


def blobs(url: str) -> dict[str, tuple[bytes, Any]]:
    """Every aggregate of the CSV source: account -> (data, people)."""
    table = schema.aggregates
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {a: (bytes(d), p) for a, d, p in conn.execute(
                sa.select(table.c.account_id, table.c.data, table.c.people).where(table.c.source == "csv"))}
    finally:
        engine.dispose()


def settings(workers: int) -> dict[str, Any]:
    config = copy.deepcopy(DEFAULTS)
    config["audit"]["workers"] = workers
    return config


def synced(url: str, tmp_path: Path) -> dict[str, tuple[bytes, Any]]:
    """A generated multi-party export synced in one process; its aggregates."""
    folder = tmp_path / "export"
    generate(folder, 30, 3000, contacts=240, profile="multiparty")
    config = tmp_path / "one.toml"
    config.write_text("[audit]\nworkers = 1\n", encoding="utf-8")
    done = CliRunner().invoke(cli, ["sync", "csv", str(folder), "--db", url, "--config", str(config), "-q"])
    assert done.exit_code == 0, done.output
    found = blobs(url)
    assert len(found) == 30
    return found


def test_two_workers_build_the_same_bytes_as_one(store_url: str, tmp_path: Path) -> None:
    want = synced(store_url, tmp_path)
    store, host = Store(store_url), get_plugin_host(load_entrypoints=False)
    try:
        for workers in (2, 3, 1):
            (done,) = refresh(store, host, settings(workers), rebuild=True)  # the whole table, sorted
            assert (done.full, done.built, done.left) == (True, 30, 0)
            assert blobs(store_url) == want, f"{workers} workers, one read of the table"
        some = sorted(want)[3:9]
        with store.transaction() as conn:
            aggregate_store.mark(conn, [("csv", a) for a in some])
        (done,) = refresh(store, host, settings(2))  # 6 of 30: through the account index
        assert (done.full, done.built) == (False, 6)
        assert blobs(store_url) == want
    finally:
        store.engine.dispose()


def test_an_account_whose_rows_are_gone_loses_its_aggregate_in_a_worker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    want = synced(url, tmp_path)
    store = Store(url)
    gone = sorted(want)[-1]  # the last account of the last slice
    table = schema.TABLES["interaction"]
    with store.transaction() as conn:
        conn.execute(table.update().where(table.c.account_id == gone).values(deleted=True))  # the trigger marks it
    (done,) = refresh(store, get_plugin_host(load_entrypoints=False), settings(2))
    assert done.built == 1
    assert blobs(url) == {a: found for a, found in want.items() if a != gone}


class Dying:
    """A method classifier that ends the first worker process to call it (as if the
    system killed it); in the parent it classifies nothing."""

    def __init__(self, marker: Path) -> None:
        self.parent, self.marker = os.getpid(), marker

    @hookimpl
    def classify_interaction(self, interaction: Interaction) -> str | None:
        if os.getpid() != self.parent:
            try:
                self.marker.touch(exist_ok=False)
            except FileExistsError:
                return None
            os._exit(3)
        return None


def dying_host(marker: Path) -> PluginHost:
    host = get_plugin_host(load_entrypoints=False)
    host.register("dying", Dying(marker))
    return host


def test_a_worker_lost_during_the_build_costs_time_not_results(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    synced(url, tmp_path)
    store = Store(url)
    refresh(store, dying_host(tmp_path / "unused"), settings(1), rebuild=True)  # the same plugins, one process
    want = blobs(url)
    with caplog.at_level(logging.WARNING, logger="crmlink.core.parallel"):
        (done,) = refresh(store, dying_host(tmp_path / "died"), settings(2), rebuild=True)
    assert (tmp_path / "died").exists(), "no worker classified anything"
    assert "failed (the process ended with exit code 3): finishing its items in this process" in caplog.text
    assert (done.built, done.left) == (30, 0)
    assert blobs(url) == want


def test_the_slices_of_a_build_hold_about_equal_rows() -> None:
    assert parallel.weighted_slices([1] * 10, 2) == [(0, 5), (5, 10)]
    assert parallel.weighted_slices([90, 1, 1, 1, 1, 1, 1, 1, 1, 1], 2) == [(0, 1), (1, 10)]
    assert parallel.weighted_slices([1, 1, 1, 1, 50], 2) == [(0, 4), (4, 5)]
    assert parallel.weighted_slices([50, 1, 1, 1, 1], 3) == [(0, 1), (1, 2), (2, 5)]  # never an empty slice
    assert parallel.weighted_slices([5], 2) == [(0, 1)]
    for weights in ([3, 1, 4, 1, 5, 9, 2, 6], [0, 0, 0, 0], [1] * 7):
        for workers in (1, 2, 3, 4):
            parts = parallel.weighted_slices(weights, workers)
            assert parts[0][0] == 0 and parts[-1][1] == len(weights)
            assert all(low < high for low, high in parts) and all(a[1] == b[0] for a, b in zip(parts, parts[1:]))


def test_a_build_below_the_threshold_stays_in_one_process() -> None:
    assert parallel.worker_count(aggregate_build.PARALLEL_FROM - 1, aggregate_build.PARALLEL_FROM, "auto") == 1
    assert parallel.worker_count(30, aggregate_build.PARALLEL_FROM, 2) == 2


def test_a_store_in_memory_is_built_in_one_process() -> None:
    """Forked workers could not see an SQLite database that lives in this process's memory."""
    from crmlink import Account

    store = Store("sqlite://")
    with store.transaction() as conn:
        store.upsert(conn, [Account(remote_id=f"A{k}", source="csv", name=f"A{k}") for k in range(3)])
        store.upsert(conn, [Interaction(remote_id=f"I{k}", source="csv", kind="call", account_id=f"A{k % 3}",
                                        occurred_at=f"2026-01-0{1 + k % 9}T10:00:00Z", user_ids=("U1",),
                                        contact_ids=("C1",)) for k in range(9)])
    assert not aggregate_build._other_processes_see(store)
    (done,) = refresh(store, get_plugin_host(load_entrypoints=False), settings(2))
    assert (done.built, done.left) == (3, 0)
    with store.engine.connect() as conn:
        assert aggregate_store.count(conn, "csv") == 3
