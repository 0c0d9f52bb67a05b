"""Each finding of the method on both sides of its threshold, and properties of the scores."""

from __future__ import annotations

import math
from datetime import date

import pytest
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
    def met(tier: str, role: str | None, seniority: str) -> set[str]:
        return Scenario(tier).user("u1").contact("c1", role, seniority).meet("u1", "c1", 5).codes()
    assert "KEY_NO_DECISION_MAKER" in met("S", "user", "entry")
    assert "KEY_NO_DECISION_MAKER" not in met("S", None, "vp")
    assert "KEY_NO_DECISION_MAKER" not in met("C", "user", "entry")


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


interaction = st.tuples(st.sampled_from(["meeting", "call", "email", "visit", "note", "event", "task"]),
                        st.sampled_from(["inbound", "outbound", "two_way", "internal"]),
                        st.floats(min_value=0, max_value=700), st.sampled_from(["c1", "c2", "c3", "c4"]),
                        st.sampled_from(["u1", "u2", "u3"]))
tiers = st.sampled_from(["S", "A", "B", "C", None])
TWO_WAY_KINDS = st.sampled_from(["meeting", "call", "visit", "event", "email"])
DECISION_MAKERS = st.sampled_from(["c1", "c4"])


def build(events: list, tier: str | None = "S") -> Scenario:
    s = Scenario(tier).user("u1").user("u2", "SR").user("u3", "executive", "vp")
    s.contact("c1", "decision_maker", "vp").contact("c2", "user", "entry", "operations").contact("c3", "procurement")
    s.contact("c4", "economic_buyer", "c_suite", "executive", stance=1)
    for kind, direction, days, contact, user in events:
        s.meet(user, contact, days, kind=kind, direction=direction)
    return s


def _without_clock(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "generated_at"}


@settings(max_examples=25, deadline=None)
@given(st.lists(interaction, max_size=25), tiers, st.randoms(use_true_random=False))
def test_scores_stay_in_range_and_audit_is_deterministic(events: list, tier: str | None, rnd) -> None:
    s = build(events, tier)
    first = _without_clock(s.audit())
    rnd.shuffle(s.records)                    # the order records reach the store must not matter
    assert _without_clock(s.audit()) == first
    for account in first["accounts"]:
        for scores in (account["scores"], account["previous_scores"]):
            assert set(scores) == {"key", "broad", "org", "health"}
            # every contact is described, so the layers have evidence together or not at all
            assert len({v is None for v in scores.values()}) == 1
            assert all(0 <= v <= 100 for v in scores.values() if v is not None)
        for point in account["health_history"]:
            assert point["health"] is None or 0 <= point["health"] <= 100


@settings(max_examples=25, deadline=None)
@given(st.lists(interaction, max_size=20), st.floats(min_value=0, max_value=400), TWO_WAY_KINDS,
       DECISION_MAKERS, st.sampled_from(["u1", "u2", "u3"]), tiers)
def test_two_way_interaction_with_decision_maker_never_lowers_key(events: list, days: float, kind: str,
                                                                   contact: str, user: str, tier) -> None:
    before = build(events, tier).account()["scores"]["key"]
    after = build(events + [(kind, "two_way", days, contact, user)], tier).account()["scores"]["key"]
    if before is not None:  # None: no evidence yet; evidence never goes away by adding some
        assert after is not None and after >= before - 1e-6
    if days < 364:          # within the coverage window: the meeting itself is evidence
        assert after is not None


@settings(max_examples=20, deadline=None)
@given(st.lists(interaction, min_size=1, max_size=20), st.floats(min_value=0, max_value=300), TWO_WAY_KINDS,
       st.sampled_from(["u2", "u3"]), DECISION_MAKERS)
def test_second_holder_never_raises_personalization_share(events: list, days: float, kind: str,
                                                          second: str, key_contact: str) -> None:
    """One of us holds everything alone; a colleague joining a key contact never concentrates it more."""
    alone = [(k, d, t, c, "u1") for k, d, t, c, _ in events] + [("meeting", "two_way", 5, key_contact, "u1")]
    before = build(alone).account()["personalization"]["top_share"]
    joined = build(alone + [(kind, "two_way", days, key_contact, second)]).account()["personalization"]
    assert joined["top_share"] <= before + 1e-9
    assert before == 1.0


# -- the rules of the method, one by one ------------------------------------------------------

def pair(s: Scenario, as_of: date | None = None, **overrides) -> float:
    """u1 x c1's strength in the relationship map (0 when the pair is not there)."""
    pairs = s.account(as_of or date(2026, 6, 30), **overrides)["relationship_map"]["pairs"]
    return next((p["strength"] for p in pairs if p["user"] == "u1" and p["contact"] == "c1"), 0.0)


