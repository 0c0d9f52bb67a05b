"""Every finding code of the method plugin on both sides of its threshold, with a real
SQLite store (tests/scenario.py). ``test_every_code_has_boundary_tests`` keeps the list
complete: a code the plugin can emit without a test here fails the suite."""

from __future__ import annotations

import heapq
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from crmlink import PortfolioView
from crmlink.plugins.method import portfolio as method_portfolio
from tests.scenario import Scenario

METHOD = Path(__file__).resolve().parent.parent / "crmlink" / "plugins" / "method"


def emitted_codes() -> set[str]:
    """Every finding code the method plugin's source can emit."""
    text = "".join(p.read_text(encoding="utf-8") for p in METHOD.glob("*.py"))
    return set(re.findall(r'Finding\(\s*"([A-Z_]+)"', text)) | set(re.findall(r'"(DATA_[A-Z_]+)"', text))


def test_every_code_has_boundary_tests() -> None:
    own = Path(__file__).read_text(encoding="utf-8")
    missing = {code for code in emitted_codes() if f"def test_{code.lower()}_" not in own}
    assert len(emitted_codes()) >= 17
    assert not missing, f"no boundary test for {sorted(missing)}"


def weekly(s: Scenario, users: str, contacts: str, weeks: int = 6, start: float = 1, **kw) -> Scenario:
    for week in range(weeks):
        s.meet(users, contacts, start + 7 * week, **kw)
    return s


# -- key ------------------------------------------------------------------------------------

def test_key_no_decision_maker_needs_strategy_or_pipeline() -> None:
    plain = Scenario("B").user("u1").contact("c1", "user", "entry").meet("u1", "c1", 5)
    assert "KEY_NO_DECISION_MAKER" not in plain.codes()
    assert "KEY_NO_DECISION_MAKER" in plain.deal("o1", "Prospecting").codes()


def test_key_no_decision_maker_an_executive_counts_as_known() -> None:
    s = Scenario("S").user("u1").contact("c1", "approver", "director", "finance").meet("u1", "c1", 5)
    assert "KEY_NO_DECISION_MAKER" in s.codes()
    executive = Scenario("S").user("u1").contact("c1", "approver", "c_suite").meet("u1", "c1", 5)
    assert "KEY_NO_DECISION_MAKER" not in executive.codes()


def test_key_decision_maker_cold_names_people_and_holder() -> None:
    s = Scenario("A").user("u1").contact("c1", "decision_maker", "vp").meet("u1", "c1", 91)
    finding = s.finding("KEY_DECISION_MAKER_COLD")
    assert finding and "C1 (t)" in finding["message"] and "Acme" in finding["message"]
    assert finding["evidence"]["best_holder"] == "u1" and "U1" in finding["action"]
    assert Scenario("A").user("u1").contact("c1", "decision_maker", "vp").meet("u1", "c1", 89).finding(
        "KEY_DECISION_MAKER_COLD") is None


def test_key_single_holder_by_tier_and_approvers_are_not_decision_makers() -> None:
    s = weekly(Scenario("A").user("u1").contact("c1", "decision_maker", "vp"), "u1", "c1")
    assert "KEY_SINGLE_HOLDER" in s.codes()
    assert "KEY_SINGLE_HOLDER" not in s.codes(findings={"single_holder_tiers": ["S"]})
    approver = weekly(Scenario("A").user("u1").contact("c1", "approver", "manager", "finance"), "u1", "c1")
    assert "KEY_SINGLE_HOLDER" not in approver.codes()


# -- broad ----------------------------------------------------------------------------------

def coverage(engaged: list[str], known_only: list[str]) -> Scenario:
    s = Scenario("A").user("u1")
    for dept in engaged:
        s.contact(dept, "influencer", "manager", dept)
        weekly(s, "u1", dept)
    for dept in known_only:
        s.contact(dept, "influencer", "manager", dept)
    return s


def test_broad_narrow_coverage_minimum_departments() -> None:
    two = coverage(["technical", "procurement"], [])
    finding = two.finding("BROAD_NARROW_COVERAGE")
    assert finding and finding["severity"] == "medium"
    assert finding["evidence"]["engaged_departments"] == ["procurement", "technical"]
    assert "BROAD_NARROW_COVERAGE" not in coverage(["technical", "procurement", "finance"], []).codes()


