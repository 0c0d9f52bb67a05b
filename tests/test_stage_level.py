"""Strategic stage and relationship level: each rule of the method plugin on both sides
of its threshold, the CRM field that overrides them, and a plugin that replaces them."""

from __future__ import annotations

from typing import Any

import pytest

from crmlink import Relationship, hookimpl
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import DEFAULTS, merge
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from tests.scenario import AS_OF, Scenario, ago, healthy


def won(s: Scenario, rid: str, days_ago: float) -> Scenario:
    return s.deal(rid, "Closed Won", is_closed=True, is_won=True, close_date=ago(days_ago),
                  created_at=ago(days_ago + 60))


def contacted(days_ago: float, **account: Any) -> Scenario:
    s = Scenario("B", **account).user("u1").contact("c1", "decision_maker", "vp", "executive", stance=1)
    return s.meet("u1", "c1", days_ago)


def deep(tenure_days: float = 740, exec_days: tuple[float, ...] = (30, 120), joint: bool = True) -> Scenario:
    """healthy() with two orders, a service, regular executive meetings, a joint programme
    and a relationship of ``tenure_days``."""
    s = healthy()
    won(s, "o1", 100)
    won(s, "o2", 400)
    if joint:
        s.deal("Joint innovation lab 2026", "Execution", created_at=ago(200))
    for days in exec_days:
        s.meet("u4", "ceo", days)
    s.meet("u1", "cto", tenure_days)
    return s


def stage(s: Scenario, **overrides: Any) -> str | None:
    return s.account(**overrides)["stage"]


def level(s: Scenario, **overrides: Any) -> str | None:
    return s.account(**overrides)["level"]


# -- perceptual recognition ----------------------------------------------------------------

def test_a_two_way_conversation_within_the_window_is_recognition() -> None:
    assert stage(contacted(360)) == "perceptual_recognition"
    assert stage(contacted(370)) is None
    assert stage(contacted(300), stage={"window_days": 250}) is None


def test_one_of_the_five_methods_or_an_order_is_recognition() -> None:
    mailed = Scenario("B").user("u1").contact("c1", "decision_maker", "vp", "executive")
    mailed.meet("u1", "c1", 300, kind="event", direction="outbound", method="exhibition")
    assert stage(mailed) == "perceptual_recognition"
    assert "an exhibition within 365 days" in mailed.account()["relationship"]["explanation"]
    assert stage(mailed, stage={"window_days": 200}) is None
    ordered = won(Scenario("B"), "o1", 900)
    assert stage(ordered) == "perceptual_recognition"


def test_no_contact_at_all_says_what_recognition_needs() -> None:
    quiet = Scenario("B").user("u1").contact("c1")
    account = quiet.account()
    assert account["stage"] is None and account["level"] is None
    assert account["relationship"]["stage_next"][0].startswith("a two-way meeting or call")
    assert account["relationship"]["explanation"].startswith("Stage: none yet; to reach perceptual recognition:")


# -- community of interest ------------------------------------------------------------------

def test_repeat_orders_within_the_order_window() -> None:
    both = won(won(healthy(), "o1", 100), "o2", 720)
    assert stage(both) == "community_of_interest"
    assert stage(won(won(healthy(), "o1", 100), "o2", 740)) == "perceptual_recognition"
    assert stage(both, stage={"interest_orders": 3}) == "perceptual_recognition"


def test_a_service_or_a_joint_programme_is_needed_besides_orders() -> None:
    bare = won(won(contacted(5), "o1", 100), "o2", 200)
    assert stage(bare) == "perceptual_recognition"
    assert "a service that raises their profit: a technical exchange or management research" in \
        " ".join(bare.account()["relationship"]["stage_next"])
    served = won(won(contacted(5), "o1", 100), "o2", 200).meet("u1", "c1", 30, method="management_research")
    assert stage(served) == "community_of_interest"
    joint = won(won(contacted(5), "o1", 100), "o2", 200).deal("Joint development of 6G RAN", "Open")
    assert stage(joint) == "community_of_interest"
    old_service = won(won(contacted(5), "o1", 100), "o2", 200).meet("u1", "c1", 380, method="tech_exchange")
    assert stage(old_service) == "perceptual_recognition"


# -- deep strategic cooperation -------------------------------------------------------------

def test_deep_cooperation_with_every_rule_met() -> None:
    account = deep().account()
    assert account["stage"] == "deep_strategic_cooperation"
    because = " ".join(account["relationship"]["stage_because"])
    assert "executive meetings in each of the last 2 periods of 90 days" in because
    assert "Joint innovation lab 2026" in because and "2.0 years" in because
    assert account["relationship"]["stage_next"] == []


@pytest.mark.parametrize("scenario, missing", [
    (deep(tenure_days=700), "a relationship of 730 days since the first two-way contact (700 days so far)"),
    (deep(joint=False), "a joint programme recorded"),
])
def test_deep_cooperation_misses_one_rule(scenario: Scenario, missing: str) -> None:
    account = scenario.account()
    assert account["stage"] == "community_of_interest"
    assert missing in " ".join(account["relationship"]["stage_next"])


