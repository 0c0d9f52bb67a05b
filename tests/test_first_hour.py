"""An admin's first commands: what a plain install syncs, what a missing optional
dependency says (and where it stays quiet), the empty store, and ``ltc FOLDER``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from tests.conftest import AS_OF, ROOT, SAMPLE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_salesforce_hubspot_and_keyring_are_core_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {d.split(">")[0].split("<")[0].split("[")[0].strip() for d in project["dependencies"]}
    assert {"simple-salesforce", "requests", "hubspot-api-client", "keyring"} <= names
    assert all(any(c in d for c in "><=") for d in project["dependencies"])  # lower bounds
    extras = project["optional-dependencies"]
    assert extras["salesforce"] == [] and extras["hubspot"] == []  # old install lines still work


def _without_hubspot(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import hubspot`` fails as it does when hubspot-api-client
    is not installed (a plain ``pip install --no-deps``, or an old optional extra)."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys

        class NoHubSpot:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "hubspot":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoHubSpot())
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRMLINK_", "HUBSPOT_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT), env.get("PYTHONPATH", "")])
    env["CRMLINK_DB"] = f"sqlite:///{tmp_path / 'store.db'}"
    return env


def _crmlink(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crmlink", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_a_missing_client_library_is_reported_where_it_matters_only(tmp_path: Path) -> None:
    env = _without_hubspot(tmp_path)
    for unrelated in (["status"], ["audit"], ["--help"], ["sync", "csv", str(SAMPLE), "-q"]):
        done = _crmlink(env, *unrelated)
        assert done.returncode == 0, done.stderr
        assert "hubspot" not in done.stderr.lower(), (unrelated, done.stderr)

    listed = _crmlink(env, "plugins", "--json")
    hubspot = next(p for p in json.loads(listed.stdout) if p["name"] == "hubspot")
    assert hubspot["status"] == "missing"
    assert "No module named 'hubspot'" in hubspot["error"]
    line = hubspot["error"].split("install it with: ")[1]
    assert line.startswith("pip install '") and ("hubspot-api-client" in line or "crmlink[hubspot]" in line)
    text = _crmlink(env, "plugins").stdout
    assert "missing" in text and line in text

    synced = _crmlink(env, "sync", "hubspot", "--access-token", "pat-na1-not-used")
    assert synced.returncode == 7, synced.stderr
    assert "internal error" not in synced.stderr and "Traceback" not in synced.stderr
    assert line in synced.stderr and synced.stderr.count("\n") == 1  # one line, once


def test_hubspot_without_a_token_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["sync", "hubspot"])
    assert result.exit_code == 2, result.output
    assert "--access-token is required" in result.output and "HUBSPOT_ACCESS_TOKEN" in result.output
    salesforce = CliRunner().invoke(cli, ["sync", "salesforce"])
    assert salesforce.exit_code == 2


def test_an_empty_store_says_what_to_sync() -> None:
    table = CliRunner().invoke(cli, ["audit"])
    assert table.exit_code == 0
    assert "holds nothing yet" in table.stdout and "crmlink sync csv" in table.stdout
    assert "crmlink sync salesforce" in table.stdout and "crmlink sync hubspot" in table.stdout
    document = CliRunner().invoke(cli, ["audit", "--format", "json"])
    assert document.exit_code == 0
    assert json.loads(document.stdout)["accounts"] == []  # still the document asked for
    assert "holds nothing yet" in document.stderr
    ltc = CliRunner().invoke(cli, ["ltc"])
    assert ltc.exit_code == 0 and "holds nothing yet" in ltc.stdout


def test_a_mistyped_store_path_is_one_sentence_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """A SQLite file given with --db that does not exist is made by a sync alone: a
    report or ``status`` on it says there is no store (it made the folders and an empty
    store, and said "holds nothing yet" with exit 0, even under --fail-on)."""
    db = f"sqlite:///{tmp_path / 'typo' / 'store.db'}"
    for command in (["audit", "--fail-on", "high"], ["ltc"], ["status"]):
        result = CliRunner().invoke(cli, [*command, "--db", db])
        assert result.exit_code == 6, result.output
        assert result.stderr.startswith(f"Error: there is no store at {tmp_path / 'typo' / 'store.db'} (no such "
                                        "file): check --db, or sync a source into it first"), result.stderr
    assert not (tmp_path / "typo").exists()
    assert CliRunner().invoke(cli, ["sync", "csv", str(SAMPLE), "--db", db]).exit_code == 0  # a sync makes it


def test_ltc_takes_a_folder_like_audit() -> None:
    result = CliRunner().invoke(cli, ["ltc", str(SAMPLE), "--as-of", AS_OF, "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document["opportunities"]) == 49 and document["funnel"]["leads"]["total"] == 25
    assert {o["source"] for o in document["opportunities"]} == {"csv"}
