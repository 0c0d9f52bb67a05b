"""Phrasing for findings: names of their contacts and our people, counts and lists, so
every message reads as a sentence a sales leader can act on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from crmlink import AccountView
from crmlink.plugins.method.scores import BAND_ORDER, band_of

#: how many names a sentence lists before "and N more"
MAX_NAMES = 4


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 decision maker``, ``2 decision makers``."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def join(items: Sequence[str], limit: int = MAX_NAMES) -> str:
    """``a``, ``a and b``, ``a, b and c``; beyond ``limit`` items: ``a, b, c and 2 more``."""
    items = list(items)
    if len(items) > limit:
        items = items[:limit - 1] + [f"{len(items) - limit + 1} more"]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def contact_name(view: AccountView, contact_id: str) -> str:
    """``Jia Wu (Chief Executive Officer)``, or the id when the contact is unknown."""
    stat = view.contact_stats.get(contact_id)
    if stat is None:
        return contact_id
    contact = stat.contact
    name = contact.name or contact_id
    return f"{name} ({contact.title})" if contact.title else name


def contacts(view: AccountView, ids: Iterable[str]) -> str:
    return join([contact_name(view, c) for c in ids])


def user_name(view: AccountView, user_id: str | None) -> str:
    """``Lena Fischer (AR)``: one of our people, with the team role when known."""
    user = view.users.get(user_id or "")
    if user is None:
        return str(user_id)
    role = f" ({user.team_role})" if user.team_role and user.team_role != "other" else ""
    return f"{user.name or user.remote_id}{role}"


def users(view: AccountView, ids: Iterable[str]) -> str:
    return join([user_name(view, u) for u in ids])


def colleague(view: AccountView, exclude: Iterable[str] = (), senior_first: bool = False,
              roles: Iterable[str] = ()) -> str | None:
    """The active colleague best placed to join a relationship, among our people who
    already engage the account: those with a team role in ``roles`` first, then (if
    ``senior_first``) the most senior band, then the most relationship strength held."""
    skip, wanted = set(exclude), set(roles)
    candidates = [u for u in view.users if u not in skip and view.user_active(u)
                  and view.user_strength.get(u, 0.0) > 0.0]
    if not candidates:
        return None

    def rank(u: str) -> tuple[bool, int, float, str]:
        user = view.users[u]
        band = "executive" if user.team_role == "executive" else band_of(user.seniority) or "ic"
        seniority = -BAND_ORDER.index(band) if senior_first else 0
        return (user.team_role not in wanted, seniority, -view.user_strength.get(u, 0.0), u)

    return min(candidates, key=rank)


#: how departments read in a sentence, where the canonical name does not
DEPARTMENT_WORDS = {"it": "IT", "operations": "operations (O&M)", "hr": "HR"}


def departments(names: Iterable[str]) -> str:
    return join([DEPARTMENT_WORDS.get(n, n) for n in names])
