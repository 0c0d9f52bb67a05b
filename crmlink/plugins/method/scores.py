"""The key, broad, organisational and health scores (docs/method.md has the formulas)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from crmlink import AccountView, Contact, ContactStat, Score

#: seniority -> band; bands are ordered from individual contributor to executive
BANDS = {"intern": "ic", "entry": "ic", "senior": "ic", "manager": "manager", "head": "director",
         "director": "director", "vp": "executive", "c_suite": "executive", "owner": "executive"}
BAND_ORDER = ("ic", "manager", "director", "executive")
#: which of their departments and buying roles each iron-triangle role engages (铁三角):
#: the AR the decision chain, the SR the technical side, the FR operations and engineering
COUNTERPARTS: dict[str, tuple[set[str], set[str]]] = {
    "AR": (set(), {"economic_buyer", "decision_maker", "approver"}),
    "SR": ({"technical", "engineering", "it"}, {"technical_evaluator"}),
    "FR": ({"operations", "engineering"}, {"user"}),
}


def band_of(seniority: str | None) -> str | None:
    return BANDS.get(seniority or "")


LAYERS = ("key", "broad", "org")


def missing_evidence(view: AccountView) -> dict[str, str]:
    """The layers that have no evidence to be scored on, each with the reason.

    Every layer needs at least one interaction in the coverage window naming one of
    their contacts and one of our people; key also needs a contact described by title,
    level, department or buying role (to tell who decides), and broad one with a
    department or level (to tell which parts of the customer we reach). Found once per
    view (the scores, the departure simulation and the data-gap finding ask)."""
    return dict(view.derived(("method", "missing"), _missing_evidence))


def _missing_evidence(view: AccountView) -> dict[str, str]:
    coverage = view.coverage
    if not coverage.has_relationship_evidence:
        reason = (f"no interaction in {coverage.window_days:g} days names one of their contacts "
                  "and one of our people")
        return dict.fromkeys(LAYERS, reason)
    missing = {}
    if not coverage.classified:
        missing["key"] = "no contact has a title, level, department or buying role"
    if not view.contacts_derived(("method", "placed"), _any_placed):
        missing["broad"] = "no contact has a department or level"
    return missing


def _any_placed(contacts: Sequence[Contact]) -> bool:
    """Whether an active contact has a department or a level."""
    return any((c.department or c.seniority) for c in contacts if c.active)


def _unscored(name: str, reason: str) -> Score:
    return Score(name, None, {"no_evidence": reason})


def key_score(view: AccountView) -> Score:
    """Per role group, the best active contact's team strength x stance factor, weighted."""
    weights: dict[str, float] = view.config["key"]["role_weights"]
    contacts: dict[str, dict[str, Any]] = {}
    best, who = _key_best(view, weights, contacts)
    return Score("key", _key_value(weights, best), {"by_role": {r: round(v, 3) for r, v in best.items()},
                                                    "best_contact_by_role": who, "role_weights": weights,
                                                    "key_contacts": contacts})


def _key_best(view: AccountView, weights: dict[str, float], contacts: dict[str, dict[str, Any]] | None
              ) -> tuple[dict[str, float], dict[str, str]]:
    """The best quality (team strength x stance factor) per role group of ``weights`` and
    the contact who has it (of equals, the first by id); ``contacts``, when given, gets
    each active key contact's evidence."""
    best: dict[str, float] = dict.fromkeys(weights, 0.0)
    who: dict[str, str] = {}
    factors = view.config["key"]["stance_factor"]
    for stat in view.contact_stats.values():
        group = "power" if stat.is_decision_maker else stat.role  # the role weights' group
        if group not in weights:
            continue
        contact = stat.contact
        if not contact.active:
            continue
        rid, team = contact.remote_id, stat.team
        if contacts is not None:
            contacts[rid] = {"role": group, "team": round(team, 1), "best_holder": stat.best_holder,
                             "holders": len(stat.holders)}
        stance = contact.stance
        quality = team / 100.0 * float(factors["unknown" if stance is None else str(stance)])
        if quality > best[group]:
            best[group], who[group] = quality, rid
    return best, who


