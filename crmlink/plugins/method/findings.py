"""Account findings of the relationship method. Each rule is one small function that
returns a :class:`~crmlink.Finding` or ``None``; docs/method.md documents every code."""

from __future__ import annotations

from collections.abc import Callable

from crmlink import AccountView, Finding
from crmlink.plugins.method.scores import BANDS, departure, iron_triangle, programs_within

STRATEGIC = ("S", "A")


def _strategic(view: AccountView) -> bool:
    return view.tier in STRATEGIC


def _sev(view: AccountView, strategic: str, other: str) -> str:
    return strategic if _strategic(view) else other


def _name(view: AccountView, contact_id: str) -> str:
    stat = view.contact_stats.get(contact_id)
    contact = stat.contact if stat else None
    if contact is None:
        return contact_id
    return f"{contact.name or contact_id} ({contact.title})" if contact.title else (contact.name or contact_id)


def _user(view: AccountView, user_id: str | None) -> str:
    user = view.users.get(user_id or "")
    return (user.name or user_id) if user else str(user_id)


def _power(view: AccountView) -> list:
    return [s for s in view.contact_stats.values() if s.is_power and s.contact.active]


def key_no_decision_maker(view: AccountView) -> Finding | None:
    if not (_strategic(view) or view.open_opportunities()) or _power(view):
        return None
    return Finding("KEY_NO_DECISION_MAKER", _sev(view, "high", "medium"),
                   f"{view.account.name} has no known decision maker, economic buyer or executive contact.",
                   {"contacts": len(view.contacts), "open_opportunities": len(view.open_opportunities())},
                   "Map the decision chain: find the 1-3 people who decide and who influences them.")


def key_decision_maker_cold(view: AccountView) -> Finding | None:
    days = view.config["findings"]["cold_days"]
    power = _power(view)
    if not power or any(s.days_since_two_way is not None and s.days_since_two_way <= days for s in power):
        return None
    last = [s.days_since_two_way for s in power if s.days_since_two_way is not None]
    return Finding("KEY_DECISION_MAKER_COLD", _sev(view, "high", "medium"),
                   f"None of the {len(power)} decision makers at {view.account.name} has had a two-way "
                   f"conversation with us in {days} days.",
                   {"decision_makers": [s.contact.remote_id for s in power],
                    "days_since_last_two_way": round(min(last), 1) if last else None, "threshold_days": days},
                   "Arrange a meeting with the decision makers; a cold key relationship loses projects.")


def key_single_holder(view: AccountView) -> Finding | None:
    single = [s for s in _power(view) if len(s.holders) == 1]
    if not single or view.tier not in view.config["findings"]["single_holder_tiers"]:
        return None
    pairs = {s.contact.remote_id: s.holders[0] for s in single}
    names = ", ".join(f"{_name(view, c)} by {_user(view, u)}" for c, u in pairs.items())
    return Finding("KEY_SINGLE_HOLDER", _sev(view, "medium", "low"),
                   f"At {view.account.name}, {len(single)} decision maker relationship(s) are held by "
                   f"just one of our people: {names}.",
                   {"contacts": pairs}, "Bring a second person (a manager or the SR) into each of these relationships.")


def broad_narrow_coverage(view: AccountView) -> Finding | None:
    if not _strategic(view):
        return None
    engaged = view.engaged(view.config["broad"]["window_days"])
    departments = sorted({s.contact.department for s in engaged if s.contact.department})
    known = {c.department for c in view.contacts if c.department}
    minimum = view.config["findings"]["min_departments"]
    if len(departments) >= minimum and len(departments) * 2 >= len(known):
        return None
    return Finding("BROAD_NARROW_COVERAGE", "high" if len(departments) <= 1 else "medium",
                   f"Our relationships at {view.account.name} reach {len(departments)} department(s) "
                   f"of the {len(known)} we know there: a needle point, not a surface.",
                   {"engaged_departments": departments, "known_departments": sorted(known),
                    "minimum": minimum, "engaged_contacts": len(engaged)},
                   "Cover procurement, engineering, technical, O&M and finance, down to front-line engineers.")


