"""Strategic stage and relationship level from the evidence in the store
(docs/method.md, "Strategic stage and relationship level").

Stages build on each other: perceptual recognition (we are in contact: a two-way
conversation, one of the five methods, or an order), a community of interest (repeat
orders and services that raise the customer's profit), deep strategic cooperation
(regular executive meetings, a joint programme, a relationship of years). Levels too:
ordinary cooperation (a relationship the evidence can judge), friendship (decision makers
who support us, with strong relationships, for a year or more), strategic partnership
(more of them, deep cooperation and high health). Each rule says why it holds and, when
it does not, what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmlink import LEVELS, STAGES, AccountView, Relationship
from crmlink.plugins.method.scores import activity, programs_within
from crmlink.plugins.method.select import decision_makers
from crmlink.plugins.method.words import contact_name, count, join

METHOD_WORDS = {"site_visit": "a site visit", "exhibition": "an exhibition", "tech_exchange": "a technical exchange",
                "management_research": "management research", "company_visit": "a company visit"}
DAY = 86400.0


@dataclass(frozen=True)
class Facts:
    """The evidence the stage and level rules read, as of the view's date."""

    days_since_two_way: float | None
    methods: list[str]
    won_ever: int
    won_recent: int
    services: list[str]
    joint: list[str]
    exec_periods: int
    tenure_days: float | None

    def to_json(self) -> dict[str, Any]:
        return {"days_since_two_way": None if self.days_since_two_way is None else round(self.days_since_two_way, 1),
                "methods": self.methods, "won_deals": self.won_ever, "won_deals_recent": self.won_recent,
                "services": self.services, "joint_programmes": self.joint,
                "executive_periods": self.exec_periods,
                "tenure_days": None if self.tenure_days is None else round(self.tenure_days, 1)}


def _won_days(view: AccountView) -> list[float]:
    """Days since each won deal closed (its creation when it has no close date)."""
    found = []
    for deal in view.opportunities:
        when = deal.close_date or deal.created_at
        if deal.is_won and not deal.deleted and when is not None and when.timestamp() <= view.as_of:
            found.append((view.as_of - when.timestamp()) / DAY)
    return found


def _joint(view: AccountView, keywords: list[str]) -> list[str]:
    """Deals that record a joint programme: their name or type names one."""
    words = [k.lower() for k in keywords]
    found = []
    for deal in view.opportunities:
        extra = deal.extra or {}
        text = " ".join(str(t) for t in (deal.name, extra.get("Type"), extra.get("dealtype")) if t).lower()
        created = deal.created_at
        if not deal.deleted and (created is None or created.timestamp() <= view.as_of) and any(w in text for w in words):
            found.append(deal.name or deal.remote_id)
    return sorted(found)


def _exec_periods(view: AccountView, periods: int, length: float) -> int:
    """How many of the last ``periods`` periods of ``length`` days had an executive-to-executive
    two-way interaction."""
    ages = [(view.as_of - at) / DAY for at in view.data.exec_links]
    return sum(1 for i in range(periods) if any(i * length <= age < (i + 1) * length for age in ages))


def facts_of(view: AccountView) -> Facts:
    cfg = view.config["stage"]
    won = _won_days(view)
    methods = programs_within(view, cfg["window_days"])
    first = view.data.first_two_way
    return Facts(activity(view)[1], methods, len(won), sum(1 for d in won if d <= cfg["order_days"]),
                 [m for m in methods if m in cfg["service_methods"]], _joint(view, cfg["joint_keywords"]),
                 _exec_periods(view, int(cfg["exec_periods"]), float(cfg["exec_period_days"])),
                 None if first is None else (view.as_of - first) / DAY)


def _methods(names: list[str], conjunction: str = "and") -> str:
    text = join([METHOD_WORDS.get(m, m) for m in names])
    return text if conjunction == "and" else text.replace(" and ", f" {conjunction} ")


def _recognised(view: AccountView, f: Facts) -> tuple[list[str], list[str]]:
    window = view.config["stage"]["window_days"]
    because = []
    if f.days_since_two_way is not None and f.days_since_two_way <= window:
        because.append(f"a two-way conversation {count(round(f.days_since_two_way), 'day')} ago")
    if f.methods:
        because.append(f"{_methods(f.methods)} within {window:g} days")
    if f.won_ever:
        because.append(count(f.won_ever, "won deal"))
    need = [] if because else [f"a two-way meeting or call within {window:g} days, one of the five methods "
                               "(a site visit, an exhibition, a technical exchange ...) or a first order"]
    return because, need


