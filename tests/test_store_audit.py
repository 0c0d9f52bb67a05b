"""The audit reads the same on every store: the bundled sample synced into PostgreSQL
audits to exactly the JSON document SQLite gives (all but the time it was made)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from crmlink.cli import cli
from tests.conftest import AS_OF, SAMPLE


def test_the_sample_audits_the_same_on_postgresql_as_on_sqlite(postgres_url: str, sample_audit: dict) -> None:
    result = CliRunner().invoke(cli, ["audit", str(SAMPLE), "--db", postgres_url, "--as-of", AS_OF,
                                      "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["summary"]["accounts"] == 50
    assert {**document, "generated_at": None} == {**sample_audit, "generated_at": None}
