"""The relationship map of one account: the customer's contacts (department, seniority,
buying role, stance, the team's strength with them and who holds it), our people who
touch the account, and every pair strength between them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from crmlink.core.analysis.view import AccountView
from crmlink.core.document import (
    Departure,
    MapContact,
    MapUser,
    MergedRecord,
    Pair,
    RelationshipMap,
)

#: pairs weaker than this (0..100) are left out of the map: noise, not a relationship
MIN_PAIR_STRENGTH = 1.0


def relationship_map(view: AccountView, departure: Departure | None,
                     merged: Mapping[str, Sequence[MergedRecord]] | None = None) -> RelationshipMap:
    """The map of ``view``'s account, with the departure simulation of its top holder;
    ``merged`` has the source records of each merged contact, by contact id."""
    pairs = [Pair(user, contact, round(value, 1))
             for (user, contact), value in sorted(view.pair_strengths.items())
             if value >= MIN_PAIR_STRENGTH]
    return RelationshipMap(_contacts(view, merged or {}), _users(view, pairs), pairs, departure)


def _contacts(view: AccountView, merged: Mapping[str, Sequence[MergedRecord]]) -> list[MapContact]:
    contacts = []
    for stat in sorted(view.contact_stats.values(), key=lambda s: (-s.team, s.contact.remote_id)):
        c = stat.contact
        days = stat.days_since_two_way
        contacts.append(MapContact(
            c.remote_id, c.name, c.title, c.department, c.seniority, stat.role, c.stance, c.active,
            stat.is_power, round(stat.team, 1), list(stat.holders), None if days is None else round(days, 1),
            list(merged[c.remote_id]) if c.remote_id in merged else None))
    return contacts


def _users(view: AccountView, pairs: list[Pair]) -> list[MapUser]:
    shares: dict[str, float] = view.personalization.get("holders", {})
    user_ids = sorted({p.user for p in pairs} | set(shares), key=lambda u: (-shares.get(u, 0.0), u))
    users = []
    for user_id in user_ids:
        user = view.users.get(user_id)
        users.append(MapUser(
            user_id, (user.name if user else None) or user_id, user.title if user else None,
            user.team_role if user else None, view.user_active(user_id), shares.get(user_id, 0.0),
            round(view.user_strength.get(user_id, 0.0), 1)))
    return users