def test_executive_meetings_must_be_regular() -> None:
    s = healthy()   # the CEO meets u1 and u4 weekly for 30 weeks: both periods
    assert s.account()["relationship"]["evidence"]["stage"]["executive_periods"] == 2
    sparse = Scenario("S").user("u1").user("u4", "executive", "vp").contact("ceo", "economic_buyer", "c_suite")
    sparse.meet("u4", "ceo", 30)
    assert sparse.account()["relationship"]["evidence"]["stage"]["executive_periods"] == 1
    sparse.meet("u4", "ceo", 100)
    assert sparse.account()["relationship"]["evidence"]["stage"]["executive_periods"] == 2
    assert sparse.account(stage={"exec_periods": 3})["relationship"]["evidence"]["stage"]["executive_periods"] == 2


# -- levels -----------------------------------------------------------------------------------

def test_ordinary_cooperation_needs_relationship_evidence() -> None:
    assert level(contacted(5)) == "ordinary_cooperation"
    unpaired = Scenario("B").user("u1").contact("c1", "decision_maker", "vp", "executive")
    unpaired.meet("", "c1", 5)
    assert level(unpaired) is None


def test_friendship_needs_a_supporting_decision_maker_for_a_year() -> None:
    s = healthy().meet("u1", "cto", 400)   # tenure over a year; ceo stance 2, cto 1, both strong
    assert level(s) == "friendship"
    assert level(healthy().meet("u1", "cto", 300)) == "ordinary_cooperation"      # tenure under a year
    assert level(s, level={"friendship_stance": 3}) == "ordinary_cooperation"       # nobody is a coach
    assert level(s, level={"friendship_contacts": 3}) == "ordinary_cooperation"


def test_a_weak_relationship_is_no_friendship() -> None:
    s = Scenario("B").user("u1").contact("c1", "decision_maker", "vp", "executive", stance=3)
    s.meet("u1", "c1", 400).meet("u1", "c1", 10)   # strength about 50: under 60
    account = s.account()
    assert account["level"] == "ordinary_cooperation"
    assert "team strength of 60+" in " ".join(account["relationship"]["level_next"])
    assert level(s, level={"friendship_strength": 40.0}) == "friendship"


def test_strategic_partnership() -> None:
    s = deep()
    assert level(s) == "strategic_partnership"
    assert s.account()["scores"]["health"] >= 70
    assert level(s, level={"partnership_health": 95.0}) == "friendship"
    assert level(s, level={"partnership_contacts": 3}) == "friendship"
    assert level(deep(joint=False)) == "friendship"   # community of interest only


# -- the CRM's word, and a plugin's -----------------------------------------------------------

def test_a_crm_field_overrides_stage_and_level() -> None:
    s = contacted(5, extra={"Strategic_Stage__c": "Deep strategic cooperation", "relationship_level": "2"})
    account = s.account()
    assert (account["stage"], account["level"]) == ("deep_strategic_cooperation", "friendship")
    rel = account["relationship"]
    assert (rel["stage_source"], rel["level_source"]) == ("crm", "crm")
    assert rel["evidence"]["stage_crm"] == {"field": "Strategic_Stage__c", "value": "deep_strategic_cooperation",
                                             "computed": "perceptual_recognition"}
    assert "the CRM field Strategic_Stage__c says so (the evidence alone gives perceptual recognition)" in \
        rel["explanation"]
    assert s.account(stage={"crm_fields": ["other"]})["stage"] == "perceptual_recognition"


def test_a_bad_crm_value_is_ignored_and_said() -> None:
    account = contacted(5, extra={"strategic_stage": "best friends"}).account()
    assert account["stage"] == "perceptual_recognition" and account["relationship"]["stage_source"] == "computed"
    assert "'best friends' is not one of: perceptual_recognition" in account["relationship"]["evidence"]["stage_crm_error"]


class Flat:
    """A third-party method: every account with health is a strategic partner."""

    @hookimpl
    def evaluate_relationship(self, view: Any) -> Relationship | None:
        if view.scores.get("health") is None:
            return None
        return Relationship("community_of_interest", "strategic_partnership", {"mine": True}, ("I say so",))


def test_a_plugin_replaces_the_method_s_stage_and_level() -> None:
    s = contacted(5)
    store = Store("sqlite://")
    for record in s.records:
        record.source = "t"
    with store.transaction() as conn:
        for entity in {r.entity for r in s.records}:
            store.upsert(conn, [r for r in s.records if r.entity == entity])
    host = get_plugin_host(load_entrypoints=False)
    host.register("flat", Flat())
    doc = Audit(store, host, merge(DEFAULTS, {}) | {"sources": {}}, AS_OF).run()
    account = doc["accounts"][0]
    assert (account["stage"], account["level"]) == ("community_of_interest", "strategic_partnership")
    assert account["relationship"]["evidence"] == {"mine": True}
    assert account["relationship"]["explanation"].startswith("Stage: community of interest, because I say so")


def test_deep_cooperation_needs_executive_meetings_in_every_period() -> None:
    s = deep()
    assert stage(s) == "deep_strategic_cooperation"
    account = s.account(stage={"exec_periods": 3})   # the third period is beyond findings.exec_link_days
    assert account["stage"] == "community_of_interest"
    assert "executive-to-executive meetings in each of the last 3 periods of 90 days (2 of 3)" in \
        account["relationship"]["stage_next"]
    assert stage(s, stage={"exec_period_days": 60.0}) == "deep_strategic_cooperation"
