"""A store whose disk fills up while a command writes, whose file is damaged, or that
this user cannot write: one sentence and exit 6, never "internal error", and nothing of
the failed command half-written; an output that cannot be written: one sentence too.

SQLite's page limit (``PRAGMA max_page_count``, set on every connection crmlink opens)
stands in for a full disk: SQLite reports both as ``SQLITE_FULL``, "database or disk is
full". PostgreSQL's ``disk_full`` is recognised by its SQLSTATE (53100)."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg.errors
import pytest
from click.testing import CliRunner, Result

from crmlink import hookimpl
from crmlink.cli import cli
from crmlink.core import aggregate_store, engine
from crmlink.core.engine import damaged, disk_full
from crmlink.core.host import get_plugin_host
from crmlink.testing.generate import generate
from tests.test_csv_bad_input import dump

SAMPLE = Path(__file__).parent.parent / "examples" / "sample"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def pages(db: str) -> int:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def test_a_full_disk_mid_import_is_one_sentence_and_the_store_is_as_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'full.db'}"
    assert run("sync", "csv", str(SAMPLE), "--db", db, "--source", "sample").exit_code == 0
    before, limit = dump(db), pages(db) + 20
    folder = tmp_path / "export"
    generate(folder, 20, 3000, contacts=200, profile="multiparty")

    connect = engine._sqlite_connect

    def full_soon(dbapi_connection: Any, record: Any) -> None:
        connect(dbapi_connection, record)
        dbapi_connection.execute(f"PRAGMA max_page_count = {limit}")

    monkeypatch.setattr(engine, "_sqlite_connect", full_soon)
    result = run("sync", "csv", str(folder), "--db", db)
    monkeypatch.undo()

    assert result.exit_code == 6, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: the store {db} is out of disk space"), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.output
    assert dump(db) == before
    status = run("status", "--db", db)
    assert status.exit_code == 0, status.output
    failed = status.stdout[status.stdout.index("(csv) failed"):]
    interactions = next(line for line in failed.splitlines() if line.split()[:1] == ["interactions"]).split()
    # the import's one transaction was rolled back: rows were read, none created
    assert int(interactions[2]) > 0 and interactions[3:5] == ["created", "0"], failed


def test_a_full_disk_after_the_sync_is_stored_says_the_sync_was_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync stores its records, then brings the audit's aggregates up to date: a disk
    that fills up then fails the command (exit 6), but its sentence says the records are
    stored and what is behind, not that the command was rolled back; ``crmlink
    aggregate`` finishes the job once there is room."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run("sync", "csv", str(SAMPLE), "--db", db).exit_code == 0
    folder = tmp_path / "export"  # the same source again: its aggregates are rebuilt after the write
    generate(folder, 20, 3000, contacts=200, profile="multiparty")
    replace = aggregate_store.replace

    def full(conn: Any, source: str, pending: Any) -> Any:
        # the database may not grow past its size now: SQLite's "database or disk is full"
        conn.exec_driver_sql(f"PRAGMA max_page_count = {conn.exec_driver_sql('PRAGMA page_count').scalar()}")
        return replace(conn, source, pending)

    monkeypatch.setattr(aggregate_store, "replace", full)
    result = run("sync", "csv", str(folder), "--db", db)
    monkeypatch.undo()

    assert result.exit_code == 6, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "Error: the sync was stored (run 2), but updating the audit's aggregates then failed: "
        f"the store {db} is out of disk space"), result.stderr
    assert "`crmlink aggregate` redoes that step alone" in lines[0]
    status = run("status", "--db", db)
    assert status.stdout.startswith("run 2: csv (csv) ok"), status.stdout
    assert run("aggregate", "--db", db).exit_code == 0
    assert run("audit", "--db", db, "--as-of", "2026-11-20", "--output", str(tmp_path / "a.json")).exit_code == 0


def test_a_store_that_cannot_be_written_is_audited_and_a_sync_into_it_is_one_sentence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store SQLite opens read-only (``mode=ro`` here; a file without write permission
    answers the same ``SQLITE_READONLY``): an audit works, its cache not stored, and a
    sync ends with one sentence and exit 6 (it was "internal error"). The URI's path is
    not taken for a folder to make (a ``file:`` folder appeared in the working one)."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "store.db"
    assert run("sync", "csv", str(SAMPLE), "--db", f"sqlite:///{db}").exit_code == 0
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    audit = run("audit", "--db", read_only, "--as-of", "2026-11-20", "--output", str(tmp_path / "audit.json"))
    assert audit.exit_code == 0, audit.output
    result = run("sync", "csv", str(SAMPLE), "--db", read_only)
    assert result.exit_code == 6, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be written (attempt to write a readonly database)" in lines[0], lines
    assert lines[0].startswith("Error: the store ") and "internal error" not in lines[0]
    assert not (tmp_path / "file:").exists()


def test_a_store_url_naming_a_folder_is_one_sentence(tmp_path: Path) -> None:
    result = run("status", "--db", f"sqlite:///{tmp_path}")
    assert result.exit_code == 6, result.output
    assert result.stderr.strip() == (f"Error: the store URL sqlite:///{tmp_path} names a folder, not a store's file: "
                                     "give a file's path, an existing store or one to create "
                                     f"(sqlite:///{tmp_path}/crmlink.db)")


def _other_user() -> int | None:
    """A user who cannot write a folder made read-only: this process's own when it is
    not root; as root, ``nobody`` (65534), when it can run this Python and crmlink."""
    if os.geteuid() != 0:
        return os.geteuid()
    try:
        probe = subprocess.run([sys.executable, "-c", "import crmlink"], capture_output=True, check=False, cwd="/",
                               preexec_fn=_become(65534))  # noqa: PLW1509 - no threads started in the child
    except OSError:  # this Python is not this user's to run
        return None
    return 65534 if probe.returncode == 0 else None


def _become(user: int) -> Callable[[], None]:
    """What a child runs before crmlink to be ``user`` (its group too: root's group would
    still give root's group permissions)."""
    def become() -> None:
        os.setgroups([])
        os.setgid(user)
        os.setuid(user)
    return become


def test_a_store_in_a_folder_this_user_cannot_write_is_one_sentence() -> None:
    """SQLite makes its write-ahead log's files beside a WAL store even to read it: in a
    folder the user cannot write, even ``status`` fails, and says why and what to do (it
    said "cannot open the store: attempt to write a readonly database")."""
    user = _other_user()
    if user is None:
        pytest.skip("no user to run crmlink as who cannot write the folder")
    with tempfile.TemporaryDirectory() as top:  # in the system's temporary folder: any user reaches it
        os.chmod(top, 0o755)
        folder = Path(top) / "shared"
        folder.mkdir()
        db = f"sqlite:///{folder / 'store.db'}"
        assert run("sync", "csv", str(SAMPLE), "--db", db).exit_code == 0
        for leftover in folder.glob("store.db-*"):  # as after the last connection closed
            leftover.unlink()
        os.chmod(folder, 0o555)
        try:
            done = subprocess.run([sys.executable, "-m", "crmlink", "status", "--db", db], capture_output=True,
                                  text=True, check=False, timeout=120, cwd="/",
                                  preexec_fn=_become(user) if user != os.geteuid() else None)  # noqa: PLW1509
        finally:
            os.chmod(folder, 0o755)
    assert done.returncode == 6, done.stderr
    assert done.stderr.startswith(f"Error: the store {db} is in a folder this user cannot write"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("error", "full"), [
    (sqlite3.OperationalError("database or disk is full"), True),
    (sqlite3.OperationalError("database is locked"), False),
    (psycopg.errors.DiskFull("could not extend file: No space left on device"), True),
    (psycopg.errors.OutOfMemory("out of memory"), False),
    (ValueError("disk is full"), False),
    (None, False),
])
def test_disk_full_is_told_from_other_errors(error: BaseException | None, full: bool) -> None:
    assert disk_full(error) is full


class _TempFilesFull:
    """A plugin whose findings hook meets a full disk (as SQLite's temporary files
    would, outside any transaction of the store's)."""

    @hookimpl
    def account_findings(self, view: Any) -> list[Any]:
        raise sqlite3.OperationalError("database or disk is full")


def test_a_full_disk_met_outside_the_store_s_transactions_is_the_same_sentence(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run("sync", "csv", str(SAMPLE), "--db", db).exit_code == 0
    host = get_plugin_host(load_entrypoints=False)
    host.register("full", _TempFilesFull())
    result = CliRunner().invoke(cli, ["audit", "--db", db, "--workers", "1"], obj={"host": host})
    assert result.exit_code == 6, result.output
    assert result.output.startswith("Error: the store is out of disk space") and "internal error" not in result.output


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SQLite's shared-memory file as on Linux")
@pytest.mark.parametrize("command", [["status"], ["audit", "--as-of", "2026-11-20"]])
def test_a_store_on_a_full_disk_is_one_sentence_from_the_moment_it_is_opened(tmp_path: Path,
                                                                           command: list[str]) -> None:
    """Every connection to a store in WAL mode first grows SQLite's shared-memory file
    (32 KiB), which a full disk refuses: opening the store for a mere ``status`` fails
    there, and says the disk is full (it said "disk I/O error"). A limit on the size of
    the files the command may write stands in for the full disk."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run("sync", "csv", str(SAMPLE), "--db", db).exit_code == 0
    (tmp_path / "store.db-shm").unlink(missing_ok=True)  # as after the last connection closed

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))  # Python ignores SIGXFSZ

    done = subprocess.run([sys.executable, "-m", "crmlink", *command, "--db", db], capture_output=True, text=True,
                          preexec_fn=small_files, timeout=120, check=False)  # noqa: PLW1509 - no threads yet
    assert done.returncode == 6, done.stderr
    assert done.stderr.startswith(f"Error: the store {db} is out of disk space"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "I/O error" not in done.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("kind", ["json", "markdown"])
def test_an_output_whose_disk_is_full_is_one_sentence(tmp_path: Path, kind: str) -> None:
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run("sync", "csv", str(SAMPLE), "--db", db).exit_code == 0
    result = run("audit", "--db", db, "--format", kind, "--output", "/dev/full")
    assert result.exit_code == 8, result.output
    assert result.output.startswith("Error: no space left on the disk of the output"), result.output
    assert "internal error" not in result.output


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize(("kind", "name", "words"), [
    ("json", "audit.json", "cannot write /proc/audit.json: "),
    ("html", "report", "cannot write the HTML report into /proc/report: "),
])
def test_an_output_where_no_file_can_be_made_is_one_sentence(tmp_path: Path, kind: str, name: str,
                                                              words: str) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert run("sync", "csv", str(SAMPLE), "--db", db).exit_code == 0
    result = run("audit", "--db", db, "--format", kind, "--output", f"/proc/{name}")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {words}"), result.output


def test_a_damaged_store_is_one_sentence_whatever_reads_it(tmp_path: Path) -> None:
    """Every page's header but the first (the schema's) overwritten: any read of a table
    meets SQLite's "database disk image is malformed"."""
    db = f"sqlite:///{tmp_path / 'damaged.db'}"
    assert run("sync", "csv", str(SAMPLE), "--db", db).exit_code == 0
    path = tmp_path / "damaged.db"
    size = path.stat().st_size
    with path.open("r+b") as handle:
        for page in range(4096, size, 4096):
            handle.seek(page)
            handle.write(b"\xff" * 12)
    for args in (["audit", "--format", "json"], ["sync", "csv", str(SAMPLE)]):
        result = run(*args, "--db", db)
        assert result.exit_code == 6, result.output
        assert result.output.startswith(f"Error: the store {db} is damaged ("), result.output
        assert "restore it from a backup" in result.output and "internal error" not in result.output


@pytest.mark.parametrize(("error", "hurt"), [
    (sqlite3.DatabaseError("database disk image is malformed"), True),
    (sqlite3.DatabaseError("file is not a database"), False),  # as str; its errorname is what tells
    (psycopg.errors.DataCorrupted("invalid page in block 7"), True),
    (psycopg.errors.IndexCorrupted("index is corrupted"), True),
    (psycopg.errors.DiskFull("no space"), False),
])
def test_damaged_is_told_from_other_errors(error: BaseException, hurt: bool) -> None:
    assert damaged(error) is hurt


class _ServerGoesAway:
    """A plugin whose first findings hook ends every other session of the audit's
    database on the server, as a restart of the server would."""

    def __init__(self, url: str) -> None:
        self.url, self.done = url.replace("postgresql+psycopg://", "postgresql://"), False

    @hookimpl
    def account_findings(self, view: Any) -> list[Any]:
        if not self.done:
            self.done = True
            with psycopg.connect(self.url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return []


def test_a_store_server_that_goes_away_mid_audit_is_one_sentence(tmp_path: Path, postgres_url: str) -> None:
    folder = tmp_path / "export"
    generate(folder, 250, 2000, contacts=500, profile="multiparty")  # three chunks of accounts
    assert run("sync", "csv", str(folder), "--db", postgres_url).exit_code == 0
    host = get_plugin_host(load_entrypoints=False)
    host.register("away", _ServerGoesAway(postgres_url))
    result = CliRunner().invoke(cli, ["audit", "--db", postgres_url, "--workers", "1", "--format", "json",
                                      "--output", str(tmp_path / "audit.json")], obj={"host": host})
    assert result.exit_code == 6, result.output
    assert result.output.startswith(f"Error: the store {postgres_url} went away: the connection to its server "
                                    "was lost ("), result.output
    assert "internal error" not in result.output and not (tmp_path / "audit.json").exists()