def broad_single_level(view: AccountView) -> Finding | None:
    if not _strategic(view):
        return None
    engaged = view.engaged(view.config["broad"]["window_days"])
    bands = {BANDS[s.contact.seniority] for s in engaged if s.contact.seniority}
    if not engaged or len(bands) != 1:
        return None
    return Finding("BROAD_SINGLE_LEVEL", "medium",
                   f"Every engaged contact at {view.account.name} sits at one level ({next(iter(bands))}).",
                   {"band": next(iter(bands)), "engaged_contacts": [s.contact.remote_id for s in engaged]},
                   "Match ranks: executives to executives, managers to managers, engineers to engineers.")


def broad_low_cadence(view: AccountView) -> Finding | None:
    cfg = view.config["findings"]
    if not _strategic(view):
        return None
    per_week = view.data.recent / cfg["cadence_weeks"]
    if per_week >= cfg["cadence_per_week"]:
        return None
    return Finding("BROAD_LOW_CADENCE", "medium" if per_week < cfg["cadence_per_week"] / 2 else "low",
                   f"{view.account.name} got {per_week:.1f} interactions a week over the last "
                   f"{cfg['cadence_weeks']} weeks; the rule is {cfg['cadence_per_week']:g}.",
                   {"per_week": round(per_week, 2), "target": cfg["cadence_per_week"],
                    "weeks": cfg["cadence_weeks"]},
                   "Every customer and product manager talks to this customer at least 5 times a week.")


def org_no_executive_link(view: AccountView) -> Finding | None:
    days = view.config["findings"]["exec_link_days"]
    if not _strategic(view) or view.data.exec_links:
        return None
    return Finding("ORG_NO_EXECUTIVE_LINK", _sev(view, "medium", "low") if view.tier == "A" else "high",
                   f"No executive of ours has met an executive of {view.account.name} in {days} days.",
                   {"window_days": days}, "Plan a top-to-top meeting; organisational trust is built executive to executive.")


def org_thin_team(view: AccountView) -> Finding | None:
    if not _strategic(view):
        return None
    window = view.config["org"]["window_days"]
    people = view.engaged_users(window)
    triangle = iron_triangle(view, window)
    minimum = view.config["findings"]["thin_team"]
    if len(people) >= minimum and all(triangle.values()):
        return None
    missing = [role for role, ok in triangle.items() if not ok]
    return Finding("ORG_THIN_TEAM", "medium",
                   f"{len(people)} of our people engage {view.account.name}"
                   + (f" and the iron triangle lacks {', '.join(missing)}." if missing else "."),
                   {"our_people": people, "iron_triangle": triangle, "minimum": minimum},
                   "Staff the iron triangle: AR with the decision makers, SR with the technical side, FR with O&M.")


def org_no_program(view: AccountView) -> Finding | None:
    days = view.config["findings"]["program_days"]
    if view.tier != "S" or programs_within(view, days):
        return None
    return Finding("ORG_NO_PROGRAM", "medium",
                   f"Strategic account {view.account.name} had none of the five methods (site visit, "
                   f"exhibition, technical exchange, management research, company visit) in {days} days.",
                   {"window_days": days}, "Invite them to a reference site or our headquarters, or run a technical exchange.")


def personalized(view: AccountView) -> Finding | None:
    p = view.personalization
    cfg = view.config["findings"]
    if p["top_holder"] is None or p["top_share"] < cfg["personalized_share"]:
        return None
    if (view.tier or "none") not in cfg["personalized_tiers"]:
        return None
    sim = departure(view, p["top_holder"])
    lost = sim["decision_makers_losing_all_coverage"]
    return Finding("PERSONALIZED_RELATIONSHIP", _sev(view, "high", "medium"),
                   f"{_user(view, p['top_holder'])} holds {p['top_share']:.0%} of our relationship with "
                   f"{view.account.name}: if they leave, health drops {sim['health_drop']:.0f} points and "
                   f"{len(lost)} decision maker(s) lose all coverage.",
                   {**{k: p[k] for k in ("top_holder", "top_share", "effective_holders", "bus_factor")},
                    "departure": sim},
                   "Make the relationship the company's: bring colleagues into each key relationship.")