def test_broad_narrow_coverage_half_of_known_departments() -> None:
    engaged = ["technical", "procurement", "finance"]
    assert "BROAD_NARROW_COVERAGE" not in coverage(engaged, ["legal", "it", "hr"]).codes()      # 3 of 6
    finding = coverage(engaged, ["legal", "it", "hr", "operations"]).finding("BROAD_NARROW_COVERAGE")  # 3 of 7
    assert finding and "IT" in finding["action"] and "operations (O&M)" in finding["action"]


def test_broad_single_level_one_band_or_two() -> None:
    s = Scenario("A").user("u1").contact("c1", "influencer", "manager").contact("c2", "user", "manager", "operations")
    weekly(s, "u1", "c1;c2")
    finding = s.finding("BROAD_SINGLE_LEVEL")
    assert finding and finding["evidence"]["band"] == "manager" and "C1 (t) and C2 (t)" in finding["message"]
    two = Scenario("A").user("u1").contact("c1", "influencer", "manager").contact("c2", "user", "head", "operations")
    assert "BROAD_SINGLE_LEVEL" not in weekly(two, "u1", "c1;c2").codes()


def test_broad_single_level_only_for_strategic_tiers() -> None:
    s = weekly(Scenario("B").user("u1").contact("c1", "influencer", "manager"), "u1", "c1")
    assert "BROAD_SINGLE_LEVEL" not in s.codes()
    assert "BROAD_SINGLE_LEVEL" in s.codes(findings={"strategic_tiers": ["B"]})


def test_broad_low_cadence_per_week() -> None:
    def scenario(calls: int) -> Scenario:
        s = Scenario("S").user("u1").contact("c1", "decision_maker", "vp")
        for i in range(calls):
            s.meet("u1", "c1", 1 + i * 27 / calls, kind="call")
        return s
    finding = scenario(9).finding("BROAD_LOW_CADENCE")
    assert finding and finding["severity"] == "medium" and finding["evidence"]["interactions"] == 9
    assert scenario(19).finding("BROAD_LOW_CADENCE")["severity"] == "low"
    assert scenario(20).finding("BROAD_LOW_CADENCE") is None


# -- organisational -------------------------------------------------------------------------

def exec_meeting(days: float, tier: str = "S") -> Scenario:
    s = Scenario(tier).user("u1").user("x1", "executive", "vp").contact("ceo", "economic_buyer", "c_suite", "executive")
    return s.meet("u1", "ceo", 2).meet("x1", "ceo", days)


def test_org_no_executive_link_window() -> None:
    finding = exec_meeting(181).finding("ORG_NO_EXECUTIVE_LINK")
    assert finding and finding["severity"] == "high"
    assert finding["evidence"]["their_executives"] == ["ceo"] and finding["evidence"]["our_executives"] == ["x1"]
    assert "X1 (executive)" in finding["action"] and "CEO (t)" in finding["action"]
    assert exec_meeting(179).finding("ORG_NO_EXECUTIVE_LINK") is None
    assert exec_meeting(181, "A").finding("ORG_NO_EXECUTIVE_LINK")["severity"] == "medium"


def triangle(fr_days: float) -> Scenario:
    s = Scenario("S").user("u1", "AR").user("u2", "SR").user("u3", "FR")
    s.contact("dm", "decision_maker", "vp").contact("eng", "technical_evaluator", "manager", "engineering")
    s.contact("ops", "user", "entry", "operations")
    weekly(s, "u1", "dm")
    weekly(s, "u2", "eng")
    return weekly(s, "u3", "ops", weeks=4, start=fr_days)


def test_org_thin_team_people_count() -> None:
    s = triangle(1)
    assert "ORG_THIN_TEAM" not in s.codes()
    finding = s.finding("ORG_THIN_TEAM", findings={"thin_team": 4})
    assert finding and finding["evidence"]["missing_roles"] == [] and "Only 3" in finding["message"]


def test_org_thin_team_iron_triangle_pair_recency() -> None:
    window = {"org": {"window_days": 60.0}, "findings": {"thin_team": 2}}
    assert "ORG_THIN_TEAM" not in triangle(59).codes(**window)
    finding = triangle(61).finding("ORG_THIN_TEAM", **window)
    assert finding and finding["evidence"]["iron_triangle"] == {"AR": True, "SR": True, "FR": False}
    assert "no FR" in finding["message"]


def test_org_thin_team_ar_must_engage_the_decision_chain() -> None:
    s = Scenario("S").user("u1", "AR").user("u2", "SR").user("u3", "FR")
    s.contact("eng", "technical_evaluator", "manager", "engineering").contact("ops", "user", "entry", "operations")
    weekly(s, "u1", "ops")
    weekly(s, "u2", "eng")
    weekly(s, "u3", "ops")
    assert s.finding("ORG_THIN_TEAM")["evidence"]["missing_roles"] == ["AR"]


