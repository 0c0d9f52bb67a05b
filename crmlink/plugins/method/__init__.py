"""The built-in relationship method (docs/method.md): scores, findings and the five methods.

It is an ordinary plugin that uses the public API alone: block it with
``CRMLINK_DISABLE_PLUGINS=method`` and register your own ``score_definitions``,
``score_account``, ``simulate_departure``, ``evaluate_relationship`` and ``account_findings`` implementations to
replace it; reports then headline the scores your plugin declares.
"""

from __future__ import annotations

from crmlink import (
    AccountView,
    Departure,
    Finding,
    Interaction,
    PortfolioView,
    Relationship,
    Score,
    ScoreDefinition,
    hookimpl,
)
from crmlink.plugins.method import findings, portfolio, programs, scores, stages

#: The method's scores, in the order reports headline them; health is the overall one.
SCORES = [
    ScoreDefinition("health", description="The key, broad and org layers weighted by tier, times "
                    "how recently the account spoke with us.", headline=0, overall=True),
    ScoreDefinition("key", description="The best relationship with each buying role (team strength "
                    "x stance), weighted.", headline=1),
    ScoreDefinition("broad", description="Departments and levels reached, and how many contacts are "
                    "engaged.", headline=2),
    ScoreDefinition("org", description="Executive links, our people engaged, the iron triangle and "
                    "the five methods.", headline=3),
]


@hookimpl
def score_definitions() -> list[ScoreDefinition]:
    return SCORES


@hookimpl
def score_account(view: AccountView) -> list[Score]:
    return scores.score_all(view)


@hookimpl
def simulate_departure(view: AccountView, user_id: str) -> Departure:
    return Departure(**scores.departure(view, user_id))


@hookimpl
def evaluate_relationship(view: AccountView) -> Relationship:
    return stages.evaluate(view)


@hookimpl
def account_findings(view: AccountView) -> list[Finding]:
    return findings.account_findings(view)


@hookimpl
def portfolio_findings(view: PortfolioView) -> list[Finding]:
    return portfolio.portfolio_findings(view)


@hookimpl(trylast=True)
def classify_interaction(interaction: Interaction) -> str | None:
    return programs.recognise(interaction.kind, interaction.subject, interaction.campaign)
