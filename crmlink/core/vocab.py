"""Canonical vocabularies and the one place that turns native spellings into them.

Every enum-like field of the canonical model is a plain lower-case string from one of
the tuples below, so records serialise to JSON and SQL without adapters. ``normalize``
accepts the canonical value in any case, a documented alias, or blank (``None``), and
raises :class:`ValueError` with the allowed values otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

TIERS = ("S", "A", "B", "C")
SENIORITIES = (
    "intern", "entry", "senior", "manager", "head", "director", "vp", "c_suite", "owner",
)
SENIORITY_RANK = {name: rank for rank, name in enumerate(SENIORITIES)}
DEPARTMENTS = (
    "executive", "procurement", "engineering", "technical", "operations", "it",
    "finance", "business", "legal", "hr", "other",
)
BUYING_ROLES = (
    "economic_buyer", "decision_maker", "approver", "technical_evaluator", "procurement",
    "user", "influencer", "gatekeeper", "blocker", "other",
)
STANCES = (-2, -1, 0, 1, 2, 3)
TEAM_ROLES = ("AR", "SR", "FR", "executive", "other")
INTERACTION_KINDS = ("meeting", "call", "email", "visit", "event", "note", "task")
DIRECTIONS = ("inbound", "outbound", "two_way", "internal")
METHODS = ("site_visit", "exhibition", "tech_exchange", "management_research", "company_visit")
UNKNOWN = "unknown"

#: Decision-power roles: the people the key layer is about.
POWER_ROLES = frozenset({"economic_buyer", "decision_maker", "approver"})

_ALIASES: dict[str, dict[str, str]] = {
    "tier": {"strategic": "S", "partner": "A"},
    "team_role": {
        "ar": "AR", "sr": "SR", "fr": "FR", "account": "AR", "account_manager": "AR",
        "solution": "SR", "solution_manager": "SR", "delivery": "FR", "fulfilment": "FR",
        "fulfillment": "FR", "exec": "executive", "客户经理": "AR", "解决方案经理": "SR",
        "交付经理": "FR", "高管": "executive",
    },
    "kind": {
        "onsite": "visit", "site visit": "visit", "appointment": "meeting", "phone": "call",
        "phone_call": "call", "mail": "email", "拜访": "visit", "会议": "meeting",
        "电话": "call", "邮件": "email", "活动": "event", "备注": "note", "任务": "task",
    },
    "direction": {
        "in": "inbound", "out": "outbound", "two-way": "two_way", "both": "two_way",
        "reply": "inbound", "incoming": "inbound", "outgoing": "outbound",
    },
    "method": {
        "site visit": "site_visit", "reference visit": "site_visit", "参观样板点": "site_visit",
        "样板点": "site_visit", "exhibition": "exhibition", "trade show": "exhibition",
        "展览会": "exhibition", "展会": "exhibition", "technical exchange": "tech_exchange",
        "tech exchange": "tech_exchange", "技术交流": "tech_exchange",
        "management research": "management_research", "管理和经营研究": "management_research",
        "经营研究": "management_research", "company visit": "company_visit",
        "hq visit": "company_visit", "参观公司": "company_visit", "none": "",
    },
    "stance": {
        "opponent": "-2", "enemy": "-2", "not approving": "-1", "non-supporter": "-1",
        "neutral": "0", "supporter": "1", "strong supporter": "2", "coach": "3",
        "mentor": "3", "教练": "3", "反对": "-2", "不认可": "-1", "中立": "0", "支持": "1",
        "强烈支持": "2",
    },
}

VOCABULARIES: Mapping[str, tuple[object, ...]] = {
    "tier": TIERS,
    "seniority": SENIORITIES,
    "department": DEPARTMENTS,
    "buying_role": BUYING_ROLES,
    "team_role": TEAM_ROLES,
    "kind": INTERACTION_KINDS,
    "direction": DIRECTIONS,
    "method": METHODS,
}


def normalize(vocabulary: str, value: object) -> str | None:
    """Return the canonical spelling of ``value`` in ``vocabulary``, or ``None`` if blank.

    ``"unknown"`` is accepted for every vocabulary and returned as ``None``.
    """
    if value is None:
        return None
    return _normalize_text(vocabulary, str(value))


@lru_cache(maxsize=4096)
def _normalize_text(vocabulary: str, value: str) -> str | None:
    """:func:`normalize` of a value's text; cached, since exports repeat a few spellings."""
    text = value.strip()
    if not text or text.lower() == UNKNOWN:
        return None
    allowed = VOCABULARIES[vocabulary]
    for candidate in (text, text.lower(), text.upper(), text.lower().replace("-", "_")):
        if candidate in allowed:
            return candidate
    alias = _ALIASES.get(vocabulary, {}).get(text.lower())
    if alias is not None:
        return alias or None
    raise ValueError(f"{text!r} is not a known {vocabulary}; use one of: {', '.join(map(str, allowed))}")


def normalize_stance(value: object) -> int | None:
    """Return the stance as an int in -2..3, or ``None`` if blank or unknown."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not text or text.lower() == UNKNOWN:
            return None
        text = _ALIASES["stance"].get(text.lower(), text)
        try:
            number = int(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a stance; use -2 (opponent) .. 3 (coach) or a name such as 'supporter'"
            ) from None
    if number not in STANCES:
        raise ValueError(f"stance {number} is outside -2 (opponent) .. 3 (coach)")
    return number
