"""Real Salesforce sample data (tests/data/realdata/README.md: trailheadapps repositories,
CC0) synced through the emulator and tagged: every standard stage as the default map
says, the non-standard ones ("Closed/Won", "Assigned dynamically") by the stage's flags or
probability, or reported as unmapped; never guessed silently."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.analysis.config import DEFAULTS
from crmlink.core.store import Store
from crmlink.plugins.ltc import DEFAULT_MAP, map_stage
from crmlink.testing.salesforce_emulator import SalesforceEmulator

REALDATA = Path(__file__).parent / "data" / "realdata"
LEADS = REALDATA / "sf_easy_spaces_lwc" / "Leads.json"
PLANS = ("sf_apex_recipes", "sf_lwc_recipes", "sf_ebikes_lwc", "sf_easy_spaces_lwc")
STANDARD = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
            "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost")


def stage_names() -> set[str]:
    names = set()
    for plan in PLANS:
        for path in (REALDATA / plan).glob("*pportunit*.json"):
            records = json.loads(path.read_text(encoding="utf-8-sig"))["records"]
            names |= {r["StageName"] for r in records}
    return names


def odd_in_files() -> int:
    return sum(1 for plan in PLANS for path in (REALDATA / plan).glob("*pportunit*.json")
               for r in json.loads(path.read_text(encoding="utf-8-sig"))["records"] if r["StageName"] not in STANDARD)


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
        for plan in PLANS:
            emu.seed_plan(REALDATA / plan)
        emu.seed_tree_json(LEADS)  # not in easy-spaces' data plan
        result = CliRunner().invoke(cli, ["sync", "salesforce", "--instance-url", emu.instance_url,
                                          "--session-id", emu.session_id])
        assert result.exit_code == 0, result.output
        yield emu


def ltc_json() -> dict:
    result = CliRunner().invoke(cli, ["ltc", "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_samples_hold_every_standard_stage_and_the_two_odd_ones() -> None:
    names = stage_names()
    assert set(STANDARD) <= names
    assert names - set(STANDARD) == {"Closed/Won", "Assigned dynamically"}


def test_real_stage_names_are_tagged_by_rule_never_guessed(synced: SalesforceEmulator) -> None:
    store = Store()
    stages = {s.remote_id: s for s in store.records("stage")}
    opportunities = list(store.records("opportunity"))
    assert {o.stage_label for o in opportunities} == stage_names()
    for opp in opportunities:
        got, rule = map_stage(opp, stages.get(opp.stage_id or ""), DEFAULTS["ltc"])
        if opp.stage_label in STANDARD:
            assert (got, rule) == (DEFAULT_MAP[opp.stage_label.lower()], "default"), opp.stage_label
        else:
            # no stage metadata for these names: only the deal's own flags or probability may decide
            assert rule in ("flags", "probability", "none"), opp.stage_label
            assert (got == "unmapped") == (rule == "none")
    doc = ltc_json()
    odd = [o for o in doc["opportunities"] if o["stage"] not in STANDARD]
    assert len(odd) == sum(1 for o in opportunities if o.stage_label not in STANDARD) == odd_in_files()
    for opp in odd:
        if opp["ltc_stage"] == "unmapped":
            assert "LTC_STAGE_UNMAPPED" in {f["code"] for f in opp["findings"]}
            assert opp["remote_id"] in doc["funnel"]["unmapped"]
    assert sorted(doc["funnel"]["unmapped"]) == sorted(o["remote_id"] for o in odd if o["ltc_stage"] == "unmapped")


def test_real_leads_are_in_the_lead_stage_and_the_funnel(synced: SalesforceEmulator) -> None:
    seeded = json.loads(LEADS.read_text(encoding="utf-8-sig"))
    doc = ltc_json()
    assert len(doc["leads"]) == len(seeded["records"]) == len(synced.records("Lead"))
    assert {lead["ltc_stage"] for lead in doc["leads"]} == {"lead"}
    assert {lead["ltc_phase"] for lead in doc["leads"]} == {"manage_leads"}
    open_leads = sum(1 for r in synced.records("Lead") if not r["IsConverted"])
    assert doc["funnel"]["stages"]["lead"]["count"] == doc["funnel"]["leads"]["open"] == open_leads


def test_a_converted_lead_is_linked_to_its_opportunity(synced: SalesforceEmulator) -> None:
    lead = synced.records("Lead")[0]["Id"]
    opp = synced.records("Opportunity")[0]["Id"]
    synced.update("Lead", lead, {"Status": "Closed - Converted", "IsConverted": True,
                                 "ConvertedOpportunityId": opp})
    result = CliRunner().invoke(cli, ["sync", "salesforce", "--instance-url", synced.instance_url,
                                      "--session-id", synced.session_id])
    assert result.exit_code == 0, result.output
    doc = ltc_json()
    row = next(r for r in doc["leads"] if r["remote_id"] == lead)
    assert row["outcome"] == "converted" and row["converted_opportunity_id"] == f"salesforce:{opp}"
    assert doc["funnel"]["leads"]["converted"] == 1
    assert doc["funnel"]["conversion"]["lead_to_opportunity"] == round(1 / len(doc["leads"]), 3)
