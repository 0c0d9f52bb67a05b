"""Messages and meetings become interactions: the layer every mail or calendar connector
uses, so each of them counts the same way (docs/connectors/mail.md says it for users).

A connector parses its format into a :class:`MailMessage` or a :class:`CalendarEvent`
and hands it to an :class:`ActivityMapper`, which resolves every address
(:mod:`crmlink.core.identity`) against each CRM source in the store and answers with the
interactions to yield: one :class:`~crmlink.core.model.Interaction` per CRM source and
customer account the item involves (``link_source`` names that CRM source; ids refer to
its records). The people at the account who are not contacts
(:class:`~crmlink.core.model.Correspondent`) are kept aside in a temporary file and
yielded afterwards by an :class:`UnknownPeopleStream`, the connector's second stream::

    def streams(self):
        mapper = ActivityMapper(self.context.identity(domains), now=self.context.now)
        yield MyMessagesStream(mapper)      # yields mapper.message(m) for each message
        yield UnknownPeopleStream(mapper)   # then the unknown people those named

The rules:

- A message needs one of ours (a user, or an address at our domains) and one customer
  (a contact, or an unknown person at a known account). Internal-only mail, and mail
  with nobody we know on the customer side, makes nothing.
- Direction: a message from one of ours is ``outbound``; one from anybody else is
  ``inbound``. A message of ours that answers one of theirs (its In-Reply-To, else the
  last of its References, is a message from their side read earlier in the same run, or
  stored inbound by an earlier run or another mail source: one indexed lookup in the
  store for the parent's interaction ids at the same accounts) is ``two_way``: it closes
  an exchange both sides spoke in. A reply of theirs is inbound,
  which the method already counts as them speaking, so a thread with messages from both
  sides is a two-way relationship with reciprocity 1.
- ``recipient_count`` is the number of people on the message who are not ours, so the
  method divides by its square root; a mass mailing (a List-Id or List-Unsubscribe
  header, or Precedence bulk/list/junk) is stored with a count above the mass-mail limit
  (``strength.mass_email_limit``) in force at the sync, and the list as its campaign, so
  the method ignores it. A mailing's sender is not an unknown person.
- A meeting counts the organiser and the attendees who accepted (PARTSTAT ACCEPTED);
  declined, tentative and unanswered invitations do not count. Cancelled meetings and
  meetings that have not started by the sync time make nothing.
- One message or meeting occurrence is one interaction per account: its remote id is
  ``KEY|SOURCE|ACCOUNT`` where KEY is the Message-ID (or a hash of the stable headers
  when it has none; :meth:`MailMessage.key`) or the event's UID and recurrence id, so the
  same message read twice is stored once.
- Privacy: bodies and attachments are never seen here; the subject is kept only with
  ``[identity] store_subjects = true``; addresses are kept only for unknown people at a
  known account. Everyone else is a user or contact id, or nothing.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any

from crmlink.core.connector import Stream, SyncContext
from crmlink.core.errors import ConfigError, InvalidRecord
from crmlink.core.identity import (
    ACCOUNT,
    CONTACT,
    USER,
    Directory,
    IdentityResolver,
    Match,
    normalize_address,
)
from crmlink.core.model import Correspondent, Interaction, Record

#: Precedence header values of bulk mail (RFC 2076; mailing lists and autoresponders).
BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
#: What a meeting counts as attendance (RFC 5545 PARTSTAT).
ACCEPTED = "ACCEPTED"


@dataclass(frozen=True)
class Address:
    """A normalised address (:func:`~crmlink.core.identity.normalize_address`) and the
    display name it came with."""

    address: str
    name: str | None = None

    @classmethod
    def parse(cls, address: str | None, name: str | None = None) -> Address | None:
        """``None`` when ``address`` is not an email address (a group name, an empty
        field, a ``mailto:`` left over is stripped)."""
        text = (address or "").strip()
        if text.lower().startswith("mailto:"):
            text = text[7:]
        normal = normalize_address(text)
        return cls(normal, (name or "").strip() or None) if normal else None


def message_key(message_id: str | None) -> str | None:
    """A Message-ID without its angle brackets and spaces; ``None`` when empty."""
    if not message_id:
        return None
    text = "".join(str(message_id).split()).strip("<>")
    return text or None


@dataclass(frozen=True)
class MailMessage:
    """The headers of one message that count (never the body)."""

    message_id: str | None
    date: datetime
    sender: Address | None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str | None = None
    list_id: str | None = None
    list_unsubscribe: str | None = None
    precedence: str | None = None

    def key(self) -> str:
        """The Message-ID, or when there is none ``sha256:`` and a hash of the date,
        sender, recipients and subject: the same message gets the same key wherever it
        is read."""
        own = message_key(self.message_id)
        if own:
            return own
        parts = [self.date.astimezone(timezone.utc).isoformat(),
                 self.sender.address if self.sender else "",
                 ",".join(sorted(a.address for a in self.to)),
                 ",".join(sorted(a.address for a in self.cc)), self.subject or ""]
        return "sha256:" + hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]

    @property
    def parent(self) -> str | None:
        """The message this one answers: In-Reply-To, else the last of References."""
        return message_key(self.in_reply_to) or (message_key(self.references[-1]) if self.references else None)

    @property
    def thread(self) -> str:
        """The thread's first message: the first of References, else the parent, else itself."""
        return (message_key(self.references[0]) if self.references else None) or self.parent or self.key()

    @property
    def bulk(self) -> bool:
        """A mailing: list headers, or a bulk Precedence."""
        return bool(self.list_id or self.list_unsubscribe
                    or (self.precedence or "").strip().lower() in BULK_PRECEDENCE)


