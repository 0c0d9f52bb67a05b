"""Per-account detail for reports: the relationship map and health month by month.

``account_detail(view)`` is the relationship map of one account as JSON: the
customer's contacts (department, seniority, buying role, stance, the team's strength
with them and who holds it), our people who touch the account, and every pair
strength between them. ``add_report_extras`` adds to an audit document what the HTML
report draws but the audit itself does not need: each account's scores at the last
month ends (one extra pass over the interactions, so only the formats that draw it ask
for it) and the tier target ratio.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from crmlink.core.analysis.accumulate import AccountData, Accumulator, interaction_rows
from crmlink.core.analysis.view import AccountView

if TYPE_CHECKING:  # pragma: no cover
    from crmlink.core.analysis.audit import Audit

#: pairs weaker than this (0..100) are left out of the map: noise, not a relationship
MIN_PAIR_STRENGTH = 1.0
HISTORY_SCORES = ("health", "key", "broad", "org")


def account_detail(view: AccountView) -> dict[str, Any]:
    """The relationship map of one account (JSON-serialisable)."""
    holder_shares = view.personalization.get("holders", {})
    contacts = []
    for stat in sorted(view.contact_stats.values(), key=lambda s: (-s.team, s.contact.remote_id)):
        c = stat.contact
        contacts.append({
            "id": c.remote_id, "name": c.name, "title": c.title, "department": c.department,
            "seniority": c.seniority, "role": stat.role, "stance": c.stance, "active": c.active,
            "power": stat.is_power, "team_strength": round(stat.team, 1), "holders": list(stat.holders),
            "days_since_two_way": None if stat.days_since_two_way is None else round(stat.days_since_two_way, 1),
        })
    pairs = [{"user": user, "contact": contact, "strength": round(value, 1)}
             for (user, contact), value in sorted(view.pair_strengths.items())
             if value >= MIN_PAIR_STRENGTH]
    user_ids = sorted({p["user"] for p in pairs} | set(holder_shares),
                      key=lambda u: (-holder_shares.get(u, 0.0), u))
    users = []
    for user_id in user_ids:
        user = view.users.get(user_id)
        users.append({
            "id": user_id, "name": (user.name if user else None) or user_id,
            "title": user.title if user else None, "team_role": user.team_role if user else None,
            "active": view.user_active(user_id), "share": holder_shares.get(user_id, 0.0),
            "strength": round(view.user_strength.get(user_id, 0.0), 1),
        })
    return {"contacts": contacts, "users": users, "pairs": pairs,
            "departure": _departure(view)}


def _departure(view: AccountView) -> dict[str, Any] | None:
    """What the account loses if its top holder leaves (the method plugin's simulation)."""
    top = view.personalization.get("top_holder")
    if not top:
        return None
    try:
        from crmlink.plugins.method.scores import departure
    except ImportError:  # pragma: no cover - the built-in method plugin is part of crmlink
        return None
    return departure(view, top)


# -- health month by month --------------------------------------------------------------------


def month_ends(as_of: date, months: int = 12) -> list[date]:
    """The last day of each of the ``months - 1`` months before ``as_of``'s, then ``as_of``."""
    ends = [as_of]
    year, month = as_of.year, as_of.month
    for _ in range(months - 1):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        ends.append(date(year, month, calendar.monthrange(year, month)[1]))
    return sorted(ends)


def health_history(audit: Audit, views: Sequence[AccountView], months: int = 12) -> dict[str, list[dict[str, Any]]]:
    """Scores of each account at each month end, keyed by the account's id.

    One pass over the interactions per source folds every row into the aggregates of
    every month end it precedes; the views are then scored by the same hooks as the
    audit. Contacts, opportunities and the tier are today's (records carry no history).
    """
    from crmlink.core.analysis.audit import as_of_timestamp

    ends = month_ends(audit.as_of_date, months)
    stamps = [as_of_timestamp(day) for day in ends]
    by_source: dict[str, list[AccountView]] = {}
    for view in views:
        by_source.setdefault(view.account.source, []).append(view)
    result: dict[str, list[dict[str, Any]]] = {}
    for source, group in by_source.items():
        folded = _fold_months(audit, source, group, stamps[:-1])  # the audit date is the view itself
        for view in group:
            series = []
            for day, data in zip(ends[:-1], folded[view.account.remote_id], strict=True):
                past = AccountView(view.account, data, view.contacts, view.users, view.opportunities, audit.config)
                audit.score(past)
                series.append({"date": day.isoformat(),
                               **{name: past.scores.get(name) for name in HISTORY_SCORES}})
            series.append({"date": ends[-1].isoformat(), **{name: view.scores.get(name) for name in HISTORY_SCORES}})
            result[view.account.id] = series
    return result


def _fold_months(audit: Audit, source: str, views: Sequence[AccountView],
                 stamps: Sequence[float]) -> dict[str, list[AccountData]]:
    users: Mapping[str, Any] = views[0].users if views else {}
    contacts = {c.remote_id: c for v in views for c in v.contacts}
    acc = Accumulator(audit.config, users, contacts, audit._classify_method)
    data = {v.account.remote_id: [AccountData(stamp) for stamp in stamps] for v in views}
    if not stamps:
        return data

    def account_of(contact_ids: tuple[str, ...]) -> str | None:
        return next((contacts[c].account_id for c in contact_ids
                     if c in contacts and contacts[c].account_id), None)

    with audit.store.engine.connect() as conn:
        acc.fold(interaction_rows(conn, source, stamps[-1]), data, account_of)
    return data


def add_report_extras(document: dict[str, Any], audit: Audit, views: Sequence[AccountView], *,
                      history: bool = True) -> dict[str, Any]:
    """Add the tier target ratio to ``document`` and, with ``history``, ``health_history``
    to each of its accounts."""
    if history:
        series = health_history(audit, views)
        for account in document["accounts"]:
            account["health_history"] = series.get(account["id"], [])
    document["tier_target"] = dict(audit.config["tiers"]["target"])
    return document
