"""What a sync shows on stderr: progress on a terminal only, never with ``--quiet`` or when
stderr is a pipe; summary on stdout either way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import SAMPLE, on_terminal


def run_on_terminal(*args: str) -> str:
    """Run crmlink with stderr on a pseudo-terminal; returns what the terminal showed."""
    code, shown = on_terminal(*args)
    assert code == 0, shown
    return shown


def test_progress_on_a_terminal_and_quiet_otherwise(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    shown = run_on_terminal("sync", "csv", str(SAMPLE), "--db", db, "--full")
    assert "interactions: " in shown and " records (" in shown and "/s)" in shown
    # the end of an import in one transaction, which takes a minute at 10M interactions
    assert "\rwriting the audit's aggregates" in shown and "\rcommitting the sync" in shown, shown
    assert run_on_terminal("sync", "csv", str(SAMPLE), "--db", db, "--quiet") == ""
    piped = subprocess.run([sys.executable, "-m", "crmlink", "sync", "csv", str(SAMPLE), "--db", db],
                           capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and piped.stderr == "" and "interactions" in piped.stdout
