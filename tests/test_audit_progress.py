"""What an audit and a build of the aggregates tell of their progress: to a caller
(``Audit(progress=...)``, ``refresh(progress=...)``) as accounts are done, and on stderr
when it is a terminal (``crmlink audit``, ``crmlink aggregate``), never with ``--quiet``,
when stderr is a pipe, or when the audit's JSON goes to the terminal as it is made."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from crmlink.commands.common import ProgressLine
from crmlink.core.analysis import aggregate_build
from crmlink.core.analysis.aggregate_build import refresh
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.host import get_plugin_host
from tests.conftest import AS_OF, SAMPLE, on_terminal, synced


def test_the_caller_is_told_of_every_account_from_none_to_all(tmp_path: Path) -> None:
    store, source = synced(f"sqlite:///{tmp_path / 's.db'}")
    for second in (False, True):  # the second audit reads its accounts from the cache
        told: list[tuple[str, int, int]] = []
        audit = Audit(store, get_plugin_host(), load_config(), date.fromisoformat(AS_OF),
                      progress=lambda *args, told=told: told.append(args))
        document = audit.stream(None, io.StringIO())
        total = len(document.accounts)
        assert total > 1
        assert told == [(source, done, total) for done in range(total + 1)], second
        assert (audit.from_cache == total) is second


def test_a_rebuild_tells_of_its_accounts_as_their_aggregates_are_written(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store, source = synced(f"sqlite:///{tmp_path / 's.db'}")
    monkeypatch.setattr(aggregate_build, "_BATCH", 7)  # several batches of the sample's accounts
    told: list[tuple[str, int, int]] = []
    (done,) = refresh(store, get_plugin_host(), load_config(), rebuild=True,
                      progress=lambda *args: told.append(args))
    total = done.built
    assert total > 7 and told[0] == (source, 0, total) and told[-1] == (source, total, total)
    assert [n for _, n, _ in told] == sorted({n for _, n, _ in told}) and all(t == total for _, _, t in told)
    told.clear()
    refresh(store, get_plugin_host(), load_config(), progress=lambda *args: told.append(args))
    assert told == []  # nothing stale: nothing to tell


def test_the_line_is_rewritten_at_most_so_often_and_ended_once(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    line = ProgressLine("accounts")
    monkeypatch.setattr(ProgressLine, "EVERY", 0.0)
    for done in range(4):
        line("csv", done, 3)
    line.end()
    line.end()  # once
    shown = capsys.readouterr().err
    assert shown.startswith("\rcsv: 3 accounts   \rcsv: 1 of 3 accounts (") and shown.count("/s)") == 2, shown
    assert shown.endswith("\rcsv: all 3 accounts done   \n"), shown
    monkeypatch.setattr(ProgressLine, "EVERY", 3600.0)  # only a source's first and last
    line = ProgressLine("accounts")
    for what in ("a", "b"):
        for done in range(1001):
            line(what, done, 1000)
    assert capsys.readouterr().err == ("\ra: 1,000 accounts   \ra: all 1,000 accounts done   "
                                       "\rb: 1,000 accounts   \rb: all 1,000 accounts done   ")


def test_progress_on_a_terminal_and_quiet_otherwise(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    out = tmp_path / "a.json"
    audit = ["audit", str(SAMPLE), "--db", db, "--as-of", AS_OF, "--format", "json", "--output", str(out)]
    code, shown = on_terminal(*audit)
    assert code == 0, shown
    assert "\rcsv: 50 accounts   \r" in shown, shown  # (the sample's 50 take less than a line's tenth of a second)
    assert "accounts done   \r\nWrote " in shown, shown  # the line ended before the next message
    code, shown = on_terminal(*audit, "--quiet")
    assert code == 0 and "accounts" not in shown and f"Wrote {out}" in shown, shown
    piped = subprocess.run([sys.executable, "-m", "crmlink", *audit], capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == f"Wrote {out}\n", piped.stderr
    # the JSON to the terminal itself: no progress between its lines
    code, shown = on_terminal("audit", "--db", db, "--as-of", AS_OF, "--format", "json", stdout=None)
    assert code == 0 and "accounts (" not in shown and shown.lstrip().startswith("{"), shown[:200]
    # a table to the terminal: the progress line ends before the table begins
    code, shown = on_terminal("audit", "--db", db, "--as-of", AS_OF, stdout=None)
    assert code == 0 and "accounts done   \r\n" in shown, shown[:400]
    assert shown.index("accounts done") < shown.index("Account"), shown[:400]
    code, shown = on_terminal("aggregate", "--db", db, "--rebuild")
    assert code == 0 and "\rcsv: 50 accounts' aggregates   \r" in shown, shown
    assert "\rcsv: all 50 accounts' aggregates done   \r\nDone in " in shown, shown
    code, shown = on_terminal("aggregate", "--db", db, "--rebuild", "-q")
    assert code == 0 and "aggregates done" not in shown and "Done in " in shown, shown