def _interest(view: AccountView, f: Facts) -> tuple[list[str], list[str]]:
    cfg = view.config["stage"]
    because, need = [], []
    if f.won_recent >= cfg["interest_orders"]:
        because.append(f"{count(f.won_recent, 'won deal')} in {cfg['order_days']:g} days")
    else:
        need.append(f"{cfg['interest_orders']} won deals in {cfg['order_days']:g} days (has {f.won_recent})")
    if f.services or f.joint:
        because.append(f"{_methods(f.services)} within {cfg['window_days']:g} days" if f.services
                       else f"a joint programme ({join(f.joint)})")
    else:
        need.append(f"a service that raises their profit: {_methods(cfg['service_methods'], 'or')} within "
                    f"{cfg['window_days']:g} days, or a joint programme")
    return because, need


def _deep(view: AccountView, f: Facts) -> tuple[list[str], list[str]]:
    cfg = view.config["stage"]
    periods, length = int(cfg["exec_periods"]), float(cfg["exec_period_days"])
    because, need = [], []
    if f.exec_periods >= periods:
        because.append(f"executive meetings in each of the last {periods} periods of {length:g} days")
    else:
        need.append(f"executive-to-executive meetings in each of the last {periods} periods of {length:g} days "
                    f"({f.exec_periods} of {periods})")
    if f.joint:
        because.append(f"a joint programme ({join(f.joint)})")
    else:
        need.append("a joint programme recorded (a deal named or typed joint development, joint innovation ...)")
    if f.tenure_days is not None and f.tenure_days >= cfg["deep_tenure_days"]:
        because.append(f"a relationship of {f.tenure_days / 365:.1f} years")
    else:
        have = "no two-way contact yet" if f.tenure_days is None else f"{f.tenure_days:.0f} days so far"
        need.append(f"a relationship of {cfg['deep_tenure_days']:g} days since the first two-way contact ({have})")
    return because, need


def stage_of(view: AccountView, f: Facts) -> tuple[str | None, list[str], list[str]]:
    """The highest stage whose rules, and every earlier stage's, hold; why; what the next needs."""
    reached: str | None = None
    reasons: list[str] = []
    for stage, rule in zip(STAGES, (_recognised, _interest, _deep)):
        because, need = rule(view, f)
        if need:
            return reached, reasons, need
        reached, reasons = stage, because
    return reached, reasons, []


def _friends(view: AccountView) -> list[str]:
    cfg = view.config["level"]
    return [s.contact.remote_id for s in decision_makers(view)
            if s.team >= cfg["friendship_strength"] and s.contact.stance is not None
            and s.contact.stance >= cfg["friendship_stance"]]


def level_of(view: AccountView, f: Facts, stage: str | None) -> tuple[str | None, list[str], list[str], list[str]]:
    """The relationship level, why, what the next needs, and the friendly decision makers."""
    cfg = view.config["level"]
    health = view.scores.get("health")
    friends = _friends(view)
    if health is None:
        return None, [], ["relationship evidence: interactions naming their contacts and our people"], friends
    names = join([contact_name(view, c) for c in friends])
    tenure = f.tenure_days or 0.0
    need = []
    if len(friends) < cfg["friendship_contacts"]:
        need.append(f"{count(cfg['friendship_contacts'], 'decision maker')} supporting us (stance "
                    f"{cfg['friendship_stance']}+) with a team strength of {cfg['friendship_strength']:g}+ "
                    f"(has {len(friends)})")
    if tenure < cfg["friendship_tenure_days"]:
        need.append(f"a relationship of {cfg['friendship_tenure_days']:g} days ({tenure:.0f} so far)")
    if need:
        return "ordinary_cooperation", [f"health {health:.0f} rests on relationship evidence"], need, friends
    because = [f"{count(len(friends), 'decision maker')} supporting us closely ({names})",
               f"a relationship of {tenure / 365:.1f} years"]
    if len(friends) < cfg["partnership_contacts"]:
        need.append(f"{cfg['partnership_contacts']} such decision makers (has {len(friends)})")
    if stage != STAGES[-1]:
        need.append("deep strategic cooperation")
    if health < cfg["partnership_health"]:
        need.append(f"health of {cfg['partnership_health']:g} (has {health:.0f})")
    if need:
        return "friendship", because, need, friends
    return LEVELS[-1], [*because, "deep strategic cooperation", f"health {health:.0f}"], [], friends


def evaluate(view: AccountView) -> Relationship:
    """The account's stage and level with their reasons (the ``evaluate_relationship`` hook)."""
    facts = facts_of(view)
    stage, stage_because, stage_next = stage_of(view, facts)
    level, level_because, level_next, friends = level_of(view, facts, stage)
    evidence = {"stage": facts.to_json(), "level": {"decision_makers_supporting": friends,
                                                    "health": view.scores.get("health")}}
    return Relationship(stage, level, evidence, tuple(stage_because), tuple(stage_next),
                        tuple(level_because), tuple(level_next))
