"""Account findings about risk to the relationship rather than its layers: personalised
and orphaned relationships (客户关系个人化), decline over time, opponents, stale stance
assessments, rank mismatch and data too thin to judge."""

from __future__ import annotations

from collections.abc import Callable

from crmlink import AccountView, Finding
from crmlink.plugins.method.scores import BAND_ORDER, band_of, departure
from crmlink.plugins.method.select import decision_makers, severity, strategic
from crmlink.plugins.method.words import (
    colleague,
    contact_name,
    contacts,
    count,
    join,
    possessive,
    user_name,
)

DAY = 86400.0
STANCE_WORDS = {-2: "opponent", -1: "not approving", 0: "neutral", 1: "supporter",
                2: "strong supporter", 3: "coach"}


def personalized(view: AccountView) -> Finding | None:
    p = view.personalization
    cfg = view.config["findings"]
    if p["top_holder"] is None or p["top_share"] < cfg["personalized_share"]:
        return None
    if (view.tier or "none") not in cfg["personalized_tiers"]:
        return None
    sim = departure(view, p["top_holder"])
    lost = sim["decision_makers_losing_all_coverage"]
    holder = user_name(view, p["top_holder"])
    exposed = f" ({contacts(view, lost)})" if lost else ""
    other = colleague(view, {p["top_holder"]}, senior_first=True)
    return Finding(
        "PERSONALIZED_RELATIONSHIP", severity(view, "high", "medium"),
        f"{holder} holds {p['top_share']:.0%} of our relationship with {view.account.name}: if they "
        f"leave, health drops {sim['health_drop']:.0f} points and {count(len(lost), 'decision maker')}"
        f"{exposed} lose{'s' if len(lost) == 1 else ''} all coverage.",
        {**{k: p[k] for k in ("top_holder", "top_share", "effective_holders", "bus_factor")},
         "departure": sim, "suggested_second_holder": other},
        f"Make the relationship the company's: bring {user_name(view, other) if other else 'colleagues'} "
        f"into {possessive(holder.split(' (')[0])} key relationships, starting with the decision makers.")


def orphaned(view: AccountView) -> Finding | None:
    share = view.personalization["inactive_share"]
    owner = view.users.get(view.account.owner_id or "")
    gone_owner = owner.remote_id if owner is not None and not view.user_active(owner.remote_id) else None
    owner_gone = gone_owner is not None
    if share < view.config["findings"]["orphaned_share"] and not owner_gone:
        return None
    leavers = sorted(u for u in view.personalization["holders"] if not view.user_active(u))
    if gone_owner is not None and gone_owner not in leavers:
        leavers.append(gone_owner)
    cap = view.config["strength"]["one_way_cap"]
    held = sorted(c for c, s in view.contact_stats.items()
                  if any(v > cap and not view.user_active(u) for u, v in s.strengths.items()))
    who = join([user_name(view, u) for u in leavers])
    gone = "who have left" if len(leavers) > 1 else "who has left"
    still = f"; {user_name(view, gone_owner)} is still recorded as the account owner" if gone_owner else ""
    new_owner = colleague(view, leavers, senior_first=True, roles=("AR",))
    successor = user_name(view, new_owner) if new_owner else "a named successor"
    return Finding(
        "ORPHANED_RELATIONSHIP", severity(view, "high", "medium"),
        f"{share:.0%} of our relationship with {view.account.name} is held by {who}, {gone}{still}.",
        {"inactive_share": share, "inactive_holders": leavers, "contacts_held_by_leavers": held,
         "owner": view.account.owner_id, "owner_active": not owner_gone, "suggested_owner": new_owner},
        f"Hand the account to an active owner ({successor}) and introduce them to "
        f"{contacts(view, held) if held else 'every contact the leavers knew'}.")


def _cooled(view: AccountView, limit: int = 3) -> list[tuple[str, float, float]]:
    """The contacts whose team strength fell most since the previous period."""
    before = view.previous.contact_stats if view.previous else {}
    falls = [(c, before[c].team, s.team) for c, s in view.contact_stats.items()
             if c in before and before[c].team - s.team >= 1.0]
    return sorted(falls, key=lambda f: (f[2] - f[1], f[0]))[:limit]


def declining(view: AccountView) -> Finding | None:
    if view.previous is None:
        return None
    before, now = view.previous.scores.get("health"), view.scores.get("health")
    points = view.config["findings"]["decline_points"]
    if before is None or now is None or before - now < points:
        return None
    days = view.config["findings"]["previous_period_days"]
    cooled = _cooled(view)
    names = join([f"{contact_name(view, c)} {b:.0f} to {a:.0f}" for c, b, a in cooled])
    detail = f"; the relationships that cooled most: {names}" if cooled else ""
    return Finding(
        "RELATIONSHIP_DECLINING", severity(view, "high", "medium"),
        f"{possessive(view.account.name or view.account.remote_id)} relationship health fell from "
        f"{before:.0f} to {now:.0f} in the last {days} days{detail}.",
        {"previous": view.previous.scores, "current": view.scores, "drop": round(before - now, 1),
         "cooled_contacts": [{"contact": c, "before": round(b, 1), "now": round(a, 1)} for c, b, a in cooled]},
        "Find out why before they tell you: meet these people and listen; a disappointed customer "
        "rarely complains, it quietly moves to a competitor.")


