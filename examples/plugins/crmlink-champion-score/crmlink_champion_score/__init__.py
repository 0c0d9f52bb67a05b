"""A crmlink scoring plugin: is there a champion, and how strong is our tie to them?

A *champion* is an active contact who supports us (stance 2 or 3). The ``champion`` score
is the team's relationship strength (0..100) with the strongest champion; ``NO_CHAMPION``
is raised on S and A accounts where no champion reaches ``CHAMPION_MIN_STRENGTH``.
"""

from __future__ import annotations

import crmlink
from crmlink import AccountView, ContactStat, Finding, Score

__version__ = "0.1.0"

CHAMPION_STANCE = 2
CHAMPION_MIN_STRENGTH = 30.0
STRATEGIC_TIERS = ("S", "A")


def champions(view: AccountView) -> list[ContactStat]:
    """Active supporters, strongest relationship first."""
    found = [s for s in view.contact_stats.values()
             if s.contact.active and not s.contact.deleted
             and s.contact.stance is not None and s.contact.stance >= CHAMPION_STANCE]
    return sorted(found, key=lambda s: s.team, reverse=True)


@crmlink.hookimpl
def score_account(view: AccountView) -> list[Score]:
    ranked = champions(view)
    best = ranked[0] if ranked else None
    return [Score("champion", round(best.team, 1) if best else 0.0, {
        "champion": best.contact.remote_id if best else None,
        "stance": best.contact.stance if best else None,
        "candidates": [s.contact.remote_id for s in ranked],
    })]


@crmlink.hookimpl
def account_findings(view: AccountView) -> list[Finding]:
    if view.tier not in STRATEGIC_TIERS or view.scores.get("champion", 0.0) >= CHAMPION_MIN_STRENGTH:
        return []
    evidence = view.score_evidence.get("champion", {})
    return [Finding(
        "NO_CHAMPION", "high" if view.tier == "S" else "medium",
        f"{view.account.name} has no champion: no supporter (stance {CHAMPION_STANCE}+) with a "
        f"relationship strength of {CHAMPION_MIN_STRENGTH:.0f} or more.",
        {"champion_score": view.scores.get("champion", 0.0),
         "supporters": evidence.get("candidates", []), "tier": view.tier},
        "Find a senior supporter who gains from the project and invest in that relationship.",
    )]