def _key_value(weights: dict[str, float], best: dict[str, float]) -> float:
    return 100.0 * sum(weights[r] * best[r] for r in weights) / sum(weights.values())


def key_value(view: AccountView) -> float:
    """:func:`key_score`'s value alone, without its evidence."""
    weights: dict[str, float] = view.config["key"]["role_weights"]
    return _key_value(weights, _key_best(view, weights, None)[0])


def broad_score(view: AccountView) -> Score:
    """Department coverage, level coverage and breadth of the engaged contacts."""
    cfg = view.config["broad"]
    engaged, departments, bands, unknown, coverages, value = _broad(view, cfg)
    dept_cov, level_cov, breadth = coverages
    return Score("broad", value, {"departments": sorted(departments), "department_coverage": round(dept_cov, 3),
                                  "levels": sorted(bands, key=BAND_ORDER.index), "level_coverage": round(level_cov, 3),
                                  "engaged_contacts": len(engaged), "breadth": round(breadth, 3),
                                  "parts": cfg["parts"], **({"unknown_people_engaged": unknown} if unknown else {})})


def _broad(view: AccountView, cfg: dict[str, Any]
           ) -> tuple[list[ContactStat], set[str], set[str], int, tuple[float, float, float], float]:
    """The engaged contacts, their departments and bands, the unknown people counted,
    the three coverages and the broad value (:func:`broad_score` without its evidence)."""
    parts = cfg["parts"]
    engaged = view.engaged(cfg["window_days"])
    departments = {s.contact.department for s in engaged if s.contact.department}
    expected = cfg["expected_departments"]
    dept_cov = min(1.0, len(departments & set(expected)) / len(expected)) if expected else 1.0
    bands = {b for s in engaged if (b := band_of(s.contact.seniority))}
    level_cov = len(bands) / len(BAND_ORDER)
    unknown = _unknown_people_counted(view, cfg["window_days"])
    breadth = 1.0 - math.exp(-(len(engaged) + unknown) / cfg["active_contacts_scale"])
    value = 100.0 * (parts["departments"] * dept_cov + parts["levels"] * level_cov
                     + parts["contacts"] * breadth) / sum(parts.values())
    return engaged, departments, bands, unknown, (dept_cov, level_cov, breadth), value


def _unknown_people_counted(view: AccountView, window: float) -> int:
    """People not in the CRM we exchanged mail with both ways within ``window`` days,
    when ``identity.count_unknown_people`` allows them (docs/method.md)."""
    if not view.config.get("identity", {}).get("count_unknown_people"):
        return 0
    return sum(1 for person in view.unknown_people if person.two_way_within(view.as_of, window))


def iron_triangle(view: AccountView, window: float) -> dict[str, bool]:
    """Whether our AR, SR and FR each hold an engaged relationship, two-way within
    ``window`` days, with a counterpart (see ``COUNTERPARTS``); found once per view and
    window (the org score and the thin-team finding ask)."""
    return dict(view.derived(("method", "iron_triangle", window), lambda v: _iron_triangle(v, window)))


def _iron_triangle(view: AccountView, window: float) -> dict[str, bool]:
    threshold = view.config["strength"]["engaged_threshold"]
    done = dict.fromkeys(COUNTERPARTS, False)
    left = len(done)
    users, stats, pairs, as_of = view.users, view.contact_stats, view.data.pairs, view.as_of
    for (user_id, contact_id), strength in view.pair_strengths.items():
        if strength < threshold:
            continue
        user = users.get(user_id)
        role = user.team_role if user is not None else None
        if role not in COUNTERPARTS or done[role]:  # a role found once is found
            continue
        stat = stats.get(contact_id)
        if stat is None:
            continue
        last = pairs[(user_id, contact_id)].last_two_way
        if last is None or (as_of - last) / 86400.0 > window:
            continue
        departments, roles = COUNTERPARTS[role]
        if stat.contact.department in departments or stat.role in roles:
            done[role] = True
            left -= 1
            if not left:  # every role found: the rest of the pairs cannot change it
                break
    return done