def program(days: float, **kw) -> Scenario:
    s = Scenario("S").user("u1").contact("c1", "decision_maker", "vp").meet("u1", "c1", 3)
    return s.meet("u1", "c1", days, **{"kind": "event", **kw})


def test_org_no_program_window() -> None:
    assert "ORG_NO_PROGRAM" not in program(364, method="site_visit").codes()
    finding = program(366, method="site_visit").finding("ORG_NO_PROGRAM")
    assert finding and finding["evidence"]["days_since_each_method"] == {"site_visit": 366}
    assert "ORG_NO_PROGRAM" not in program(366, method="site_visit").codes(findings={"program_days": 367})


def test_org_no_program_methods_recognised_in_english_and_chinese() -> None:
    for clue in ({"subject": "Reference site visit, Shenzhen"}, {"subject": "技术交流：5G 核心网"},
                 {"campaign": "Huawei Connect 展会"}, {"kind": "visit", "subject": "参观公司总部"},
                 {"campaign": "Management research programme"}):
        assert "ORG_NO_PROGRAM" not in program(30, **clue).codes(), clue
    assert "ORG_NO_PROGRAM" in program(30, subject="Quarterly review").codes()
    assert "ORG_NO_PROGRAM" not in program(30, subject="x").codes(findings={"program_tiers": []})


# -- risks ----------------------------------------------------------------------------------

def test_personalized_relationship_share_and_tiers() -> None:
    s = Scenario("A").user("u1").user("u2").contact("c1", "decision_maker", "vp").contact("c2", "user")
    weekly(s, "u1", "c1", weeks=10)
    s.meet("u2", "c2", 4, kind="email", direction="outbound")
    finding = s.finding("PERSONALIZED_RELATIONSHIP")
    share = finding["evidence"]["top_share"]
    assert share >= 0.7 and "U1 (AR)" in finding["message"] and "C1 (t)" in finding["message"]
    assert finding["evidence"]["departure"]["sentence"].startswith("If U1 leaves, health drops")
    assert "U2 (AR)" in finding["action"]
    assert "PERSONALIZED_RELATIONSHIP" not in s.codes(findings={"personalized_share": share + 0.01})
    assert "PERSONALIZED_RELATIONSHIP" not in s.codes(findings={"personalized_tiers": ["S"]})


def orphan() -> Scenario:
    s = Scenario("A").user("u1").user("u2", active=False).contact("c1", "decision_maker", "vp")
    return s.meet("u1", "c1", 10).meet("u2", "c1", 11)


def test_orphaned_relationship_share() -> None:
    share = orphan().account()["personalization"]["inactive_share"]
    finding = orphan().finding("ORPHANED_RELATIONSHIP", findings={"orphaned_share": share})
    assert finding and finding["evidence"]["inactive_holders"] == ["u2"] and "U2 (AR)" in finding["message"]
    assert finding["evidence"]["suggested_owner"] == "u1"
    assert orphan().finding("ORPHANED_RELATIONSHIP", findings={"orphaned_share": share + 0.01}) is None


def test_orphaned_relationship_owner_left() -> None:
    s = Scenario("A").user("u1", active=False).user("u2").contact("c1", "decision_maker", "vp").meet("u2", "c1", 5)
    finding = s.finding("ORPHANED_RELATIONSHIP")
    assert finding and finding["evidence"]["owner_active"] is False and "account owner" in finding["message"]
    fine = Scenario("A").user("u1").user("u2").contact("c1", "decision_maker", "vp").meet("u2", "c1", 5)
    assert fine.finding("ORPHANED_RELATIONSHIP") is None


def test_relationship_declining_points() -> None:
    s = Scenario("A").user("u1").contact("c1", "decision_maker", "vp")
    weekly(s, "u1", "c1", weeks=10, start=95)
    account = s.account()
    drop = account["previous_scores"]["health"] - account["scores"]["health"]
    assert drop > 0
    finding = s.finding("RELATIONSHIP_DECLINING", findings={"decline_points": drop})
    assert finding and finding["evidence"]["cooled_contacts"][0]["contact"] == "c1"
    assert "C1 (t)" in finding["message"] and "in the last 90 days" in finding["message"]
    assert s.finding("RELATIONSHIP_DECLINING", findings={"decline_points": drop + 0.2}) is None