@dataclass(frozen=True)
class Attendee:
    """An invited person and their participation status (RFC 5545 PARTSTAT, upper case)."""

    address: Address
    partstat: str = "NEEDS-ACTION"


@dataclass(frozen=True)
class CalendarEvent:
    """One meeting, or one occurrence of a recurring one (``recurrence_id`` is the
    occurrence's original start)."""

    uid: str
    start: datetime
    end: datetime | None = None
    organizer: Address | None = None
    attendees: tuple[Attendee, ...] = ()
    status: str | None = None
    recurrence_id: datetime | None = None
    summary: str | None = None

    def key(self) -> str:
        """The UID, with the occurrence's original start in UTC for a recurring meeting."""
        if self.recurrence_id is None:
            return self.uid
        return f"{self.uid}/{self.recurrence_id.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"

    @property
    def cancelled(self) -> bool:
        return (self.status or "").upper() == "CANCELLED"

    def present(self) -> list[tuple[Address, bool]]:
        """Who took part: the organiser (unless listed as declining) and the attendees
        who accepted, each with whether they organised it."""
        people: dict[str, tuple[Address, bool]] = {}
        declined = {a.address.address for a in self.attendees if a.partstat.upper() == "DECLINED"}
        if self.organizer and self.organizer.address not in declined:
            people[self.organizer.address] = (self.organizer, True)
        for attendee in self.attendees:
            if attendee.partstat.upper() == ACCEPTED:
                people.setdefault(attendee.address.address, (attendee.address, False))
        return list(people.values())


