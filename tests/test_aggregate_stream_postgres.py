"""The aggregates of a first import built beside its write, on PostgreSQL.

As tests/test_aggregate_stream.py on SQLite: the same export imported into two fresh
PostgreSQL databases, once with the build beside the write and once without it
(``[audit] workers = 1``: the refresh after the commit builds them); every aggregate,
the accounts' revisions and the marks left must be the same. Then an audit of each: the
same document. And a later import of a second source, into tables that hold rows, leaves
the build to the refresh (the tables were not empty).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.testing import postgres as pgserver
from tests.test_aggregate_stream import ACCOUNTS, contents, export

AS_OF = "2026-11-20"


def imported(folder: Path, url: str, tmp_path: Path, workers: int, source: str = "csv") -> Any:
    config = tmp_path / f"workers-{workers}.toml"
    config.write_text(f"[audit]\nworkers = {workers}\n", encoding="utf-8")
    return CliRunner().invoke(cli, ["sync", "csv", str(folder), "--db", url, "--config", str(config),
                                    "--source", source, "-q"])


def audited(url: str, tmp_path: Path, name: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    done = CliRunner().invoke(cli, ["audit", "--db", url, "--as-of", AS_OF, "--format", "json", "--output", str(out)])
    assert done.exit_code == 0, done.output
    document = json.loads(out.read_text(encoding="utf-8"))
    document.pop("generated_at", None)
    return document


def test_postgresql_builds_a_first_imports_aggregates_beside_the_write(
        postgres_server: pgserver.Server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = export(tmp_path)
    with postgres_server.database() as after, postgres_server.database() as beside:
        done = imported(folder, after, tmp_path, 1)
        assert done.exit_code == 0, done.output
        want = contents(after)
        assert len(want["aggregates"]) == ACCOUNTS and not want["stale"]
        with caplog.at_level(logging.INFO, logger="crmlink.core.analysis.aggregate_stream"):
            done = imported(folder, beside, tmp_path, 2)
        assert done.exit_code == 0, done.output
        assert f"aggregates of csv: {ACCOUNTS} built during the import, 0 left to the refresh" in caplog.text
        assert contents(beside) == want
        assert audited(beside, tmp_path, "beside") == audited(after, tmp_path, "after")

        caplog.clear()
        with caplog.at_level(logging.INFO, logger="crmlink.core.analysis.aggregate_stream"):
            done = imported(folder, beside, tmp_path, 2, source="other")  # the tables hold csv's rows
        assert done.exit_code == 0, done.output
        assert "built during the import" not in caplog.text
        assert not contents(beside)["stale"]
