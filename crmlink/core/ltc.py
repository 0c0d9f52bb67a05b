"""The canonical Lead-to-Cash stages and their phases (docs/ltc.md; a contract plugins rely on),
what makes a lead open, converted or dropped, and which execution records belong to a deal.

How native stages map to these is the ``ltc_stage`` hook's business (crmlink/plugins/ltc.py);
docs/ltc.md documents both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from crmlink.core.model import Contact, ExecutionRecord, Opportunity

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
#: The stages of a won deal, in order: execution records move it along them.
WON_STAGES = ("contract", "deliver", "collect", "closed")

# -- leads ----------------------------------------------------------------------------------

#: Lead statuses (lower case) that end a lead without a deal: Salesforce's default picklist,
#: HubSpot's ``hs_lead_status``; ``[ltc] lead_disqualified`` replaces the list.
LEAD_DISQUALIFIED = ("closed - not converted", "unqualified", "disqualified", "junk", "bad_timing")
#: HubSpot lifecycle stages (internal names) of a contact that is still a lead, and of one
#: that became a deal or a customer (``[ltc] lead_lifecycle`` / ``converted_lifecycle``).
LEAD_LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead")
CONVERTED_LIFECYCLE = ("opportunity", "customer", "evangelist")


def lead_outcome(status: str | None, converted_opportunity_id: str | None,
                 config: Mapping[str, Any]) -> str:
    """``converted`` (it became a deal), ``disqualified`` or ``open``.

    Every lead is in the ``lead`` LTC stage until then; the status only decides whether it
    was dropped (a status no list names is an open lead, whatever its wording).
    """
    if converted_opportunity_id:
        return "converted"
    text = (status or "").strip().lower()
    if text in {s.lower() for s in config.get("converted_lifecycle", CONVERTED_LIFECYCLE)}:
        return "converted"
    if text in {s.lower() for s in config.get("lead_disqualified", LEAD_DISQUALIFIED)}:
        return "disqualified"
    return "open"


def is_lead_contact(contact: Contact, config: Mapping[str, Any]) -> bool:
    """A HubSpot-style contact whose ``lifecyclestage`` says it is a lead (HubSpot has no
    separate lead object); other CRMs' contacts never are."""
    stage = str(contact.extra.get("lifecyclestage") or "").strip().lower()
    wanted = config.get("lead_lifecycle", LEAD_LIFECYCLE)
    return bool(stage) and stage in {s.lower() for s in wanted}


# -- contract execution ---------------------------------------------------------------------

#: Fields of a deal's ``extra`` that name its contract (Salesforce Opportunity.ContractId).
CONTRACT_LINK_FIELDS = ("ContractId", "contract_id")


class ExecutionIndex:
    """A source's execution records, found per deal: those naming the deal, the contract
    the deal (or one of those records) names, and records under that contract that name
    no deal of their own."""

    def __init__(self, records: Iterable[ExecutionRecord]) -> None:
        self.by_id: dict[str, ExecutionRecord] = {}
        self.by_deal: dict[str, list[ExecutionRecord]] = defaultdict(list)
        self.by_contract: dict[str, list[ExecutionRecord]] = defaultdict(list)
        for record in records:
            self.by_id[record.remote_id] = record
            if record.opportunity_id:
                self.by_deal[record.opportunity_id].append(record)
            elif record.contract_id:
                self.by_contract[record.contract_id].append(record)

    def of(self, opportunity: Opportunity) -> list[ExecutionRecord]:
        found = {r.remote_id: r for r in self.by_deal.get(opportunity.remote_id, [])}
        contracts = {r.contract_id for r in found.values() if r.contract_id}
        contracts |= {str(opportunity.extra[k]) for k in CONTRACT_LINK_FIELDS if opportunity.extra.get(k)}
        for contract_id in contracts:
            if contract_id in self.by_id:
                found.setdefault(contract_id, self.by_id[contract_id])
            for record in self.by_contract.get(contract_id, []):
                found.setdefault(record.remote_id, record)
        return sorted(found.values(), key=lambda r: r.remote_id)
