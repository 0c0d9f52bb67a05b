"""The canonical Lead-to-Cash stages and their phases (DESIGN.md section 5, a contract)."""

from __future__ import annotations

LTC_PHASES: dict[str, str | None] = {
    "lead": "manage_leads",
    "validate": "manage_opportunity",
    "guide_bid": "manage_opportunity",
    "bid": "manage_opportunity",
    "negotiate": "manage_opportunity",
    "contract": "manage_contract_execution",
    "deliver": "manage_contract_execution",
    "collect": "manage_contract_execution",
    "closed": "manage_contract_execution",
    "lost": None,
    "unmapped": None,
}
LTC_STAGES = tuple(LTC_PHASES)
#: The stages of an open deal, in order.
OPEN_STAGES = ("validate", "guide_bid", "bid", "negotiate")


def phase_of(stage: str) -> str | None:
    return LTC_PHASES.get(stage)
