"""The audit reads the same on every store: the bundled sample synced into PostgreSQL
audits to exactly the JSON document SQLite gives (all but the time it was made), also
after PostgreSQL has moved rows around, so that it returns them in another order."""

from __future__ import annotations

import json

import sqlalchemy as sa
from click.testing import CliRunner

from crmlink.cli import cli
from tests.conftest import AS_OF, SAMPLE


def audit(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["audit", *args, "--as-of", AS_OF, "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    return {**document, "generated_at": None}


def test_the_sample_audits_the_same_on_postgresql_as_on_sqlite(postgres_url: str, sample_audit: dict) -> None:
    expected = {**sample_audit, "generated_at": None}
    document = audit(str(SAMPLE), "--db", postgres_url)
    assert document["summary"]["accounts"] == 50 and document == expected
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:  # rewritten rows go to the end of the table's storage
        for table in ("interactions", "contacts", "users"):
            conn.exec_driver_sql(f"UPDATE {table} SET remote_id = remote_id WHERE mod(pk, 3) = 0")
    with engine.connect() as conn:
        first = [pk for (pk,) in conn.exec_driver_sql("SELECT pk FROM interactions LIMIT 3")]
    engine.dispose()
    assert first != [1, 2, 3]  # the store now returns them in another order
    assert audit("--db", postgres_url) == expected
