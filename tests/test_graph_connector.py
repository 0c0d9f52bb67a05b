"""The Graph connector end to end: ``crmlink sync graph`` with the real msal and requests
against the Graph emulator, linked to a CRM synced from CSV into the same store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmlink import Correspondent, Interaction, SyncContext
from crmlink.cli import cli
from crmlink.core.store import Store
from crmlink.plugins.graph import GraphConnector
from crmlink.testing.conformance import ConnectorContract, StreamRun, SuiteConfig, read_connector
from crmlink.testing.graph_emulator import Fault, GraphEmulator

NOW = datetime.now(timezone.utc).replace(microsecond=0)
T0 = NOW - timedelta(days=20)
#: Our users and, per account domain, three contacts; anybody else there is unknown.
CRM = {
    "accounts.csv": "id,name,domain\nA1,Fabrikam,fabrikam.test\nA2,Northwind,northwind.test\n"
                    "A3,Adatum,adatum.test\n",
    "users.csv": "id,name,email\nU1,Ann Lee,ann@contoso.test\nU2,Bob Ray,bob@contoso.test\n"
                 "U3,Carl Iko,carl@contoso.test\n",
    "contacts.csv": "id,account_id,name,email\n" + "".join(
        f"C{a}{i},A{a},{name} {domain},{name}@{domain}\n"
        for a, domain in enumerate(("fabrikam.test", "northwind.test", "adatum.test"), 1)
        for i, name in enumerate(("ann", "bob", "carl"), 1)),
}


def crm_store(tmp_path: Path) -> str:
    """A store holding the CSV CRM above as source ``csv``; returns its URL."""
    folder = tmp_path / "crm"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in CRM.items():
        (folder / name).write_text(text)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(cli, ["sync", "csv", str(folder), "--db", db])
    assert result.exit_code == 0, result.output
    return db


def graph_args(emu: GraphEmulator, *mailboxes: str) -> list[str]:
    boxes = [a for m in (mailboxes or [b.address for b in emu.directory.mailboxes.values()])
             for a in ("--mailbox", m)]
    return ["sync", "graph", "--tenant-id", emu.tenant_id, "--client-id", emu.client_id,
            "--base-url", emu.base_url, "--authority-url", emu.url, *boxes]


def sync(emu: GraphEmulator, db: str, *extra: str, mailboxes: tuple[str, ...] = (),
         secret: str | None = None) -> Result:
    return CliRunner().invoke(cli, [*graph_args(emu, *mailboxes), "--client-secret",
                                    secret or emu.client_secret, "--db", db, *extra])


def interactions(db: str) -> dict[str, Interaction]:
    found: dict[str, Interaction] = {}
    for record in Store(db).records("interaction", source="graph", include_deleted=True):
        assert isinstance(record, Interaction)
        assert record.remote_id not in found, f"duplicate {record.remote_id}"
        found[record.remote_id] = record
    return found


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphEmulator]:
    monkeypatch.delenv("GRAPH_CLIENT_SECRET", raising=False)
    with GraphEmulator() as e:
        assert e.ca_path
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", e.ca_path)
        yield e


def scenario(emu: GraphEmulator) -> dict[str, Any]:
    """Ann's and Bob's mail and meetings with Fabrikam, Northwind and Adatum."""
    ann = emu.add_mailbox("ann@contoso.test", "Ann Lee")
    bob = emu.add_mailbox("bob@contoso.test", "Bob Ray")
    ids: dict[str, Any] = {"ann": ann, "bob": bob}
    first = {"sender": ann, "to": ["carl@fabrikam.test"], "cc": [bob], "subject": "Proposal",
             "sent": T0, "internet_message_id": "<m1@contoso.test>"}
    ids["m1"] = emu.add_message(ann, "sentitems", **first)
    ids["m1-bob"] = emu.add_message(bob, "inbox", **first)  # the same message, Bob's copy
    ids["m2"] = emu.add_message(ann, "inbox", sender="carl@fabrikam.test", to=[ann],
                                subject="RE: Proposal", sent=T0 + timedelta(hours=3),
                                internet_message_id="<m2@fabrikam.test>",
                                headers=[("In-Reply-To", "<m1@contoso.test>")])
    ids["m3"] = emu.add_message(ann, "sentitems", sender=ann, to=["carl@fabrikam.test"],
                                subject="RE: RE: Proposal", sent=T0 + timedelta(hours=5),
                                internet_message_id="<m3@contoso.test>",
                                headers=[("In-Reply-To", "<m2@fabrikam.test>"),
                                         ("References", "<m1@contoso.test> <m2@fabrikam.test>")])
    emu.add_message(ann, "inbox", sender="news@northwind.test", to=[ann], subject="News",
                    sent=T0, internet_message_id="<m4@northwind.test>",
                    headers=[("List-Id", "Northwind news <news.northwind.test>")])
    emu.add_message(ann, "sentitems", sender=ann, to=[bob], subject="Lunch?", sent=T0)
    emu.add_message(ann, "inbox", sender="Dana Wu <dana@fabrikam.test>", to=[ann],
                    subject="Intro", sent=T0 + timedelta(days=1),
                    internet_message_id="<m6@fabrikam.test>")
    emu.add_message(ann, "inbox", sender="stranger@gmail.com", to=[ann], subject="Hello",
                    sent=T0 + timedelta(days=1))
    emu.add_message(ann, "drafts", sender=ann, to=["carl@fabrikam.test"], subject="unsent",
                    sent=T0, is_draft=True)
    hour = timedelta(hours=1)
    ids["e1"] = emu.add_meeting(ann, attendees=[("carl@fabrikam.test", "accepted"),
                                                (bob.address, "accepted")],
                                subject="Pricing", start=T0, end=T0 + hour)
    emu.add_meeting(ann, attendees=[("ann@northwind.test", "declined")], subject="Declined",
                    start=T0, end=T0 + hour)
    weekly = {"pattern": {"type": "weekly", "interval": 1,
                          "daysOfWeek": [T0.strftime("%A").lower()]},
              "range": {"type": "numbered", "startDate": T0.date().isoformat(),
                        "numberOfOccurrences": 3}}
    emu.add_event(ann, subject="Weekly", start=T0, end=T0 + hour, organizer=ann,
                  attendees=[("bob@adatum.test", "accepted")], recurrence=weekly)
    emu.add_event(ann, subject="Later", start=NOW + timedelta(days=3),
                  end=NOW + timedelta(days=3) + hour, organizer=ann,
                  attendees=[("carl@adatum.test", "accepted")])
    emu.add_event(ann, subject="Called off", start=T0, end=T0 + hour, organizer="bob@adatum.test",
                  attendees=[(ann.address, "accepted")], is_cancelled=True)
    return ids


# --- a full sync and what it stores ----------------------------------------------------------
def test_full_sync_links_mail_and_meetings_to_the_crm(emu: GraphEmulator, tmp_path: Path) -> None:
    scenario(emu)
    db = crm_store(tmp_path)
    result = sync(emu, db, "--page-size", "2")
    assert result.exit_code == 0, result.output
    stored = interactions(db)
    emails = {r.extra["message_id"]: r for r in stored.values() if r.kind == "email"}
    assert set(emails) == {"m1@contoso.test", "m2@fabrikam.test", "m3@contoso.test",
                           "m4@northwind.test", "m6@fabrikam.test"}
    m1 = emails["m1@contoso.test"]
    assert m1.remote_id == "m1@contoso.test|csv|A1" and m1.link_source == "csv"
    assert (m1.direction, m1.user_ids, m1.contact_ids) == ("outbound", ("U1", "U2"), ("C13",))
    assert emails["m2@fabrikam.test"].direction == "inbound"
    assert emails["m3@contoso.test"].direction == "two_way"
    news = emails["m4@northwind.test"]
    assert news.account_id == "A2" and news.campaign and (news.recipient_count or 0) > 50
    assert emails["m6@fabrikam.test"].contact_ids == ()
    meetings = [r for r in stored.values() if r.kind == "meeting"]
    assert sorted(r.account_id or "" for r in meetings) == ["A1", "A3", "A3", "A3"]
    pricing = next(r for r in meetings if r.account_id == "A1")
    assert (pricing.user_ids, pricing.contact_ids, pricing.direction) == (("U1", "U2"), ("C13",), "two_way")
    assert all(r.subject is None and not r.deleted for r in stored.values())
    people = {(p.address, p.account_id) for p in Store(db).records("correspondent", source="graph")
              if isinstance(p, Correspondent)}
    assert ("dana@fabrikam.test", "A1") in people  # not a contact: an unknown person at Fabrikam
    assert not {a for a, _ in people} & {"carl@fabrikam.test", "stranger@gmail.com"}


def test_only_headers_are_asked_for_and_nobody_else_is_kept(emu: GraphEmulator, tmp_path: Path) -> None:
    scenario(emu)
    db = crm_store(tmp_path)
    assert sync(emu, db).exit_code == 0
    deltas = [r for r in emu.requests if r.path.endswith("/messages/delta")]
    selects = {r.query["$select"][0] for r in deltas if "$select" in r.query}
    assert selects and all("body" not in s.lower() and "subject" not in s for s in selects)
    assert all(r.headers["prefer"] == "odata.maxpagesize=500" for r in deltas)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
    for absent in (b"stranger@gmail.com", b"Proposal", b"Lunch", b"ann@contoso.test|"):
        assert absent not in raw


def test_subjects_are_kept_only_when_configured(emu: GraphEmulator, tmp_path: Path) -> None:
    scenario(emu)
    db = crm_store(tmp_path)
    config = tmp_path / "crmlink.toml"
    config.write_text("[identity]\nstore_subjects = true\n")
    assert sync(emu, db, "--config", str(config)).exit_code == 0
    subjects = {r.subject for r in interactions(db).values() if r.kind == "email"}
    assert "RE: Proposal" in subjects


def test_incremental_run_reads_only_changes(emu: GraphEmulator, tmp_path: Path) -> None:
    ids = scenario(emu)
    db = crm_store(tmp_path)
    assert sync(emu, db, "--page-size", "3").exit_code == 0
    before = interactions(db)
    emu.reset_log()
    ann = ids["ann"]
    emu.add_message(ann, "inbox", sender="ann@fabrikam.test", to=[ann], subject="New",
                    sent=NOW - timedelta(hours=2), internet_message_id="<m8@fabrikam.test>")
    emu.update_message(ann, ids["m1"], isRead=True)
    emu.delete_message(ann, ids["m2"])
    emu.add_meeting(ann, attendees=[("bob@northwind.test", "accepted")], subject="Ad hoc",
                    start=NOW - timedelta(hours=5), end=NOW - timedelta(hours=4))
    result = sync(emu, db, "--page-size", "3")
    assert result.exit_code == 0, result.output
    after = interactions(db)
    assert set(after) - set(before) == {"m8@fabrikam.test|csv|A1"} | {
        k for k, r in after.items() if r.kind == "meeting" and r.account_id == "A2"}
    assert len(set(after) - set(before)) == 2
    assert not after["m2@fabrikam.test|csv|A1"].deleted  # an exchange that took place stays
    deltas = [r for r in emu.requests if "/delta" in r.path]
    assert deltas and all("$deltatoken" in r.query or "$skiptoken" in r.query for r in deltas)
    again = sync(emu, db)
    assert again.exit_code == 0 and interactions(db) == after


def test_the_same_message_and_meeting_in_two_mailboxes_count_once(emu: GraphEmulator,
                                                                   tmp_path: Path) -> None:
    scenario(emu)
    db = crm_store(tmp_path)
    assert sync(emu, db).exit_code == 0
    stored = interactions(db)
    assert sum(1 for k in stored if k.startswith("m1@contoso.test|")) == 1
    pricing = [r for r in stored.values() if r.kind == "meeting" and r.account_id == "A1"]
    assert len(pricing) == 1  # in Ann's and Bob's calendars, one iCalUId


def test_an_api_budget_stops_cleanly_and_the_next_run_resumes(
        emu: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMLINK_BATCH_SIZE", "1")  # a saved position after every record
    scenario(emu)
    clean = crm_store(tmp_path / "clean")
    assert sync(emu, clean).exit_code == 0
    db = crm_store(tmp_path)
    stopped = sync(emu, db, "--page-size", "1", "--api-budget", "6")
    assert stopped.exit_code == 5, stopped.output
    assert "budget of 6 requests" in stopped.output
    partial = interactions(db)
    assert 0 < len(partial) < len(interactions(clean))
    emu.reset_log()
    assert sync(emu, db, "--page-size", "1").exit_code == 0
    assert interactions(db).keys() == interactions(clean).keys()
    inbox = [r for r in emu.requests if "ann@contoso.test/mailFolders('inbox')" in r.path
             or "ann@contoso.test/mailFolders/inbox" in r.path]
    assert inbox and all(set(r.query) & {"$skiptoken", "$deltatoken"} for r in inbox)  # not again


def test_a_meeting_still_to_come_counts_once_it_has_begun(emu: GraphEmulator, tmp_path: Path) -> None:
    ann = emu.add_mailbox("ann@contoso.test")
    start = NOW + timedelta(hours=2)
    emu.add_meeting(ann, attendees=[("carl@fabrikam.test", "accepted")], subject="Soon",
                    start=start, end=start + timedelta(hours=1))
    dropped = emu.add_meeting(ann, attendees=[("bob@fabrikam.test", "accepted")], subject="Off",
                              start=start, end=start + timedelta(hours=1))
    db = crm_store(tmp_path)
    store = Store(db)
    config = {"tenant_id": emu.tenant_id, "client_id": emu.client_id,
              "client_secret": emu.client_secret, "mailbox": (ann.address,),
              "base_url": emu.base_url, "authority_url": emu.url}

    def run(now: datetime, states: dict[str, Any] | None) -> dict[str, Any]:
        connector = GraphConnector(config)
        connector.prepare(SyncContext("graph", records=lambda e, s: store.records(e, source=s),
                                      crm_sources=lambda: ["csv"], now=now))
        return read_connector(connector, states)

    first = run(NOW, None)
    assert first["events"].records == []
    pending = first["events"].state_out["calendars"][ann.address]["pending"]  # type: ignore[index]
    assert len(pending) == 2
    emu.delete_event(ann, dropped[ann.address])  # called off before it began: never counts
    emu.reset_log()
    later = run(NOW + timedelta(hours=3), {n: r.state_out for n, r in first.items()})
    assert [(r.kind, r.contact_ids) for r in later["events"].records] == [("meeting", ("C13",))]
    assert any("/events/" in r.path for r in emu.requests)  # read again by its id
    assert later["events"].state_out["calendars"][ann.address]["pending"] == {}  # type: ignore[index]


# --- errors ----------------------------------------------------------------------------------
def error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_wrong_secret_unknown_tenant_and_mailbox(emu: GraphEmulator, tmp_path: Path) -> None:
    emu.add_mailbox("ann@contoso.test")
    db = crm_store(tmp_path)
    wrong = sync(emu, db, secret="not-the-secret")
    assert wrong.exit_code == 4
    assert "AADSTS7000215" in error_line(wrong) and "Value (not its Secret ID)" in error_line(wrong)
    tenant = CliRunner().invoke(cli, [*graph_args(emu, "ann@contoso.test"), "--tenant-id", "nope",
                                      "--client-secret", emu.client_secret, "--db", db])
    assert tenant.exit_code == 4 and "tenant 'nope'" in error_line(tenant)
    missing = sync(emu, db, mailboxes=("zed@contoso.test",))
    assert missing.exit_code == 4 and "zed@contoso.test" in error_line(missing)
    assert "ErrorInvalidUser" in error_line(missing)


def test_missing_permission_names_what_to_grant(emu: GraphEmulator, tmp_path: Path) -> None:
    emu.add_mailbox("ann@contoso.test")
    emu.set_roles(["Calendars.Read"])
    result = sync(emu, crm_store(tmp_path))
    assert result.exit_code == 4
    assert "Mail.ReadBasic.All and Calendars.Read" in error_line(result)
    assert "admin consent" in error_line(result)


def test_settings_are_checked(emu: GraphEmulator, tmp_path: Path) -> None:
    db = crm_store(tmp_path)
    no_secret = CliRunner().invoke(cli, [*graph_args(emu, "ann@contoso.test"), "--db", db])
    assert no_secret.exit_code == 2 and "GRAPH_CLIENT_SECRET" in no_secret.output
    bad = sync(emu, db, mailboxes=("not an address",))
    assert bad.exit_code == 2 and "'not an address'" in bad.output
    plain = CliRunner().invoke(cli, [*graph_args(emu, "ann@contoso.test"), "--authority-url",
                                     emu.url.replace("https", "http"), "--client-secret",
                                     emu.client_secret, "--db", db])
    assert plain.exit_code == 4 and "https" in error_line(plain)


def test_secret_from_the_environment_and_mailboxes_from_a_named_source(
        emu: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario(emu)
    db = crm_store(tmp_path)
    config = tmp_path / "crmlink.toml"
    config.write_text(f'[sources.m365]\nconnector = "graph"\ntenant_id = "{emu.tenant_id}"\n'
                      f'client_id = "{emu.client_id}"\nmailbox = ["ann@contoso.test", '
                      f'"bob@contoso.test"]\nbase_url = "{emu.base_url}"\n'
                      f'authority_url = "{emu.url}"\n')
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", emu.client_secret)
    result = CliRunner().invoke(cli, ["sync", "m365", "--config", str(config), "--db", db])
    assert result.exit_code == 0, result.output
    assert {r.source for r in Store(db).records("interaction", source="m365")} == {"m365"}


# --- crmlink doctor --------------------------------------------------------------------------
def test_doctor_signs_in_and_reads_each_mailbox(emu: GraphEmulator, tmp_path: Path) -> None:
    scenario(emu)
    config = tmp_path / "crmlink.toml"

    def write(secret: str) -> None:
        config.write_text(f'[sources.m365]\nconnector = "graph"\ntenant_id = "{emu.tenant_id}"\n'
                          f'client_id = "{emu.client_id}"\nclient_secret = "{secret}"\n'
                          f'mailbox = ["ann@contoso.test", "bob@contoso.test"]\n'
                          f'base_url = "{emu.base_url}"\nauthority_url = "{emu.url}"\n')

    def doctor() -> Result:
        return CliRunner().invoke(cli, ["doctor", "--config", str(config),
                                        "--db", f"sqlite:///{tmp_path / 'd.db'}"])

    write(emu.client_secret)
    healthy = doctor()
    assert healthy.exit_code == 0, healthy.output
    assert "m365 (graph)" in healthy.stdout and "4 of 4: the Inbox and calendar of 2 mailboxes" in healthy.stdout
    assert emu.client_secret not in healthy.output
    emu.set_roles(["Calendars.Read"])
    limited = doctor()
    assert limited.exit_code == 4
    assert "ann@contoso.test mail" in limited.stdout and "Mail.ReadBasic.All" in limited.stdout
    write("not-the-secret")
    refused = doctor()
    assert refused.exit_code == 4 and "AADSTS7000215" in refused.stdout
    assert "not-the-secret" not in refused.output


# --- the conformance kit ---------------------------------------------------------------------
class TestGraphConformance(ConnectorContract):
    """The standard connector checks, against an emulator holding the scenario."""

    connector = GraphConnector
    suite = SuiteConfig(incremental_streams=("messages", "events"))
    _emu: GraphEmulator | None = None
    _store: Store | None = None

    @classmethod
    def setup_class(cls) -> None:
        import os
        import tempfile

        cls._dir = tempfile.TemporaryDirectory()
        emu = cls._emu = GraphEmulator()
        emu.start()
        cls._old_bundle = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = emu.ca_path or ""
        scenario(emu)
        cls._store = Store(crm_store(Path(cls._dir.name)))
        cls.config = {"tenant_id": emu.tenant_id, "client_id": emu.client_id,
                      "client_secret": emu.client_secret,
                      "mailbox": ("ann@contoso.test", "bob@contoso.test"),
                      "base_url": emu.base_url, "authority_url": emu.url}

    @classmethod
    def teardown_class(cls) -> None:
        import os

        if cls._emu is not None:
            cls._emu.stop()
        if cls._old_bundle is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = cls._old_bundle
        cls._dir.cleanup()

    def test_unknown_people_come_with_the_messages(self, first_run: dict[str, StreamRun]) -> None:
        """The unknown people each page's items named come in the same stream, right
        after that page, as :class:`~crmlink.Correspondent` records (stored with the page
        and its saved position, so a later failure cannot lose them): the kit checks
        them as the stream's declared companions; here, that they name an account and
        an address."""
        people = [r for run in first_run.values() for r in run.records
                  if isinstance(r, Correspondent)]
        assert people and all(r.remote_id and r.account_id and r.address for r in people)

    def make_connector(self) -> GraphConnector:
        connector = GraphConnector(dict(self.config))
        store = self._store
        assert store is not None
        connector.prepare(SyncContext("graph", records=lambda e, s: store.records(e, source=s),
                                      crm_sources=lambda: ["csv"]))
        return connector


# --- secrets ---------------------------------------------------------------------------------
def test_secrets_never_leak(tmp_path: Path) -> None:
    """The client secret and every access token issued, given through a flag, the
    environment and a named source, on success and on failures (wrong secret, a token
    refused after renewal, retries running out): in no output, log or byte of the store."""
    from tests.test_secrets import Leaks

    leaks = Leaks(tmp_path)
    leaks.env = {k: v for k, v in leaks.env.items() if not k.startswith("GRAPH_")}
    with GraphEmulator() as emu:
        leaks.env["REQUESTS_CA_BUNDLE"] = emu.ca_path or ""
        scenario(emu)
        secret = emu.client_secret
        leaks.secrets.add(secret)
        crm = tmp_path / "crm"
        crm.mkdir()
        for name, text in CRM.items():
            (crm / name).write_text(text)
        leaks.run("sync", "csv", str(crm))
        base = graph_args(emu, "ann@contoso.test", "bob@contoso.test")
        leaks.run(*base, "--client-secret", secret)
        leaks.run(*base, "--full", env={"GRAPH_CLIENT_SECRET": secret})
        config = tmp_path / "crmlink.toml"
        config.write_text(f'[sources.m365]\nconnector = "graph"\ntenant_id = "{emu.tenant_id}"\n'
                          f'client_id = "{emu.client_id}"\nclient_secret = "{secret}"\n'
                          f'mailbox = ["ann@contoso.test"]\nbase_url = "{emu.base_url}"\n'
                          f'authority_url = "{emu.url}"\n')
        leaks.run("sync", "m365", env={"CRMLINK_CONFIG": str(config)})
        wrong = leaks.run(*base, "--client-secret", "not-the-Graph-secret", code=None)
        assert "AADSTS7000215" in wrong
        leaks.secrets.add("not-the-Graph-secret")
        emu.add_fault(Fault.expire_token(path="*/messages/delta"))
        refused = leaks.run(*base, "--full", "--client-secret", secret, code=None)
        assert "rejected a token it had just issued" in refused
        emu.clear_faults()
        emu.add_fault(Fault.error(503, path="*/calendarView/delta"))
        leaks.run(*base, "--full", "--client-secret", secret, code=None)
        leaks.secrets |= set(emu.auth.tokens())
        assert emu.tokens_issued >= 4
    for command in (["status"], ["audit"], ["plugins"]):
        leaks.run(*command, env={"GRAPH_CLIENT_SECRET": secret}, code=None)
    leaks.check()
