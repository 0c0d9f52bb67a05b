"""LTC stage mapping: defaults, fallbacks, overrides, and a plugin's hook first."""

from __future__ import annotations

import pytest

from crmlink import Opportunity, Stage, hookimpl
from crmlink.core.analysis.config import DEFAULTS
from crmlink.plugins.ltc import map_stage
from tests.scenario import Scenario, ago

LTC = DEFAULTS["ltc"]

SALESFORCE = {
    "Prospecting": "validate", "Qualification": "validate", "Needs Analysis": "guide_bid",
    "Value Proposition": "guide_bid", "Id. Decision Makers": "guide_bid", "Perception Analysis": "guide_bid",
    "Proposal/Price Quote": "bid", "Negotiation/Review": "negotiate", "Closed Won": "contract", "Closed Lost": "lost",
}
HUBSPOT = {
    "appointmentscheduled": "validate", "qualifiedtobuy": "guide_bid", "presentationscheduled": "guide_bid",
    "decisionmakerboughtin": "bid", "contractsent": "negotiate", "closedwon": "contract", "closedlost": "lost",
}


@pytest.mark.parametrize("stage, expected", sorted({**SALESFORCE, **HUBSPOT}.items()))
def test_default_maps(stage: str, expected: str) -> None:
    assert map_stage(Opportunity(remote_id="o", stage_id=stage, stage_label=stage), None, LTC) == (expected, "default")


@pytest.mark.parametrize("fields, stage, expected", [
    ({"is_closed": True, "is_won": True}, None, ("contract", "flags")),
    ({"is_closed": True, "is_won": False}, None, ("lost", "flags")),
    ({}, Stage(remote_id="s", is_closed=True, is_won=True), ("contract", "flags")),
    ({"probability": 40}, None, ("guide_bid", "probability")),
    ({"probability": 0.95}, None, ("negotiate", "probability")),
    ({}, Stage(remote_id="s", probability=65), ("bid", "probability")),
    ({}, None, ("unmapped", "none")),
    ({"probability": 100}, None, ("unmapped", "none")),
])
def test_fallbacks(fields: dict, stage: Stage | None, expected: tuple[str, str]) -> None:
    opp = Opportunity(remote_id="o", stage_label="Closed/Won-ish custom", **fields)
    assert map_stage(opp, stage, LTC) == expected


def test_override_by_source_and_pipeline() -> None:
    config = {**LTC, "overrides": {"sf": {"Closed/Won": "contract", "Enterprise": {"Tech Check": "guide_bid"}}}}
    assert map_stage(Opportunity(remote_id="o", source="sf", stage_label="Closed/Won"), None, config)[0] == "contract"
    opp = Opportunity(remote_id="o", source="sf", pipeline="Enterprise", stage_label="Tech Check")
    assert map_stage(opp, None, config) == ("guide_bid", "override")
    other = Opportunity(remote_id="o", source="hs", stage_label="Closed/Won")
    assert map_stage(other, None, config)[0] == "unmapped"


class CustomStages:
    @hookimpl
    def ltc_stage(self, opportunity: Opportunity) -> str | None:
        return "deliver" if opportunity.stage_label == "Closed Won" else None


def test_plugin_hook_takes_precedence() -> None:
    from crmlink.core.analysis.audit import Audit
    from crmlink.core.host import get_plugin_host
    from crmlink.core.store import Store

    s = Scenario("A").user("u1").deal("o1", "Closed Won", is_closed=True, is_won=True).deal("o2", "Prospecting")
    store = Store("sqlite://")
    with store.transaction() as conn:
        for record in s.records:
            record.source = "t"
            store.upsert(conn, [record])
    host = get_plugin_host(load_entrypoints=False, extra=[("custom", CustomStages())])
    doc = Audit(store, host, DEFAULTS | {"sources": {}}, None).run()
    stages = {o["remote_id"]: o["ltc_stage"] for o in doc["opportunities"]}
    assert stages == {"o1": "deliver", "o2": "validate"}


def test_no_power_and_single_threaded() -> None:
    s = Scenario("A").user("u1").contact("dm", "decision_maker", "vp").contact("eng", "technical_evaluator")
    s.deal("o1", "Negotiation/Review", stage_entered_at="2026-06-20")
    s.meet("u1", "eng", 3, opportunity="o1")
    codes = {f["code"] for o in s.audit()["opportunities"] for f in o["findings"]}
    assert {"LTC_NO_POWER", "LTC_SINGLE_THREADED"} <= codes
    s.meet("u1", "dm", 10, opportunity="o1")
    codes = {f["code"] for o in s.audit()["opportunities"] for f in o["findings"]}
    assert not {"LTC_NO_POWER", "LTC_SINGLE_THREADED"} & codes


def test_stalled_against_default_limit() -> None:
    def codes(days_in_stage: int) -> set[str]:
        s = Scenario("A").user("u1").contact("dm", "decision_maker", "vp")
        s.deal("o1", "Proposal/Price Quote", stage_entered_at=ago(days_in_stage))
        return {f["code"] for o in s.audit()["opportunities"] for f in o["findings"]}
    assert "LTC_STALLED" in codes(62)       # the default limit for bid is 60 days
    assert "LTC_STALLED" not in codes(58)