def opponent(days: float, stance: int = -1) -> Scenario:
    s = Scenario("A").user("u1").contact("c1", "decision_maker", "vp", stance=stance).contact("c2", "user")
    return s.meet("u1", "c2", 5).meet("u1", "c1", days)


def test_opponent_unengaged_window_and_stance() -> None:
    finding = opponent(91).finding("OPPONENT_UNENGAGED")
    assert finding and finding["evidence"]["stances"] == {"c1": -1} and "U1 (AR)" in finding["action"]
    assert opponent(89).finding("OPPONENT_UNENGAGED") is None
    assert opponent(91, stance=0).finding("OPPONENT_UNENGAGED") is None


def stance(days: float | None, tier: str = "A", value: int | None = 1) -> Scenario:
    s = Scenario(tier).user("u1").contact("c1", "decision_maker", "vp", stance=value, assessed_days_ago=days)
    return s.meet("u1", "c1", 3)


def test_stance_stale_by_tier_limit() -> None:
    finding = stance(91).finding("STANCE_STALE")
    assert finding and finding["severity"] == "medium" and finding["evidence"]["limit_days"] == 90
    assert "C1 (t), supporter 91 days ago" in finding["message"] and "U1 (AR)" in finding["action"]
    assert stance(89).finding("STANCE_STALE") is None
    assert stance(61, "S").finding("STANCE_STALE") is not None
    assert stance(59, "S").finding("STANCE_STALE") is None
    assert stance(181, "C").finding("STANCE_STALE")["severity"] == "low"
    assert stance(179, "C").finding("STANCE_STALE") is None


def test_stance_stale_not_judged_without_stance_or_date() -> None:
    assert stance(None).finding("STANCE_STALE") is None
    assert stance(400, value=None).finding("STANCE_STALE") is None
    assert stance(91).finding("STANCE_STALE", findings={"stance_stale_days": {"A": 92}}) is None


def rank(seniority: str) -> Scenario:
    s = Scenario("A").user("u1", seniority=seniority).contact("c1", "decision_maker", "c_suite")
    return weekly(s, "u1", "c1")


def test_rank_mismatch_holder_band() -> None:
    finding = rank("senior").finding("RANK_MISMATCH")
    assert finding and finding["evidence"]["contacts"] == {"c1": ["u1"]} and "C1 (t) by U1 (AR)" in finding["message"]
    assert rank("manager").finding("RANK_MISMATCH") is None
    assert rank("manager").finding("RANK_MISMATCH", findings={"rank_min_band": "director"}) is not None


def test_data_quality_titles() -> None:
    def scenario(untitled: int) -> Scenario:
        s = Scenario("A").user("u1").contact("c1", "decision_maker", "vp").meet("u1", "c1", 3)
        for i in range(untitled):
            s.contact(f"n{i}", title=None)
        return s
    assert scenario(1).finding("DATA_QUALITY") is None                       # 1 of 2 titled: 50 %
    finding = scenario(2).finding("DATA_QUALITY")                            # 1 of 3 titled
    assert finding and finding["evidence"]["titled_share"] == 0.333 and "33%" in finding["message"]


def test_data_quality_interactions_linked_to_contacts() -> None:
    def scenario(unlinked: int) -> Scenario:
        s = Scenario("A").user("u1").contact("c1", "decision_maker", "vp")
        s.meet("u1", "c1", 3).meet("u1", "c1", 4)
        for i in range(unlinked):
            s.meet("u1", "", 5 + i, kind="call")
        return s.meet("u1", "c1", 20, direction="internal")              # internal-only: not judged
    assert scenario(2).finding("DATA_QUALITY") is None                       # 2 of 4 linked
    finding = scenario(3).finding("DATA_QUALITY")                            # 2 of 5 linked
    assert finding and finding["evidence"]["unlinked_interactions"] == 3 and finding["evidence"]["interactions"] == 5


def portfolio(s_meetings: int, b_meetings: int) -> Scenario:
    s = Scenario("S").add_account("B1", "B", name="Bravo").user("u1")
    s.contact("c1", "decision_maker", "vp").contact("c2", "decision_maker", "vp", account="B1")
    for i in range(s_meetings):
        s.meet("u1", "c1", 5 + i % 2)
    for i in range(b_meetings):
        s.meet("u1", "c2", 5 + i % 2, account="B1")
    return s


