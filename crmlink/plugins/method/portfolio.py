"""Portfolio findings: effort per tier against the target ratio (选择, 聚焦)."""

from __future__ import annotations

from crmlink import Finding, PortfolioView


def portfolio_findings(view: PortfolioView) -> list[Finding]:
    target = view.config["tiers"]["target"]
    total_target = sum(target.values()) or 1
    effort: dict[str, float] = dict.fromkeys(target, 0.0)
    for account in view.accounts:
        if account.tier in effort:
            effort[account.tier] += account.data.effort
    total = sum(effort.values())
    if total <= 0:
        return []
    share = {t: effort[t] / total for t in effort}
    wanted = {t: target[t] / total_target for t in target}
    tolerance = view.config["findings"]["tier_effort_tolerance"]
    off = {t: round(share[t] - wanted[t], 3) for t in target if abs(share[t] - wanted[t]) > tolerance}
    if not off:
        return []
    worst = max(off, key=lambda t: abs(off[t]))
    return [Finding(
        "TIER_EFFORT_MISMATCH", "medium",
        f"Effort strays from the {':'.join(str(target[t]) for t in target)} target: tier {worst} gets "
        f"{share[worst]:.0%} of it against {wanted[worst]:.0%}.",
        {"effort_share": {t: round(v, 3) for t, v in share.items()},
         "target_share": {t: round(v, 3) for t, v in wanted.items()}, "tolerance": tolerance},
        "Concentrate resources on S and A accounts (the pressure principle).")]
