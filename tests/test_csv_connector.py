"""The CSV connector: good input round-trips; bad input gets one located error and
leaves the store exactly as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.store import Store
from tests.conftest import SAMPLE

ACCOUNTS = "id,name,tier\nA1,Acme,S\nA2,Globex,B\n"
CONTACTS = "id,account_id,name,title,buying_role,stance\nC1,A1,Ann,CTO,Decision Maker,coach\nC2,A2,Bo,采购经理,,\n"
USERS = "id,name,team_role,active\nU1,Una,AR,true\n"
INTERACTIONS = "id,account_id,occurred_at,kind,direction,user_ids,contact_ids\nI1,A1,2026-01-05T10:00:00Z,meeting,two_way,U1,C1\n"


def write(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def sync(folder: Path, db: str, *extra: str):
    return CliRunner().invoke(cli, ["sync", "csv", str(folder), "--db", db, *extra])


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'csv.db'}"


def snapshot(db: str) -> dict[str, list]:
    store = Store(db)
    with store.engine.connect() as conn:
        return {t: sorted(map(tuple, conn.execute(sa.text(f"select remote_id, name from {t}"))))
                for t in ("accounts", "contacts", "users")}


def test_good_folder_round_trips(tmp_path: Path, db: str) -> None:
    folder = write(tmp_path / "good", accounts="\ufeff" + ACCOUNTS, contacts=CONTACTS, users=USERS,
                   interactions=INTERACTIONS)
    result = sync(folder, db)
    assert result.exit_code == 0, result.output
    store = Store(db)
    contacts = {c.remote_id: c for c in store.records("contact")}
    assert contacts["C1"].buying_role == "decision_maker" and contacts["C1"].stance == 3
    assert contacts["C1"].seniority == "c_suite"                     # classified from the title
    assert contacts["C2"].department == "procurement" and contacts["C2"].seniority == "manager"
    interaction = next(store.records("interaction"))
    assert interaction.user_ids == ("U1",) and interaction.contact_ids == ("C1",)
    assert "accounts" in result.output and "created" in result.output


def test_resync_updates_and_marks_removed_rows_deleted(tmp_path: Path, db: str) -> None:
    folder = write(tmp_path / "f", accounts=ACCOUNTS)
    assert sync(folder, db).exit_code == 0
    write(folder, accounts="id,name\nA1,Acme Renamed\n")
    assert sync(folder, db).exit_code == 0
    store = Store(db)
    live = {a.remote_id: a.name for a in store.records("account")}
    assert live == {"A1": "Acme Renamed"}
    assert store.count("account", include_deleted=True) == 2


BAD_CASES = {
    "missing column": ({"contacts": "id,name\nC1,Ann\n"}, "contacts.csv:1:3", "account_id"),
    "bad date": ({"interactions": "id,account_id,occurred_at,kind\nI1,A1,2026-02-30,call\n"}, "interactions.csv:2:3", "occurred_at"),
    "bad number": ({"opportunities": "id,account_id,amount\nO1,A1,12abc\n"}, "opportunities.csv:2:3", "amount"),
    "unknown enum": ({"interactions": "id,account_id,occurred_at,kind\nI1,A1,2026-01-01,fax\n"}, "interactions.csv:2:4", "kind"),
    "duplicate id": ({"users": "id,name\nU1,A\nU2,B\nU1,C\n"}, "users.csv:4:1", "twice"),
    "unknown reference": ({"contacts": "id,account_id,name\nC1,A9,Ann\n"}, "contacts.csv:2:2", "A9"),
    "empty file": ({"users": ""}, "users.csv:1:1", "empty"),
    "ragged row": ({"users": "id,name\nU1,A,extra\n"}, "users.csv:2:", "fields"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_one_located_error_and_nothing_written(tmp_path: Path, db: str, case: str) -> None:
    good = write(tmp_path / "good", accounts=ACCOUNTS, users=USERS)
    assert sync(good, db).exit_code == 0
    before = snapshot(db)
    files, location, words = BAD_CASES[case]
    bad = write(tmp_path / "bad", accounts="id,name\nA1,Acme CHANGED\nA2,Globex\nA3,New\n", **files)
    result = sync(bad, db)
    assert result.exit_code == 3, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert location in message and words in message
    assert "Traceback" not in result.output
    assert snapshot(db) == before


def test_wrong_encoding(tmp_path: Path, db: str) -> None:
    folder = tmp_path / "latin"
    folder.mkdir()
    (folder / "accounts.csv").write_bytes("id,name\nA1,Société Générale\n".encode("latin-1"))
    result = sync(folder, db)
    assert result.exit_code == 3 and "UTF-8" in result.stderr and "accounts.csv:2" in result.stderr


def test_not_a_csv_file(tmp_path: Path, db: str) -> None:
    folder = tmp_path / "binary"
    folder.mkdir()
    (folder / "accounts.csv").write_bytes(b"id,name\nA1,\x00\x01\x02binary\n")
    result = sync(folder, db)
    assert result.exit_code == 3 and "accounts.csv:2" in result.stderr


def test_enormous_field(tmp_path: Path, db: str) -> None:
    folder = write(tmp_path / "huge", accounts="id,name\nA1," + "x" * 1_200_000 + "\n")
    result = sync(folder, db)
    assert result.exit_code == 3 and "accounts.csv:2" in result.stderr and "field" in result.stderr


def test_skip_mode_counts_and_records_bad_rows(tmp_path: Path, db: str) -> None:
    folder = write(tmp_path / "f", accounts=ACCOUNTS,
                   interactions="id,account_id,occurred_at,kind\nI1,A1,2026-01-01,call\nI2,A1,nope,call\nI3,A2,2026-01-02,email\n")
    result = sync(folder, db, "--on-error", "skip")
    assert result.exit_code == 0, result.output
    assert "skipped interactions I2" in result.output
    store = Store(db)
    assert store.count("interaction") == 2
    run = store.runs()[0]
    assert run["status"] == "partial" and run["counts"]["interactions"]["skipped"] == 1
    assert store.skipped(run["id"])[0]["remote_id"] == "I2"


def test_not_a_folder(tmp_path: Path, db: str) -> None:
    result = sync(tmp_path / "nope", db)
    assert result.exit_code == 2 and "not a folder" in result.stderr


def test_sample_folder_syncs(tmp_path: Path, db: str) -> None:
    copy = tmp_path / "sample"
    shutil.copytree(SAMPLE, copy)
    result = sync(copy, db)
    assert result.exit_code == 0, result.output
    assert Store(db).count("interaction") > 10_000
