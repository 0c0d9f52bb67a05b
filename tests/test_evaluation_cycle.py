"""The evaluation cycle over a generated two-year history (tests/two_years.py): quarterly
saved audits show the planted decline and recovery, diff lists exactly the planted
changes with their reasons, every report says what changed, and the period review
judges expectations met, missed and exceeded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from crmlink import Signal, hookimpl
from crmlink.core.errors import ConfigError
from crmlink.core.evaluation.period import parse_period
from crmlink.core.store import Store
from tests.saved_store import as_json, crmlink
from tests.two_years import QUARTER_ENDS, write


def quarter(day: Any) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('two-years') / 'store.db'}"
    write(url)
    for day in QUARTER_ENDS:
        crmlink("audit", "--db", url, "--as-of", day.isoformat(), "--label", quarter(day))
    return url


def health(url: str, account: str) -> list[float | None]:
    return [row["account"]["health"] for row in as_json("history", account, "--db", url)]


def test_quarterly_audits_show_the_planted_decline_and_recovery(url: str) -> None:
    dip, steady = health(url, "DIP"), health(url, "STEADY")
    assert len(dip) == len(steady) == 8
    assert max(steady) - min(steady) < 2, steady                 # nothing happened to STEADY
    assert dip[0] == dip[1] == steady[1]                          # DIP as STEADY until the silence
    assert dip[2] < dip[1] - 20 and dip[3] < dip[2] - 10          # 2025-Q3 and Q4: declining
    assert all(abs(h - steady[i + 4]) < 2 for i, h in enumerate(dip[4:]))  # 2026: recovered
    assert health(url, "LATE")[:4] == [None] * 4 and health(url, "LATE")[4] > 40


def test_diff_lists_exactly_the_planted_decline(url: str) -> None:
    diff = as_json("diff", "--db", url, "--since", "2025-Q2", "--until", "2025-Q3")
    assert set(diff) >= {"new", "resolved", "persisting", "moved"}
    assert [(f["remote_id"], f["code"], f["severity"]) for f in diff["new"]] == [
        ("DIP", "KEY_DECISION_MAKER_COLD", "high"), ("DIP", "RELATIONSHIP_DECLINING", "high")]
    assert diff["resolved"] == []
    moved = [(m["remote_id"], m["field"]) for m in diff["moved"]]
    assert moved == [("DIP", "health"), ("DIP", "key")]
    first = diff["moved"][0]
    assert first["before"] > first["after"] and first["change"] == pytest.approx(first["after"] - first["before"], abs=0.1)
    assert {r["contact"] for r in first["relationships"]} == {"DIP-dm", "DIP-eng", "DIP-ops"}
    assert first["reason"].startswith("cooled: ") and "grew" not in first["reason"]
    persisting = {(f["remote_id"], f["code"]): f for f in diff["persisting"]}
    assert persisting[("STEADY", "KEY_SINGLE_HOLDER")]["since"] == "2025-Q1"
    assert all(f["remote_id"] in ("DIP", "STEADY", "LATE", None) for f in diff["persisting"])


def test_diff_lists_exactly_the_planted_recovery(url: str) -> None:
    diff = as_json("diff", "--db", url, "--since", "2025-Q4", "--until", "2026-Q1")
    assert {f["remote_id"] for f in diff["new"] + diff["resolved"]} <= {"DIP", "LATE"}
    assert ("DIP", "KEY_DECISION_MAKER_COLD") in {(f["remote_id"], f["code"]) for f in diff["resolved"]}
    assert ("LATE", "DATA_NO_ACTIVITY") in {(f["remote_id"], f["code"]) for f in diff["resolved"]}
    assert {m["remote_id"] for m in diff["moved"]} == {"DIP", "LATE"}
    dip = {m["field"]: m for m in diff["moved"] if m["remote_id"] == "DIP"}
    assert dip["health"]["change"] > 30 and dip["level"]["after"] == "friendship"
    assert dip["health"]["reason"].startswith("grew: ")
    sizes = [m["size"] for m in diff["moved"]]
    assert sizes == sorted(sizes, reverse=True)


def test_diff_defaults_and_dates(url: str) -> None:
    latest = as_json("diff", "--db", url)
    assert (latest["since"]["label"], latest["until"]["label"]) == ("2026-Q3", "2026-Q4")
    by_date = as_json("diff", "--db", url, "--since", "2025-08-15", "--until", "2025-09-30")
    assert by_date["since"]["label"] == "2025-Q2"     # the latest saved as of that day
    table = crmlink("diff", "--db", url, "--since", "2025-Q2", "--until", "2025-Q3").stdout
    assert "What changed since 2025-Q2 (as of 2025-06-30) to 2025-Q3 (as of 2025-09-30)" in table
    assert re.search(r"Dip Energy\s+health 46 → 17 \(-29\)\s+\(cooled: ", table)
    markdown = crmlink("diff", "--db", url, "--since", "2025-Q2", "--until", "2025-Q3", "--format", "markdown").stdout
    assert markdown.startswith("# What changed since 2025-Q2") and "| Dip Energy | health 46 → 17 (-29) |" in markdown


def test_diff_errors_say_what_to_do(url: str, tmp_path: Path) -> None:
    unknown = crmlink("diff", "--db", url, "--since", "2024-Q9", ok=False)
    assert unknown.exit_code == 2 and "no saved audit is labelled '2024-Q9'" in unknown.stderr
    backwards = crmlink("diff", "--db", url, "--since", "2026-Q1", "--until", "2025-Q1", ok=False)
    assert backwards.exit_code == 2 and "swap them" in backwards.stderr
    Store(f"sqlite:///{tmp_path / 'empty.db'}")  # a store with no audit saved
    empty = crmlink("diff", "--db", f"sqlite:///{tmp_path / 'empty.db'}", ok=False)
    assert empty.exit_code == 2 and "run crmlink audit --save" in empty.stderr
    missing = crmlink("diff", "--db", f"sqlite:///{tmp_path / 'missing.db'}", ok=False)
    assert missing.exit_code == 6 and "there is no store at" in missing.stderr
    assert not (tmp_path / "missing.db").exists()


def test_every_report_says_what_changed_since_the_last_saved_audit(url: str, tmp_path: Path) -> None:
    table = crmlink("audit", "--db", url, "--as-of", "2025-09-30").stdout
    assert "What changed since 2025-Q2 (as of 2025-06-30) to 2025-09-30: 2 new" in table
    markdown = crmlink("audit", "--db", url, "--as-of", "2025-09-30", "--format", "markdown").stdout
    assert "## What changed since 2025-Q2 (as of 2025-06-30)" in markdown
    assert "- [high] KEY_DECISION_MAKER_COLD: Dip Energy (DIP)" in markdown
    out = tmp_path / "report.html"
    crmlink("audit", "--db", url, "--as-of", "2025-09-30", "--format", "html", "--output", str(out))
    page = out.read_text(encoding="utf-8")
    assert 'id="changes"' in page and "health 46 → 17 (-29)" in page
    first = crmlink("audit", "--db", url, "--as-of", "2025-03-31").stdout
    assert "What changed" not in first        # nothing saved before the first quarter


def test_html_trends_come_from_the_saved_audits(url: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    crmlink("audit", "--db", url, "--as-of", "2026-02-15", "--format", "html", "--output", str(out))
    page = out.read_text(encoding="utf-8")
    for day in [d.isoformat() for d in QUARTER_ENDS[:4]] + ["2026-02-15"]:
        assert page.count(f'<th scope="row">{day}</th>') == 3, day
    assert '<th scope="row">2025-11-30</th>' not in page   # a month end: the monthly history was replaced


def test_review_with_expectations_met_missed_and_exceeded(url: str, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text("remote_id,stage,level,health,period\n"
                    "STEADY,community_of_interest,,40,2026\n"
                    "DIP,,friendship,45,\n"
                    "LATE,,,20,2026\n"
                    "LATE,,,99,2027\n", encoding="utf-8")
    config = tmp_path / "crmlink.toml"
    config.write_text('[expectations.DIP]\nhealth = 90\ntier = "A"\n', encoding="utf-8")
    review = as_json("review", "--db", url, "--period", "2026", "--as-of", "2026-12-31",
                     "--expectations", str(plan), "--config", str(config))
    assert set(review) >= {"accounts", "rising", "declining", "tasks"}
    accounts = {a["remote_id"]: a for a in review["accounts"]}
    assert set(accounts["DIP"]) >= {"remote_id", "expected", "actual", "met"}
    dip, steady, late = accounts["DIP"], accounts["STEADY"], accounts["LATE"]
    assert dip["expected"] == {"tier": "A", "level": "friendship", "health": 45.0}   # the CSV wins over config
    assert dip["origin"] == {"tier": "config", "level": "csv", "health": "csv"}
    assert (dip["outcome"], dip["met"], dip["fields"]) == ("met", True, {"tier": "met", "level": "met", "health": "met"})
    assert (steady["outcome"], steady["met"], steady["fields"]["stage"]) == ("missed", False, "missed")
    assert (late["outcome"], late["met"], late["expected"]) == ("exceeded", True, {"health": 20.0})
    assert review["portfolio"]["met"] == review["portfolio"]["missed"] == review["portfolio"]["exceeded"] == 1
    assert [t["remote_id"] for t in review["rising"]] == ["LATE", "DIP"]
    assert review["declining"] == []
    tasks = review["tasks"]
    assert 1 <= len(tasks) <= 10 and tasks[0]["code"] == "EXPECTATION_MISSED" and tasks[0]["remote_id"] == "STEADY"
    assert tasks[0]["action"].startswith("To reach community of interest: 2 won deals in 730 days")
    assert all(t["action"] and t["evidence"] and t["remote_id"] for t in tasks)
    text = crmlink("review", "--db", url, "--period", "2026", "--as-of", "2026-12-31", "--expectations", str(plan),
                   "--config", str(config), "--format", "markdown").stdout
    assert text.startswith("# Review of 2026 (2026-01-01 to 2026-12-31), as of 2026-12-31")
    assert "- [missed] Steady Telecom (STEADY): stage community of interest→perceptual recognition (missed)" in text
    assert "1. [high] Steady Telecom — EXPECTATION_MISSED" in text


def test_a_review_without_enough_saved_audits_computes_both_ends(url: str) -> None:
    review = as_json("review", "--db", url, "--period", "2025-08", "--as-of", "2026-12-31")
    assert review["basis"].startswith("audits computed as of 2025-07-31 and 2025-08-31")
    assert [t["remote_id"] for t in review["declining"]] == ["DIP"]
    assert "cooled: " in review["declining"][0]["reason"]


class Complaints:
    @hookimpl
    def review_signals(self, store: Any, start: Any, end: Any) -> list[Signal]:
        return [Signal("crm:LATE", "satisfaction", -0.6, "3 open escalations at Late Logistics",
                       {"cases": ["C1", "C2", "C3"]})]


def test_a_satisfaction_signal_holds_back_a_rising_account(url: str) -> None:
    from crmlink.core.analysis.config import load_config
    from crmlink.core.evaluation.review import run_review
    from crmlink.core.host import get_plugin_host

    host = get_plugin_host(load_entrypoints=False)
    host.register("complaints", Complaints())
    review = run_review(Store(url), host, load_config(None), parse_period("2026"), QUARTER_ENDS[-1]).to_json()
    assert [t["remote_id"] for t in review["rising"]] == ["DIP"]
    assert [t["remote_id"] for t in review["held_back"]] == ["LATE"]
    assert review["held_back"][0]["signals"][0]["message"] == "3 open escalations at Late Logistics"
    assert review["signals"]["crm:LATE"][0]["evidence"] == {"cases": ["C1", "C2", "C3"]}


@pytest.mark.parametrize("text, start, end", [
    ("2026", "2026-01-01", "2026-12-31"), ("2026-Q3", "2026-07-01", "2026-09-30"),
    ("2026-h1", "2026-01-01", "2026-06-30"), ("2026-02", "2026-02-01", "2026-02-28"),
    ("2026-03-15..2026-04-14", "2026-03-15", "2026-04-14")])
def test_periods(text: str, start: str, end: str) -> None:
    period = parse_period(text)
    assert (period.start.isoformat(), period.end.isoformat()) == (start, end)


@pytest.mark.parametrize("text", ["26", "2026-Q5", "2026-13", "2026-05-01..2026-04-01", "last year"])
def test_bad_periods_name_the_forms(text: str) -> None:
    with pytest.raises(ConfigError, match=r"2026-Q3|START\.\.END"):
        parse_period(text)


def test_bad_expectations_name_file_line_and_column(url: str, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text("remote_id,stage\nSTEADY,best friends\n", encoding="utf-8")
    bad = crmlink("review", "--db", url, "--period", "2026", "--expectations", str(plan), ok=False)
    assert bad.exit_code == 3
    assert f"{plan}, line 2, column 2 (stage): 'best friends' is not one of" in bad.stderr
    plan.write_text("remote_id,health\nNOBODY,50\n", encoding="utf-8")
    assert "the store has no account 'NOBODY'" in crmlink("review", "--db", url, "--period", "2026",
                                                           "--expectations", str(plan), ok=False).stderr
    config = tmp_path / "crmlink.toml"
    config.write_text("[expectations.DIP]\nhealth = 120\n", encoding="utf-8")
    wrong = crmlink("review", "--db", url, "--period", "2026", "--config", str(config), ok=False)
    assert wrong.exit_code == 2 and "expectations.DIP.health: 120 is not a number from 0 to 100" in wrong.stderr


def test_expectations_from_a_crm_field(tmp_path: Path) -> None:
    from tests.saved_store import url_in
    from tests.saved_store import write as write_scenario
    from tests.scenario import healthy

    s = healthy()
    s.records[0].extra = {"Expected_Stage__c": "Community of interest", "expected_health": "95"}
    url = url_in(tmp_path)
    write_scenario(s, url)
    review = json.loads(crmlink("review", "--db", url, "--period", "2026-Q2", "--as-of", "2026-06-30",
                                "--format", "json").stdout)
    [account] = review["accounts"]
    assert account["expected"] == {"stage": "community_of_interest", "health": 95.0}
    assert account["origin"] == {"stage": "crm", "health": "crm"} and account["outcome"] == "missed"


def test_an_audit_of_one_source_compares_that_source_alone(tmp_path: Path) -> None:
    from tests.saved_store import url_in
    from tests.saved_store import write as write_scenario
    from tests.scenario import Scenario

    url = url_in(tmp_path)
    write(url)
    other = Scenario("S").user("x1").contact("y1", "decision_maker", "vp", "executive")   # findings of its own
    write_scenario(other, url, source="other")
    crmlink("audit", "--db", url, "--as-of", "2025-06-30", "--save")
    saved = as_json("history", "--db", url)[0]
    table = crmlink("audit", "--db", url, "--as-of", "2025-09-30", "--source", "crm").stdout
    changed = table[table.index("What changed"):table.index("\ntier ")]
    assert saved["findings"] > 0 and "new, 0 resolved," in changed
    assert "(DIP)" in changed and "Acme" not in changed       # the other source's findings are not resolved
