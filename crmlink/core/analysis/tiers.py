"""Customer tiers: from the CRM where it has one, otherwise computed from size and growth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmlink.core.model import Account


def computed_tier(revenue: float | None, growth: float | None, rules: Mapping[str, Any]) -> str | None:
    """S: revenue at least ``s_revenue``, or at least ``a_revenue`` and growing at least
    ``s_growth`` (the high-potential "star"); A: at least ``a_revenue``; B: at least
    ``b_revenue``; C otherwise. ``None`` when the revenue is unknown."""
    if revenue is None:
        return None
    if revenue >= rules["s_revenue"] or (revenue >= rules["a_revenue"] and (growth or 0) >= rules["s_growth"]):
        return "S"
    if revenue >= rules["a_revenue"]:
        return "A"
    if revenue >= rules["b_revenue"]:
        return "B"
    return "C"


def assign_tier(account: Account, rules: Mapping[str, Any]) -> None:
    """Fill ``account.tier`` and ``tier_source`` (``crm`` or ``computed``) in place."""
    if account.tier:
        account.tier_source = account.tier_source or "crm"
        return
    revenue = float(account.annual_revenue) if account.annual_revenue is not None else None
    tier = computed_tier(revenue, account.growth, rules)
    if tier:
        account.tier, account.tier_source = tier, "computed"