def test_tier_effort_mismatch_tolerance() -> None:
    half = {"tiers": {"target": {"S": 1, "A": 0, "B": 1, "C": 0}}}
    assert "TIER_EFFORT_MISMATCH" not in portfolio(4, 4).portfolio_codes(**half)
    skewed = portfolio(6, 4)   # S 60 %, B 40 % of the effort against 50/50
    assert "TIER_EFFORT_MISMATCH" not in skewed.portfolio_codes(findings={"tier_effort_tolerance": 0.11}, **half)
    doc = skewed.audit(findings={"tier_effort_tolerance": 0.09}, **half)
    finding = doc["portfolio_findings"][0]
    assert finding["code"] == "TIER_EFFORT_MISMATCH"
    assert finding["evidence"]["off_target"] == {"S": 0.1, "B": -0.1}
    assert "Acme (S)" in finding["message"] and "from tier S to tier B" in finding["action"]


def test_tier_effort_mismatch_default_target() -> None:
    finding = portfolio(2, 6).audit()["portfolio_findings"][0]
    assert finding["code"] == "TIER_EFFORT_MISMATCH" and finding["evidence"]["largest_accounts_over_target"] == ["B1"]
    assert "Bravo (B)" in finding["message"]


_ACCOUNTS = st.lists(st.tuples(st.sampled_from(["S", "A", "B", "C", None]), st.sampled_from([0.0, 1.0, 2.5, 7.0]),
                                st.sampled_from(["a1", "a2", "a3", "b1", "b2", "c1"])), max_size=30)


@given(_ACCOUNTS, st.lists(st.sampled_from(["S", "A", "B", "C"]), unique=True))
def test_the_largest_consumers_of_effort_are_found_in_the_one_pass(accounts: list[Any], over: list[str]) -> None:
    """The portfolio finding names the accounts of most effort in the tiers over target
    (of equal effort, the first by remote id), kept as the summaries pass once: the
    same as sorting every account of those tiers."""
    summaries = [SimpleNamespace(tier=tier, effort=effort, account=SimpleNamespace(remote_id=rid),
                                 coverage=SimpleNamespace(has_relationship_evidence=True))
                 for tier, effort, rid in accounts]
    view = cast(PortfolioView, SimpleNamespace(summaries=summaries,
                                               config={"tiers": {"target": {"S": 5, "A": 3, "B": 2, "C": 0}}}))
    effort, _, largest = method_portfolio._tiers(view)
    named = method_portfolio._biggest(largest, over)
    expected = heapq.nsmallest(method_portfolio.NAMED_ACCOUNTS,
                               (a for a in summaries if a.tier in over and a.effort > 0),
                               key=lambda a: (-a.effort, a.account.remote_id))
    assert [(a.effort, a.account.remote_id) for a in named] == [(a.effort, a.account.remote_id) for a in expected]
    assert effort == {t: sum(a.effort for a in summaries if a.tier == t) for t in "SABC"}


def test_org_no_program_method_from_a_native_kind() -> None:
    from crmlink.plugins.method.programs import recognise

    assert recognise("Site Visit", None, None) == "site_visit"
    assert recognise("meeting", None, "2026 技术交流会") == "tech_exchange"
    assert recognise("meeting", "Weekly sync", None) is None


def _keyword_texts() -> st.SearchStrategy[str | None]:
    from crmlink.plugins.method.programs import KEYWORDS

    words = [w for found in KEYWORDS.values() for w in found] + [w.upper() for w in KEYWORDS["site_visit"]]
    part = st.sampled_from(words) | st.text(max_size=4) | st.sampled_from(["Re: ", " (ACC-1 #2)", ".*", "|"])
    return st.none() | st.lists(part, max_size=4).map("".join)


@given(_keyword_texts(), _keyword_texts(), _keyword_texts())
def test_org_a_program_is_the_first_method_with_a_keyword_in_the_text(kind: str | None, subject: str | None,
                                                                      campaign: str | None) -> None:
    """Whatever the keywords' expressions: the first method (in the order the keywords
    are listed) one of whose keywords is in the kind, subject and campaign, lower-cased."""
    from crmlink.plugins.method.programs import KEYWORDS, recognise

    text = " ".join(t for t in (kind, subject, campaign) if t).lower()
    first = next((m for m, words in KEYWORDS.items() if text and any(w in text for w in words)), None)
    assert recognise(kind, subject, campaign) == first


# -- evidence coverage: no alarm without evidence ---------------------------------------------

LAYER_CODES = ("KEY_", "BROAD_", "ORG_", "OPPONENT_", "RANK_")