class ActivityMapper:
    """Turns messages and meetings into records with one :class:`IdentityResolver`.

    ``mass_limit`` is the method's ``strength.mass_email_limit``; ``now`` the sync time
    (meetings after it make nothing); ``find`` looks interactions up in the store by id
    (:attr:`SyncContext.find`), so that a reply of ours to a message of theirs read by
    an earlier run, or stored by another mail source, is two-way too. :attr:`outcomes` counts what became of each item.
    An interaction an earlier item of the run already gave (the same message read from
    two folders) is not returned again, so one run yields each id once.
    """

    def __init__(self, resolver: IdentityResolver, *, mass_limit: int = 50,
                 now: datetime | None = None,
                 find: Callable[[Sequence[str]], Iterable[Record]] | None = None) -> None:
        self.resolver = resolver
        self._find = find
        self.mass_limit = mass_limit
        self.now = now or datetime.now(timezone.utc)
        self.store_subjects = resolver.settings.store_subjects
        #: how many items ended how: interaction, internal (only our people), no_customer,
        #: not_ours (none of our people), bulk, cancelled, future, no_sender
        self.outcomes: Counter[str] = Counter()
        self._theirs: dict[int, bool] = {}  # hash of a message key -> written by their side
        self._seen: set[int] = set()        # hashes of the interaction ids returned
        self._spool: IO[str] | None = None  # unknown people, one JSON line each

    @classmethod
    def for_run(cls, context: SyncContext, internal_domains: Iterable[str] | str | None = (),
                what: str = "mail") -> ActivityMapper:
        """The mapper of a sync run: the store's CRM sources, our domains (``[identity]``,
        ``internal_domains`` such as a connector's ``--internal-domain`` values, our users'
        domains) and the method's mass-mail limit, all from ``context``. A store with no
        CRM source, or no way to tell our people, is a :class:`ConfigError` naming the fix
        (``what`` names the connector's items in it: mail, calendar ...)."""
        domains = (internal_domains,) if isinstance(internal_domains, str) else tuple(internal_domains or ())
        resolver = context.identity(domains)
        if not resolver.directories:
            raise ConfigError(f"the store holds no CRM source to link the {what} to; sync your CRM first "
                              f"(crmlink sync csv|salesforce|hubspot ...), then the {what}")
        if not any(d.internal_domains or d.users for d in resolver.directories):
            raise ConfigError(f"crmlink cannot tell our people in the {what}: no user in the store has an "
                              "email address and no internal domain is set; pass --internal-domain "
                              "(or set [identity] internal_domains)")
        limit = int(context.config.get("strength", {}).get("mass_email_limit", 50))

        def find(remote_ids: Sequence[str]) -> Iterable[Record]:
            return context.find("interaction", remote_ids)

        return cls(resolver, mass_limit=limit, now=context.now, find=find)

    def rewind(self) -> None:
        """The stream is read again from its last saved position (the host retries it after
        a failure): the interactions it yields next may repeat ids returned before, and are
        returned again, since the batch they were in may not have been stored. What the run
        learnt of threads is kept."""
        self._seen.clear()

    def _keep(self, interaction: Interaction, people: list[Correspondent]) -> bool:
        """Whether the interaction is new in this run; its unknown people go to the spool."""
        key = hash(interaction.remote_id)
        if key in self._seen:
            return False
        self._seen.add(key)
        if people:
            if self._spool is None:
                self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")
            for person in people:
                self._spool.write(json.dumps([person.remote_id, person.link_source, person.account_id,
                                              person.address, person.name, person.interaction_id,
                                              person.occurred_at.isoformat() if person.occurred_at else None,
                                              person.sent]) + "\n")
        return True

    def correspondents(self) -> Iterator[Correspondent]:
        """The unknown people of every item mapped so far, once each (then forgotten)."""
        spool, self._spool = self._spool, None
        if spool is None:
            return
        with spool:
            spool.seek(0)
            for line in spool:
                rid, source, account, address, name, interaction, at, sent = json.loads(line)
                yield Correspondent(remote_id=rid, link_source=source, account_id=account, address=address,
                                    name=name, interaction_id=interaction, occurred_at=at, sent=sent)

    def message(self, message: MailMessage) -> list[Interaction]:
        """The interactions of one message (none when it involves no customer of ours)."""
        if message.sender is None:
            self.outcomes["no_sender"] += 1
            return []
        key = message.key()
        people = _unique([(message.sender, True), *((a, False) for a in (*message.to, *message.cc))])
        sender_ours = any(d.resolve(message.sender.address).ours for d in self.resolver.directories)
        self._theirs[hash(key)] = not sender_ours
        outcome, links = self._links(people)
        if links:
            outcome = "bulk" if message.bulk else "interaction"
        linked = [(directory, ours, customers, sum(1 for _, _, m in matches if not m.ours))
                  for directory, ours, customers, matches in links]
        self.outcomes[outcome] += 1
        direction = "inbound"
        if sender_ours:
            parent = message.parent
            ids = [f"{parent}|{d.source}|{a}" for d, _, customers, _ in linked for a in customers]
            direction = "two_way" if parent and self._answers_theirs(parent, ids) else "outbound"
        records: list[Interaction] = []
        for directory, ours, customers, others in linked:
            recipients = max(others, self.mass_limit + 1) if message.bulk else others
            campaign = (message.list_id or "mass mailing") if message.bulk else None
            for account, present in customers.items():
                rid = f"{key}|{directory.source}|{account}"
                interaction = Interaction(
                    remote_id=rid, kind="email", direction=direction, occurred_at=message.date,
                    subject=message.subject if self.store_subjects else None, account_id=account,
                    user_ids=_ids(ours, USER), contact_ids=_ids([m for _, _, m in present], CONTACT),
                    recipient_count=recipients, campaign=campaign, link_source=directory.source,
                    extra={"message_id": key, "thread": message.thread})
                unknown = [] if message.bulk else _correspondents(rid, directory.source, account, present,
                                                                  message.date)
                if self._keep(interaction, unknown):
                    records.append(interaction)
        return records

    def _links(self, people: list[tuple[Address, bool]]
               ) -> tuple[str, list[tuple[Directory, list[Match], dict[str, Present], Present]]]:
        """The CRM sources an item's ``people`` link it to: per directory with one of ours
        and a customer, our people, the customers by account and every match. The outcome
        says why no directory linked it (``not_ours``, ``internal`` or ``no_customer``);
        the caller names a linked one."""
        outcome = "not_ours"
        links: list[tuple[Directory, list[Match], dict[str, Present], Present]] = []
        for directory in self.resolver.directories:
            matches = [(a, flag, directory.resolve(a.address)) for a, flag in people]
            ours = [m for _, _, m in matches if m.ours]
            if not ours:
                continue
            customers = _by_account(matches)
            if customers:
                links.append((directory, ours, customers, matches))
            else:
                outcome = _without_customer(outcome, ours, matches)
        return outcome, links

    def _answers_theirs(self, parent: str, stored_ids: list[str]) -> bool:
        """Whether the message ``parent`` was written by their side: known when this run read
        it, else looked up in the store (an earlier run, or another mail source, stored it
        under one of ``stored_ids``: as inbound when they wrote it)."""
        known = self._theirs.get(hash(parent))
        if known is not None or self._find is None or not stored_ids:
            return bool(known)
        theirs = any(getattr(r, "direction", None) == "inbound" for r in self._find(stored_ids))
        if theirs:
            self._theirs[hash(parent)] = True
        return theirs

    def event(self, event: CalendarEvent) -> list[Interaction]:
        """The interactions of one meeting occurrence (none when cancelled, in the future,
        or without an accepted customer and one of ours)."""
        if event.cancelled:
            self.outcomes["cancelled"] += 1
            return []
        if event.start > self.now:
            self.outcomes["future"] += 1
            return []
        key = event.key()
        people = event.present()
        records: list[Interaction] = []
        minutes = (event.end - event.start).total_seconds() / 60.0 if event.end else None
        outcome, links = self._links(people)
        if links:
            outcome = "interaction"
        for directory, ours, customers, _ in links:
            for account, present in customers.items():
                rid = f"{key}|{directory.source}|{account}"
                interaction = Interaction(
                    remote_id=rid, kind="meeting", direction="two_way", occurred_at=event.start,
                    subject=event.summary if self.store_subjects else None, account_id=account,
                    user_ids=_ids(ours, USER), contact_ids=_ids([m for _, _, m in present], CONTACT),
                    recipient_count=len(present), duration_minutes=minutes,
                    link_source=directory.source, extra={"event_uid": event.uid})
                if self._keep(interaction, _correspondents(rid, directory.source, account, present, event.start)):
                    records.append(interaction)
        self.outcomes[outcome] += 1
        return records

    def summary(self) -> str:
        """What became of the items mapped, and the ambiguous addresses, in one sentence."""
        names = {"interaction": "linked to an account", "internal": "internal only",
                 "no_customer": "with no known customer", "not_ours": "with none of our people",
                 "bulk": "mass mailings", "cancelled": "cancelled", "future": "in the future",
                 "no_sender": "without a sender"}
        parts = [f"{count} {names.get(name, name)}" for name, count in self.outcomes.most_common()]
        text = ", ".join(parts) if parts else "none"
        ambiguous = self.resolver.ambiguities()
        if ambiguous:
            shown = "; ".join(f"{key} ({', '.join(c)})" for key, (c, _) in sorted(ambiguous.items())[:5])
            text += (f"; {len(ambiguous)} addresses or domains match several records and were linked to "
                     f"none: {shown} (set [identity.overrides] to choose)")
        return text


