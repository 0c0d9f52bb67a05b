"""Competitors and support cases: read from CSV, stored, and turned into the review's
competitor and satisfaction signals (crmlink/plugins/signals.py); each rule on both
sides of its threshold, and a rising account with a bad satisfaction signal held back."""

from __future__ import annotations

import copy
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from crmlink import Competitor, Opportunity, SupportCase
from crmlink.core.analysis.config import DEFAULTS, load_config
from crmlink.core.store import Store
from crmlink.plugins.signals import (
    Window,
    competitor_signal,
    rivalries,
    satisfaction_signal,
    tallies,
)
from tests.saved_store import as_json, crmlink

ACCOUNTS = "id,name\nA1,Acme\nA2,Globex\n"
OPPORTUNITIES = ("id,account_id,name,created_at,is_closed,is_won,close_date\n"
                 "O0,A1,Old deal,2025-03-01,true,true,2025-06-01\n"
                 "O1,A1,Won deal,2026-02-01,true,true,2026-05-01\n"
                 "O2,A1,Lost deal,2026-03-01,true,false,2026-09-01\n"
                 "O3,A2,Open deal,2026-01-10,false,,\n")
COMPETITORS = ("opportunity_id,name,strengths,weaknesses\n"
               "O0,Rival Inc,,\n"
               "O1,\"Rival   Inc.\",,\n"
               "O2,Newco,price,no local support\n"
               "O3,RIVAL INC,,\n")
CASES = ("id,account_id,opened_at,closed_at,status,priority,escalated,type\n"
         "K1,A1,2026-02-01,,Escalated,High,true,Complaint\n"
         "K2,A1,2026-03-01,2026-03-05,Closed,Medium,false,complaint\n"
         "K3,A1,2026-04-01,,New,Low,no,complaint\n"
         "K4,A1,2025-05-01,2025-05-03,Closed,Low,,complaint\n"
         "K5,A2,2026-02-01,2026-02-02,Closed,Low,,Question\n")


def utc(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc)