def _alarms(codes: set[str]) -> set[str]:
    return {c for c in codes if c.startswith(LAYER_CODES)}


def test_data_no_contacts_when_no_contact_is_recorded() -> None:
    bare = Scenario("S").user("u1").deal("o1", "Prospecting")
    account = bare.account()
    assert [f["code"] for f in account["findings"]] == ["DATA_NO_CONTACTS"]
    assert set(account["scores"].values()) == {None}
    finding = account["findings"][0]
    assert finding["severity"] == "low"
    assert "no contact is recorded for Acme" in finding["message"]
    assert "no activity names a contact in 365 days" in finding["message"]
    assert "connect mail and calendar" in finding["action"]
    quiet_b = Scenario("B").user("u1").finding("DATA_NO_CONTACTS")
    assert quiet_b is not None and quiet_b["severity"] == "info"   # no strategy, no pipeline
    known = Scenario("S").user("u1").contact("c1", "decision_maker", "vp").meet("u1", "c1", 5)
    assert "DATA_NO_CONTACTS" not in known.codes()


def test_data_no_activity_at_the_window_edge() -> None:
    def met(days: float) -> Scenario:
        s = Scenario("S").user("u1").contact("c1", "decision_maker", "vp").contact("c2", "user", "entry")
        return s.meet("u1", "c1", days)
    dormant = met(366).account()
    assert [f["code"] for f in dormant["findings"]] == ["DATA_NO_ACTIVITY"]
    assert "dormant or unrecorded" in dormant["findings"][0]["message"]
    assert "2 contacts" in dormant["findings"][0]["message"]
    recorded = met(364)
    assert "DATA_NO_ACTIVITY" not in recorded.codes() and recorded.account()["scores"]["key"] is not None
    assert "DATA_NO_ACTIVITY" not in met(366).codes(coverage={"window_days": 400.0})


def test_data_unlinked_activity_when_no_activity_names_a_contact() -> None:
    s = Scenario("S").user("u1").contact("c1", "decision_maker", "vp")
    for week in range(10):
        s.meet("u1", "", 3 + 7 * week, kind="call")
    account = s.account()
    assert {f["code"] for f in account["findings"]} == {"DATA_UNLINKED_ACTIVITY"}
    assert "none of its 10 activities in 365 days names a contact" in account["findings"][0]["message"]
    assert not _alarms(s.codes())
    linked = s.meet("u1", "c1", 2)
    assert "DATA_UNLINKED_ACTIVITY" not in linked.codes()
    assert linked.account()["scores"]["key"] is not None


def test_data_unlinked_activity_when_no_activity_names_our_people() -> None:
    s = Scenario("S").user("u1").contact("c1", "decision_maker", "vp").meet("", "c1", 3)
    finding = s.finding("DATA_UNLINKED_ACTIVITY")
    assert finding and "names one of our people" in finding["message"]
    assert "DATA_UNLINKED_ACTIVITY" not in s.meet("u1", "c1", 4).codes()


def test_data_unclassified_contacts_leaves_key_and_broad_unscored() -> None:
    def team(seniority: str | None) -> Scenario:
        s = Scenario("S").user("u1").user("u2", "SR")
        s.contact("c1", None, seniority, None, title=None).contact("c2", None, None, None, title=None)
        for week in range(8):
            s.meet("u1;u2", "c1;c2", 2 + 7 * week)
        return s
    blank = team(None).account()
    assert blank["scores"]["key"] is None and blank["scores"]["broad"] is None
    assert blank["scores"]["org"] is not None and blank["scores"]["health"] is not None
    assert blank["score_evidence"]["health"]["without_evidence"] == ["broad", "key"]
    codes = {f["code"] for f in blank["findings"]}
    assert "DATA_UNCLASSIFIED_CONTACTS" in codes and not {c for c in codes if c.startswith(("KEY_", "BROAD_"))}
    assert "ORG_NO_EXECUTIVE_LINK" in codes           # the organisational layer still judges
    described = team("vp").account()
    assert described["scores"]["key"] is not None and described["scores"]["broad"] is not None
    assert "DATA_UNCLASSIFIED_CONTACTS" not in {f["code"] for f in described["findings"]}


def test_data_quality_yields_to_a_data_gap() -> None:
    s = Scenario("S").user("u1").contact("c1", None, None, None, title=None).meet("u1", "c1", 3)
    codes = s.codes()
    assert "DATA_UNCLASSIFIED_CONTACTS" in codes and "DATA_QUALITY" not in codes
