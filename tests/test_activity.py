"""Messages and meetings to interactions (crmlink.core.activity), and linked
interactions in the store (link_source) and the audit's fold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import parseaddr
from pathlib import Path

import sqlalchemy as sa

from crmlink import (
    Account,
    ActivityMapper,
    Address,
    Attendee,
    CalendarEvent,
    Contact,
    Correspondent,
    IdentityResolver,
    IdentitySettings,
    Interaction,
    MailMessage,
    UnknownPeopleStream,
    User,
)
from crmlink.core import schema
from crmlink.core.store import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ACCOUNTS = [Account("A1", name="Pinnacle Bank", domain="pinnaclebank.com"),
            Account("A2", name="Harbor Telecom", domain="harbor.example")]
CONTACTS = [Contact("C1", account_id="A1", email="lena@pinnaclebank.com"),
            Contact("C2", account_id="A2", email="omar@harbor.example")]
USERS = [User("U1", email="alice@vendor.example"), User("U2", email="ben@vendor.example")]


def mapper(**identity: object) -> ActivityMapper:
    data = {"account": ACCOUNTS, "contact": CONTACTS, "user": USERS}
    settings = IdentitySettings.from_config({"identity": identity})
    resolver = IdentityResolver.from_records(lambda entity, source: data.get(entity, []), ["crm"], settings)
    return ActivityMapper(resolver, mass_limit=50, now=T0 + timedelta(days=30))


def a(text: str) -> Address:
    name, address = parseaddr(text)
    found = Address.parse(address, name)
    assert found is not None
    return found


def mail(mid: str | None, sender: str, to: list[str], *, cc: list[str] = (), at: datetime = T0,
         reply_to: str | None = None, **headers: str) -> MailMessage:
    return MailMessage(mid, at, a(sender), tuple(a(x) for x in to), tuple(a(x) for x in cc),
                       in_reply_to=reply_to, references=(reply_to,) if reply_to else (),
                       subject="Re: pricing", **headers)


def interactions(records: list) -> list[Interaction]:
    return [r for r in records if isinstance(r, Interaction)]


def test_a_thread_outbound_inbound_and_our_answer() -> None:
    m = mapper()
    first = interactions(m.message(mail("<m1@vendor.example>", "alice@vendor.example", ["lena@pinnaclebank.com"])))
    reply = interactions(m.message(mail("<m2@pinnaclebank.com>", "lena@pinnaclebank.com", ["alice@vendor.example"],
                                        reply_to="<m1@vendor.example>")))
    answer = interactions(m.message(mail("<m3@vendor.example>", "alice@vendor.example", ["lena@pinnaclebank.com"],
                                         reply_to="<m2@pinnaclebank.com>")))
    assert [i.direction for i in first + reply + answer] == ["outbound", "inbound", "two_way"]
    one = first[0]
    assert one.remote_id == "m1@vendor.example|crm|A1"
    assert (one.kind, one.account_id, one.user_ids, one.contact_ids, one.link_source) == (
        "email", "A1", ("U1",), ("C1",), "crm")
    assert one.recipient_count == 1 and one.subject is None  # subjects are off by default
    assert answer[0].extra == {"message_id": "m3@vendor.example", "thread": "m2@pinnaclebank.com"}
    assert m.outcomes["interaction"] == 3


def test_internal_public_and_unknown_mail_makes_nothing() -> None:
    m = mapper()
    assert m.message(mail("<i1@x>", "alice@vendor.example", ["ben@vendor.example"])) == []
    assert m.message(mail("<i2@x>", "alice@vendor.example", ["friend@gmail.com"])) == []
    assert m.message(mail("<i3@x>", "lena@pinnaclebank.com", ["omar@harbor.example"])) == []  # none of ours
    assert (m.outcomes["internal"], m.outcomes["no_customer"], m.outcomes["not_ours"]) == (1, 1, 1)


def test_several_accounts_unknown_people_and_subjects() -> None:
    m = mapper(store_subjects=True)
    records = m.message(mail("<x1@vendor.example>", "alice@vendor.example",
                             ["lena@pinnaclebank.com", "omar@harbor.example"],
                             cc=["ben@vendor.example", "Raj Patel <raj@pinnaclebank.com>", "friend@gmail.com"]))
    found = interactions(records)
    assert [(i.account_id, i.contact_ids, i.user_ids) for i in found] == [
        ("A1", ("C1",), ("U1", "U2")), ("A2", ("C2",), ("U1", "U2"))]
    assert {i.recipient_count for i in found} == {4}  # everyone not ours, the stranger too
    assert found[0].subject == "Re: pricing"
    # the same message again (another folder): nothing new, its people not twice
    assert m.message(mail("<x1@vendor.example>", "alice@vendor.example", ["lena@pinnaclebank.com"],
                          cc=["Raj Patel <raj@pinnaclebank.com>"])) == []
    people = list(UnknownPeopleStream(m).records(None))
    assert all(isinstance(p, Correspondent) for p in people)
    assert [(p.account_id, p.address, p.name, p.sent, p.interaction_id) for p in people] == [
        ("A1", "raj@pinnaclebank.com", "Raj Patel", False, "x1@vendor.example|crm|A1")]
    assert list(m.correspondents()) == []  # yielded once
    # the stranger at gmail is kept nowhere
    assert "gmail" not in repr(records) + repr(people)


def test_mass_mail_and_missing_message_id() -> None:
    m = mapper()
    bulk = interactions(m.message(mail("<n1@vendor.example>", "alice@vendor.example", ["lena@pinnaclebank.com"],
                                       list_id="<news.vendor.example>")))
    assert bulk[0].recipient_count == 51 and bulk[0].campaign == "<news.vendor.example>"
    assert m.outcomes["bulk"] == 1
    one = mail(None, "lena@pinnaclebank.com", ["alice@vendor.example"])
    again = mail(None, "lena@pinnaclebank.com", ["alice@vendor.example"])
    assert one.key() == again.key() and one.key().startswith("sha256:")
    assert one.key() != mail(None, "lena@pinnaclebank.com", ["ben@vendor.example"]).key()


def test_meetings_count_accepted_attendees_only() -> None:
    m = mapper()
    organiser = a("alice@vendor.example")
    event = CalendarEvent("ev1", T0, T0 + timedelta(minutes=45), organiser, (
        Attendee(a("lena@pinnaclebank.com"), "ACCEPTED"), Attendee(a("omar@harbor.example"), "DECLINED"),
        Attendee(a("raj@pinnaclebank.com"), "TENTATIVE")), "CONFIRMED")
    records = interactions(m.event(event))
    assert [(i.kind, i.direction, i.account_id, i.contact_ids, i.recipient_count, i.duration_minutes)
            for i in records] == [("meeting", "two_way", "A1", ("C1",), 1, 45.0)]
    assert records[0].remote_id == "ev1|crm|A1"
    recurring = CalendarEvent("ev2", T0, None, organiser, (Attendee(a("lena@pinnaclebank.com"), "ACCEPTED"),),
                              recurrence_id=T0)
    assert interactions(m.event(recurring))[0].remote_id == "ev2/20260302T090000Z|crm|A1"
    assert m.event(CalendarEvent("ev3", T0, None, organiser, event.attendees, "CANCELLED")) == []
    assert m.event(CalendarEvent("ev4", T0 + timedelta(days=31), None, organiser, event.attendees)) == []
    declined_us = CalendarEvent("ev5", T0, None, a("lena@pinnaclebank.com"),
                                (Attendee(organiser, "DECLINED"),))
    assert m.event(declined_us) == []
    assert (m.outcomes["cancelled"], m.outcomes["future"], m.outcomes["not_ours"]) == (1, 1, 1)


def test_linked_interactions_come_with_their_crm_source(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    own = Interaction("I1", source="crm", kind="call", occurred_at=T0, account_id="A1")
    linked = Interaction("m1|crm|A1", source="mail", kind="email", occurred_at=T0, account_id="A1",
                         link_source="crm")
    other = Interaction("m2|crm2|A1", source="mail", kind="email", occurred_at=T0, account_id="A1",
                        link_source="crm2")
    with store.transaction() as conn:
        store.upsert(conn, [own, linked, other])
    until = (T0 + timedelta(days=1)).timestamp()
    assert [(r[0], r[1]) for r in store.interaction_rows("crm", until)] == [("A1", "call"), ("A1", "email")]
    assert len(list(store.interaction_rows("mail", until))) == 2
    assert len(list(store.interaction_rows(None, until))) == 3
    assert list(store.interaction_rows("crm", T0.timestamp() - 1)) == []


def test_a_store_of_schema_1_gains_the_new_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # make it what crmlink wrote before schema 2 (and 7: no trigger)
        conn.exec_driver_sql("DROP TRIGGER interactions_mark_aggregates")
        conn.exec_driver_sql("DROP INDEX ix_interactions_link_source")
        conn.exec_driver_sql("ALTER TABLE interactions DROP COLUMN link_source")
        conn.exec_driver_sql("DROP TABLE correspondents")
        conn.exec_driver_sql("UPDATE crmlink_meta SET value = '1' WHERE key = 'schema_version'")
        conn.exec_driver_sql("INSERT INTO interactions (source, remote_id, kind, occurred_at, deleted, user_ids, "
                             "contact_ids) VALUES ('crm', 'I1', 'call', 1.0, 0, '', '')")
    store = Store(url)
    assert store.schema_version == schema.SCHEMA_VERSION
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("interactions")}
    assert "link_source" in columns
    assert sa.inspect(store.engine).has_table("correspondents")
    assert [r.remote_id for r in store.records("interaction")] == ["I1"]
    assert list(store.interaction_rows("crm", 2.0))[0][1] == "call"
