"""OpportunityCompetitor and Case from the Salesforce emulator through the real
simple-salesforce: stored as competitors and support cases, read incrementally by
SystemModstamp like every object, and turned into the review's signals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner, Result

from crmlink import Competitor, SupportCase
from crmlink.cli import cli
from crmlink.core.store import Store
from crmlink.testing.salesforce_emulator import SalesforceEmulator


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as emulator:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)
        yield emulator


def sync(emu: SalesforceEmulator) -> Result:
    result = CliRunner().invoke(cli, ["sync", "salesforce", "--instance-url", emu.instance_url,
                                      "--session-id", emu.session_id])
    assert result.exit_code == 0, result.output
    return result


def counts(result: Result) -> dict[str, list[int]]:
    rows = re.findall(r"^\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", result.stdout, re.M)
    return {name: [int(n) for n in nums] for name, *nums in rows}


def seed(emu: SalesforceEmulator) -> dict[str, str]:
    account = emu.insert("Account", {"Name": "Acme Mining"})
    contact = emu.insert("Contact", {"AccountId": account, "LastName": "Ng", "Title": "CIO"})
    day = emu.now.date().isoformat()
    won = emu.insert("Opportunity", {"AccountId": account, "Name": "Won", "StageName": "Closed Won", "CloseDate": day})
    open_ = emu.insert("Opportunity", {"AccountId": account, "Name": "Open", "StageName": "Prospecting",
                                       "CloseDate": day})
    rival = emu.insert("OpportunityCompetitor", {"OpportunityId": won, "CompetitorName": " Rival  Inc. ",
                                                 "Strengths": "price", "Weaknesses": "no local support"})
    newco = emu.insert("OpportunityCompetitor", {"OpportunityId": open_, "CompetitorName": "Newco"})
    escalated = emu.insert("Case", {"AccountId": account, "ContactId": contact, "Subject": "Outage",
                                    "Status": "Escalated", "Priority": "High", "IsEscalated": True,
                                    "Type": "Complaint"})
    question = emu.insert("Case", {"ContactId": contact, "Subject": "How to", "Status": "Closed",
                                   "Type": "Question"})
    return {"account": account, "won": won, "open": open_, "rival": rival, "newco": newco,
            "escalated": escalated, "question": question}


def test_competitors_and_cases_read_incrementally_and_signalled(emu: SalesforceEmulator) -> None:
    ids = seed(emu)
    got = counts(sync(emu))
    assert got["competitors"][0] == 2 and got["support_cases"][0] == 2
    store = Store()
    competitors = {c.remote_id: c for c in store.records_of(Competitor)}
    assert competitors[ids["rival"]].name == "Rival Inc"
    assert (competitors[ids["rival"]].opportunity_id, competitors[ids["rival"]].strengths,
            competitors[ids["rival"]].weaknesses) == (ids["won"], "price", "no local support")
    cases = {c.remote_id: c for c in store.records_of(SupportCase)}
    outage, question = cases[ids["escalated"]], cases[ids["question"]]
    assert (outage.account_id, outage.escalated, outage.type, outage.priority, outage.status) == (
        ids["account"], True, "complaint", "High", "Escalated")
    assert outage.opened_at is not None and outage.closed_at is None and outage.is_closed is False
    assert question.account_id == ids["account"]  # Salesforce fills it from the contact
    assert question.is_closed is True and question.closed_at is not None and question.type == "question"

    emu.advance(3600)
    emu.update("Case", ids["escalated"], {"Status": "Closed"})
    emu.delete("OpportunityCompetitor", ids["newco"])
    emu.insert("OpportunityCompetitor", {"OpportunityId": ids["open"], "CompetitorName": "Acme Corp"})
    emu.reset_log()
    got = counts(sync(emu))
    assert got["support_cases"][0] <= 2 and got["competitors"][0] <= 3  # the changes, and the rows at the checkpoint
    soql = [r.soql for r in emu.requests if r.soql and "FROM Case" in r.soql]
    assert soql and "SystemModstamp >= " in soql[0] and "IsEscalated" in soql[0]
    assert any(r.soql and "FROM OpportunityCompetitor" in r.soql and "SystemModstamp >= " in r.soql
               for r in emu.requests)
    closed = next(c for c in store.records_of(SupportCase) if c.remote_id == ids["escalated"])
    assert closed.is_closed is True and closed.closed_at is not None
    names = sorted(c.name for c in store.records_of(Competitor))
    assert names == ["Acme Corp", "Rival Inc"]  # Newco was deleted

    day = emu.now.date()
    result = CliRunner().invoke(cli, ["review", "--period", f"{day - timedelta(days=30)}..{day}",
                                      "--as-of", day.isoformat(), "--format", "json"])
    assert result.exit_code == 0, result.output
    signals = json.loads(result.stdout)["signals"]
    [gid] = [g for g in signals if g.endswith(":" + ids["account"])]
    kinds = {s["kind"]: s for s in signals[gid]}
    assert set(kinds["competitor"]["evidence"]["competitors"]) == {"Acme Corp", "Rival Inc"}
    assert kinds["competitor"]["evidence"]["competitors"]["Rival Inc"]["won_against"] == [ids["won"]]
    assert kinds["satisfaction"]["evidence"]["complaints"] == [ids["escalated"]]
    assert kinds["satisfaction"]["evidence"]["open_escalations"] == []  # closed before the period's end
