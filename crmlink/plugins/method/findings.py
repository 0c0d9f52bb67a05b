"""Account findings of the three layers (key, broad, organisational). Each rule is one
small function returning a :class:`~crmlink.Finding` or ``None``; ``RULES`` lists every
account rule of the method (the risks are in :mod:`.risks`); docs/method.md documents
every code."""

from __future__ import annotations

from collections.abc import Callable

from crmlink import AccountView, Finding
from crmlink.plugins.method import evidence, risks
from crmlink.plugins.method.scores import band_of, iron_triangle, programs_within
from crmlink.plugins.method.select import decision_makers, executives, severity, strategic
from crmlink.plugins.method.words import colleague, contacts, count, join, user_name, users
from crmlink.plugins.method.words import departments as _departments


def key_no_decision_maker(view: AccountView) -> Finding | None:
    opps = view.open_opportunities()
    if not (strategic(view) or opps) or decision_makers(view) or executives(view):
        return None
    deals = f" and {count(len(opps), 'open deal')}" if opps else ""
    return Finding(
        "KEY_NO_DECISION_MAKER", severity(view, "high", "medium"),
        f"Nobody at {view.account.name} is known to us as a decision maker, economic buyer or "
        f"executive, although we have {count(len(view.contacts), 'contact')} there{deals}.",
        {"contacts": len(view.contacts), "open_opportunities": [o.remote_id for o in opps]},
        f"Map the decision chain at {view.account.name}: find the 1-3 people who decide and the "
        "influencers around them, and record their buying roles in the CRM.")


def key_decision_maker_cold(view: AccountView) -> Finding | None:
    days = view.config["findings"]["cold_days"]
    power = decision_makers(view)
    if not power or any(s.days_since_two_way is not None and s.days_since_two_way <= days for s in power):
        return None
    last = min((s.days_since_two_way for s in power if s.days_since_two_way is not None), default=None)
    when = f"the last was {last:.0f} days ago" if last is not None else "there has never been one"
    holder = max(power, key=lambda s: s.best).best_holder
    via = f" ({user_name(view, holder)} knows them best)" if holder else ""
    return Finding(
        "KEY_DECISION_MAKER_COLD", severity(view, "high", "medium"),
        f"None of the {count(len(power), 'decision maker')} at {view.account.name} "
        f"({contacts(view, [s.contact.remote_id for s in power])}) has had a two-way conversation "
        f"with us in {days} days; {when}.",
        {"decision_makers": [s.contact.remote_id for s in power],
         "days_since_last_two_way": None if last is None else round(last, 1), "threshold_days": days,
         "best_holder": holder},
        f"Arrange a meeting with them this month{via}: a cold key relationship loses projects.")


def key_single_holder(view: AccountView) -> Finding | None:
    single = [s for s in decision_makers(view) if len(s.holders) == 1]
    if not single or view.tier not in view.config["findings"]["single_holder_tiers"]:
        return None
    pairs = {s.contact.remote_id: s.holders[0] for s in single}
    held = join([f"{contacts(view, [c])} by {user_name(view, u)}" for c, u in pairs.items()])
    other = colleague(view, set(pairs.values()), senior_first=True)
    second = user_name(view, other) if other else "one of our executives or the AR"
    return Finding(
        "KEY_SINGLE_HOLDER", severity(view, "medium", "low"),
        f"At {view.account.name}, {count(len(single), 'decision maker')} "
        f"{'is' if len(single) == 1 else 'are'} held by only one of our people: {held}.",
        {"contacts": pairs, "suggested_second_holder": other},
        f"Bring a second person ({second}) into each of these relationships, so none depends on one of us.")


def broad_narrow_coverage(view: AccountView) -> Finding | None:
    if not strategic(view):
        return None
    engaged = view.engaged(view.config["broad"]["window_days"])
    departments = sorted({s.contact.department for s in engaged if s.contact.department})
    known = sorted({c.department for c in view.contacts if c.department and c.active})
    minimum = view.config["findings"]["min_departments"]
    if len(departments) >= minimum and len(departments) * 2 >= len(known):
        return None
    missing = [d for d in known if d not in departments]
    reach = _departments(departments) if departments else "none"
    return Finding(
        "BROAD_NARROW_COVERAGE", "high" if len(departments) <= 1 else "medium",
        f"Our relationships at {view.account.name} reach {count(len(departments), 'department')} "
        f"({reach}) of the {len(known)} we know there: a needle point, not a surface.",
        {"engaged_departments": departments, "known_departments": known, "minimum": minimum,
         "engaged_contacts": [s.contact.remote_id for s in engaged]},
        f"Open relationships in {_departments(missing) if missing else 'more departments'}, down to "
        "front-line engineers and assistants; many people influence a decision.")


def broad_single_level(view: AccountView) -> Finding | None:
    if not strategic(view):
        return None
    engaged = view.engaged(view.config["broad"]["window_days"])
    bands = {band_of(s.contact.seniority) for s in engaged if s.contact.seniority}
    if not engaged or len(bands) != 1:
        return None
    band = next(iter(bands))
    ids = [s.contact.remote_id for s in engaged]
    return Finding(
        "BROAD_SINGLE_LEVEL", "medium",
        f"Every contact we engage at {view.account.name} is at one level ({band}): {contacts(view, ids)}.",
        {"band": band, "engaged_contacts": ids},
        "Engage the other levels too, rank to rank: executives with executives, managers with "
        "managers, engineers with engineers.")


