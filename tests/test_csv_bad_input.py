"""Bad CSV input, every kind the format can meet, under ``--on-error fail`` and ``skip``.

``fail``: exit 3 and one line naming file, line and column; every table of the store is
exactly as before. ``skip``: the run finishes, the skip is counted in the summary and in
``crmlink status --run N``, the good rows are stored and nothing else changes.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli
from crmlink.core.store import Store

ACCOUNTS = "id,name,tier\nA1,Acme,S\nA2,Globex,B\n"
CONTACTS = "id,account_id,name\nC1,A1,Ann\nC2,A2,Bo\n"
USERS = "id,name,team_role\nU1,Una,AR\nU2,Ulf,SR\n"


def png() -> bytes:
    """A real 1x1 PNG image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


#: name -> (file, its bytes, location in the message, words in the message, row-level)
CASES: dict[str, tuple[str, bytes, str, str, bool]] = {
    "missing required column": ("contacts", b"id,name\nC1,Ann\n", "contacts.csv:1:3", "account_id", False),
    "unparseable date": ("contacts", b"id,account_id,name\nC1,A1,Ann\n", "", "", True),
    "unparseable number": ("opportunities", b"id,account_id,amount\nO1,A1,12.5\nO2,A1,12abc\n",
                           "opportunities.csv:3:3", "amount", True),
    "unknown enum value": ("users", b"id,name,team_role\nU1,Una,AR\nU2,Ulf,wizard\n", "users.csv:3:3",
                           "team_role", True),
    "duplicate id": ("contacts", b"id,account_id,name\nC1,A1,Ann\nC2,A2,Bo\nC1,A2,Cy\n", "contacts.csv:4:1",
                     "twice", True),
    "reference to a missing record": ("contacts", b"id,account_id,name\nC1,A1,Ann\nC2,A9,Bo\n",
                                      "contacts.csv:3:2", "A9", True),
    "wrong encoding": ("contacts", "id,account_id,name\nC1,A1,Ann\nC2,A2,Böhm\n".encode("latin-1"),
                       "contacts.csv:3:3", "UTF-8", True),
    "enormous field": ("contacts", b"id,account_id,name\nC1,A1,Ann\nC2,A2," + b"x" * 1_100_000 + b"\n",
                       "contacts.csv:3", "field", True),
    "empty file": ("contacts", b"", "contacts.csv:1:1", "empty", False),
    "a PNG renamed .csv": ("contacts", png(), "contacts.csv:1:1", "a PNG image, not a CSV file", False),
    "a JSON file renamed .csv": ("contacts", json.dumps([{"id": "C1", "account_id": "A1"}]).encode(),
                                 "contacts.csv:1:1", "JSON, not a CSV file", False),
}
CASES.update({
    "support case without its opening date": ("cases", b"id,account_id,opened_at,type\nK1,A1,2026-01-05,complaint\n"
                                              b"K2,A2,,complaint\n", "cases.csv:3:3", "opened_at", True),
    "support case of a missing account": ("cases", b"id,account_id,opened_at\nK1,A1,2026-01-05\nK2,A7,2026-01-06\n",
                                          "cases.csv:3:2", "A7", True),
    "escalated flag not a boolean": ("cases", b"id,account_id,opened_at,escalated\nK1,A1,2026-01-05,yes\n"
                                     b"K2,A1,2026-01-05,maybe\n", "cases.csv:3:4", "true or false", True),
    "competitor without a name": ("competitors", b"opportunity_id,name,strengths\nO1,Acme,price\nO2, ,\n",
                                  "competitors.csv:3:2", "needs a name", True),
})
CASES["unparseable date"] = ("interactions", b"id,account_id,occurred_at,kind\nI1,A1,2026-01-05,call\n"
                             b"I2,A1,2026-13-45,call\n", "interactions.csv:3:3", "occurred_at", True)


def sync(folder: Path, db: str, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["sync", "csv", str(folder), "--db", db, *extra])


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / f"{name}.csv").write_bytes(data)
    return folder


def dump(db: str) -> dict[str, list[str]]:
    """Every row of every table but the run log, in a stable order."""
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return {t: sorted(map(repr, conn.execute(f'select * from "{t}"')))
                for t in tables if t not in ("sync_runs", "skipped_records")}


@pytest.fixture
def store(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'bad.db'}"
    good = {"accounts": ACCOUNTS.encode(), "contacts": CONTACTS.encode(), "users": USERS.encode()}
    assert sync(write(tmp_path / "good", good), db).exit_code == 0
    return db


def bad_folder(tmp_path: Path, case: str) -> Path:
    name, data, *_ = CASES[case]
    files = {"accounts": b"id,name,tier\nA1,Acme Changed,S\nA2,Globex,B\nA3,Initech,C\n",
             "contacts": CONTACTS.encode(), "users": USERS.encode(), name: data}
    return write(tmp_path / "bad", files)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fail_one_located_line_and_nothing_written(tmp_path: Path, store: str, case: str) -> None:
    _name, _data, location, words, _row = CASES[case]
    before = dump(store)
    result = sync(bad_folder(tmp_path, case), store)
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert re.search(r"\.csv:\d+:\d+: ", lines[0]), lines[0]  # file, line and column
    assert location in lines[0] and words in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert dump(store) == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_skip_counts_the_bad_input_and_keeps_the_rest(tmp_path: Path, store: str, case: str) -> None:
    name, _data, location, _words, row_level = CASES[case]
    before = dump(store)
    result = sync(bad_folder(tmp_path, case), store, "--on-error", "skip")
    assert result.exit_code == 0, result.output
    stream_row = next(line.split() for line in result.stdout.splitlines() if line.split()[:1] == [name])
    assert int(stream_row[5]) == 1, result.stdout  # the skipped column of the summary
    assert f"skipped {name}" in result.stdout and location in result.stdout
    run_id = re.search(r"\(run (\d+), partial\)", result.stdout).group(1)
    status = CliRunner().invoke(cli, ["status", "--run", run_id, "--db", store])
    assert status.exit_code == 0 and f"skipped {name}" in status.stdout and location in status.stdout
    after = dump(store)
    assert any("Acme Changed" in row for row in after["accounts"])  # the good rows were stored
    live = {c.remote_id for c in Store(store).records("contact")}
    assert live == {"C1", "C2"}  # a skipped row or an unread file deletes nothing
    if not row_level:
        assert after[name] == before.get(name, after[name])  # the unreadable file changed nothing
