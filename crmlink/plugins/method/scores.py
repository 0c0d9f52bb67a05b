"""The key, broad, organisational and health scores (docs/method.md has the formulas)."""

from __future__ import annotations

import math
from typing import Any

from crmlink import AccountView, ContactStat, Score

POWER_ROLES = {"economic_buyer", "decision_maker", "approver"}
BANDS = {"intern": "ic", "entry": "ic", "senior": "ic", "manager": "manager", "head": "director",
         "director": "director", "vp": "executive", "c_suite": "executive", "owner": "executive"}
#: which of their departments or roles each iron-triangle role should engage
COUNTERPARTS = {
    "AR": None,  # the account responsible engages anyone
    "SR": ({"technical", "engineering", "it"}, {"technical_evaluator"}),
    "FR": ({"operations", "engineering"}, {"user"}),
}


def _role_group(stat: ContactStat) -> str | None:
    return "power" if stat.role in POWER_ROLES - {"approver"} else stat.role


def _stance_factor(view: AccountView, stance: int | None) -> float:
    table = view.config["key"]["stance_factor"]
    return float(table["unknown" if stance is None else str(stance)])


def key_score(view: AccountView) -> Score:
    weights: dict[str, float] = view.config["key"]["role_weights"]
    best: dict[str, float] = dict.fromkeys(weights, 0.0)
    who: dict[str, str] = {}
    for stat in view.contact_stats.values():
        group = _role_group(stat)
        if group not in weights or not stat.contact.active:
            continue
        quality = stat.team / 100.0 * _stance_factor(view, stat.contact.stance)
        if quality > best[group]:
            best[group], who[group] = quality, stat.contact.remote_id
    value = 100.0 * sum(weights[r] * best[r] for r in weights) / sum(weights.values())
    return Score("key", value, {"by_role": {r: round(v, 3) for r, v in best.items()},
                                "best_contact_by_role": who, "role_weights": weights})


def broad_score(view: AccountView) -> Score:
    cfg = view.config["broad"]
    engaged = view.engaged(cfg["window_days"])
    departments = sorted({s.contact.department for s in engaged if s.contact.department})
    expected = cfg["expected_departments"]
    dept_cov = min(1.0, len(departments) / len(expected)) if expected else 1.0
    bands = sorted({BANDS[s.contact.seniority] for s in engaged if s.contact.seniority})
    level_cov = len(bands) / 4.0
    breadth = 1.0 - math.exp(-len(engaged) / cfg["active_contacts_scale"])
    value = 100.0 * (0.5 * dept_cov + 0.3 * level_cov + 0.2 * breadth)
    return Score("broad", value, {"departments": departments, "department_coverage": round(dept_cov, 3),
                                  "levels": bands, "level_coverage": round(level_cov, 3),
                                  "engaged_contacts": len(engaged)})


def iron_triangle(view: AccountView, window: float) -> dict[str, bool]:
    """Whether our AR, SR and FR each engage their counterparts within ``window`` days."""
    threshold = view.config["strength"]["engaged_threshold"]
    done = dict.fromkeys(COUNTERPARTS, False)
    for (user_id, contact_id), strength in view.pair_strengths.items():
        user = view.users.get(user_id)
        stat = view.contact_stats.get(contact_id)
        if user is None or stat is None or user.team_role not in COUNTERPARTS or strength < threshold:
            continue
        if stat.days_since_two_way is None or stat.days_since_two_way > window:
            continue
        wanted = COUNTERPARTS[user.team_role]
        if wanted is None or stat.contact.department in wanted[0] or stat.role in wanted[1]:
            done[user.team_role] = True
    return done


def org_score(view: AccountView) -> Score:
    cfg = view.config["org"]
    links = len(view.data.exec_links)
    exec_part = 0.0 if links == 0 else 0.6 if links == 1 else 1.0
    people = view.engaged_users(cfg["window_days"])
    people_part = min(1.0, len(people) / cfg["team_target"])
    triangle = iron_triangle(view, cfg["window_days"])
    triangle_part = sum(triangle.values()) / len(triangle)
    methods = programs_within(view, cfg["program_days"])
    program_part = min(1.0, len(methods) / 3.0)
    value = 100.0 * (0.4 * exec_part + 0.2 * people_part + 0.2 * triangle_part + 0.2 * program_part)
    return Score("org", value, {"executive_links": links, "our_people_engaged": len(people),
                                "iron_triangle": triangle, "methods": methods})


def programs_within(view: AccountView, days: float) -> list[str]:
    return sorted(m for m, last in view.data.methods.items() if (view.as_of - last) / 86400.0 <= days)


def activity(view: AccountView) -> tuple[float, float | None]:
    """How recently the account as a whole spoke with us: 1.0 within the grace period,
    then halving every ``freshness_half_life_days`` of silence (docs/method.md)."""
    cfg = view.config["strength"]
    last = max((t[1] for t in view.data.contact_last.values() if t[1] is not None), default=None)
    days = view.days_since(last)
    if days is None:
        return 0.0, None
    silent = max(0.0, days - cfg["freshness_grace_days"])
    return math.pow(2.0, -silent / cfg["freshness_half_life_days"]), days


def health(view: AccountView, parts: dict[str, float]) -> Score:
    weights = view.config["health"][view.tier or "none"]
    layers = sum(w * parts[name] for w, name in zip(weights, ("key", "broad", "org")))
    factor, days = activity(view)
    return Score("health", min(100.0, layers * factor), {
        "weights": dict(zip(("key", "broad", "org"), weights)), "tier": view.tier,
        "layers": round(layers, 1), "activity_factor": round(factor, 3),
        "days_since_last_two_way": None if days is None else round(days, 1)})


def score_all(view: AccountView) -> list[Score]:
    parts = [key_score(view), broad_score(view), org_score(view)]
    result = parts + [health(view, {s.name: s.value for s in parts})]
    return result


def health_of(view: AccountView) -> float:
    return score_all(view)[-1].value


def departure(view: AccountView, user_id: str) -> dict[str, Any]:
    """What the account loses if ``user_id`` leaves: the health drop and the decision
    makers left with no relationship at all."""
    after = view.without_user(user_id)
    cap = view.config["strength"]["one_way_cap"]
    lost = [c for c, stat in view.contact_stats.items()
            if stat.is_power and stat.team > cap and after.contact_stats[c].team <= cap]
    return {"user": user_id, "health_before": round(health_of(view), 1),
            "health_after": round(health_of(after), 1),
            "health_drop": round(health_of(view) - health_of(after), 1),
            "decision_makers_losing_all_coverage": sorted(lost)}