def one(kind: str = "meeting", direction: str = "two_way", days: float = 2, **kw) -> Scenario:
    return Scenario("A").user("u1").contact("c1", "decision_maker", "vp").meet("u1", "c1", days, kind=kind,
                                                                                direction=direction, **kw)


def test_interaction_weights_by_kind_and_direction() -> None:
    strengths = [pair(one("visit")), pair(one("meeting")), pair(one("call")), pair(one("email", "inbound"))]
    assert strengths == sorted(strengths, reverse=True) and len(set(strengths)) == 4
    assert pair(one("call"), weights={"call": 3.0}) == pair(one("visit"))


def test_mass_email_is_diluted_then_ignored() -> None:
    few, many = pair(one("email", "inbound", recipients=4)), pair(one("email", "inbound", recipients=50))
    assert pair(one("email", "inbound")) > few > many > 0
    assert pair(one("email", "inbound", recipients=51)) == 0.0
    assert pair(one("email", "inbound", recipients=51), strength={"mass_email_limit": 60}) > 0


def test_internal_only_interactions_do_not_count() -> None:
    assert pair(one(direction="internal")) == 0.0
    internal = one(direction="internal").account()
    assert internal["scores"]["key"] is None  # no evidence, not a bad relationship
    assert [f["code"] for f in internal["findings"]] == ["DATA_NO_ACTIVITY"]


def test_decay_halves_weight_with_the_half_life() -> None:
    """One meeting's strength is 100 (1 - exp(-2.5 x 2^(-age / half-life) / k)), freshness aside."""
    def expected(age: float, half_life: float = 90.0) -> float:
        return 100 * (1 - math.exp(-2.5 * 2 ** (-age / half_life) / 4.0))
    no_freshness = {"freshness_grace_days": 1000.0}
    for days in (2, 92, 182):   # the audit is at the end of its day: 12 hours more
        assert abs(pair(one(days=days), strength=no_freshness) - expected(days + 0.5)) <= 0.06
    slower = pair(one(days=182), strength=no_freshness | {"half_life_days": 180.0})
    assert abs(slower - expected(182.5, 180.0)) <= 0.06


def test_one_way_contact_is_capped_and_a_reply_lifts_it() -> None:
    s = Scenario("A").user("u1").contact("c1", "decision_maker", "vp")
    for i in range(20):
        s.meet("u1", "c1", i + 1, kind="email", direction="outbound")
    assert pair(s) <= 15.0
    assert pair(s.meet("u1", "c1", 1, kind="email", direction="inbound")) > 15.0


def test_team_strength_is_noisy_or_of_holders() -> None:
    s = Scenario("A").user("u1").user("u2").contact("c1", "decision_maker", "vp")
    s.meet("u1", "c1", 2).meet("u2", "c1", 2)
    contact = s.account()["relationship_map"]["contacts"][0]
    pairs = [p["strength"] for p in s.account()["relationship_map"]["pairs"]]
    assert abs(contact["team_strength"] - 100 * (1 - (1 - pairs[0] / 100) * (1 - pairs[1] / 100))) < 0.2
    assert contact["holders"] == ["u1", "u2"]
    key = s.account()["score_evidence"]["key"]["key_contacts"]["c1"]
    assert key["holders"] == 2 and key["best_holder"] in ("u1", "u2")


def test_computed_tier_from_revenue_and_growth() -> None:
    def tier(revenue: float, growth: float | None = None) -> tuple[str, str]:
        s = Scenario(None, annual_revenue=revenue, growth=growth).user("u1").contact("c1")
        account = s.account()
        return account["tier"], account["tier_source"]
    assert tier(2e9) == ("S", "computed")
    assert tier(2e8, 0.25) == ("S", "computed") and tier(2e8, 0.1) == ("A", "computed")
    assert tier(2e7) == ("B", "computed") and tier(2e6) == ("C", "computed")
    assert Scenario("A").user("u1").account()["tier_source"] == "crm"


def test_config_file_overrides_defaults(tmp_path, monkeypatch) -> None:
    from crmlink.core.analysis.config import load_config
    from crmlink.core.errors import ConfigError

    (tmp_path / "crmlink.toml").write_text("[findings]\ncold_days = 120\n[broad.parts]\nlevels = 0.5\n")
    monkeypatch.chdir(tmp_path)                                    # the default location
    config = load_config()
    assert config["findings"]["cold_days"] == 120 and config["broad"]["parts"]["levels"] == 0.5
    assert config["broad"]["parts"]["departments"] == 0.5          # the rest keeps its default
    (tmp_path / "other.toml").write_text("[findings]\ncold_dayz = 1\n")
    with pytest.raises(ConfigError, match="cold_dayz"):
        load_config(str(tmp_path / "other.toml"))