def broad_low_cadence(view: AccountView) -> Finding | None:
    cfg = view.config["findings"]
    if not strategic(view):
        return None
    per_week = view.data.recent / cfg["cadence_weeks"]
    target = cfg["cadence_per_week"]
    if per_week >= target:
        return None
    team = view.engaged_users(cfg["cadence_weeks"] * 7)
    who = f" ({users(view, team)})" if team else ""
    return Finding(
        "BROAD_LOW_CADENCE", "medium" if per_week < target / 2 else "low",
        f"{view.account.name} heard from us {per_week:.1f} times a week over the last "
        f"{cfg['cadence_weeks']} weeks ({count(view.data.recent, 'interaction')}); the rule is {target:g} a week.",
        {"per_week": round(per_week, 2), "interactions": view.data.recent, "target": target,
         "weeks": cfg["cadence_weeks"], "our_people": team},
        f"Set a weekly rhythm for the account team{who}: at least {target:g} customer conversations a week.")


def org_no_executive_link(view: AccountView) -> Finding | None:
    days = view.config["findings"]["exec_link_days"]
    if not strategic(view) or view.data.exec_links:
        return None
    theirs = sorted(s.contact.remote_id for s in executives(view))
    ours = sorted(u for u, user in view.users.items() if view.user_active(u)
                  and (user.team_role == "executive" or band_of(user.seniority) == "executive"))
    who = contacts(view, theirs) if theirs else "an executive we have yet to identify"
    ours.sort(key=lambda u: (-view.user_strength.get(u, 0.0), u))
    sponsor = users(view, ours[:1]) if ours else "one of our executives"
    return Finding(
        "ORG_NO_EXECUTIVE_LINK", "high" if view.tier == "S" else "medium",
        f"None of our executives has had a two-way meeting with an executive of "
        f"{view.account.name} in {days} days.",
        {"window_days": days, "their_executives": theirs, "our_executives": ours},
        f"Plan a top-to-top meeting of {sponsor} with {who}: organisational trust is built "
        "executive to executive.")


def org_thin_team(view: AccountView) -> Finding | None:
    if not strategic(view):
        return None
    window = view.config["org"]["window_days"]
    people = view.engaged_users(window)
    triangle = iron_triangle(view, window)
    minimum = view.config["findings"]["thin_team"]
    if len(people) >= minimum and all(triangle.values()):
        return None
    missing = [role for role, ok in triangle.items() if not ok]
    few = f"only {len(people)}" if len(people) < minimum else str(len(people))
    named = f" ({users(view, people)})" if people else ""
    gap = f", and the iron triangle has no {join(missing)} engaging a counterpart" if missing else ""
    return Finding(
        "ORG_THIN_TEAM", "medium",
        f"{few.capitalize()} of our people{named} engaged {view.account.name} in {window:g} days "
        f"(the method asks for {minimum}){gap}.",
        {"our_people": people, "iron_triangle": triangle, "missing_roles": missing, "minimum": minimum},
        "Staff the iron triangle: the AR with the decision makers, the SR with the technical side, "
        "the FR with operations and engineering.")


def org_no_program(view: AccountView) -> Finding | None:
    days = view.config["findings"]["program_days"]
    if view.tier not in view.config["findings"]["program_tiers"] or programs_within(view, days):
        return None
    last = {m: round((view.as_of - t) / 86400.0) for m, t in sorted(view.data.methods.items())}
    return Finding(
        "ORG_NO_PROGRAM", "medium",
        f"{view.account.name}, a tier {view.tier} account, had none of the five methods (site visit, "
        f"exhibition, technical exchange, management research, company visit) in {days} days.",
        {"window_days": days, "days_since_each_method": last},
        f"Invite {view.account.name} to a reference site or our headquarters, or run a technical exchange.")


Rule = Callable[[AccountView], "Finding | None"]

#: The rules of each layer: none of them runs when its layer has no evidence (its score
#: is ``None``); :func:`.evidence.data_gap` says what is missing instead.
LAYER_RULES: dict[str, tuple[Rule, ...]] = {
    "key": (key_no_decision_maker, key_decision_maker_cold, key_single_holder, risks.opponent_unengaged),
    "broad": (broad_narrow_coverage, broad_single_level, broad_low_cadence, risks.rank_mismatch),
    "org": (org_no_executive_link, org_thin_team, org_no_program),
}

RULES: tuple[Rule, ...] = (
    key_no_decision_maker, key_decision_maker_cold, key_single_holder, broad_narrow_coverage,
    broad_single_level, broad_low_cadence, org_no_executive_link, org_thin_team, org_no_program,
    *risks.RULES, evidence.data_gap,
)


def account_findings(view: AccountView) -> list[Finding]:
    unscored = {layer for layer in LAYER_RULES if layer in view.scores and view.scores[layer] is None}
    skipped = {rule for layer in unscored for rule in LAYER_RULES[layer]}
    if unscored:
        skipped.add(risks.data_quality)  # the data-gap finding says it, with what is missing
    if unscored == set(LAYER_RULES):
        skipped.add(risks.personalized)  # a share of next to nothing says nothing
    return [f for rule in RULES if rule not in skipped and (f := rule(view)) is not None]