def org_score(view: AccountView) -> Score:
    """Executive links, our people engaged, the iron triangle and the five methods."""
    cfg = view.config["org"]
    links, people, triangle, methods, value = _org(view, cfg)
    return Score("org", value, {"executive_links": links, "our_people_engaged": len(people),
                                "iron_triangle": triangle, "methods": methods, "parts": cfg["parts"]})


def _org(view: AccountView, cfg: dict[str, Any]) -> tuple[int, list[str], dict[str, bool], list[str], float]:
    """The executive links, our people engaged, the iron triangle, the methods used and
    the org value (:func:`org_score` without its evidence)."""
    parts = cfg["parts"]
    links = len(view.data.exec_links)
    values = cfg["executive_link_values"]
    exec_part = float(values[min(links, len(values) - 1)])
    people = view.engaged_users(cfg["window_days"])
    people_part = min(1.0, len(people) / cfg["team_target"])
    triangle = iron_triangle(view, cfg["window_days"])
    triangle_part = sum(triangle.values()) / len(triangle)
    methods = programs_within(view, cfg["program_days"])
    program_part = min(1.0, len(methods) / cfg["methods_target"])
    value = 100.0 * (parts["executive"] * exec_part + parts["people"] * people_part
                     + parts["iron_triangle"] * triangle_part + parts["programs"] * program_part
                     ) / sum(parts.values())
    return links, people, triangle, methods, value


def programs_within(view: AccountView, days: float) -> list[str]:
    """The five methods used with the account within ``days`` days, sorted."""
    return sorted(m for m, last in view.data.methods.items() if (view.as_of - last) / 86400.0 <= days)


def activity(view: AccountView) -> tuple[float, float | None]:
    """How recently the account as a whole spoke with us: 1.0 within the grace period,
    then halving every ``freshness_half_life_days`` of silence (docs/method.md); and the
    days since its last two-way interaction. Found once per view (health, the stage and
    the departure simulation ask)."""
    return view.derived(("method", "activity"), _activity)


def _activity(view: AccountView) -> tuple[float, float | None]:
    cfg = view.config["strength"]
    last = max((t[1] for t in view.data.contact_last.values() if t[1] is not None), default=None)
    days = view.days_since(last)
    if days is None:
        return 0.0, None
    silent = max(0.0, days - cfg["freshness_grace_days"])
    return math.pow(2.0, -silent / cfg["freshness_half_life_days"]), days


def health(view: AccountView, parts: dict[str, float | None]) -> Score:
    """The layers weighted by tier, times the account's activity factor. Layers without
    evidence (``None``) are left out and the others' weights scaled up to the same total;
    with no layer scored, health has no evidence either."""
    weights, scored, layers = _layers(view, parts)
    if layers is None:
        if not scored:
            return _unscored("health", "no layer has evidence")
        return _unscored("health", f"the layers with evidence weigh nothing for tier {view.tier or 'none'}")
    factor, days = activity(view)
    evidence: dict[str, Any] = {
        "weights": weights, "tier": view.tier,
        "parts": {name: None if value is None else round(value, 1) for name, value in parts.items()},
        "layers": round(layers, 1), "activity_factor": round(factor, 3),
        "days_since_last_two_way": None if days is None else round(days, 1)}
    if len(scored) < len(parts):
        evidence["without_evidence"] = sorted(set(parts) - set(scored))
    return Score("health", min(100.0, layers * factor), evidence)


