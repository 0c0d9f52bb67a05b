"""The aggregates of a first import built beside its write (:mod:`.aggregate_stream`).

An import into an empty SQLite store with more than one process hands the interaction
rows it writes to a forked builder, and writes the aggregates in its own transaction.
These tests import the same generated exports with the build beside the write and
without it (``[audit] workers = 1``: the refresh after the commit builds them), and
compare every aggregate byte for byte, with the accounts' revisions and the marks left:
a file grouped by account (all built beside the write), one with an account's rows
split (that account left to the refresh), one in no order (the build gives up), and one
whose last row is bad (nothing stored, no builder left running).
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core import schema
from crmlink.core.analysis import aggregate_stream
from crmlink.testing.generate import generate

ACCOUNTS = 30


def export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    generate(folder, ACCOUNTS, 5000, contacts=240, profile="multiparty")  # three chunks of rows
    return folder


def rewrite(folder: Path, order: Any) -> None:
    """Reorder the rows of interactions.csv (``order``: the rows to the new rows)."""
    path = folder / "interactions.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *order(rows)])


def store_of(folder: Path, tmp_path: Path, workers: int, name: str) -> tuple[str, Any]:
    """``folder`` imported into a new store with ``workers``; its URL and the sync's result."""
    url = f"sqlite:///{tmp_path / name}"
    config = tmp_path / f"{name}.toml"
    config.write_text(f"[audit]\nworkers = {workers}\n", encoding="utf-8")
    done = CliRunner().invoke(cli, ["sync", "csv", str(folder), "--db", url, "--config", str(config), "-q"])
    return url, done


def contents(url: str) -> dict[str, Any]:
    """The aggregates (data, people), the accounts' revisions and the stale marks."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            aggregates = schema.aggregates
            return {
                "aggregates": {a: (bytes(d), p) for a, d, p in conn.execute(
                    sa.select(aggregates.c.account_id, aggregates.c.data, aggregates.c.people))},
                "revisions": sorted(conn.execute(sa.select(schema.audit_revisions)).all()),
                "stale": sorted(conn.execute(sa.select(schema.aggregate_stale)).all()),
                "interactions": conn.execute(sa.select(sa.func.count()).select_from(
                    schema.TABLES["interaction"])).scalar_one()}
    finally:
        engine.dispose()


def both(folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> tuple[dict[str, Any], str]:
    """The store built beside the write, checked equal to the one built after it; what
    the streamed build logged."""
    url, done = store_of(folder, tmp_path, 1, "after.db")
    assert done.exit_code == 0, done.output
    want = contents(url)
    assert len(want["aggregates"]) == ACCOUNTS and not want["stale"]
    with caplog.at_level(logging.INFO, logger="crmlink.core.analysis.aggregate_stream"):
        url, done = store_of(folder, tmp_path, 2, "beside.db")
    assert done.exit_code == 0, done.output
    assert contents(url) == want
    return want, caplog.text


def test_an_export_grouped_by_account_is_built_beside_the_write(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, said = both(export(tmp_path), tmp_path, caplog)
    assert f"aggregates of csv: {ACCOUNTS} built during the import, 0 left to the refresh" in said


def test_an_account_whose_rows_begin_again_is_left_to_the_refresh(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = export(tmp_path)
    moved: list[str] = []

    def split(rows: list[list[str]]) -> list[list[str]]:
        first = rows[0][1]  # the first account's last rows go to the end of the file
        mine = [k for k, row in enumerate(rows) if row[1] == first]
        tail = set(mine[len(mine) // 2:])
        moved.append(first)
        return [r for k, r in enumerate(rows) if k not in tail] + [rows[k] for k in sorted(tail)]

    rewrite(folder, split)
    _, said = both(folder, tmp_path, caplog)
    assert f"aggregates of csv: {ACCOUNTS - 1} built during the import, 1 left to the refresh" in said


def test_an_export_in_no_order_is_built_after_the_write(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = export(tmp_path)
    rewrite(folder, lambda rows: random.Random(5).sample(rows, len(rows)))
    monkeypatch.setattr(aggregate_stream, "REOPENED_LIMIT", 4)  # 30 accounts: the real limit is not reached
    _, said = both(folder, tmp_path, caplog)
    assert ("aggregates not built during the import (more than 4 accounts' rows are not together in the "
            "file)") in said
    assert "built during the import," not in said


def test_a_bad_last_row_stores_nothing_and_leaves_no_builder(tmp_path: Path) -> None:
    folder = export(tmp_path)
    rewrite(folder, lambda rows: [*rows[:-1], [rows[-1][0], rows[-1][1], "2026-02-30", *rows[-1][3:]]])
    url, done = store_of(folder, tmp_path, 2, "bad.db")
    assert done.exit_code == 3, done.output
    assert ":3: interaction" in done.output and "'2026-02-30' is not an ISO 8601 date" in done.output
    found = contents(url)
    assert (found["aggregates"], found["stale"], found["interactions"]) == ({}, [], 0)
    assert not multiprocessing.active_children()