def orphaned(view: AccountView) -> Finding | None:
    share = view.personalization["inactive_share"]
    owner = view.users.get(view.account.owner_id or "")
    owner_gone = owner is not None and not view.user_active(owner.remote_id)
    if share < view.config["findings"]["orphaned_share"] and not owner_gone:
        return None
    inactive = [u for u in view.personalization["holders"] if not view.user_active(u)]
    return Finding("ORPHANED_RELATIONSHIP", _sev(view, "high", "medium"),
                   f"{share:.0%} of our relationship with {view.account.name} is held by people who have left"
                   + (f", including the account owner {_user(view, owner.remote_id)}." if owner_gone else "."),
                   {"inactive_share": share, "inactive_holders": inactive,
                    "owner": view.account.owner_id, "owner_active": not owner_gone},
                   "Hand the account over: introduce the new owner to every contact the leaver held.")


def declining(view: AccountView) -> Finding | None:
    if view.previous is None:
        return None
    before, now = view.previous.scores.get("health"), view.scores.get("health")
    points = view.config["findings"]["decline_points"]
    if before is None or now is None or before - now < points:
        return None
    return Finding("RELATIONSHIP_DECLINING", _sev(view, "high", "medium"),
                   f"{view.account.name}'s relationship health fell from {before:.0f} to {now:.0f} "
                   f"since {view.config['findings']['previous_period_days']} days ago.",
                   {"previous": view.previous.scores, "current": view.scores, "drop": round(before - now, 1)},
                   "Find out why before they tell you: a disappointed customer rarely complains, it leaves.")


def opponent_unengaged(view: AccountView) -> Finding | None:
    days = view.config["findings"]["opponent_days"]
    quiet = [s for s in _power(view) if s.contact.stance is not None and s.contact.stance < 0
             and (s.days_since_any is None or s.days_since_any > days)]
    if not quiet:
        return None
    return Finding("OPPONENT_UNENGAGED", "high",
                   f"{len(quiet)} decision maker(s) at {view.account.name} oppose us and nobody has talked "
                   f"to them in {days} days: {', '.join(_name(view, s.contact.remote_id) for s in quiet)}.",
                   {"contacts": [s.contact.remote_id for s in quiet], "window_days": days},
                   "Handle difficult customers one by one: listen, find what they need, repair early.")


def rank_mismatch(view: AccountView) -> Finding | None:
    """兵对兵，将对将: executives held only by our individual contributors."""
    juniors = []
    for stat in view.contact_stats.values():
        if BANDS.get(stat.contact.seniority or "") != "executive" or not stat.holders:
            continue
        levels = {BANDS.get(view.users[u].seniority or "") if u in view.users else None for u in stat.holders}
        if levels <= {"ic", None}:
            juniors.append(stat.contact.remote_id)
    if not juniors or not _strategic(view):
        return None
    return Finding("RANK_MISMATCH", "low",
                   f"{len(juniors)} executive(s) at {view.account.name} are covered only by our individual contributors.",
                   {"contacts": juniors}, "Match ranks: bring one of our managers or executives to these relationships.")


def data_quality(view: AccountView) -> Finding | None:
    cfg = view.config["findings"]
    titled = sum(1 for c in view.contacts if c.title) / len(view.contacts) if view.contacts else 1.0
    linked = 1.0 - view.data.unlinked / view.data.interactions if view.data.interactions else 1.0
    problems = []
    if titled < cfg["data_quality_min_titled"]:
        problems.append(f"only {titled:.0%} of contacts have a title")
    if linked < cfg["data_quality_min_linked"]:
        problems.append(f"only {linked:.0%} of interactions name a contact")
    if not problems:
        return None
    return Finding("DATA_QUALITY", "low", f"The data for {view.account.name} cannot support a judgement: "
                   + "; ".join(problems) + ".", {"titled_share": round(titled, 3), "linked_share": round(linked, 3)},
                   "Ask the account team to log titles and link activities to contacts.")


RULES: tuple[Callable[[AccountView], Finding | None], ...] = (
    key_no_decision_maker, key_decision_maker_cold, key_single_holder, broad_narrow_coverage,
    broad_single_level, broad_low_cadence, org_no_executive_link, org_thin_team, org_no_program,
    personalized, orphaned, declining, opponent_unengaged, rank_mismatch, data_quality,
)


def account_findings(view: AccountView) -> list[Finding]:
    return [f for rule in RULES if (f := rule(view)) is not None]