def _layers(view: AccountView, parts: dict[str, float | None]
            ) -> tuple[dict[str, float], dict[str, float], float | None]:
    """The tier's weights, the layers scored, and their weighted sum scaled up to the
    weights' total (``None`` when no layer is scored or those scored weigh nothing)."""
    weights = dict(zip(LAYERS, view.config["health"][view.tier or "none"]))
    scored = {name: value for name, value in parts.items() if value is not None}
    if not scored:
        return weights, scored, None
    total = sum(weights.values())
    used = sum(weights[name] for name in scored)
    if not used:
        return weights, scored, None
    scale = total / used
    return weights, scored, scale * sum(weights[name] * value for name, value in scored.items())


SCORERS = {"key": key_score, "broad": broad_score, "org": org_score}


def score_all(view: AccountView) -> list[Score]:
    """Every score of the method, computed once per view (the departure simulation and
    its finding read the health again). On a view whose ``wants_evidence`` is false each
    score comes with empty evidence: the same values, without the work of the evidence."""
    return list(view.derived(("method", "scores"), _score_all if view.wants_evidence else _score_values))


def _score_all(view: AccountView) -> list[Score]:
    missing = missing_evidence(view)
    parts = [_unscored(name, missing[name]) if name in missing else SCORERS[name](view)
             for name in LAYERS]
    return parts + [health(view, {s.name: s.value for s in parts})]


def health_of(view: AccountView) -> float | None:
    return score_all(view)[-1].value


#: each layer's value alone, without its evidence (the departure simulation's health)
VALUES: dict[str, Callable[[AccountView], float | None]] = {
    "key": key_value, "broad": lambda view: _broad(view, view.config["broad"])[-1],
    "org": lambda view: _org(view, view.config["org"])[-1]}


def _layer_values(view: AccountView) -> dict[str, float | None]:
    """Each layer's value alone, ``None`` where it has no evidence."""
    missing = missing_evidence(view)
    return {name: None if name in missing else VALUES[name](view) for name in LAYERS}


def _health_value(view: AccountView, parts: dict[str, float | None], factor: float) -> float | None:
    """What :func:`health` gives for the layers' values ``parts``, with ``factor`` the
    view's activity factor (:func:`activity`)."""
    layers = _layers(view, parts)[2]
    return None if layers is None else min(100.0, layers * factor)


def _score_values(view: AccountView) -> list[Score]:
    """:func:`_score_all`'s scores with empty evidence, their values computed alone."""
    parts = _layer_values(view)
    overall = _health_value(view, parts, activity(view)[0])
    return [Score(name, value, {}) for name, value in parts.items()] + [Score("health", overall, {})]


def departure(view: AccountView, user_id: str) -> dict[str, Any]:
    """What the account loses if ``user_id`` leaves: the health drop and the decision
    makers left with no relationship above the one-way cap, with the sentence to say it
    (computed once per view and user: the hook and the personalisation finding ask)."""
    found = view.derived(("method", "departure", user_id), lambda v: _departure(v, user_id))
    return {**found, "decision_makers_losing_all_coverage": list(found["decision_makers_losing_all_coverage"])}


def _departure(view: AccountView, user_id: str) -> dict[str, Any]:
    after = view.without_user(user_id)
    cap = view.config["strength"]["one_way_cap"]
    lost = sorted(c for c, stat in view.contact_stats.items()
                  if stat.is_decision_maker and stat.contact.active and stat.team > cap
                  and after.contact_stats[c].team <= cap)
    # the account's activity is the same without the user: it follows from its data alone
    before_health = health_of(view) or 0.0
    after_health = _health_value(after, _layer_values(after), activity(view)[0]) or 0.0
    user = view.users.get(user_id)
    name = (user.name if user else None) or user_id
    drop = before_health - after_health
    return {"user": user_id, "health_before": round(before_health, 1),
            "health_after": round(after_health, 1), "health_drop": round(drop, 1),
            "decision_makers_losing_all_coverage": lost,
            "sentence": f"If {name} leaves, health drops {drop:.0f} points and {len(lost)} "
                        f"decision maker{'' if len(lost) == 1 else 's'} lose{'s' if len(lost) == 1 else ''} "
                        "all coverage."}
