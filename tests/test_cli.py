from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmlink import __version__
from crmlink.cli import cli
from tests.conftest import AS_OF, SAMPLE


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_version_and_help() -> None:
    assert __version__ in invoke("--version").output
    for flag in ("-h", "--help"):
        result = invoke(flag)
        assert result.exit_code == 0 and "audit" in result.output and "sync" in result.output


def test_plugins_lists_builtins_like_third_party() -> None:
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    plugins = {p["name"]: p for p in json.loads(result.output)}
    assert {"csv", "classify", "ltc", "method"} <= set(plugins)
    assert plugins["csv"]["connectors"] == ["csv"] and plugins["csv"]["status"] == "ok"
    assert "score_account" in plugins["method"]["hooks"]


def test_table_audit_reads_like_a_report(tmp_path: Path) -> None:
    result = invoke("audit", str(SAMPLE), "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert "What needs attention first" in result.output
    assert "Westlake Power Grid" in result.output and "PERSONALIZED_RELATIONSHIP" in result.output


def test_fail_on_exit_code_and_output_file(tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    result = invoke("audit", str(SAMPLE), "--as-of", AS_OF, "--format", "json", "--output", str(out),
                    "--fail-on", "high")
    assert result.exit_code == 1
    assert json.loads(out.read_text())["summary"]["findings_by_severity"]["high"] > 0
    assert invoke("audit", "--as-of", AS_OF, "--fail-on", "critical").exit_code == 0


def test_markdown_format() -> None:
    result = invoke("audit", str(SAMPLE), "--as-of", AS_OF, "--format", "markdown")
    assert result.exit_code == 0 and result.output.startswith("# Relationship audit, 2026-11-20")


def test_as_of_changes_the_result() -> None:
    early = json.loads(invoke("audit", str(SAMPLE), "--as-of", "2025-06-30", "--format", "json").output)
    late = json.loads(invoke("audit", "--as-of", AS_OF, "--format", "json").output)
    assert early["as_of"] == "2025-06-30"
    rail = lambda doc: next(a for a in doc["accounts"] if a["remote_id"] == "ACC-005")  # noqa: E731
    assert "RELATIONSHIP_DECLINING" not in {f["code"] for f in rail(early)["findings"]}
    assert "RELATIONSHIP_DECLINING" in {f["code"] for f in rail(late)["findings"]}


def test_usage_errors_exit_2() -> None:
    assert invoke("audit", "--as-of", "yesterday").exit_code == 2
    bad_format = invoke("audit", "--format", "pdf")
    assert bad_format.exit_code == 2 and "unknown format" in bad_format.stderr
    assert invoke("audit", "--source", "nowhere").exit_code == 2


def test_ltc_command() -> None:
    assert invoke("sync", "csv", str(SAMPLE), "-q").exit_code == 0
    result = invoke("ltc", "--as-of", AS_OF, "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    open_leads = sum(1 for lead in doc["leads"] if lead["outcome"] == "open")
    assert open_leads and doc["funnel"]["leads"]["open"] == open_leads  # open leads sit in the lead stage
    assert doc["funnel"]["unmapped"] and (sum(s["count"] for s in doc["funnel"]["stages"].values())
                                          == len(doc["opportunities"]) + open_leads)
    assert "Funnel" in invoke("ltc", "--as-of", AS_OF).output


def test_status_shows_runs() -> None:
    invoke("sync", "csv", str(SAMPLE), "-q")
    result = invoke("status")
    assert result.exit_code == 0 and "csv (csv) ok" in result.output


def test_bad_config_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[findings]\nnot_a_setting = 1\n")
    result = invoke("audit", str(SAMPLE), "--config", str(config))
    assert result.exit_code == 2 and "not_a_setting" in result.stderr


def test_config_file_changes_thresholds(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[findings]\npersonalized_share = 0.99\n')
    doc = json.loads(invoke("audit", str(SAMPLE), "--as-of", AS_OF, "--format", "json", "--config", str(config)).output)
    assert not any(f["code"] == "PERSONALIZED_RELATIONSHIP" for a in doc["accounts"] for f in a["findings"])


def test_named_source_from_config_option(tmp_path: Path) -> None:
    """A named source is found in the file given by --config after its name, not only in
    CRMLINK_CONFIG or ./crmlink.toml, and syncs under its own name."""
    config = tmp_path / "sources.toml"
    config.write_text(f'[sources.export]\nconnector = "csv"\npath = "{SAMPLE.as_posix()}"\n')
    db = f"sqlite:///{tmp_path / 'named.db'}"
    unknown = invoke("sync", "export", "--db", db, "-q")
    assert unknown.exit_code == 2 and "export" in unknown.output
    for flags in (["--config", str(config)], [f"--config={config}"]):
        synced = invoke("sync", "export", "--db", db, "-q", *flags)
        assert synced.exit_code == 0, synced.output
    status = invoke("status", "--db", db, "--json")
    assert [r["source"] for r in json.loads(status.output)] == ["export", "export"]


@pytest.mark.parametrize("fmt", ["json", "markdown"])
def test_output_to_a_pipe_writes_into_it_and_leaves_it_a_pipe(tmp_path: Path, fmt: str) -> None:
    """A device or a pipe (``/dev/null``, a FIFO) is written in place: the atomic move
    that protects a regular file would replace the device itself."""
    where = tmp_path / "out"
    where.mkdir()
    fifo = where / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = invoke("audit", str(SAMPLE), "--as-of", AS_OF, "--format", fmt, "--output", str(fifo))
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert received and received[0].startswith(b"{" if fmt == "json" else b"# Relationship audit")
    assert [p.name for p in where.iterdir()] == ["pipe"]  # no temporary file left beside it


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path: Path) -> None:
    """``crmlink audit --format json | head -c 100``: once the reader closes the pipe, the
    command stops with exit 141, as the tools SIGPIPE ends do, and says nothing (it said
    "internal error (BrokenPipeError ...)"). The document is far larger than the pipe's
    buffer, so the write meets the closed pipe."""
    command = [sys.executable, "-m", "crmlink", "audit", str(SAMPLE), "--as-of", AS_OF, "--format", "json",
               "--db", f"sqlite:///{tmp_path / 'store.db'}"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stderr is not None
        assert child.stdout.read(100).startswith(b'{"crmlink_version"')
        child.stdout.close()
        said = child.stderr.read().decode()
        assert child.wait(timeout=120) == 141, said
    assert "Error" not in said and "Traceback" not in said, said


@pytest.mark.parametrize("fmt", ["json", "markdown"])
def test_output_to_a_folder_is_one_clear_error(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    result = invoke("audit", str(SAMPLE), "--as-of", AS_OF, "--format", fmt, "--output", str(folder))
    assert result.exit_code != 0
    assert f"cannot write {folder}: it is a folder; give a file name" in result.output
    assert folder.is_dir() and not list(folder.iterdir())