def settings(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(DEFAULTS["signals"]) | changes


YEAR = Window.of(date(2026, 1, 1), date(2026, 12, 31))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    for name, text in (("accounts", ACCOUNTS), ("opportunities", OPPORTUNITIES), ("competitors", COMPETITORS),
                       ("cases", CASES)):
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def test_csv_competitors_and_cases_are_stored_and_signalled(folder: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    crmlink("sync", "csv", str(folder), "--db", url)
    store = Store(url)
    competitors = {c.remote_id: c for c in store.records_of(Competitor)}
    assert competitors["O1:Rival Inc"].name == "Rival Inc"
    assert (competitors["O2:Newco"].strengths, competitors["O2:Newco"].weaknesses) == ("price", "no local support")
    cases = {c.remote_id: c for c in store.records_of(SupportCase)}
    assert (cases["K1"].escalated, cases["K1"].type, cases["K1"].priority) == (True, "complaint", "High")
    assert cases["K5"].type == "question" and cases["K2"].closed_at == utc("2026-03-05")

    review = as_json("review", "--db", url, "--period", "2026", "--as-of", "2026-12-31")
    [source] = store.sources()
    signals = {(gid, s["kind"]): s for gid, found in review["signals"].items() for s in found}
    a1 = signals[(f"{source}:A1", "competitor")]
    assert a1["value"] == -0.5  # one won, one lost, Newco new this period
    assert a1["evidence"]["new"] == ["Newco"]
    assert a1["evidence"]["competitors"]["Rival Inc"] == {"deals": ["O1"], "won_against": ["O1"], "lost_against": []}
    assert a1["evidence"]["competitors"]["Newco"]["lost_against"] == ["O2"]
    assert "won 1 against Rival Inc; lost 1 against Newco; new this period: Newco" in a1["message"]
    a2 = signals[(f"{source}:A2", "competitor")]
    assert a2["evidence"]["new"] == ["RIVAL INC"] and a2["value"] == -0.5
    sat = signals[(f"{source}:A1", "satisfaction")]
    assert sat["value"] == -0.7  # one open escalation (-0.3), complaints 3 against 1 (-0.4)
    assert sat["evidence"]["open_escalations"] == ["K1"] and sat["evidence"]["trend"] == "rising"
    assert sat["evidence"]["complaints"] == ["K1", "K2", "K3"] and sat["evidence"]["complaints_before"] == ["K4"]
    assert signals[(f"{source}:A2", "satisfaction")]["value"] == 0.0

    text = crmlink("review", "--db", url, "--period", "2026", "--as-of", "2026-12-31", "--format", "markdown").stdout
    assert "## Signals: competitors and satisfaction" in text
    assert "- [satisfaction -0.70] 3 case(s) opened at Acme; 1 escalation(s) open; complaints rising" in text


def case(rid: str, opened: str, **fields: Any) -> SupportCase:
    return SupportCase(remote_id=rid, account_id="A", opened_at=opened, **fields)


@pytest.mark.parametrize("threshold, negative", [(1, True), (2, False)])
def test_open_escalations_on_both_sides_of_the_threshold(threshold: int, negative: bool) -> None:
    cases = [case("E1", "2026-06-01", escalated=True),                          # open at the end
             case("E2", "2026-06-01", escalated=True, closed_at="2026-12-01"),  # closed in the period
             case("E3", "2026-06-01", escalated=True, is_closed=True)]          # closed, no date
    rules = settings(escalations=threshold)
    [(_, tally)] = tallies(cases, YEAR, rules).items()
    assert tally.escalated == ["E1"]
    signal = satisfaction_signal("s:A", "A", tally, rules)
    assert (signal.value < 0) is negative and signal.value == (-0.3 if negative else 0.0)


def test_an_escalation_closed_after_the_period_was_open_at_its_end() -> None:
    [(_, tally)] = tallies([case("E1", "2026-06-01", escalated=True, closed_at="2027-01-02")], YEAR,
                           settings()).items()
    assert tally.escalated == ["E1"]


@pytest.mark.parametrize("now, before, trend", [(2, 0, "rising"), (1, 0, "steady"), (0, 1, "steady"),
                                               (0, 2, "falling")])
def test_complaint_trend_on_both_sides_of_the_rise(now: int, before: int, trend: str) -> None:
    cases = ([case(f"N{i}", "2026-03-01", type="Complaint") for i in range(now)]
             + [case(f"B{i}", "2025-03-01", type="complaint") for i in range(before)]
             + [case("Q", "2026-03-01", type="question"), case("OLD", "2024-12-31", type="complaint")])
    rules = settings()
    [(_, tally)] = tallies(cases, YEAR, rules).items()
    signal = satisfaction_signal("s:A", "A", tally, rules)
    assert signal.evidence["trend"] == trend
    assert signal.value == {"rising": -0.4, "steady": 0.0, "falling": 0.4}[trend]


@pytest.mark.parametrize("first_deal, new", [("2025-12-31", False), ("2026-01-01", True)])
def test_a_competitor_is_new_when_first_seen_in_the_period(first_deal: str, new: bool) -> None:
    deals = {"D1": Opportunity(remote_id="D1", account_id="A", created_at=first_deal, is_closed=False),
             "D2": Opportunity(remote_id="D2", account_id="A", created_at="2026-06-01", is_closed=False)}
    competitors = [Competitor(remote_id="c1", opportunity_id="D1", name="Acme"),
                   Competitor(remote_id="c2", opportunity_id="D2", name="ACME")]
    [(_, rivalry)] = rivalries(deals, competitors, YEAR).items()
    signal = competitor_signal("s:A", "A", rivalry, YEAR, settings())
    assert signal.evidence["new"] == (["Acme"] if new else [])
    assert signal.value == (-0.5 if new else 0.0)


def test_deals_won_and_lost_against_competitors_move_the_signal() -> None:
    deals = {d: Opportunity(remote_id=d, account_id="A", created_at="2025-01-01", is_closed=True, is_won=won,
                            close_date=closed)
             for d, won, closed in (("W1", True, "2026-02-01"), ("W2", True, "2026-03-01"),
                                    ("L1", False, "2026-04-01"), ("OLD", False, "2025-06-01"))}
    competitors = [Competitor(remote_id=d, opportunity_id=d, name="Acme") for d in deals]
    [(_, rivalry)] = rivalries(deals, competitors, YEAR).items()
    signal = competitor_signal("s:A", "A", rivalry, YEAR, settings())
    assert signal.value == 0.25  # two won, one lost; OLD closed before the period
    assert signal.evidence["competitors"]["Acme"] == {"deals": ["L1", "W1", "W2"], "won_against": ["W1", "W2"],
                                                      "lost_against": ["L1"]}


@pytest.mark.parametrize("threshold, held", [(1, True), (2, False)])
def test_a_rising_account_with_a_bad_satisfaction_signal_is_held_back(tmp_path: Path, threshold: int,
                                                                      held: bool) -> None:
    from crmlink.core.evaluation.period import parse_period
    from crmlink.core.evaluation.review import run_review
    from crmlink.core.host import get_plugin_host
    from tests.two_years import write

    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = write(url)
    escalation = SupportCase(remote_id="K1", source="crm", account_id="LATE", opened_at="2026-10-01",
                             escalated=True, type="complaint", status="Escalated")
    with store.transaction() as conn:
        store.upsert(conn, [escalation])
    config = tmp_path / "crmlink.toml"
    config.write_text(f"[signals]\nescalations = {threshold}\n", encoding="utf-8")
    review = run_review(store, get_plugin_host(load_entrypoints=False), load_config(str(config)),
                        parse_period("2026"), date(2026, 12, 31)).to_json()
    rising = [t["remote_id"] for t in review["rising"]]
    held_back = [t["remote_id"] for t in review["held_back"]]
    assert ("LATE" in held_back, "LATE" in rising) == (held, not held)
    assert review["signals"]["crm:LATE"][0]["evidence"]["open_escalations"] == ["K1"]
