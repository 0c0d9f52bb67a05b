"""One streaming pass over the interactions table, folded into per-account aggregates.

The audit never holds every interaction in memory: each row is weighed, decayed and
added to the aggregates of its account (pair weights, reciprocity, last contact, cadence,
methods, executive links, iron-triangle coverage, effort) for the audit date and for the
previous period at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crmlink.core import vocab
from crmlink.core.model import Contact, User

DAY = 86400.0


@dataclass
class Pair:
    """What one of our users and one of their contacts did together."""

    weight: float = 0.0        # decayed, diluted interaction weight
    inbound: int = 0           # interactions where they spoke, within the reciprocity window
    outbound: int = 0          # interactions where we spoke, within the reciprocity window
    last_two_way: float | None = None
    last_any: float | None = None


@dataclass
class AccountData:
    """Aggregates of one account's interactions as of one date (epoch seconds)."""

    as_of: float
    pairs: dict[tuple[str, str], Pair] = field(default_factory=dict)
    contact_last: dict[str, list[float | None]] = field(default_factory=dict)  # [any, two_way]
    user_last: dict[str, float] = field(default_factory=dict)
    recent: int = 0                  # interactions within the cadence window
    exec_links: list[float] = field(default_factory=list)
    methods: dict[str, float] = field(default_factory=dict)  # method -> last time
    effort: float = 0.0
    interactions: int = 0
    unlinked: int = 0                # interactions with none of their contacts
    excluded: int = 0                # internal-only or mass email
    opp_contacts: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    opp_last_inbound: dict[str, float] = field(default_factory=dict)
    opp_last_any: dict[str, float] = field(default_factory=dict)

    def days_since(self, moment: float | None) -> float | None:
        return None if moment is None else (self.as_of - moment) / DAY


def _later(a: float | None, b: float) -> float:
    return b if a is None or b > a else a


class Accumulator:
    """Folds interaction rows into :class:`AccountData` for each account and date."""

    def __init__(self, config: Mapping[str, Any], users: Mapping[str, User],
                 contacts: Mapping[str, Contact], classify_method: Callable[..., str | None]) -> None:
        self.weights = config["weights"]
        strength = config["strength"]
        self.half_life = strength["half_life_days"] * DAY
        self.reciprocity = strength["reciprocity_days"] * DAY
        self.mass_limit = strength["mass_email_limit"]
        findings = config["findings"]
        self.cadence_window = findings["cadence_weeks"] * 7 * DAY
        self.exec_window = findings["exec_link_days"] * DAY
        self.users, self.contacts = users, contacts
        self.classify_method = classify_method
        self._method_cache: dict[tuple[Any, ...], str | None] = {}

    def weight(self, kind: str, direction: str, recipients: int) -> float:
        """Base weight of one interaction before decay; 0 means it does not count."""
        if direction == "internal" or recipients == 0:
            return 0.0
        if kind == "email":
            if recipients > self.mass_limit:
                return 0.0
            return self.weights[f"email_{direction}"] / math.sqrt(recipients)
        base = float(self.weights.get(kind, 0.5))
        return base / max(1.0, recipients / 5.0) if kind in ("meeting", "event") else base

    def method_of(self, row: Any) -> str | None:
        if row.method:
            return row.method
        key = (row.kind, row.subject, row.campaign)
        if key not in self._method_cache:
            self._method_cache[key] = self.classify_method(row.kind, row.subject, row.campaign)
        return self._method_cache[key]

    def add(self, data: AccountData, row: Any, users: tuple[str, ...], contacts: tuple[str, ...],
            direction: str) -> None:
        """Add one interaction (already known to be at or before ``data.as_of``)."""
        at = row.occurred_at
        recipients = row.recipient_count or len(contacts)
        base = self.weight(row.kind, direction, recipients)
        if base == 0.0:
            data.excluded += 1
            return
        age = data.as_of - at
        weight = base * math.pow(2.0, -age / self.half_life)
        data.interactions += 1
        data.effort += weight
        if age <= self.cadence_window:
            data.recent += 1
        theirs = direction in ("inbound", "two_way")
        ours = direction in ("outbound", "two_way")
        two_way = direction == "two_way" or direction == "inbound"
        recent = age <= self.reciprocity
        method = self.method_of(row)
        if method:
            data.methods[method] = _later(data.methods.get(method), at)
        if not contacts:
            data.unlinked += 1
        share = weight / max(1, len(users))
        for user in users:
            data.user_last[user] = _later(data.user_last.get(user), at)
            for contact in contacts:
                pair = data.pairs.get((user, contact))
                if pair is None:
                    pair = data.pairs[(user, contact)] = Pair()
                pair.weight += share
                if recent:
                    pair.inbound += theirs
                    pair.outbound += ours
                pair.last_any = _later(pair.last_any, at)
                if two_way:
                    pair.last_two_way = _later(pair.last_two_way, at)
        for contact in contacts:
            last = data.contact_last.setdefault(contact, [None, None])
            last[0] = _later(last[0], at)
            if two_way:
                last[1] = _later(last[1], at)
        if two_way and age <= self.exec_window and self._executive_link(users, contacts):
            data.exec_links.append(at)
        if row.opportunity_id:
            self._opportunity(data, row.opportunity_id, contacts, at, two_way, theirs)

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

    def _executive_link(self, users: tuple[str, ...], contacts: tuple[str, ...]) -> bool:
        ours = any(is_executive_user(self.users.get(u)) for u in users)
        return ours and any(is_senior(self.contacts.get(c)) for c in contacts)


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


INTERACTION_COLUMNS = ("account_id", "kind", "direction", "method", "occurred_at", "user_ids",
                       "contact_ids", "recipient_count", "opportunity_id", "subject", "campaign")


def interaction_rows(conn: sa.Connection, source: str | None, until: float) -> Iterator[Any]:
    """Raw interaction rows up to ``until`` (epoch seconds), without type conversion."""
    table = sa.table("interactions", *[sa.column(c) for c in INTERACTION_COLUMNS],
                     sa.column("deleted"), sa.column("source"))
    query = sa.select(*[table.c[c] for c in INTERACTION_COLUMNS]).where(
        table.c.deleted == sa.false(), table.c.occurred_at <= until)
    if source is not None:
        query = query.where(table.c.source == source)
    yield from conn.execution_options(yield_per=20000).execute(query)
