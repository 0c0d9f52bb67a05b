"""crmlink push --tasks: next actions as Salesforce Tasks, against the emulator."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner, Result

from crmlink import URGENT_SEVERITIES
from crmlink.cli import cli
from crmlink.testing.salesforce_emulator import (
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    Fault,
    SalesforceEmulator,
)
from tests.test_salesforce_connector import seed

KEY = "crmlink_Task_Key__c"


@pytest.fixture
def org(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SalesforceEmulator, dict[str, list[str]]]]:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
        ids = seed(emu)
        assert sync(emu).exit_code == 0
        assert push(emu, "--setup").exit_code == 0
        yield emu, ids


def flags(emu: SalesforceEmulator) -> list[str]:
    return ["--login-url", emu.instance_url, "--username", DEFAULT_USERNAME,
            "--password", DEFAULT_PASSWORD, "--security-token", DEFAULT_TOKEN]


def sync(emu: SalesforceEmulator) -> Result:
    return CliRunner().invoke(cli, ["sync", "salesforce", *flags(emu)])


def push(emu: SalesforceEmulator, *args: str) -> Result:
    return CliRunner().invoke(cli, ["push", "salesforce", *flags(emu), *args])


def plan(emu: SalesforceEmulator) -> dict:
    result = push(emu, "--tasks", "high", "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ours(emu: SalesforceEmulator) -> dict[str, dict]:
    """crmlink's tasks by key."""
    return {t[KEY]: t for t in emu.records("Task", include_deleted=False) if t.get(KEY)}


def test_high_findings_become_tasks_once(org: tuple[SalesforceEmulator, dict]) -> None:
    emu, _ = org
    planned = plan(emu)["tasks"]
    assert planned and all(t["action"] == "create" for t in planned)
    audit = json.loads(CliRunner().invoke(cli, ["audit", "--format", "json"]).stdout)
    high = {f"{f['code']}:{o['remote_id']}" for o in audit["opportunities"] for f in o["findings"]
            if f["severity"] in ("high", "critical")}
    high |= {f"{f['code']}:{a['remote_id']}" for a in audit["accounts"] for f in a["findings"]
             if f["severity"] in ("high", "critical")}
    assert {t["key"] for t in planned} == high
    emu.reset_log()
    result = push(emu, "--tasks", "high", "--apply")
    assert result.exit_code == 0, result.output
    tasks = ours(emu)
    assert set(tasks) == high
    for spec in planned:
        task = tasks[spec["key"]]
        assert task["WhatId"] == spec["what"] and task["Status"] == "Not Started" and task["Priority"] == "High"
        account = emu.get("Account", spec["account"])
        assert account is not None and task["OwnerId"] == account["OwnerId"]
        code = spec["key"].split(":")[0]
        assert task["Subject"].startswith(code + ": ") and "Action: " in task["Description"]
    creates = [r for r in emu.requests if r.method == "POST" and r.path.endswith("composite/sobjects")]
    assert len(creates) == math.ceil(len(planned) / 200)
    # docs/push.md: the field push (1 login, 2 describes, its queries and PATCHes) + 1 describe of
    # Task + 1 query of crmlink's tasks + the creates
    field_push = [r for r in emu.requests if "Task" not in (r.soql or "") and "/Task/" not in r.path
                  and not (r.method == "POST" and "composite" in r.path)]
    task_part = [r for r in emu.requests if r not in field_push]
    assert len(task_part) == 1 + 1 + len(creates)
    # again: nothing to create, no write request
    emu.reset_log()
    assert plan(emu)["tasks"] == []
    again = push(emu, "--tasks", "high", "--apply")
    assert again.exit_code == 0 and "tasks: 0 created, 0 closed" in again.output
    assert not [r for r in emu.requests if r.method in ("POST", "PATCH") and "composite" in r.path]
    assert ours(emu).keys() == tasks.keys()


def test_only_urgent_findings_make_high_priority_tasks(org: tuple[SalesforceEmulator, dict]) -> None:
    """``--tasks low``: the tasks of high and critical findings (crmlink.URGENT_SEVERITIES)
    are High, every other one Normal."""
    emu, _ = org
    result = push(emu, "--tasks", "low", "--apply")
    assert result.exit_code == 0, result.output
    audit = json.loads(CliRunner().invoke(cli, ["audit", "--format", "json"]).stdout)
    severity = {f"{f['code']}:{r['remote_id']}": f["severity"]
                for r in [*audit["accounts"], *audit["opportunities"]] for f in r["findings"]}
    priorities = {key: task["Priority"] for key, task in ours(emu).items()}
    assert {severity[key] for key in priorities} >= {"high", "medium"}  # both kinds were pushed
    assert priorities == {key: "High" if severity[key] in URGENT_SEVERITIES else "Normal" for key in priorities}