def opponent_unengaged(view: AccountView) -> Finding | None:
    days = view.config["findings"]["opponent_days"]
    quiet = [s for s in decision_makers(view) if s.contact.stance is not None and s.contact.stance < 0
             and (s.days_since_any is None or s.days_since_any > days)]
    if not quiet:
        return None
    ids = [s.contact.remote_id for s in quiet]
    holders = sorted({s.best_holder for s in quiet if s.best_holder})
    who = f"ask {join([user_name(view, u) for u in holders])} to meet them" if holders else \
        "name one of our people for each"
    return Finding(
        "OPPONENT_UNENGAGED", "high",
        f"{count(len(quiet), 'decision maker')} at {view.account.name} "
        f"{'opposes' if len(quiet) == 1 else 'oppose'} us and nobody has talked to "
        f"them in {days} days: {contacts(view, ids)}.",
        {"contacts": ids, "stances": {s.contact.remote_id: s.contact.stance for s in quiet},
         "window_days": days},
        f"Handle difficult customers one by one: {who}, listen, find what they need and repair early.")


def _stance_age(view: AccountView, stat) -> float | None:
    assessed = stat.contact.stance_assessed_at
    return None if assessed is None else (view.as_of - assessed.timestamp()) / DAY


def stance_stale(view: AccountView) -> Finding | None:
    """Decision makers whose recorded stance was assessed longer ago than the tier allows.
    A stance with no assessment date is not judged: nothing says when it was true."""
    limit = view.config["findings"]["stance_stale_days"][view.tier or "none"]
    stale = [(s, age) for s in decision_makers(view) if s.contact.stance is not None
             and (age := _stance_age(view, s)) is not None and age > limit]
    if not stale:
        return None
    listed = join([f"{contact_name(view, s.contact.remote_id)}, {STANCE_WORDS[s.contact.stance or 0]} "
                   f"{age:.0f} days ago" for s, age in stale])  # stale ones have a stance
    holders = sorted({s.best_holder for s, _ in stale if s.best_holder})
    who = join([user_name(view, u) for u in holders]) or "the account team"
    return Finding(
        "STANCE_STALE", severity(view, "medium", "low"),
        f"At {view.account.name}, the stance of {count(len(stale), 'decision maker')} was last "
        f"assessed more than {limit:g} days ago: {listed}.",
        {"contacts": {s.contact.remote_id: {"stance": s.contact.stance, "days_since_assessed": round(age, 1)}
                      for s, age in stale}, "limit_days": limit},
        f"Ask {who} to re-assess each stance in the next meeting: stances change before results do.")


def rank_mismatch(view: AccountView) -> Finding | None:
    """兵对兵，将对将: their executives held only by our people below ``rank_min_band``."""
    if not strategic(view):
        return None
    minimum = BAND_ORDER.index(view.config["findings"]["rank_min_band"])
    juniors: dict[str, list[str]] = {}
    for stat in view.contact_stats.values():
        if band_of(stat.contact.seniority) != "executive" or not stat.holders or not stat.contact.active:
            continue
        levels = [band_of(view.users[u].seniority) if u in view.users else None for u in stat.holders]
        known = [BAND_ORDER.index(b) for b in levels if b is not None]
        if known and len(known) == len(levels) and max(known) < minimum:
            juniors[stat.contact.remote_id] = list(stat.holders)
    if not juniors:
        return None
    held = join([f"{contact_name(view, c)} by {join([user_name(view, u) for u in us])}"
                 for c, us in sorted(juniors.items())])
    senior = colleague(view, {u for us in juniors.values() for u in us}, senior_first=True)
    return Finding(
        "RANK_MISMATCH", "low",
        f"At {view.account.name}, {count(len(juniors), 'executive')} "
        f"{'is' if len(juniors) == 1 else 'are'} covered only by our junior staff: {held}.",
        {"contacts": juniors, "minimum_band": BAND_ORDER[minimum]},
        f"Match ranks (兵对兵，将对将): bring {user_name(view, senior) if senior else 'one of our managers or executives'}"
        " into these relationships.")


def data_quality(view: AccountView) -> Finding | None:
    cfg = view.config["findings"]
    titled = sum(1 for c in view.contacts if c.title) / len(view.contacts) if view.contacts else 1.0
    data = view.data
    linked = 1.0 - data.unlinked / data.external if data.external else 1.0
    problems = []
    if titled < cfg["data_quality_min_titled"]:
        problems.append(f"only {titled:.0%} of its {count(len(view.contacts), 'contact')} have a title")
    if linked < cfg["data_quality_min_linked"]:
        problems.append(f"only {linked:.0%} of its {count(data.external, 'interaction')} name a contact")
    if not problems:
        return None
    return Finding(
        "DATA_QUALITY", "low",
        f"The data for {view.account.name} is too thin to judge: {'; '.join(problems)}.",
        {"titled_share": round(titled, 3), "linked_share": round(linked, 3),
         "contacts": len(view.contacts), "interactions": data.external, "unlinked_interactions": data.unlinked},
        f"Ask the {view.account.name} account team to record contacts' titles and link every "
        "activity to the people who took part.")


RULES: tuple[Callable[[AccountView], Finding | None], ...] = (
    personalized, orphaned, declining, opponent_unengaged, stance_stale, rank_mismatch, data_quality,
)
