from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmlink.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample"
AS_OF = "2026-11-20"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads a developer's store, config or plugin settings."""
    monkeypatch.setenv("CRMLINK_DB", f"sqlite:///{tmp_path / 'store.db'}")
    # secrets 'crmlink login' stores go to a file of the test, never a developer's keyring
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "crmlink.core.keystore.PrivateFileKeyring")
    monkeypatch.setenv("CRMLINK_SECRETS_FILE", str(tmp_path / "secrets" / "secrets.json"))
    for name in ("CRMLINK_CONFIG", "CRMLINK_LOAD_PLUGINS", "CRMLINK_DISABLE_PLUGINS",
                 "CRMLINK_STRICT_PLUGINS", "CRMLINK_TRACE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def sample_audit(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The JSON audit of the bundled sample, computed once."""
    db = tmp_path_factory.mktemp("sample") / "store.db"
    result = CliRunner().invoke(cli, ["audit", str(SAMPLE), "--db", f"sqlite:///{db}", "--as-of", AS_OF,
                                      "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))