def test_a_retitled_task_is_not_made_again_and_a_closed_one_not_reopened(org: tuple[SalesforceEmulator, dict]) -> None:
    emu, _ = org
    assert push(emu, "--tasks", "high", "--apply").exit_code == 0
    first, second = list(ours(emu).values())[:2]
    emu.update("Task", first["Id"], {"Subject": "Call the CFO about the renewal"})
    emu.update("Task", second["Id"], {"Status": "Completed"})
    assert plan(emu)["tasks"] == []
    assert push(emu, "--tasks", "high", "--apply").exit_code == 0
    after = ours(emu)
    assert len(after) == len([t for t in emu.records("Task") if t.get(KEY)])
    assert after[first[KEY]]["Subject"] == "Call the CFO about the renewal"
    assert after[second[KEY]]["Status"] == "Completed"


def _resolve_economic_buyer(emu: SalesforceEmulator, key: str) -> None:
    deal = key.split(":", 1)[1]
    opp = emu.get("Opportunity", deal)
    assert opp is not None
    contacts = [c for c in emu.records("Contact", include_deleted=False) if c["AccountId"] == opp["AccountId"]]
    contact = contacts[0] if contacts else emu.records("Contact")[0]
    emu.update("Contact", contact["Id"], {"Title": "Chief Financial Officer"})
    emu.insert("OpportunityContactRole", {"OpportunityId": deal, "ContactId": contact["Id"],
                                          "Role": "Economic Buyer", "IsPrimary": False})


def test_a_resolved_finding_closes_its_task_unless_a_person_changed_it(org: tuple[SalesforceEmulator, dict]) -> None:
    emu, _ = org
    assert push(emu, "--tasks", "high", "--apply").exit_code == 0
    keys = sorted(k for k in ours(emu) if k.startswith("LTC_NO_ECONOMIC_BUYER:"))
    assert len(keys) >= 2
    untouched, edited = keys[0], keys[1]
    emu.update("Task", ours(emu)[edited]["Id"], {"Subject": "Find the budget holder (Anna)"})
    for key in (untouched, edited):
        _resolve_economic_buyer(emu, key)
    assert sync(emu).exit_code == 0
    planned = plan(emu)["tasks"]
    assert [t["key"] for t in planned if t["action"] == "close"] == [untouched]
    result = push(emu, "--tasks", "high", "--apply")
    assert result.exit_code == 0, result.output
    assert "1 closed" in result.output
    after = ours(emu)
    assert after[untouched]["Status"] == "Completed"
    assert after[edited]["Status"] == "Not Started"
    assert plan(emu)["tasks"] == []


def test_an_inactive_owner_s_tasks_go_to_the_most_involved_active_team_member(
        org: tuple[SalesforceEmulator, dict]) -> None:
    emu, ids = org
    leaver = emu.add_user("leaver@acme.test", "pw", "", FirstName="Lee", LastName="Leaver", IsActive=False)
    planned = plan(emu)["tasks"]
    account = planned[0]["account"]
    emu.update("Account", account, {"OwnerId": leaver.user_id})
    assert sync(emu).exit_code == 0
    audit = json.loads(CliRunner().invoke(cli, ["audit", "--format", "json"]).stdout)
    team = next(a for a in audit["accounts"] if a["remote_id"] == account)["relationship_map"]["users"]
    active = [u for u in team if u["active"] and u["id"] != leaver.user_id]
    assert active  # the seeded reps hold relationships there
    result = push(emu, "--tasks", "high", "--apply")
    assert result.exit_code == 0, result.output
    mine = [t for t in ours(emu).values()
            if emu.get("Opportunity", t["WhatId"]) and emu.get("Opportunity", t["WhatId"])["AccountId"] == account]
    assert mine
    for task in mine:
        assert task["OwnerId"] == active[0]["id"]
        assert "Lee Leaver is inactive; assigned to" in task["Description"]
    assert "Lee Leaver is inactive" in result.output


def test_a_create_cut_off_after_salesforce_made_the_tasks_makes_none_twice(
        org: tuple[SalesforceEmulator, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    emu, _ = org
    monkeypatch.setenv("CRMLINK_RETRY_INITIAL", "0")
    planned = plan(emu)["tasks"]
    emu.add_fault(Fault.truncate(path_contains="composite/sobjects", method="POST"))
    result = push(emu, "--tasks", "high", "--apply")
    assert result.exit_code == 0, result.output
    assert len(ours(emu)) == len(planned) == len([t for t in emu.records("Task") if t.get(KEY)])
