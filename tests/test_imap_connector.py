"""``crmlink sync imap`` against a real IMAP server (pymap, started on 127.0.0.1 by each
test, crmlink.testing.imap_server) with IMAPClient, linked to a CRM synced from CSV
into the same SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

pytest.importorskip("pymap", reason="the IMAP tests need pymap (pip install -e '.[dev]', Python 3.11+)")

from crmlink import Correspondent, Interaction, SyncContext  # noqa: E402
from crmlink.cli import cli  # noqa: E402
from crmlink.core.store import Store  # noqa: E402
from crmlink.plugins.imap import ImapConnector  # noqa: E402
from crmlink.testing.conformance import ConnectorContract, StreamRun, SuiteConfig  # noqa: E402
from crmlink.testing.imap_server import Fault, ImapServer  # noqa: E402
from tests.faults.common import assert_one_error_line, fast_retries  # noqa: E402
from tests.mailfixtures import crm_export, inbox_messages, message, raw, sent_messages  # noqa: E402

USER = "alice@vendor.example"
PASSWORD = "imap-Secret-Passw0rd"
TOKEN = "ya29.imap-oauth2-TOKEN-0123456789"
#: The Sent folder has a name no list of usual names holds: only its \Sent attribute
#: (SPECIAL-USE) tells; "Sent" is a decoy with a message of its own.
SENT = "Ausgang 2026"
EXPECTED = ["f1@vendor.example|A2", "m1@vendor.example|A1", "m1@vendor.example|A2",
            "n1@news.example|A1", "t1@vendor.example|A1", "t2@pinnaclebank.example|A1",
            "t3@vendor.example|A1", "u1@pinnaclebank.example|A1"]


def new_server(security: str = "ssl") -> ImapServer:
    return ImapServer(users={USER: PASSWORD}, tokens={TOKEN: USER}, special_use={SENT: "\\Sent"},
                      security=security)


def fill(server: ImapServer) -> None:
    server.create(USER, SENT, "Sent")
    server.append(USER, "INBOX", [bytes(m) for m in inbox_messages()])
    server.append(USER, SENT, [bytes(m) for m in sent_messages()])
    decoy = message("<decoy@vendor.example>", USER, "omar@harbor.example", days=9)
    server.append(USER, "Sent", [bytes(decoy)])


@pytest.fixture
def server() -> Iterator[ImapServer]:
    with new_server() as running:
        fill(running)
        yield running


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(cli, ["sync", "csv", str(crm_export(tmp_path / "crm")), "--db", url, "-q"])
    assert result.exit_code == 0, result.output
    return url


def args(server: ImapServer, *extra: str, password: str | None = PASSWORD) -> list[str]:
    secret = ["--password", password] if password else []
    return ["sync", "imap", "--host", server.host, "--port", str(server.port),
            f"--{server.security}", "--username", USER, *secret,
            "--ca-file", server.ca_path or "", *extra]


def sync(server: ImapServer, db: str, *extra: str, password: str | None = PASSWORD) -> Result:
    return CliRunner().invoke(cli, [*args(server, *extra, password=password), "--db", db])


def interactions(db: str, source: str = "imap") -> dict[str, Interaction]:
    found: dict[str, Interaction] = {}
    for record in Store(db).records("interaction", source=source, include_deleted=True):
        assert isinstance(record, Interaction)
        key = record.remote_id.split("|")[0] + "|" + (record.account_id or "")
        assert key not in found, f"duplicate {key}"
        found[key] = record
    return found


def counts(result: Result, stream: str = "messages") -> list[int]:
    line = next(line for line in result.output.splitlines() if line.strip().startswith(stream + " "))
    return [int(n) for n in line.split()[1:]]  # read created updated deleted skipped


def stored_bytes(db: str) -> bytes:
    path = Path(db.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


# --- a full sync -------------------------------------------------------------------------
def test_inbox_and_the_special_use_sent_folder_become_linked_interactions(server: ImapServer, db: str) -> None:
    result = sync(server, db)
    assert result.exit_code == 0, result.output
    found = interactions(db)
    assert sorted(found) == EXPECTED  # the decoy "Sent" folder is not read
    thread = [found[k] for k in ("t1@vendor.example|A1", "t2@pinnaclebank.example|A1", "t3@vendor.example|A1")]
    assert [i.direction for i in thread] == ["outbound", "inbound", "two_way"]  # Inbox read first
    assert thread[0].user_ids == ("U1", "U2") and thread[0].contact_ids == ("C1",)
    assert {i.link_source for i in found.values()} == {"csv"}
    news = found["n1@news.example|A1"]
    assert (news.recipient_count, news.campaign) == (51, "<weekly.pinnaclebank.example>")
    people = [(p.account_id, p.address, p.name) for p in Store(db).records("correspondent", source="imap")
              if isinstance(p, Correspondent)]
    assert people == [("A1", "juergen@pinnaclebank.example", "Jürgen Groß")]  # RFC 2047 decoded
    state = Store(db).get_state("imap", "messages")
    assert state is not None and set(state["folders"]) == {"INBOX", SENT}
    assert state["folders"][SENT]["uidvalidity"] == server.uidvalidity(USER, SENT)


def test_only_header_fields_are_fetched_and_nobody_else_is_kept(server: ImapServer, db: str) -> None:
    config = Path(db.removeprefix("sqlite:///")).parent / "crmlink.toml"
    config.write_text("[identity]\nstore_subjects = false\n")
    result = sync(server, db, "--config", str(config))
    assert result.exit_code == 0, result.output
    raw_store = stored_bytes(db)
    for absent in (b"body is never read", b"Pricing", b"stranger@gmail.com", PASSWORD.encode()):
        assert absent not in raw_store
    with server.client(USER) as client:  # PEEK: reading headers leaves messages unread
        client.select_folder("INBOX", readonly=True)
        assert client.search(["SEEN"]) == []


def test_xoauth2_and_starttls(db: str) -> None:
    with new_server("starttls") as running:
        fill(running)
        result = CliRunner().invoke(cli, [*args(running, "--oauth2-token", TOKEN, password=None), "--db", db])
        assert result.exit_code == 0, result.output
        assert sorted(interactions(db)) == EXPECTED
        assert TOKEN not in result.output


# --- incremental runs --------------------------------------------------------------------
def test_later_runs_read_only_new_mail(server: ImapServer, db: str) -> None:
    assert sync(server, db, "--fetch-size", "2").exit_code == 0
    again = sync(server, db)
    assert again.exit_code == 0 and counts(again) == [0, 0, 0, 0, 0]
    reply = message("<t4@pinnaclebank.example>", "raj@pinnaclebank.example", USER, days=6,
                    reply_to="<m1@vendor.example>")
    server.append(USER, "INBOX", [bytes(reply)])
    answer = message("<t5@vendor.example>", USER, "raj@pinnaclebank.example", days=6.5,
                     reply_to="<t4@pinnaclebank.example>")
    server.append(USER, SENT, [bytes(answer)])
    third = sync(server, db)
    assert third.exit_code == 0, third.output
    assert counts(third)[:2] == [2, 2]
    found = interactions(db)
    assert len(found) == len(EXPECTED) + 2
    assert found["t4@pinnaclebank.example|A1"].direction == "inbound"
    assert found["t5@vendor.example|A1"].direction == "two_way"


def test_a_new_uidvalidity_reads_the_folder_again_and_counts_each_message_once(server: ImapServer,
                                                                                db: str) -> None:
    assert sync(server, db).exit_code == 0
    before = interactions(db)
    old = server.uidvalidity(USER, SENT)
    server.recreate(USER, SENT)
    assert server.uidvalidity(USER, SENT) != old
    result = sync(server, db)
    assert result.exit_code == 0, result.output
    assert "UIDVALIDITY of Ausgang 2026 changed" in result.output
    read, created, updated, *_ = counts(result)
    assert read >= len(sent_messages()) and (created, updated) == (0, 0)
    assert interactions(db) == before


def test_the_same_message_in_inbox_and_sent_counts_once(server: ImapServer, db: str) -> None:
    server.append(USER, "INBOX", [bytes(sent_messages()[0])])  # t1 was copied to Alice's Inbox too
    result = sync(server, db)
    assert result.exit_code == 0, result.output
    assert sorted(interactions(db)) == EXPECTED


def test_folders_named_with_folder_replace_the_default(server: ImapServer, db: str) -> None:
    result = sync(server, db, "--folder", "Sent")
    assert result.exit_code == 0, result.output
    assert sorted(interactions(db)) == ["decoy@vendor.example|A2"]


# --- messy mail --------------------------------------------------------------------------
def messy(server: ImapServer) -> None:
    latin1 = raw(b"From: J\xfcrgen <juergen@pinnaclebank.example>\r\nTo: alice@vendor.example\r\n"
                 b"Date: Tue, 1 Sep 2026 10:00:00 +0000\r\nMessage-ID: <latin1@pinnaclebank.example>")
    no_date = raw(b"From: lena@pinnaclebank.example\r\nTo: alice@vendor.example\r\n"
                  b"Date: someday soon\r\nMessage-ID: <bad-date@pinnaclebank.example>")
    server.create(USER, "Messy")
    server.append(USER, "Messy", [latin1, no_date])


def test_malformed_headers_are_skipped_and_a_bad_date_falls_back_to_the_arrival(server: ImapServer,
                                                                               db: str) -> None:
    messy(server)
    result = sync(server, db, "--folder", "Messy")
    assert result.exit_code == 0, result.output
    assert counts(result)[4] == 1
    assert "Messy: UID 101: message '<latin1@pinnaclebank.example>', field 'from'" in result.output
    found = interactions(db)
    assert list(found) == ["bad-date@pinnaclebank.example|A1"]  # dated by its INTERNALDATE
    assert found["bad-date@pinnaclebank.example|A1"].occurred_at.year >= 2026


def test_on_error_fail_names_the_folder_and_uid(server: ImapServer, db: str) -> None:
    messy(server)
    result = sync(server, db, "--folder", "Messy", "--on-error", "fail")
    assert_one_error_line(result, 3, "Messy: UID 101", "latin1@pinnaclebank.example")


# --- errors ------------------------------------------------------------------------------
def test_wrong_password_and_token_fail_with_one_line(server: ImapServer, db: str) -> None:
    wrong = sync(server, db, password="not-the-password")
    line = assert_one_error_line(wrong, 4, "refused the login", USER)
    assert "not-the-password" not in wrong.output and line
    token = CliRunner().invoke(cli, [*args(server, "--oauth2-token", "expired-token-123", password=None),
                                     "--db", db])
    assert_one_error_line(token, 4, "refused the login")


def test_untrusted_certificate_unknown_folder_and_bad_settings(server: ImapServer, db: str) -> None:
    command = [a for a in args(server) if a not in ("--ca-file", server.ca_path)]
    untrusted = CliRunner().invoke(cli, [*command, "--db", db])
    assert_one_error_line(untrusted, 4, "certificate", "--ca-file")
    missing = sync(server, db, "--folder", "Nope")
    assert_one_error_line(missing, 4, "no folder 'Nope'")
    with new_server("starttls") as clear:  # TLS from the first byte against a clear port
        command = [a for a in args(clear) if a != "--starttls"]
        handshake = CliRunner().invoke(cli, [*command, "--ssl", "--db", db])
    assert_one_error_line(handshake, 4, "TLS handshake", "--starttls")
    both = sync(server, db, "--starttls")
    assert both.exit_code == 2 and "--ssl and --starttls" in both.output
    neither = sync(server, db, password=None)
    assert neither.exit_code == 2 and "IMAP_PASSWORD" in neither.output


def test_a_dropped_connection_is_retried_and_the_result_equals_a_clean_run(
        server: ImapServer, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast_retries(monkeypatch)
    monkeypatch.setenv("CRMLINK_BATCH_SIZE", "1")
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    assert CliRunner().invoke(cli, ["sync", "csv", str(tmp_path / "crm"), "--db", clean, "-q"]).exit_code == 0
    assert sync(server, clean, "--fetch-size", "2").exit_code == 0
    server.add_fault(Fault("drop", after=3))
    server.add_fault(Fault("bye", after=2))
    server.add_fault(Fault("stall", after=1))
    result = sync(server, db, "--fetch-size", "2", "--timeout", "3")  # the stall ends in a timeout
    assert result.exit_code == 0, result.output
    assert "broke" in result.output and "retries (each resumed from the last saved batch): messages 3" in result.output
    assert not server.faults
    assert interactions(db) == interactions(clean)


def test_a_drop_during_an_incremental_read_loses_and_repeats_nothing(
        server: ImapServer, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast_retries(monkeypatch)
    monkeypatch.setenv("CRMLINK_BATCH_SIZE", "1")
    assert sync(server, db, "--fetch-size", "1").exit_code == 0
    new = [message(f"<new{n}@pinnaclebank.example>", "lena@pinnaclebank.example", USER, days=10 + n)
           for n in range(4)]
    server.append(USER, "INBOX", [bytes(m) for m in new])
    server.add_fault(Fault("drop", after=2))
    result = sync(server, db, "--fetch-size", "1")
    assert result.exit_code == 0, result.output
    assert "retries (each resumed from the last saved batch): messages 1" in result.output
    read, created, *_ = counts(result)
    assert created == 4 and read >= 4
    assert sorted(interactions(db)) == sorted([*EXPECTED, *(f"new{n}@pinnaclebank.example|A1" for n in range(4))])


def test_failures_are_classified_for_the_retry_policy() -> None:
    import imaplib
    import socket
    import ssl

    from imapclient.exceptions import LoginError

    from crmlink import AuthError, FatalError, RetriableError
    from crmlink.plugins.imap.client import UnknownFolder, classify_error

    cases = [(LoginError("[AUTHENTICATIONFAILED] Invalid credentials"), AuthError),
             (imaplib.IMAP4.abort("socket error: EOF"), RetriableError),
             (imaplib.IMAP4.abort("BYE shutting down"), RetriableError),
             (TimeoutError("timed out"), RetriableError), (ConnectionResetError(104, "reset"), RetriableError),
             (BrokenPipeError(32, "broken pipe"), RetriableError),
             (socket.gaierror(-2, "Name or service not known"), FatalError),
             (ConnectionRefusedError(111, "refused"), FatalError),
             (ssl.SSLError(1, "wrong version number"), FatalError), (UnknownFolder("Nope"), FatalError),
             (imaplib.IMAP4.error("select failed: no such mailbox"), FatalError)]
    for exc, kind in cases:
        found = classify_error(exc, "the IMAP server h:993", USER)
        assert type(found) is kind, (exc, found)
    assert classify_error(ValueError("ours")) is None


def test_retries_running_out_then_a_rerun_completes(server: ImapServer, db: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fast_retries(monkeypatch)
    monkeypatch.setenv("CRMLINK_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("CRMLINK_BATCH_SIZE", "1")
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    assert CliRunner().invoke(cli, ["sync", "csv", str(tmp_path / "crm"), "--db", clean, "-q"]).exit_code == 0
    assert sync(server, clean, "--fetch-size", "1").exit_code == 0
    server.add_fault(Fault("drop", after=4, times=2))
    failed = sync(server, db, "--fetch-size", "1")
    assert_one_error_line(failed, 4, "gave up on messages", "resumes")
    partial = interactions(db)
    assert 0 < len(partial) < len(EXPECTED)
    rerun = sync(server, db, "--fetch-size", "1")
    assert rerun.exit_code == 0, rerun.output
    assert interactions(db) == interactions(clean)


def test_an_api_budget_stops_cleanly_and_the_next_run_resumes(server: ImapServer, db: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMLINK_BATCH_SIZE", "1")
    stopped = sync(server, db, "--fetch-size", "1", "--api-budget", "3")
    assert stopped.exit_code == 5, stopped.output
    assert 0 < len(interactions(db)) < len(EXPECTED)
    assert sync(server, db, "--fetch-size", "1").exit_code == 0
    assert sorted(interactions(db)) == EXPECTED


# --- named sources, environment, doctor --------------------------------------------------
def source_config(tmp_path: Path, server: ImapServer, secret: str | None = None) -> Path:
    config = tmp_path / "crmlink.toml"
    config.write_text(f'[sources.work]\nconnector = "imap"\nhost = "{server.host}"\nport = {server.port}\n'
                      f'username = "{USER}"\nca_file = "{server.ca_path}"\n'
                      + (f'password = "{secret}"\n' if secret else ""))
    return config


def test_a_named_source_with_the_password_from_the_environment(server: ImapServer, db: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = source_config(tmp_path, server)
    monkeypatch.setenv("IMAP_PASSWORD", PASSWORD)
    result = CliRunner().invoke(cli, ["sync", "work", "--config", str(config), "--db", db])
    assert result.exit_code == 0, result.output
    assert sorted(interactions(db, "work")) == EXPECTED


def test_login_keeps_the_password_for_a_named_source(server: ImapServer, db: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAP_PASSWORD", raising=False)
    config = source_config(tmp_path, server)
    stored = CliRunner().invoke(cli, ["login", "work", "--config", str(config)], input=f"{PASSWORD}\n\n")
    assert stored.exit_code == 0, stored.output
    assert "Stored password of source 'work'" in stored.output and PASSWORD not in stored.output
    result = CliRunner().invoke(cli, ["sync", "work", "--config", str(config), "--db", db])
    assert result.exit_code == 0, result.output
    assert sorted(interactions(db, "work")) == EXPECTED


def test_doctor_logs_in_and_counts_the_folders(server: ImapServer, tmp_path: Path) -> None:
    def doctor(secret: str) -> Result:
        config = source_config(tmp_path, server, secret)
        return CliRunner().invoke(cli, ["doctor", "--config", str(config),
                                        "--db", f"sqlite:///{tmp_path / 'd.db'}"])

    healthy = doctor(PASSWORD)
    assert healthy.exit_code == 0, healthy.output
    assert "work (imap)" in healthy.stdout and f"INBOX (4 messages); {SENT} (5 messages)" in healthy.stdout
    refused = doctor("not-the-password")
    assert refused.exit_code == 4 and "refused the login" in refused.stdout
    assert "not-the-password" not in refused.output and PASSWORD not in healthy.output


def test_secrets_never_leak(tmp_path: Path) -> None:
    """The password and the OAuth2 token, in flags, the environment and a named source, on
    success and failure, with --debug -vv: in no output and no byte of the store."""
    from tests.test_secrets import Leaks

    leaks = Leaks(tmp_path)
    leaks.env = {k: v for k, v in leaks.env.items() if not k.startswith("IMAP_")}
    leaks.secrets |= {PASSWORD, TOKEN, "not-the-IMAP-password"}
    with new_server() as running:
        fill(running)
        leaks.run("sync", "csv", str(crm_export(tmp_path / "crm")))
        base = [a for a in args(running, password=None)]
        leaks.run(*base, "--password", PASSWORD)
        leaks.run(*base, "--full", env={"IMAP_PASSWORD": PASSWORD})
        leaks.run(*base, "--full", "--oauth2-token", TOKEN)
        config = source_config(tmp_path, running, PASSWORD)
        leaks.run("sync", "work", env={"CRMLINK_CONFIG": str(config)})
        leaks.run("doctor", env={"CRMLINK_CONFIG": str(config)}, code=None)
        wrong = leaks.run(*base, "--password", "not-the-IMAP-password", code=None)
        assert "refused the login" in wrong
        running.add_fault(Fault("drop", after=1, times=5))
        leaks.run(*base, "--full", "--password", PASSWORD, code=None)
    for command in (["status"], ["audit"], ["plugins"]):
        leaks.run(*command, env={"IMAP_PASSWORD": PASSWORD}, code=None)
    leaks.check()


# --- the conformance kit -----------------------------------------------------------------
class TestImapConformance(ConnectorContract):
    """The standard connector checks against a server holding the fixture mail."""

    connector = ImapConnector
    suite = SuiteConfig(incremental_streams=("messages",))
    _server: ImapServer | None = None

    @classmethod
    def setup_class(cls) -> None:
        import tempfile

        cls._dir = tempfile.TemporaryDirectory()
        running = cls._server = new_server()
        running.start()
        fill(running)
        url = f"sqlite:///{Path(cls._dir.name) / 'store.db'}"
        crm = crm_export(Path(cls._dir.name) / "crm")
        assert CliRunner().invoke(cli, ["sync", "csv", str(crm), "--db", url, "-q"]).exit_code == 0
        cls._store = Store(url)
        cls.config: dict[str, Any] = {"host": running.host, "port": running.port, "username": USER,
                                      "password": PASSWORD, "ca_file": running.ca_path}

    @classmethod
    def teardown_class(cls) -> None:
        if cls._server is not None:
            cls._server.stop()
        cls._dir.cleanup()

    def test_records_are_canonical(self, first_run: dict[str, StreamRun]) -> None:
        """The kit's check on the interactions; the unknown people that come in the same
        stream after each FETCH's messages are checked for the same basics."""
        people = [r for run in first_run.values() for r in run.records if isinstance(r, Correspondent)]
        assert people and all(r.remote_id and r.account_id and r.address for r in people)
        only = {name: replace(run, records=[r for r in run.records if not isinstance(r, Correspondent)])
                for name, run in first_run.items()}
        super().test_records_are_canonical(only)

    def make_connector(self) -> ImapConnector:
        connector = ImapConnector(dict(self.config))
        store = self._store
        connector.prepare(SyncContext("imap", records=lambda e, s: store.records(e, source=s),
                                      crm_sources=lambda: ["csv"]))
        return connector
