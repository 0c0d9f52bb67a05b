"""``crmlink sync mail``: mbox, .eml folders and Maildir, linked to a CRM in the same
store, through the CLI and a real SQLite store."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmlink import Correspondent, Interaction
from crmlink.cli import cli
from crmlink.core.store import Store
from crmlink.plugins.mail import MailConnector
from crmlink.testing.conformance import ConnectorContract, StreamRun, SuiteConfig
from tests.mailfixtures import (
    crm_export,
    inbox_messages,
    malformed_mbox,
    sent_messages,
    write_maildir,
    write_mbox,
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = invoke("sync", "csv", str(crm_export(tmp_path / "crm")), "--db", url, "-q")
    assert result.exit_code == 0, result.output
    return url


def interactions(url: str) -> dict[str, Interaction]:
    return {r.remote_id.split("|")[0] + "|" + (r.account_id or ""): r
            for r in Store(url).records("interaction", source="mail") if isinstance(r, Interaction)}


def dump(url: str) -> bytes:
    path = Path(url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


def test_an_mbox_becomes_linked_interactions(tmp_path: Path, db: str) -> None:
    box = write_mbox(tmp_path / "alice.mbox", inbox_messages() + sent_messages())
    result = invoke("sync", "mail", str(box), "--db", db)
    assert result.exit_code == 0, result.output
    found = interactions(db)
    assert sorted(found) == ["f1@vendor.example|A2", "m1@vendor.example|A1", "m1@vendor.example|A2",
                             "n1@news.example|A1", "t1@vendor.example|A1", "t2@pinnaclebank.example|A1",
                             "t3@vendor.example|A1", "u1@pinnaclebank.example|A1"]
    thread = [found[k] for k in ("t1@vendor.example|A1", "t2@pinnaclebank.example|A1", "t3@vendor.example|A1")]
    # inbox before sent in the file: the answer t3 still finds t2, read earlier in the run
    assert [i.direction for i in thread] == ["outbound", "inbound", "two_way"]
    assert thread[0].user_ids == ("U1", "U2") and thread[0].contact_ids == ("C1",)
    assert {i.link_source for i in found.values()} == {"csv"}
    assert all(i.subject is None for i in found.values())  # subjects are off by default
    news = found["n1@news.example|A1"]  # a mailing: above the mass-mail limit, the list as campaign
    assert (news.recipient_count, news.campaign) == (51, "<weekly.pinnaclebank.example>")
    assert found["m1@vendor.example|A2"].contact_ids == ("C3",)
    assert found["m1@vendor.example|A1"].contact_ids == ("C2",)
    assert found["u1@pinnaclebank.example|A1"].contact_ids == ()
    people = [r for r in Store(db).records("correspondent", source="mail") if isinstance(r, Correspondent)]
    assert [(p.account_id, p.address, p.name, p.sent) for p in people] == [
        ("A1", "juergen@pinnaclebank.example", "Jürgen Groß", True)]
    assert "1 addresses" not in result.output
    stored = dump(db)
    assert b"stranger@gmail.com" not in stored and b"body is never read" not in stored
    assert b"Pricing" not in stored


def test_the_same_message_in_two_folders_and_formats_counts_once(tmp_path: Path, db: str) -> None:
    folder = tmp_path / "export"
    write_maildir(folder / "Maildir", inbox_messages(), sent_messages())
    write_mbox(folder / "sent.mbox", sent_messages())
    (folder / "eml").mkdir()
    (folder / "eml" / "t1.eml").write_bytes(bytes(sent_messages()[0]))
    result = invoke("sync", "mail", str(folder), "--db", db)
    assert result.exit_code == 0, result.output
    first = interactions(db)
    assert len(first) == 8
    assert first["t3@vendor.example|A1"].direction == "two_way"  # .Sent is read after the inbox
    again = invoke("sync", "mail", str(folder / "sent.mbox"), "--db", db)  # the sender's mailbox again
    assert again.exit_code == 0, again.output
    assert len(interactions(db)) == 8
    assert Store(db).count("correspondent", source="mail") == 1


def test_malformed_messages_are_skipped_and_counted(tmp_path: Path, db: str) -> None:
    box = malformed_mbox(tmp_path / "messy.mbox")
    result = invoke("sync", "mail", str(box), "--db", db)
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.strip().startswith("messages"))
    # read created updated deleted skipped: two messages and the unknown person one names
    assert line.split()[1:] == ["3", "3", "0", "0", "3"]
    assert f"{box}: message 2: message '<bad-date@pinnaclebank.example>', field 'date'" in result.output
    assert "field 'from': the From header has bytes that are not UTF-8" in result.output
    assert "message 4" in result.output and "header line has no colon" in result.output
    assert sorted(interactions(db)) == ["g1@pinnaclebank.example|A1", "utf8@pinnaclebank.example|A1"]
    status = invoke("status", "--db", db)
    assert "skipped      3" in status.output


def test_on_error_fail_stops_with_one_line_and_stores_nothing(tmp_path: Path, db: str) -> None:
    box = malformed_mbox(tmp_path / "messy.mbox")
    result = invoke("sync", "mail", str(box), "--db", db, "--on-error", "fail")
    assert result.exit_code == 3, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and f"{box}: message 2" in errors[0] and "bad-date@pinnaclebank.example" in errors[0]
    assert interactions(db) == {}


def test_subjects_are_kept_when_the_config_says(tmp_path: Path, db: str) -> None:
    config = tmp_path / "crmlink.toml"
    config.write_text("[identity]\nstore_subjects = true\n", encoding="utf-8")
    box = write_mbox(tmp_path / "a.mbox", inbox_messages())
    assert invoke("sync", "mail", str(box), "--db", db, "--config", str(config)).exit_code == 0
    assert interactions(db)["u1@pinnaclebank.example|A1"].subject == "Grüße"


def test_internal_domain_flags_and_ambiguous_domains(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    crm = crm_export(tmp_path / "crm")
    (crm / "users.csv").write_text("id,name\nU1,Alice\n", encoding="utf-8")  # no emails: our domain unknown
    (crm / "accounts.csv").write_text("id,name,domain\nA1,Pinnacle Bank,pinnaclebank.example\n"
                                      "A2,Pinnacle Leasing,pinnaclebank.example\nA3,Harbor,harbor.example\n",
                                      encoding="utf-8")
    (crm / "contacts.csv").write_text("id,account_id,email\nC3,A3,omar@harbor.example\n", encoding="utf-8")
    assert invoke("sync", "csv", str(crm), "--db", url, "-q").exit_code == 0
    box = write_mbox(tmp_path / "a.mbox", inbox_messages() + sent_messages())
    refused = invoke("sync", "mail", str(box), "--db", url)
    assert refused.exit_code == 2 and "--internal-domain" in refused.output
    result = invoke("sync", "mail", str(box), "--db", url, "--internal-domain", "vendor.example")
    assert result.exit_code == 0, result.output
    assert "pinnaclebank.example (csv:account:A1, csv:account:A2)" in result.output
    assert {i.account_id for i in interactions(url).values()} == {"A3"}


def test_no_crm_in_the_store_is_a_usage_error(tmp_path: Path) -> None:
    box = write_mbox(tmp_path / "a.mbox", inbox_messages())
    result = invoke("sync", "mail", str(box), "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.exit_code == 2 and "sync your CRM first" in result.output


class TestMailConformance(ConnectorContract):
    connector = MailConnector
    config: dict[str, Any] = {}
    suite = SuiteConfig()

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _mailbox(cls, tmp_path_factory: pytest.TempPathFactory) -> None:
        folder = tmp_path_factory.mktemp("mail")
        url = f"sqlite:///{folder / 'store.db'}"
        assert invoke("sync", "csv", str(crm_export(folder / "crm")), "--db", url, "-q").exit_code == 0
        cls.config = {"path": str(write_maildir(folder / "Maildir", inbox_messages(), sent_messages()))}
        cls.store = Store(url)

    def test_records_are_canonical(self, first_run: dict[str, StreamRun]) -> None:
        """The kit's check on the interactions; the unknown people that come in the same
        stream after the messages naming them are checked for the same basics."""
        people = [r for run in first_run.values() for r in run.records if isinstance(r, Correspondent)]
        assert people and all(r.remote_id and r.account_id and r.address for r in people)
        only = {name: replace(run, records=[r for r in run.records if not isinstance(r, Correspondent)])
                for name, run in first_run.items()}
        super().test_records_are_canonical(only)

    def make_connector(self) -> MailConnector:
        from crmlink import SyncContext

        connector = MailConnector(dict(self.config))
        store = self.store
        connector.prepare(SyncContext("mail", records=lambda entity, source: store.records(entity, source=source),
                                      crm_sources=store.sources))
        return connector


def directions(url: str, source: str | None = None) -> dict[str, str]:
    return {r.remote_id.split("|")[0]: r.direction for r in Store(url).records("interaction", source=source)
            if isinstance(r, Interaction) and r.account_id == "A1"}


def test_a_reply_read_in_a_later_run_or_another_source_closes_the_exchange(tmp_path: Path,
                                                                          store_url: str) -> None:
    """Their message (the Inbox) synced in one run, our answer (Sent) in a later run, or
    under another source: the answer finds what it answers in the store and is two-way,
    exactly as when both are read in one run (on SQLite and PostgreSQL)."""
    db = store_url
    assert invoke("sync", "csv", str(crm_export(tmp_path / "crm")), "--db", db, "-q").exit_code == 0
    inbox = write_mbox(tmp_path / "inbox.mbox", inbox_messages())
    sent = write_mbox(tmp_path / "sent.mbox", sent_messages())
    together = f"sqlite:///{tmp_path / 'together.db'}"
    assert invoke("sync", "csv", str(tmp_path / "crm"), "--db", together, "-q").exit_code == 0
    both = write_mbox(tmp_path / "both.mbox", inbox_messages() + sent_messages())
    assert invoke("sync", "mail", str(both), "--db", together).exit_code == 0
    assert directions(together)["t3@vendor.example"] == "two_way"

    assert invoke("sync", "mail", str(inbox), "--db", db).exit_code == 0
    assert invoke("sync", "mail", str(sent), "--db", db).exit_code == 0
    assert directions(db) == directions(together)

    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert invoke("sync", "csv", str(tmp_path / "crm"), "--db", other, "-q").exit_code == 0
    assert invoke("sync", "mail", str(inbox), "--db", other, "--source", "alice-inbox").exit_code == 0
    assert invoke("sync", "mail", str(sent), "--db", other, "--source", "alice-sent").exit_code == 0
    assert directions(other, "alice-sent")["t3@vendor.example"] == "two_way"
    assert directions(other, "alice-sent")["t1@vendor.example"] == "outbound"  # answers nobody
