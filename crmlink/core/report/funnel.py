"""The Lead-to-Cash funnel: deals and their summed amount per canonical LTC stage, counted
once for the HTML report and ``crmlink ltc``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from crmlink.core.document import OpportunityEntry
from crmlink.core.ltc import LTC_STAGES


@dataclass
class FunnelStage:
    """One stage of the funnel."""

    stage: str
    count: int = 0
    amount: Decimal = Decimal(0)  # the exact sum of the deals' amounts, whatever their currencies


def ltc_funnel(opportunities: Iterable[OpportunityEntry], open_leads: int = 0) -> list[FunnelStage]:
    """Every canonical stage in order (then any other stage a plugin returned), with
    ``open_leads`` counted in ``lead``."""
    rows = {stage: FunnelStage(stage) for stage in LTC_STAGES}
    for opp in opportunities:
        row = rows.setdefault(opp.ltc_stage, FunnelStage(opp.ltc_stage))
        row.count += 1
        row.amount += Decimal(opp.amount or 0)
    rows["lead"].count += open_leads
    return list(rows.values())
