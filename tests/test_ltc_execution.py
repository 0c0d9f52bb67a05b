"""Contract execution (won deal -> contract, deliver, collect, closed), the stage-gated role
findings, and leads: each rule on both sides of what triggers it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmlink import ConfigError, ExecutionRecord, Lead, Opportunity
from crmlink.core.analysis.config import DEFAULTS
from crmlink.core.ltc import ExecutionIndex, lead_outcome
from crmlink.plugins.ltc import ltc_stage
from tests.scenario import Scenario, ago

LTC = DEFAULTS["ltc"]


def won(**extra: object) -> Opportunity:
    return Opportunity(remote_id="o1", stage_label="Closed Won", is_closed=True, is_won=True,
                       amount=Decimal("1000"), extra=dict(extra))


def record(rid: str, kind: str, **fields: object) -> ExecutionRecord:
    return ExecutionRecord(remote_id=rid, kind=kind, opportunity_id=fields.pop("opportunity_id", "o1"), **fields)


@pytest.mark.parametrize("execution, expected", [
    ([], "contract"),
    ([record("c1", "contract", active=True)], "contract"),
    ([record("r1", "order", active=False)], "contract"),        # a draft order: not delivering yet
    ([record("r1", "order", active=True)], "deliver"),
    ([record("r1", "order", active=True), record("v1", "invoice")], "collect"),
    ([record("v1", "invoice"), record("p1", "payment", amount="999.99")], "collect"),  # not paid in full
    ([record("v1", "invoice"), record("p1", "payment", amount="600"), record("p2", "payment", amount="400")],
     "closed"),
])
def test_builtin_execution_rules(execution: list[ExecutionRecord], expected: str) -> None:
    assert ltc_stage(won(), None, LTC, execution) == expected


def test_open_or_lost_deals_are_not_moved_by_execution_records() -> None:
    orders = [record("r1", "order", active=True), record("p1", "payment", amount="5000")]
    open_deal = Opportunity(remote_id="o1", stage_label="Negotiation/Review")
    assert ltc_stage(open_deal, None, LTC, orders) == "negotiate"
    lost = Opportunity(remote_id="o1", stage_label="Closed Lost", is_closed=True, is_won=False)
    assert ltc_stage(lost, None, LTC, orders) == "lost"


def test_config_named_field_rule_on_the_deal() -> None:
    rule = {"stage": "collect", "on": "opportunity", "field": "invoice_status__c", "values": ["Invoiced", "Paid"]}
    config = {**LTC, "execution": {"rules": [rule]}}
    assert ltc_stage(won(Invoice_Status__c="invoiced"), None, config, []) == "collect"  # field and value: any case
    assert ltc_stage(won(Invoice_Status__c="Draft"), None, config, []) == "contract"
    assert ltc_stage(won(Invoice_Status__c="Invoiced"), None, LTC, []) == "contract"  # no rule, no move


def test_config_rule_on_records_and_builtin_rules_switched_off() -> None:
    rule = {"stage": "closed", "on": "contract", "field": "status", "values": ["Expired"]}
    ended = [record("c1", "contract", status="Expired", active=False), record("r1", "order", active=True)]
    assert ltc_stage(won(), None, {**LTC, "execution": {"rules": [rule]}}, ended) == "closed"
    only_mine = {**LTC, "execution": {"rules": [rule], "builtin_rules": False}}
    assert ltc_stage(won(), None, only_mine, ended[1:]) == "contract"  # the order rule is gone


@pytest.mark.parametrize("rule, words", [
    ({"stage": "shipped", "on": "order"}, "stage 'shipped'"),
    ({"stage": "deliver", "on": "shipment"}, "on = 'shipment'"),
    ({"stage": "deliver", "on": "order", "value": ["x"]}, "unknown key 'value'"),
])
def test_bad_execution_rule_is_a_config_error(rule: dict, words: str) -> None:
    with pytest.raises(ConfigError, match="ltc.execution.rules") as caught:
        ltc_stage(won(), None, {**LTC, "execution": {"rules": [rule]}}, [])
    assert words in str(caught.value)


def test_index_links_contract_by_the_deal_field_and_records_under_the_contract() -> None:
    records = [record("800A", "contract", opportunity_id=None, active=True),
               record("v1", "invoice", opportunity_id=None, contract_id="800A"),
               record("r9", "order", opportunity_id="other", contract_id="800A", active=True)]
    index = ExecutionIndex(records)
    assert [r.remote_id for r in index.of(won(ContractId="800A"))] == ["800A", "v1"]
    assert index.of(won()) == []


def test_audit_moves_a_won_deal_through_linked_records() -> None:
    s = Scenario("A").user("u1")
    s.deal("o1", "Closed Won", is_closed=True, is_won=True, amount="100", extra={"ContractId": "800A"})
    s.deal("o2", "Closed Won", is_closed=True, is_won=True, amount="100")
    s.records += [ExecutionRecord(remote_id="800A", kind="contract", active=True),
                  ExecutionRecord(remote_id="801A", kind="order", contract_id="800A", active=True)]
    stages = {o["remote_id"]: (o["ltc_stage"], o["ltc_phase"]) for o in s.audit()["opportunities"]}
    assert stages == {"o1": ("deliver", "manage_contract_execution"), "o2": ("contract", "manage_contract_execution")}


# -- stage-gated role coverage --------------------------------------------------------------

GATES = [  # role, a stage at its gate, a stage just before it, the finding
    ("technical_evaluator", "Proposal/Price Quote", "Perception Analysis", "LTC_NO_TECHNICAL_EVALUATOR"),
    ("economic_buyer", "Negotiation/Review", "Proposal/Price Quote", "LTC_NO_ECONOMIC_BUYER"),
    ("procurement", "Negotiation/Review", "Proposal/Price Quote", "LTC_NO_PROCUREMENT"),
]


def deal_codes(role: str, stage: str, met_days_ago: float | None, **ltc: object) -> set[str]:
    s = Scenario("A").user("u1").contact("c1", role).contact("dm", "decision_maker", "vp")
    s.deal("o1", stage, stage_entered_at=ago(5))
    s.meet("u1", "dm", 2, opportunity="o1")
    if met_days_ago is not None:
        s.meet("u1", "c1", met_days_ago, opportunity="o1")
    return {f["code"] for o in s.audit(ltc={**LTC, **ltc})["opportunities"] for f in o["findings"]}


@pytest.mark.parametrize("role, at_gate, before_gate, code", GATES)
def test_role_gate_by_stage(role: str, at_gate: str, before_gate: str, code: str) -> None:
    assert code in deal_codes(role, at_gate, None)
    assert code not in deal_codes(role, before_gate, None)


@pytest.mark.parametrize("role, at_gate, before_gate, code", GATES)
def test_role_gate_by_days_engaged(role: str, at_gate: str, before_gate: str, code: str) -> None:
    assert code not in deal_codes(role, at_gate, 85)   # within the default 90 days
    assert code in deal_codes(role, at_gate, 95)
    assert code not in deal_codes(role, at_gate, 95, role_days=100)


def test_role_gate_configured_later_or_off() -> None:
    assert "LTC_NO_TECHNICAL_EVALUATOR" not in deal_codes(
        "technical_evaluator", "Proposal/Price Quote", None, role_gates={"technical_evaluator": "negotiate"})
    assert "LTC_NO_PROCUREMENT" not in deal_codes("procurement", "Negotiation/Review", None,
                                                  role_gates={"procurement": ""})
    with pytest.raises(ConfigError, match="not an open LTC stage"):
        deal_codes("procurement", "Negotiation/Review", None, role_gates={"procurement": "contract"})


# -- leads ----------------------------------------------------------------------------------

@pytest.mark.parametrize("status, converted, outcome", [
    ("Open - Not Contacted", None, "open"), ("Working - Contacted", None, "open"),
    ("Closed - Converted", "006A", "converted"), ("Closed - Not Converted", None, "disqualified"),
    ("UNQUALIFIED", None, "disqualified"), ("IN_PROGRESS", None, "open"),
    ("customer", None, "converted"), ("salesqualifiedlead", None, "open"), (None, None, "open"),
])
def test_lead_outcomes(status: str | None, converted: str | None, outcome: str) -> None:
    assert lead_outcome(status, converted, LTC) == outcome
    assert Lead(remote_id="l", status=status).status == status


def test_lead_disqualified_list_from_config() -> None:
    assert lead_outcome("Recycled", None, {"lead_disqualified": ["recycled"]}) == "disqualified"
    assert lead_outcome("Recycled", None, LTC) == "open"


def test_hubspot_contacts_at_a_lead_lifecycle_stage_are_leads() -> None:
    from crmlink import Contact
    from crmlink.commands.ltc import lead_rows
    from crmlink.core.store import Store

    store = Store("sqlite://")
    with store.transaction() as conn:
        store.upsert(conn, [
            Contact(remote_id="1", source="hs", name="A", extra={"lifecyclestage": "marketingqualifiedlead"}),
            Contact(remote_id="2", source="hs", name="B", extra={"lifecyclestage": "customer"}),
            Contact(remote_id="3", source="hs", name="C", extra={"lifecyclestage": "lead", "hs_lead_status": "UNQUALIFIED"}),
            Contact(remote_id="4", source="hs", name="D")])
    rows = {r["remote_id"]: r["outcome"] for r in lead_rows(store, ["hs"], LTC, 0.0)}
    assert rows == {"1": "open", "3": "disqualified"}


def test_the_rules_are_public_for_plugins_that_map_stages_their_own_way() -> None:
    from crmlink import advance_won_stage

    orders = [record("r1", "order", active=True)]
    assert advance_won_stage("contract", won(), orders, LTC) == "deliver"
    assert advance_won_stage("negotiate", won(), orders, LTC) == "negotiate"  # not won: unchanged
