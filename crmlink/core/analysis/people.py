"""The people at an account who are not contacts in the CRM (*unknown people*), from
the correspondents that mail and calendar sources linked to a CRM source."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from crmlink.core import clock


@dataclass(frozen=True)
class UnknownPerson:
    """Someone at the account we exchanged mail or met with who is not a contact: the
    address, the display name last seen, how many messages and meetings, and when they
    last wrote to us and we last wrote to (or met) them, in epoch seconds."""

    address: str
    name: str | None
    messages: int
    last_from_them: float | None
    last_to_them: float | None

    def two_way_within(self, as_of: float, days: float) -> bool:
        """They wrote to us, and we wrote to or met them, both within ``days`` of ``as_of``."""
        return all(last is not None and clock.days_between(last, as_of) <= days
                   for last in (self.last_from_them, self.last_to_them))


@dataclass
class _Tally:
    name: str | None = None
    named_at: float = float("-inf")
    messages: int = 0
    last_from_them: float | None = None
    last_to_them: float | None = None

    def add(self, name: str | None, at: float, sent: bool) -> None:
        self.messages += 1
        if name and at >= self.named_at:
            self.name, self.named_at = name, at
        if sent:
            self.last_from_them = max(at, self.last_from_them or at)
        else:
            self.last_to_them = max(at, self.last_to_them or at)


def unknown_people(rows: Iterable[tuple[str, str, str | None, float, bool]]) -> dict[str, list[UnknownPerson]]:
    """Each account's unknown people from ``(account_id, address, name, occurred_at, sent)``
    rows (:meth:`Store.correspondent_rows <crmlink.core.store.Store.correspondent_rows>`),
    most messages first, then by address."""
    tallies: dict[tuple[str, str], _Tally] = {}
    for account, address, name, at, sent in rows:
        tallies.setdefault((account, address), _Tally()).add(name, at, bool(sent))
    result: dict[str, list[UnknownPerson]] = {}
    for (account, address), t in tallies.items():
        result.setdefault(account, []).append(
            UnknownPerson(address, t.name, t.messages, t.last_from_them, t.last_to_them))
    for people in result.values():
        people.sort(key=lambda p: (-p.messages, p.address))
    return result
