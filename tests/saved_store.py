"""Stores for the evaluation tests: a scenario's records written to a file store the
command line can audit, save and compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.store import Store
from tests.scenario import Scenario


def write(scenario: Scenario, url: str, source: str = "t") -> Store:
    """Write the scenario's records into the store at ``url`` as source ``source``."""
    store = Store(url)
    by_entity: dict[str, list[Any]] = {}
    for record in scenario.records:
        record.source = source
        by_entity.setdefault(record.entity, []).append(record)
    with store.transaction() as conn:
        for records in by_entity.values():
            store.upsert(conn, records)
    return store


def crmlink(*args: str, ok: bool = True) -> Any:
    """Run the command line; with ``ok`` assert it exited 0."""
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def as_json(*args: str) -> Any:
    return json.loads(crmlink(*args, "--format", "json").stdout)


def url_in(folder: Path) -> str:
    return f"sqlite:///{folder / 'store.db'}"
