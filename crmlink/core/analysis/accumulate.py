"""One streaming pass over the interactions table, folded into per-account aggregates.

The audit never holds every interaction in memory: each row is weighed, decayed and
added to the aggregates of its account (pair weights, reciprocity, last contact, cadence,
methods, executive links, iron-triangle coverage, effort) for the audit date and for the
previous period at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any

from crmlink.core import clock, vocab
from crmlink.core.clock import DAY as DAY  # view.py's import; clock is its home
from crmlink.core.model import Contact, User

if TYPE_CHECKING:
    import sqlalchemy as sa

@dataclass(slots=True)
class Pair:
    """What one of our users and one of their contacts did together."""

    weight: float = 0.0        # decayed, diluted interaction weight
    inbound: int = 0           # interactions where they spoke, within the reciprocity window
    outbound: int = 0          # interactions where we spoke, within the reciprocity window
    last_two_way: float | None = None
    last_any: float | None = None


@dataclass(slots=True)
class WindowCounts:
    """The account's external interactions within the coverage window
    (``coverage.window_days``): the evidence the audit has, before any score."""

    interactions: int = 0   # every interaction not marked internal-only (mass mail included)
    with_contact: int = 0   # of those, naming one of their contacts
    with_user: int = 0      # naming one of our people
    paired: int = 0         # counted ones (weighed above 0) naming both a contact and one of ours

    def add(self, contact: bool, user: bool, counted: bool) -> None:
        self.interactions += 1
        self.with_contact += contact
        self.with_user += user
        self.paired += counted and contact and user


@dataclass
class AccountData:
    """Aggregates of one account's interactions as of one date (epoch seconds)."""

    as_of: float
    pairs: dict[tuple[str, str], Pair] = field(default_factory=dict)
    contact_last: dict[str, list[float | None]] = field(default_factory=dict)  # [any, two_way]
    user_last: dict[str, float] = field(default_factory=dict)
    recent: int = 0                  # interactions within the cadence window
    exec_links: list[float] = field(default_factory=list)
    first_two_way: float | None = None  # the earliest two-way interaction: the relationship's tenure
    methods: dict[str, float] = field(default_factory=dict)  # method -> last time
    effort: float = 0.0
    interactions: int = 0
    external: int = 0                # interactions not marked internal-only
    unlinked: int = 0                # of those, interactions naming none of their contacts
    excluded: int = 0                # internal-only or mass email
    window: WindowCounts = field(default_factory=WindowCounts)
    opp_contacts: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    opp_last_inbound: dict[str, float] = field(default_factory=dict)
    opp_last_any: dict[str, float] = field(default_factory=dict)

    def days_since(self, moment: float | None) -> float | None:
        return clock.days_since(moment, self.as_of)


#: A row as :meth:`Accumulator.classify` gives it.
Classified = tuple[str, float, float, tuple[str, ...], tuple[str, ...], bool, bool, bool, "str | None", bool,
                   "str | None", bool, bool]


def _later(a: float | None, b: float) -> float:
    return b if a is None or b > a else a


#: The answers an :class:`Accumulator` remembers, the most recently asked this many of
#: each kind: the classify hook's method for an interaction's content (kind, subject,
#: campaign), and whether a person is an executive (ours) or senior (theirs). Remembering
#: them all grew with the data: real subjects are nearly all distinct, and a source's
#: contacts are millions past 10M interactions.
REMEMBERED = 1 << 16