Present = list[tuple[Address, bool, Match]]


def _without_customer(outcome: str, ours: list[Match], matches: Present) -> str:
    """The outcome of an item one directory found no customer in (another may have)."""
    if outcome != "not_ours":
        return outcome
    return "internal" if len(ours) == len(matches) else "no_customer"


def _unique(people: Iterable[tuple[Address, bool]]) -> list[tuple[Address, bool]]:
    seen: dict[str, tuple[Address, bool]] = {}
    for address, flag in people:
        if address.address not in seen:
            seen[address.address] = (address, flag)
    return list(seen.values())


def _by_account(matches: Present) -> dict[str, Present]:
    found: dict[str, Present] = {}
    for address, flag, match in matches:
        if match.customer and match.account_id:
            found.setdefault(match.account_id, []).append((address, flag, match))
    return dict(sorted(found.items()))


def _ids(matches: Iterable[Match], kind: str) -> tuple[str, ...]:
    return tuple(sorted({m.remote_id for m in matches if m.kind == kind and m.remote_id}))


def _correspondents(interaction: str, source: str, account: str, present: Present,
                    at: datetime) -> list[Correspondent]:
    return [Correspondent(remote_id=f"{interaction}|{address.address}", link_source=source,
                          account_id=account, address=address.address, name=address.name,
                          interaction_id=interaction, occurred_at=at, sent=flag)
            for address, flag, match in present if match.kind == ACCOUNT]


class UnknownPeopleStream(Stream):
    """The second stream of a mail or calendar connector: the unknown people of the
    items its first stream mapped (:meth:`ActivityMapper.correspondents`)."""

    name = "unknown_people"
    entity = Correspondent

    def __init__(self, mapper: ActivityMapper, name: str = "unknown_people") -> None:
        """``name``: another name when a connector has several mappers (one per stream)."""
        self.mapper, self.name = mapper, name

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        yield from self.mapper.correspondents()


__all__ = ["Address", "MailMessage", "Attendee", "CalendarEvent", "ActivityMapper",
           "UnknownPeopleStream", "message_key", "BULK_PRECEDENCE"]
