"""Which accounts and people the findings judge: strategic tiers, decision makers, executives."""

from __future__ import annotations

from crmlink import AccountView, ContactStat
from crmlink.plugins.method.scores import band_of


def strategic(view: AccountView) -> bool:
    """Whether the account's tier is one the layer findings judge (S and A by default)."""
    return view.tier in view.config["findings"]["strategic_tiers"]


def severity(view: AccountView, if_strategic: str, otherwise: str) -> str:
    return if_strategic if strategic(view) else otherwise


def decision_makers(view: AccountView) -> list[ContactStat]:
    """Active decision makers and economic buyers, by id (found once per view: most
    rules ask)."""
    return list(view.derived(("method", "decision_makers"), _decision_makers))


def _decision_makers(view: AccountView) -> list[ContactStat]:
    return sorted((s for s in view.contact_stats.values() if s.is_decision_maker and s.contact.active),
                  key=lambda s: s.contact.remote_id)


def executives(view: AccountView) -> list[ContactStat]:
    """Active contacts at VP level or above, by id (found once per view)."""
    return list(view.derived(("method", "executives"), _executives))


def _executives(view: AccountView) -> list[ContactStat]:
    return sorted((s for s in view.contact_stats.values()
                   if s.contact.active and band_of(s.contact.seniority) == "executive"),
                  key=lambda s: s.contact.remote_id)