class Accumulator:
    """Folds interaction rows into :class:`AccountData` for each account and date."""

    def __init__(self, config: Mapping[str, Any], users: Mapping[str, User],
                 contacts: Mapping[str, Contact], classify_method: Callable[..., str | None]) -> None:
        self.weights: Mapping[str, float] = config["weights"]
        strength = config["strength"]
        self.half_life = clock.seconds(strength["half_life_days"])
        self.reciprocity = clock.seconds(strength["reciprocity_days"])
        self.mass_limit = strength["mass_email_limit"]
        self.group_size = float(strength["meeting_group_size"])
        findings = config["findings"]
        self.cadence_window = clock.seconds(findings["cadence_weeks"] * 7)
        self.exec_window = clock.seconds(findings["exec_link_days"])
        self.coverage_window = clock.seconds(config["coverage"]["window_days"])
        self.users, self.contacts = users, contacts
        self.classify_method = classify_method
        self._method_of_content = lru_cache(maxsize=REMEMBERED)(classify_method)
        # closures over the mappings, not self: an Accumulator in no cycle is freed at
        # once, with the cyclic collector paused (the audit pauses it)
        self._executive = lru_cache(maxsize=REMEMBERED)(lambda user: is_executive_user(users.get(user)))
        self._senior = lru_cache(maxsize=REMEMBERED)(lambda contact: is_senior(contacts.get(contact)))

    def weight(self, kind: str, direction: str, recipients: int) -> float:
        """Base weight of one interaction before decay; 0 means it does not count."""
        if direction == "internal" or recipients == 0:
            return 0.0
        if kind == "email":
            if recipients > self.mass_limit:
                return 0.0
            return self.weights[f"email_{direction}"] / math.sqrt(recipients)
        base = float(self.weights.get(kind, 0.5))
        return base / max(1.0, recipients / self.group_size) if kind in ("meeting", "event") else base

    def method_of(self, kind: str, method: str | None, subject: str | None,
                  campaign: str | None) -> str | None:
        """The interaction's method, else the classify hook's verdict (remembered by
        content, :data:`REMEMBERED`)."""
        return method or self._method_of_content(kind, subject, campaign)

    def fold(self, rows: Iterable[Sequence[Any]], slots: Mapping[str, Sequence[AccountData]],
             account_of: Callable[[tuple[str, ...]], str | None]) -> None:
        """Add each row (as :meth:`Store.interaction_rows
        <crmlink.core.store.Store.interaction_rows>` gives them) to every slot of its
        account whose date it precedes. What does not depend on the date is worked out
        once per row (:meth:`classify`); rows of accounts not in ``slots`` are ignored. A
        row without an account belongs to ``account_of(its contacts)``. Each slot's
        ``exec_links`` come out in time order."""
        for (account, at, base, users, contacts, theirs, ours, two_way, method, link, opportunity,
             external, has_user) in self.classify(rows, slots, account_of):
            targets = slots[account]
            if base == 0.0:
                self._excluded(targets, at, external, bool(contacts), has_user)
                continue
            for data in targets:
                if at <= data.as_of:
                    self._add(data, at, base, users, contacts, theirs, ours, two_way, method, link, opportunity)
        for targets in slots.values():
            for data in targets:
                data.exec_links.sort()

    def classify(self, rows: Iterable[Sequence[Any]], accounts: Container[str],
                 account_of: Callable[[tuple[str, ...]], str | None]) -> Iterator[Classified]:
        """Each row of an account in ``accounts`` with what the fold needs of it, none of
        which depends on the as-of date: ``(account, at, base, users, contacts, theirs,
        ours, two_way, method, executive_link, opportunity, external, has_user)``. A base of
        0 means the row is excluded (internal-only, mass email, no recipients); then only
        ``contacts``, ``external`` and ``has_user`` mean anything."""
        weights: dict[tuple[str, str, int], float] = {}
        # whether one of a row's people is an executive (ours) or senior (theirs), by the
        # row's list of them as stored: lists repeat far more often than their pairs do
        executive: dict[str | None, bool] = {}
        senior: dict[str | None, bool] = {}
        method_of = self.method_of
        for (account_id, kind, direction, method, at, user_ids, contact_ids, recipients,
             opportunity, subject, campaign) in rows:
            contacts = tuple(contact_ids.split(";")) if contact_ids else ()
            account = account_id or account_of(contacts) or ""
            if account not in accounts:
                continue
            if not direction:
                direction = infer_direction(kind, direction, bool(contacts))
            recipients = recipients or len(contacts)
            key = (kind, direction, recipients)
            base = weights.get(key)
            if base is None:
                base = weights[key] = self.weight(kind, direction, recipients)
            if base == 0.0:
                yield (account, at, 0.0, (), contacts, False, False, False, None, False, None,
                       direction != "internal", bool(user_ids))
                continue
            users = tuple(user_ids.split(";")) if user_ids else ()
            two_way = direction == "two_way" or direction == "inbound"
            link = False
            if two_way:
                ours_in = executive.get(user_ids)
                if ours_in is None:
                    ours_in = executive[user_ids] = self._any_executive(users)
                if ours_in:
                    theirs_in = senior.get(contact_ids)
                    if theirs_in is None:
                        theirs_in = senior[contact_ids] = self._any_senior(contacts)
                    link = theirs_in
            yield (account, at, base, users, contacts, direction in ("inbound", "two_way"),
                   direction in ("outbound", "two_way"), two_way,
                   method or method_of(kind, None, subject, campaign), link, opportunity or None, True, bool(users))

    def _excluded(self, targets: Sequence[AccountData], at: float, external: bool,
                  contact: bool, user: bool) -> None:
        for data in targets:
            if at <= data.as_of:
                data.external += external
                data.unlinked += external and not contact
                data.excluded += 1
                if external and data.as_of - at <= self.coverage_window:
                    data.window.add(contact, user, counted=False)

    def _add(self, data: AccountData, at: float, base: float, users: tuple[str, ...],
             contacts: tuple[str, ...], theirs: bool, ours: bool, two_way: bool,
             method: str | None, executive_link: bool, opportunity: str | None) -> None:
        """Add one counted interaction (at or before ``data.as_of``)."""
        data.external += 1
        data.unlinked += not contacts
        age = data.as_of - at
        if age <= self.coverage_window:
            data.window.add(bool(contacts), bool(users), counted=True)
        weight = base * math.pow(2.0, -age / self.half_life)
        data.interactions += 1
        data.effort += weight
        if age <= self.cadence_window:
            data.recent += 1
        recent = age <= self.reciprocity
        if method:
            data.methods[method] = _later(data.methods.get(method), at)
        share = weight / max(1, len(users))
        pairs, user_last = data.pairs, data.user_last
        for user in users:
            last_seen = user_last.get(user)
            if last_seen is None or at > last_seen:
                user_last[user] = at
            for contact in contacts:
                pair = pairs.get((user, contact))
                if pair is None:
                    pair = pairs[(user, contact)] = Pair()
                pair.weight += share
                if recent:
                    pair.inbound += theirs
                    pair.outbound += ours
                if pair.last_any is None or at > pair.last_any:
                    pair.last_any = at
                if two_way and (pair.last_two_way is None or at > pair.last_two_way):
                    pair.last_two_way = at
        contact_last = data.contact_last
        for contact in contacts:
            last = contact_last.get(contact)
            if last is None:
                last = contact_last[contact] = [None, None]
            last[0] = _later(last[0], at)
            if two_way:
                last[1] = _later(last[1], at)
        if two_way and (data.first_two_way is None or at < data.first_two_way):
            data.first_two_way = at
        if executive_link and age <= self.exec_window:
            data.exec_links.append(at)
        if opportunity:
            self._opportunity(data, opportunity, contacts, at, two_way, theirs)

    def _opportunity(self, data: AccountData, opp: str, contacts: tuple[str, ...], at: float,
                     two_way: bool, theirs: bool) -> None:
        engaged = data.opp_contacts.setdefault(opp, {})
        for contact in contacts:
            last = engaged.setdefault(contact, [None, None])
            last[0] = _later(last[0], at)
            if two_way:
                last[1] = _later(last[1], at)
        data.opp_last_any[opp] = _later(data.opp_last_any.get(opp), at)
        if theirs:
            data.opp_last_inbound[opp] = _later(data.opp_last_inbound.get(opp), at)

    def _any_executive(self, users: tuple[str, ...]) -> bool:
        """Whether one of ``users`` is an executive of ours."""
        return any(map(self._executive, users))

    def _any_senior(self, contacts: tuple[str, ...]) -> bool:
        """Whether one of ``contacts`` is senior."""
        return any(map(self._senior, contacts))


def is_senior(person: Contact | User | None, rank: str = "vp") -> bool:
    return bool(person and person.seniority
                and vocab.SENIORITY_RANK[person.seniority] >= vocab.SENIORITY_RANK[rank])


def is_executive_user(user: User | None) -> bool:
    return bool(user and (user.team_role == "executive" or is_senior(user)))


def infer_direction(kind: str, direction: str | None, has_contacts: bool) -> str:
    """The direction when the CRM did not say: meetings, visits, events and calls are
    conversations; emails, notes and tasks are taken as ours alone."""
    if direction:
        return direction
    if not has_contacts:
        return "outbound"
    return "two_way" if kind in ("meeting", "visit", "event", "call") else "outbound"


def interaction_rows(conn: sa.Connection, source: str | None, until: float) -> Iterator[tuple[Any, ...]]:
    """:meth:`Store.interaction_rows <crmlink.core.store.Store.interaction_rows>` on a
    connection the caller holds (the store owns the query)."""
    from crmlink.core.store import interaction_batches

    return chain.from_iterable(interaction_batches(conn, source, until))
