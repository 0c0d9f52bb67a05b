"""Portfolio findings: effort per tier against the target ratio (选择, 聚焦). Not judged
while a tier the target wants effort on has no recorded relationship evidence at all: its
effort is unknown, and the accounts' data findings say so.

Reads the portfolio's summaries (``view.summaries``) alone: never the full views."""

from __future__ import annotations

import heapq

from crmlink import AccountSummary, Finding, PortfolioView
from crmlink.plugins.method.words import join

#: accounts named as the biggest consumers of effort in an over-served tier
NAMED_ACCOUNTS = 3


def _tiers(view: PortfolioView) -> tuple[dict[str, float], list[str], dict[str, list[AccountSummary]]]:
    """The decayed interaction weight spent on each tier of the target (untiered
    accounts aside), the tiers the target wants effort on whose accounts all lack
    relationship evidence (their effort is unknown, not zero), and each tier's
    :data:`NAMED_ACCOUNTS` largest consumers of effort (:func:`_rank`); in one pass over
    the summaries, none kept but those: a large portfolio's are read back from disk for
    each pass."""
    target = view.config["tiers"]["target"]
    wanted = {tier for tier, share in target.items() if share > 0}
    effort: dict[str, float] = dict.fromkeys(target, 0.0)
    members: set[str] = set()
    evidenced: set[str] = set()
    largest: dict[str, list[AccountSummary]] = {tier: [] for tier in target}
    for account in view.summaries:
        tier = account.tier
        if tier in effort:
            effort[tier] += account.effort
            if account.effort > 0:
                _offer(largest[tier], account)
        if tier is not None and tier in wanted:
            members.add(tier)
            if account.coverage.has_relationship_evidence:
                evidenced.add(tier)
    return effort, [tier for tier in target if tier in members and tier not in evidenced], largest


def _rank(account: AccountSummary) -> tuple[float, str]:
    """Most effort first; of equal effort, the first by remote id."""
    return -account.effort, account.account.remote_id


def _offer(largest: list[AccountSummary], account: AccountSummary) -> None:
    """Keep ``account`` in ``largest`` (sorted by :func:`_rank`) if it is among the
    :data:`NAMED_ACCOUNTS` first."""
    if len(largest) == NAMED_ACCOUNTS and _rank(account) >= _rank(largest[-1]):
        return
    largest.append(account)
    largest.sort(key=_rank)
    del largest[NAMED_ACCOUNTS:]


def _biggest(largest: dict[str, list[AccountSummary]], tiers: list[str]) -> list[AccountSummary]:
    """The :data:`NAMED_ACCOUNTS` largest consumers of effort over ``tiers``."""
    return heapq.nsmallest(NAMED_ACCOUNTS, (a for tier in tiers for a in largest[tier]), key=_rank)


def portfolio_findings(view: PortfolioView) -> list[Finding]:
    target = view.config["tiers"]["target"]
    total_target = sum(target.values()) or 1
    effort, unrecorded, largest = _tiers(view)
    total = sum(effort.values())
    if total <= 0 or unrecorded:
        return []
    share = {t: effort[t] / total for t in effort}
    wanted = {t: target[t] / total_target for t in target}
    tolerance = view.config["findings"]["tier_effort_tolerance"]
    off = {t: round(share[t] - wanted[t], 3) for t in target if abs(share[t] - wanted[t]) > tolerance}
    if not off:
        return []
    over = [t for t in off if off[t] > 0]
    under = [t for t in off if off[t] < 0]
    ratio = ":".join(f"{target[t]:g}" for t in target)
    parts = join([f"tier {t} gets {share[t]:.0%} of it against {wanted[t]:.0%}" for t in off])
    heavy = _biggest(largest, over)
    named = f"; most goes to {join([f'{a.account.name} ({a.tier})' for a in heavy])}" if heavy else ""
    shift = (f"Shift effort from tier {join(over)} to tier {join(under)}" if over and under
             else "Rebalance effort towards the target")
    return [Finding(
        "TIER_EFFORT_MISMATCH", "medium",
        f"Effort across the portfolio strays from the {'/'.join(target)} target of {ratio}: {parts}{named}.",
        {"effort_share": {t: round(v, 3) for t, v in share.items()},
         "target_share": {t: round(v, 3) for t, v in wanted.items()}, "tolerance": tolerance,
         "off_target": off, "largest_accounts_over_target": [a.account.remote_id for a in heavy]},
        f"{shift}: concentrate resources on the strategic accounts beyond what competitors spend "
        "(the pressure principle).")]
