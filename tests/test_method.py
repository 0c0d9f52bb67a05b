"""Each finding of the method on both sides of its threshold, and properties of the scores."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.scenario import Scenario, healthy


def test_healthy_account_has_no_relationship_findings() -> None:
    account = healthy().account()
    assert account["findings"] == [], account["findings"]
    assert account["scores"]["health"] >= 60


def test_personalized_threshold() -> None:
    def scenario(second_holder_meetings: int) -> Scenario:
        s = Scenario("A").user("u1").user("u2").contact("c1", "decision_maker", "vp").contact("c2", "user")
        for i in range(10):
            s.meet("u1", "c1", 3 + i * 7)
        for i in range(second_holder_meetings):
            s.meet("u2", "c2", 4 + i * 7)
        return s
    assert "PERSONALIZED_RELATIONSHIP" in scenario(0).codes()
    assert "PERSONALIZED_RELATIONSHIP" not in scenario(10).codes()


def test_personalized_share_exactly_at_threshold_config() -> None:
    s = Scenario("A").user("u1").user("u2").contact("c1", "decision_maker", "vp").contact("c2", "user")
    s.meet("u1", "c1", 3).meet("u2", "c2", 3)
    share = s.account()["personalization"]["top_share"]
    assert "PERSONALIZED_RELATIONSHIP" in s.codes(findings={"personalized_share": share})
    assert "PERSONALIZED_RELATIONSHIP" not in s.codes(findings={"personalized_share": share + 0.01})


def test_decision_maker_cold_threshold() -> None:
    def scenario(days: float) -> Scenario:
        return Scenario("A").user("u1").contact("c1", "decision_maker", "vp").meet("u1", "c1", days)
    assert "KEY_DECISION_MAKER_COLD" in scenario(91).codes()
    assert "KEY_DECISION_MAKER_COLD" not in scenario(89).codes()


def test_no_decision_maker() -> None:
    assert "KEY_NO_DECISION_MAKER" in Scenario("S").user("u1").contact("c1", "user", "entry").codes()
    assert "KEY_NO_DECISION_MAKER" not in Scenario("S").user("u1").contact("c1", None, "vp").codes()
    assert "KEY_NO_DECISION_MAKER" not in Scenario("C").user("u1").contact("c1", "user", "entry").codes()


def test_single_holder() -> None:
    one = Scenario("S").user("u1").user("u2").contact("c1", "decision_maker", "vp")
    for i in range(6):
        one.meet("u1", "c1", 2 + 7 * i)
    assert "KEY_SINGLE_HOLDER" in one.codes()
    for i in range(6):
        one.meet("u2", "c1", 3 + 7 * i)
    assert "KEY_SINGLE_HOLDER" not in one.codes()


def test_low_cadence_threshold() -> None:
    def scenario(per_four_weeks: int) -> Scenario:
        s = Scenario("S").user("u1").contact("c1", "decision_maker", "vp")
        for i in range(per_four_weeks):
            s.meet("u1", "c1", 1 + i * 27 / per_four_weeks, kind="call")
        return s
    assert "BROAD_LOW_CADENCE" in scenario(19).codes()
    assert "BROAD_LOW_CADENCE" not in scenario(20).codes()


def test_needle_point_and_single_level() -> None:
    s = Scenario("A").user("u1").contact("cto", "decision_maker", "c_suite", "technical")
    s.contact("buyer", "procurement", "manager", "procurement").contact("ops", "user", "entry", "operations")
    for i in range(8):
        s.meet("u1", "cto", 2 + i * 7)
    found = s.codes()
    assert {"BROAD_NARROW_COVERAGE", "BROAD_SINGLE_LEVEL"} <= found
    assert not {"BROAD_NARROW_COVERAGE", "BROAD_SINGLE_LEVEL"} & set(healthy().codes())


def test_opponent_unengaged() -> None:
    s = Scenario("A").user("u1").contact("c1", "decision_maker", "vp", stance=-2).contact("c2", "user")
    s.meet("u1", "c2", 5)
    assert "OPPONENT_UNENGAGED" in s.codes()
    assert "OPPONENT_UNENGAGED" not in s.meet("u1", "c1", 80).codes()


def test_orphaned_relationship() -> None:
    s = Scenario("A").user("u1", active=False).user("u2").contact("c1", "decision_maker", "vp")
    s.meet("u1", "c1", 10).meet("u2", "c1", 11)
    assert "ORPHANED_RELATIONSHIP" in s.codes()
    fresh = Scenario("A").user("u1").user("u2").contact("c1", "decision_maker", "vp").meet("u2", "c1", 11)
    assert "ORPHANED_RELATIONSHIP" not in fresh.codes()


def test_declining_and_as_of() -> None:
    s = Scenario("A").user("u1").contact("c1", "decision_maker", "vp")
    for i in range(20):
        s.meet("u1", "c1", 100 + i * 5)
    assert "RELATIONSHIP_DECLINING" in s.codes()
    assert "RELATIONSHIP_DECLINING" not in s.codes(as_of=date(2026, 3, 20))


def test_no_executive_link_and_program() -> None:
    s = healthy()
    assert "ORG_NO_EXECUTIVE_LINK" not in s.codes()
    quiet = Scenario("S").user("u1").contact("c1", "decision_maker", "vp").meet("u1", "c1", 3)
    assert {"ORG_NO_EXECUTIVE_LINK", "ORG_NO_PROGRAM", "ORG_THIN_TEAM"} <= quiet.codes()


def test_program_recognised_from_chinese_subject() -> None:
    s = Scenario("S").user("u1").contact("c1", "decision_maker", "vp").meet("u1", "c1", 30, kind="event", subject="参观样板点")
    assert "ORG_NO_PROGRAM" not in s.codes()


def test_one_way_contact_is_capped() -> None:
    s = Scenario("A").user("u1").contact("c1", "decision_maker", "vp")
    for i in range(30):
        s.meet("u1", "c1", i + 1, kind="email", direction="outbound")
    assert s.account()["scores"]["key"] <= 15 * 3 / 8.5 + 0.1


def test_departure_simulation_in_evidence() -> None:
    s = Scenario("A").user("u1").user("u2").contact("c1", "decision_maker", "vp")
    for i in range(10):
        s.meet("u1", "c1", 3 + i * 7)
    finding = next(f for f in s.account()["findings"] if f["code"] == "PERSONALIZED_RELATIONSHIP")
    assert finding["evidence"]["departure"]["decision_makers_losing_all_coverage"] == ["c1"]
    assert finding["evidence"]["departure"]["health_drop"] > 0


def test_method_plugin_can_be_switched_off(monkeypatch) -> None:
    monkeypatch.setenv("CRMLINK_DISABLE_PLUGINS", "method")
    account = healthy().account()
    assert account["scores"] == {} and account["findings"] == []


interaction = st.tuples(st.sampled_from(["meeting", "call", "email", "visit", "note"]),
                        st.sampled_from(["inbound", "outbound", "two_way"]),
                        st.floats(min_value=0, max_value=700), st.sampled_from(["c1", "c2", "c3"]),
                        st.sampled_from(["u1", "u2"]))


def build(events: list) -> Scenario:
    s = Scenario("S").user("u1").user("u2", "SR")
    s.contact("c1", "decision_maker", "vp").contact("c2", "user", "entry", "operations").contact("c3", "procurement")
    for kind, direction, days, contact, user in events:
        s.meet(user, contact, days, kind=kind, direction=direction)
    return s


@settings(max_examples=12, deadline=None)
@given(st.lists(interaction, max_size=25))
def test_scores_stay_in_range_and_audit_is_deterministic(events: list) -> None:
    s = build(events)
    first, second = s.account(), s.account()
    assert first["scores"] == second["scores"] and first["findings"] == second["findings"]
    assert all(0 <= v <= 100 for v in first["scores"].values())


@settings(max_examples=12, deadline=None)
@given(st.lists(interaction, max_size=20), st.floats(min_value=0, max_value=300))
def test_two_way_interaction_with_decision_maker_never_lowers_key(events: list, days: float) -> None:
    before = build(events).account()["scores"]["key"]
    after = build(events + [("meeting", "two_way", days, "c1", "u1")]).account()["scores"]["key"]
    assert after >= before - 1e-6


@settings(max_examples=10, deadline=None)
@given(st.lists(interaction, min_size=1, max_size=20), st.floats(min_value=0, max_value=300))
def test_second_holder_never_raises_personalization_share(events: list, days: float) -> None:
    """One of us holds the key contact alone; a colleague joining never concentrates it more."""
    alone = [(k, d, t, c, "u1") for k, d, t, c, _ in events] + [("meeting", "two_way", 5, "c1", "u1")]
    before = build(alone).account()["personalization"]["top_share"]
    after = build(alone + [("meeting", "two_way", days, "c1", "u2")]).account()["personalization"]["top_share"]
    assert after <= before + 1e-9
