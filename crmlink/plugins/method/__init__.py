"""The built-in relationship method (METHOD.md): scores, findings and the five methods.

It is an ordinary plugin: block it with ``CRMLINK_DISABLE_PLUGINS=method`` and register
your own ``score_account``/``account_findings`` implementations to replace it.
"""

from __future__ import annotations

from crmlink import AccountView, Finding, Interaction, PortfolioView, Score, hookimpl
from crmlink.plugins.method import findings, portfolio, programs, scores


@hookimpl
def score_account(view: AccountView) -> list[Score]:
    return scores.score_all(view)


@hookimpl
def account_findings(view: AccountView) -> list[Finding]:
    return findings.account_findings(view)


@hookimpl
def portfolio_findings(view: PortfolioView) -> list[Finding]:
    return portfolio.portfolio_findings(view)


@hookimpl(trylast=True)
def classify_interaction(interaction: Interaction) -> str | None:
    return programs.recognise(interaction.kind, interaction.subject, interaction.campaign)
