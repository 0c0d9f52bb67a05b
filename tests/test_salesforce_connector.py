"""The Salesforce connector against the Salesforce emulator, through the real simple-salesforce.

The emulator runs in TLS mode with its CA in REQUESTS_CA_BUNDLE, so the connector is used
exactly as in production: no test-only transport, only ``--login-url`` for the login flows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from crmlink.core.sync import RetryPolicy, SyncEngine
from crmlink.plugins.salesforce import SalesforceConnector
from crmlink.testing.salesforce_emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    Fault,
    SalesforceEmulator,
)

APEX = Path(__file__).parent / "data" / "realdata" / "sf_apex_recipes"
PAGE = 200
OBJECTS = ("User", "Account", "Contact", "OpportunityStage", "Opportunity", "OpportunityContactRole",
           "OpportunityHistory", "Task", "Event", "Lead", "Contract", "Order", "OpportunityCompetitor", "Case")


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as emulator:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)
        for name in ("SALESFORCE_SESSION_ID", "SALESFORCE_USERNAME", "SALESFORCE_PASSWORD"):
            monkeypatch.delenv(name, raising=False)
        yield emulator


def seed(emu: SalesforceEmulator) -> dict[str, list[str]]:
    """apex-recipes plus generated users, activities with relations and contact roles."""
    emu.seed_plan(APEX)
    emu.add_field("User", "Team_Role__c", "string")
    emu.add_field("Account", "Tier__c", "string")
    emu.add_field("Contact", "Stance__c", "string")
    users = [emu.add_user(f"rep{i}@acme.test", "pw", "", Title=title, IsActive=True, Team_Role__c=role).user_id
             for i, (title, role) in enumerate([("Account Manager", "AR"), ("Solution Architect", "SR"),
                                                ("Delivery Lead", "FR")])]
    accounts = [r["Id"] for r in emu.records("Account")]
    emu.update("Account", accounts[0], {"Tier__c": "S"})
    contacts = [r for r in emu.records("Contact")]
    emu.update("Contact", contacts[0]["Id"], {"Stance__c": "supporter", "Title": "CFO"})
    opps = [r for r in emu.records("Opportunity")]
    day = (emu.now - timedelta(days=5)).date().isoformat()
    for i, opp in enumerate(opps[:10]):
        team = [c for c in contacts if c["AccountId"] == opp["AccountId"]] or contacts[:2]
        who = team[0]["Id"]
        emu.insert("OpportunityContactRole", {"OpportunityId": opp["Id"], "ContactId": who,
                                              "Role": "Decision Maker" if i % 2 else "Technical Buyer",
                                              "IsPrimary": True})
        task = emu.insert("Task", {"Subject": f"Call {i}", "WhoId": who, "WhatId": opp["Id"],
                                   "OwnerId": users[i % 3], "ActivityDate": day, "Status": "Completed",
                                   "Priority": "Normal", "TaskSubtype": "Call", "CallType": "Outbound"})
        if len(team) > 1:
            emu.insert("TaskRelation", {"TaskId": task, "RelationId": team[1]["Id"], "IsWhat": False})
        emu.insert("Event", {"Subject": f"Workshop {i}", "WhoId": who, "WhatId": opp["AccountId"],
                             "OwnerId": users[(i + 1) % 3], "StartDateTime": f"{day}T09:00:00Z",
                             "DurationInMinutes": 60, "IsAllDayEvent": False, "Type": "Meeting"})
    emu.update("Opportunity", opps[0]["Id"], {"StageName": "Negotiation/Review"})
    return {"users": users, "accounts": accounts, "contacts": [c["Id"] for c in contacts],
            "opps": [o["Id"] for o in opps]}


def sync(*args: str) -> Result:
    return CliRunner().invoke(cli, ["sync", "salesforce", "--page-size", str(PAGE), *args])


def direct(emu: SalesforceEmulator) -> list[str]:
    return ["--instance-url", emu.instance_url, "--session-id", emu.session_id]


def password_flow(emu: SalesforceEmulator) -> list[str]:
    return ["--login-url", emu.instance_url, "--username", DEFAULT_USERNAME,
            "--password", DEFAULT_PASSWORD, "--security-token", DEFAULT_TOKEN]


def counts(result: Result) -> dict[str, list[int]]:
    rows = re.findall(r"^\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", result.stdout, re.M)
    return {name: [int(n) for n in nums] for name, *nums in rows}


def json_of(*args: str) -> dict:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def expected_requests(emu: SalesforceEmulator, logins: int = 0) -> int:
    """docs/connectors/salesforce.md: logins + per object (1 describe + max(1, ceil(N/P)))
    + per page of tasks/events ceil(live rows in the page / 200) relation queries."""
    total = logins
    for obj in OBJECTS:
        n = len(emu.records(obj, include_deleted=obj != "OpportunityStage"))
        total += 1 + max(1, math.ceil(n / PAGE))
        if obj in ("Task", "Event"):
            rows = emu.records(obj)
            for start in range(0, len(rows), PAGE):
                live = [r for r in rows[start:start + PAGE] if not r.get("IsDeleted")]
                total += math.ceil(len(live) / 200)
    return total


def test_full_sync_with_session_id_then_audit_and_ltc(emu: SalesforceEmulator) -> None:
    ids = seed(emu)
    emu.reset_log()
    result = sync(*direct(emu), "--tier-field", "Tier__c", "--stance-field", "Stance__c",
                  "--team-role-field", "Team_Role__c")
    assert result.exit_code == 0, result.output
    got = counts(result)
    assert got["accounts"][0] == 50 and got["contacts"][0] == 150 and got["opportunities"][0] == 50
    assert got["stages"][0] == 10 and got["opportunity_contacts"][0] == 10
    assert got["tasks"][0] == 10 and got["events"][0] == 10 and got["users"][0] == 4
    assert got["stage_changes"][0] == 51
    # request count: the minimum the page size allows plus describes (the formula in the docs)
    assert all(r.status == 200 for r in emu.requests)
    assert len(emu.requests) == expected_requests(emu)
    assert emu.session_id not in result.output

    ltc = json_of("ltc", "--format", "json")
    by_stage = {}
    for opp in ltc["opportunities"]:
        by_stage.setdefault(opp["stage"], set()).add(opp["ltc_stage"])
    assert by_stage["Negotiation/Review"] == {"negotiate"}
    assert by_stage["Closed Lost"] == {"lost"}
    assert by_stage["Value Proposition"] == {"guide_bid"}
    # non-standard stages are never guessed silently: unmapped (and reported) or by flags/probability
    for odd in ("Closed/Won", "Assigned dynamically"):
        assert by_stage[odd] <= {"unmapped", "contract", "lost", "validate", "guide_bid", "bid", "negotiate"}
    unmapped = {o["remote_id"] for o in ltc["opportunities"] if o["ltc_stage"] == "unmapped"}
    assert unmapped and set(ltc["funnel"]["unmapped"]) == unmapped
    assert all(any(f["code"] == "LTC_STAGE_UNMAPPED" for f in o["findings"])
               for o in ltc["opportunities"] if o["ltc_stage"] == "unmapped")

    audit = json_of("audit", "--format", "json")
    accounts = {a["remote_id"]: a for a in audit["accounts"]}
    assert accounts[ids["accounts"][0]]["tier"] == "S"
    assert accounts[ids["accounts"][0]]["tier_source"] == "crm"
    assert audit["summary"]["opportunities"] == 50
    engaged = [a for a in audit["accounts"] if a["score_evidence"]["org"].get("our_people_engaged")]
    assert engaged, "tasks and events link our users to accounts"
    # accounts whose activities name no contact and one of ours are data gaps, not scored 0
    for account in audit["accounts"]:
        assert (account["scores"]["org"] is None) == (account["coverage"]["interactions_paired"] == 0)


def test_second_run_reads_only_changes_and_marks_deletes(emu: SalesforceEmulator) -> None:
    ids = seed(emu)
    assert sync(*direct(emu)).exit_code == 0
    emu.advance(3600)
    emu.update("Account", ids["accounts"][1], {"Industry": "Energy"})
    emu.delete("Contact", ids["contacts"][5])  # soft delete: cascades to its roles and activities
    emu.reset_log()
    result = sync(*direct(emu))
    assert result.exit_code == 0, result.output
    got = counts(result)
    # the inclusive lower bound re-reads the rows stamped at the saved checkpoint (one here)
    assert got["accounts"][0] <= 2 and got["accounts"][1] == 0
    assert got["contacts"][0] <= 2 and got["contacts"][3] == 1
    assert got["opportunities"][0] <= 1
    queries = [r.soql for r in emu.requests if r.soql and "FROM Account" in r.soql]
    assert queries and "SystemModstamp >= " in queries[0] and "ORDER BY SystemModstamp, Id" in queries[0]
    assert all(r.path.endswith("/queryAll/") or "/queryAll/" in r.path or "/query/" in r.path or "describe" in r.path
               for r in emu.requests)
    # at most one page per object: few records came back
    assert len([r for r in emu.requests if "query" in r.path]) <= len(OBJECTS) + 2


def test_new_custom_stage_is_unmapped_until_configured(emu: SalesforceEmulator, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ids = seed(emu)
    assert sync(*direct(emu)).exit_code == 0
    emu.advance(60)  # the admin adds a stage later; the next (incremental) run brings it
    emu.insert("OpportunityStage", {"MasterLabel": "Legal Review", "ApiName": "Legal Review", "SortOrder": 11,
                                    "IsClosed": False, "IsWon": False, "IsActive": True})
    emu.update("Opportunity", ids["opps"][3], {"StageName": "Legal Review", "Probability": None})
    assert sync(*direct(emu)).exit_code == 0
    doc = json_of("ltc", "--format", "json")
    opp = next(o for o in doc["opportunities"] if o["remote_id"] == ids["opps"][3])
    assert opp["stage"] == "Legal Review" and opp["ltc_stage"] == "unmapped"
    assert ids["opps"][3] in doc["funnel"]["unmapped"]
    assert "LTC_STAGE_UNMAPPED" in {f["code"] for f in opp["findings"]}
    row = next(line for line in CliRunner().invoke(cli, ["ltc"]).stdout.splitlines() if "Legal Review" in line)
    assert "unmapped" in row
    config = tmp_path / "crmlink.toml"
    config.write_text('[ltc.overrides.salesforce]\n"Legal Review" = "negotiate"\n')
    monkeypatch.setenv("CRMLINK_CONFIG", str(config))
    doc = json_of("ltc", "--format", "json")
    opp = next(o for o in doc["opportunities"] if o["remote_id"] == ids["opps"][3])
    assert opp["ltc_stage"] == "negotiate" and opp["ltc_phase"] == "manage_opportunity"
    assert ids["opps"][3] not in doc["funnel"]["unmapped"]
    row = next(line for line in CliRunner().invoke(cli, ["ltc"]).stdout.splitlines() if "Legal Review" in line)
    assert "negotiate" in row and "unmapped" not in row


def _jwt_keys(tmp_path: Path) -> tuple[Path, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "server.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return path, public


@pytest.mark.parametrize("flow", ["soap", "oauth_password", "client_credentials", "jwt"])
def test_login_flows(emu: SalesforceEmulator, tmp_path: Path, flow: str) -> None:
    emu.insert("Account", {"Name": "Acme"})
    base = ["--login-url", emu.instance_url]
    if flow == "soap":
        args = password_flow(emu)
    elif flow == "oauth_password":
        args = [*password_flow(emu), "--consumer-key", DEFAULT_CONSUMER_KEY, "--consumer-secret",
                DEFAULT_CONSUMER_SECRET]
    elif flow == "client_credentials":
        args = [*base, "--consumer-key", DEFAULT_CONSUMER_KEY, "--consumer-secret", DEFAULT_CONSUMER_SECRET]
    else:
        path, public = _jwt_keys(tmp_path)
        emu.add_connected_app("3MVG9jwtKEY", "unused-secret", jwt_public_key=public)
        args = [*base, "--consumer-key", "3MVG9jwtKEY", "--username", DEFAULT_USERNAME,
                "--private-key-file", str(path)]
    emu.reset_log()
    result = sync(*args)
    assert result.exit_code == 0, result.output
    assert counts(result)["accounts"][0] == 1
    logins = [r for r in emu.requests if "oauth2/token" in r.path or "/Soap/" in r.path]
    assert len(logins) == 1
    assert len(emu.requests) == expected_requests(emu, logins=1)
    for secret in (DEFAULT_PASSWORD, DEFAULT_TOKEN, DEFAULT_CONSUMER_SECRET):
        assert secret not in result.output


def test_wrong_password_is_a_clear_auth_error(emu: SalesforceEmulator) -> None:
    args = password_flow(emu)
    args[args.index(DEFAULT_PASSWORD)] = "Wrong-Secret-9"
    result = sync(*args)
    assert result.exit_code == 4
    assert "Reset My Security Token" in result.output
    assert "Wrong-Secret-9" not in result.output and DEFAULT_TOKEN not in result.output


def test_expired_direct_session_reports_auth_error(emu: SalesforceEmulator) -> None:
    sid = emu.session_id
    emu.expire_sessions()
    result = sync("--instance-url", emu.instance_url, "--session-id", sid)
    assert result.exit_code == 4
    assert "INVALID_SESSION_ID" in result.output and "new session id" in result.output
    assert sid not in result.output


def test_401_mid_pagination_renews_and_completes(emu: SalesforceEmulator) -> None:
    for i in range(450):
        emu.insert("Account", {"Name": f"Bulkco {i}"})
    emu.add_fault(Fault(status=401, error_code="INVALID_SESSION_ID", times=1, path_contains="-200"))
    emu.reset_log()
    result = sync(*password_flow(emu))
    assert result.exit_code == 0, result.output
    assert counts(result)["accounts"][0] == 450
    assert [r.status for r in emu.requests if "-200" in r.path] == [401, 200]
    assert len([r for r in emu.requests if "/Soap/" in r.path]) == 2


def _engine(emu: SalesforceEmulator, tmp_path: Path, **settings: object) -> SyncEngine:
    connector = SalesforceConnector({"instance_url": emu.instance_url, "session_id": emu.session_id,
                                     "page_size": PAGE, **settings})
    store = Store(f"sqlite:///{tmp_path / 'engine.db'}")
    return SyncEngine(store, get_plugin_host(load_entrypoints=False), connector, "salesforce",
                      policy=RetryPolicy(initial=0.01, maximum=0.05))


def test_503_and_dropped_connection_and_truncation_are_retried(emu: SalesforceEmulator, tmp_path: Path) -> None:
    for i in range(450):
        emu.insert("Account", {"Name": f"Retryco {i}"})
    emu.add_fault(Fault(status=503, times=1, path_contains="/queryAll/"))
    emu.add_fault(Fault.drop(after=0, path_contains="-200"))
    emu.add_fault(Fault.truncate(keep_length=False, path_contains="/Contact/describe"))
    notices: list[str] = []
    engine = _engine(emu, tmp_path)
    engine.notice = notices.append
    result = engine.run()
    assert result.status == "ok"
    assert result.streams["accounts"].read >= 450
    assert result.streams["accounts"].created == 450
    assert len(notices) == 3 and all("retry" in n for n in notices)
    assert emu.session_id not in " ".join(notices)


def test_budget_stops_cleanly_and_next_run_resumes(emu: SalesforceEmulator) -> None:
    for i in range(450):
        emu.insert("Account", {"Name": f"Budgetco {i}"})
    # users: describe + 1 page; accounts: describe + 3 pages; the 7th request (contacts) is refused
    result = sync(*direct(emu), "--api-budget", "6")
    assert result.exit_code == 5, result.output
    assert "budget of 6 requests" in result.output
    emu.reset_log()
    result = sync(*direct(emu))
    assert result.exit_code == 0, result.output
    got = counts(result)
    assert got["accounts"][0] <= 1 and got["users"][0] <= 1  # committed streams are not read again
    assert got["contacts"][0] == 0
    assert "SystemModstamp >= " in next(r.soql for r in emu.requests if r.soql and "FROM Account" in r.soql)


def test_daily_limit_exceeded_is_budget_exhausted(emu: SalesforceEmulator) -> None:
    emu.add_fault(Fault.limit_exceeded())
    result = sync(*direct(emu))
    assert result.exit_code == 5
    assert "REQUEST_LIMIT_EXCEEDED" in result.output


def test_unreadable_field_is_skipped_and_bulk_used_above_threshold(emu: SalesforceEmulator) -> None:
    emu.seed_plan(APEX)
    emu.hide_field("Contact", "Department")
    emu.reset_log()
    result = sync(*direct(emu), "--bulk-threshold", "100")
    assert result.exit_code == 0, result.output
    assert counts(result)["contacts"][0] == 150
    assert any("/jobs/query" in r.path for r in emu.requests)
    assert not any("Department" in (r.soql or "") for r in emu.requests if "FROM Contact" in (r.soql or ""))


RECONCILED = [o for o in OBJECTS if o != "OpportunityStage"]  # the stage table is a snapshot already


def test_reconcile_marks_hard_deleted_records_with_one_id_query_per_object(emu: SalesforceEmulator,
                                                                           tmp_path: Path) -> None:
    ids = seed(emu)
    assert sync(*direct(emu)).exit_code == 0
    task = next(r["Id"] for r in emu.records("Task"))
    emu.hard_delete("Account", ids["accounts"][7])  # purged: gone from queryAll too, no IsDeleted row
    emu.hard_delete("Task", task)
    emu.reset_log()
    plain = sync(*direct(emu))
    assert plain.exit_code == 0, plain.output
    assert counts(plain)["accounts"][3] == 0  # an incremental read cannot see a hard delete
    plain_requests = len(emu.requests)
    emu.reset_log()
    result = sync(*direct(emu), "--reconcile")
    assert result.exit_code == 0, result.output
    got = counts(result)
    assert got["accounts"][3] == 1 and got["tasks"][3] == 1
    assert got["events"][3] == 0 and got["contacts"][3] == 0  # Task and Event share an entity
    listing = [r.soql for r in emu.requests if r.soql and r.soql.startswith("SELECT Id FROM")]
    assert sorted(q.split()[3] for q in listing) == sorted(RECONCILED)
    assert all(q.endswith("WHERE IsDeleted = false") for q in listing)
    # every object holds fewer than 2000 live ids: one page each, nothing else added
    assert len(emu.requests) == plain_requests + len(RECONCILED)
    store = Store()
    deleted = {r.remote_id for r in store.records("account", include_deleted=True) if r.deleted}
    assert deleted == {ids["accounts"][7]}
    tasks = {r.remote_id: r.deleted for r in store.records("interaction", include_deleted=True)}
    assert tasks[task] is True and sum(tasks.values()) == 1


def test_contracts_and_orders_are_read_into_execution_records(emu: SalesforceEmulator) -> None:
    ids = seed(emu)
    won = ids["opps"][1]
    emu.update("Opportunity", won, {"StageName": "Closed Won"})
    account = emu.get("Opportunity", won)["AccountId"]
    contract = emu.insert("Contract", {"AccountId": account, "Status": "Activated", "StartDate": "2026-01-01",
                                       "ContractTerm": 12})
    emu.update("Opportunity", won, {"ContractId": contract})
    order = emu.insert("Order", {"AccountId": account, "ContractId": contract, "OpportunityId": won,
                                 "Status": "Draft", "EffectiveDate": "2026-02-01"})
    result = sync(*direct(emu))
    assert result.exit_code == 0, result.output
    assert counts(result)["contracts"][0] == 1 and counts(result)["orders"][0] == 1
    records = {r.remote_id: r for r in Store().records("execution")}
    assert records[contract].kind == "contract" and records[contract].active is True
    assert records[contract].ended_at is not None and records[contract].number
    assert records[order].kind == "order" and records[order].active is False
    assert (records[order].opportunity_id, records[order].contract_id) == (won, contract)
    opp = next(r for r in Store().records("opportunity") if r.remote_id == won)
    assert opp.extra["ContractId"] == contract
    assert next(o for o in json_of("ltc", "--format", "json")["opportunities"]
                if o["remote_id"] == won)["ltc_stage"] == "contract"  # a draft order: not delivering yet
    emu.update("Order", order, {"Status": "Activated"})
    assert sync(*direct(emu)).exit_code == 0
    assert next(o for o in json_of("ltc", "--format", "json")["opportunities"]
                if o["remote_id"] == won)["ltc_stage"] == "deliver"
