"""crmlink push salesforce against the Salesforce emulator, through the real simple-salesforce
(REST, sObject Collections, and the Metadata API over zeep)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli
from crmlink.core.push.fields import FIELDS
from crmlink.plugins.salesforce.push import SalesforcePushTarget
from crmlink.testing.salesforce_emulator import (
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    Fault,
    SalesforceEmulator,
)

APEX = Path(__file__).parent / "data" / "realdata" / "sf_apex_recipes"
NAMES = SalesforcePushTarget.default_names
OBJECTS = {"account": "Account", "opportunity": "Opportunity"}


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as emulator:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)
        emulator.seed_plan(APEX)
        yield emulator


def flags(emu: SalesforceEmulator) -> list[str]:
    return ["--login-url", emu.instance_url, "--username", DEFAULT_USERNAME,
            "--password", DEFAULT_PASSWORD, "--security-token", DEFAULT_TOKEN]


def crmlink(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def push(emu: SalesforceEmulator, *args: str) -> Result:
    return crmlink("push", "salesforce", *flags(emu), "--as-of", "2026-11-20", *args)


@pytest.fixture
def ready(emu: SalesforceEmulator) -> SalesforceEmulator:
    """Synced and set up."""
    assert crmlink("sync", "salesforce", *flags(emu)).exit_code == 0
    result = push(emu, "--setup")
    assert result.exit_code == 0, result.output
    return emu


def ours(emu: SalesforceEmulator) -> dict[tuple[str, str, str], object]:
    """Every crmlink field of every account and deal, as the org holds it."""
    out = {}
    for spec in FIELDS:
        for record in emu.records(OBJECTS[spec.obj], include_deleted=False):
            out[(OBJECTS[spec.obj], record["Id"], NAMES[spec.key])] = record.get(NAMES[spec.key])
    return out


def dry_run(emu: SalesforceEmulator) -> dict:
    result = push(emu, "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_setup_creates_the_fields_and_assigns_the_permission_set(emu: SalesforceEmulator) -> None:
    assert crmlink("sync", "salesforce", *flags(emu)).exit_code == 0
    other = emu.add_user("other@acme.test", "pw", "tok")
    emu.reset_log()
    result = push(emu, "--setup")
    assert result.exit_code == 0, result.output
    # 10 on Account, 3 on Opportunity, and the key of crmlink's tasks (on Activity: Task and Event)
    assert "Created 14 field(s)" in result.output and "assigned the permission set 'crmlink'" in result.output
    metadata = [r for r in emu.requests if "/Soap/m/" in r.path]
    assert len(metadata) == 2 + 2 + 1  # read 10 + 4, create 10 + 4, upsert the permission set
    assert "Written by crmlink push" in emu.metadata["CustomField"]["Activity.crmlink_Task_Key__c"]["description"]
    assert emu.store.obj("Event").field("crmlink_Task_Key__c") is not None
    described = emu.store.obj("Account").field("crmlink_Health__c")
    assert described is not None and described.type == "double"
    assert "Written by crmlink push" in emu.metadata["CustomField"]["Account.crmlink_Health__c"]["description"]
    assignments = emu.records("PermissionSetAssignment")
    assert [a["AssigneeId"] for a in assignments] == [emu.users[DEFAULT_USERNAME].user_id]
    # field-level security: the fields are visible to the assigned user only
    assert emu.store.field_access("Account", "crmlink_Health__c", DEFAULT_USERNAME) is True
    assert emu.store.field_access("Account", "crmlink_Health__c", other.username) is None
    again = push(emu, "--setup")
    assert again.exit_code == 0 and "Created 0 field(s)" in again.output and "14 were crmlink's" in again.output
    assert "assigned to the running user already" in again.output
    assert len(emu.records("PermissionSetAssignment")) == 1


def test_the_first_push_is_a_dry_run_and_writes_nothing(ready: SalesforceEmulator) -> None:
    before = ours(ready)
    ready.reset_log()
    result = push(ready)
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was written" in result.output and "the first push" in result.output
    assert "Account:" in result.output and "-> " in result.output
    assert not [r for r in ready.requests if r.method == "PATCH"]
    assert ours(ready) == before


def test_dry_run_equals_apply_and_a_second_push_writes_nothing(ready: SalesforceEmulator) -> None:
    before = ours(ready)
    plan = dry_run(ready)
    assert plan["tasks"] == [] and plan["changes"]
    assert set(plan["changes"][0]) == {"object", "id", "field", "old", "new"}
    expected = dict(before)
    for change in plan["changes"]:
        key = (change["object"], change["id"], change["field"])
        assert before[key] == change["old"]
        expected[key] = change["new"]
    result = push(ready, "--apply")
    assert result.exit_code == 0, result.output
    assert ours(ready) == expected  # exactly what the dry run listed, nothing else
    ready.reset_log()
    assert dry_run(ready)["changes"] == []
    again = push(ready, "--yes")
    assert again.exit_code == 0 and "0 record(s) written" in again.output
    assert not [r for r in ready.requests if r.method == "PATCH"]


def test_values_are_the_audit_s(ready: SalesforceEmulator) -> None:
    audit = json.loads(crmlink("audit", "--format", "json", "--as-of", "2026-11-20").stdout)
    assert push(ready, "--apply").exit_code == 0
    for account in audit["accounts"]:
        record = ready.get("Account", account["remote_id"])
        assert record is not None
        assert record["crmlink_Health__c"] == account["scores"]["health"]
        assert record["crmlink_Tier__c"] == account["tier"]
        assert record["crmlink_Coverage__c"] == account["coverage"]["assessment"]
        assert record["crmlink_Audited_On__c"] == "2026-11-20"
        top = account["findings"][0] if account["findings"] else None
        assert record["crmlink_Top_Finding__c"] == (f"{top['code']}: {top['message']}"[:254] if top else None) or \
            record["crmlink_Top_Finding__c"].endswith("…")
    for deal in audit["opportunities"]:
        record = ready.get("Opportunity", deal["remote_id"])
        assert record is not None and record["crmlink_LTC_Stage__c"] == deal["ltc_stage"]
        assert record["crmlink_Findings__c"] == (";".join(f["code"] for f in deal["findings"]) or None)


def test_request_counts_follow_the_documented_formula(ready: SalesforceEmulator) -> None:
    plan = dry_run(ready)
    changed = {o: len({c["id"] for c in plan["changes"] if c["object"] == o}) for o in OBJECTS.values()}
    writes = sum(math.ceil(n / 200) for n in changed.values())
    assert plan["requests"] == writes
    records = {o: len(ready.records(o, include_deleted=False)) for o in OBJECTS.values()}
    reads = sum(math.ceil(n / 200) for n in records.values())
    ready.reset_log()
    assert push(ready, "--apply").exit_code == 0
    # docs/push.md: 1 login + 2 describes + reads + writes
    assert len(ready.requests) == 1 + 2 + reads + writes
    assert len([r for r in ready.requests if r.method == "PATCH"]) == writes


def test_a_field_crmlink_did_not_create_is_never_written(emu: SalesforceEmulator, tmp_path: Path) -> None:
    emu.add_field("Account", "crmlink_Health__c", "double", label="Health (admin's)")
    assert crmlink("sync", "salesforce", *flags(emu)).exit_code == 0
    result = push(emu, "--setup")
    assert result.exit_code == 2
    assert "Account.crmlink_Health__c exists in Salesforce and crmlink did not create it" in result.output
    assert "[push.<source>.fields] health" in result.output
    refused = push(emu, "--apply")
    assert refused.exit_code == 2 and "crmlink did not create Account.crmlink_Health__c" in refused.output
    assert all(r.get("crmlink_Health__c") is None for r in emu.records("Account"))
    config = tmp_path / "crmlink.toml"
    config.write_text('[push.salesforce.fields]\nhealth = "crmlink_Relationship_Health__c"\n')
    assert push(emu, "--setup", "--config", str(config)).exit_code == 0
    assert push(emu, "--apply", "--config", str(config)).exit_code == 0
    assert all(r.get("crmlink_Health__c") is None for r in emu.records("Account"))
    assert "crmlink_Relationship_Health__c" in emu.records("Account")[0]


def test_refused_records_are_reported_and_the_rest_is_written(ready: SalesforceEmulator) -> None:
    accounts = [r["Id"] for r in ready.records("Account", include_deleted=False)]
    ready.add_validation_rule("Account", "Tier_Needs_Review",
                              lambda rec: rec["Id"] == accounts[0] and rec.get("crmlink_Tier__c") is not None,
                              "Tier changes need a review first", field="crmlink_Tier__c")
    ready.lock_record(accounts[1])
    ready.delete("Account", accounts[2])
    result = push(ready, "--apply")
    assert result.exit_code == 4, result.output
    assert f"refused Account {accounts[0]}: FIELD_CUSTOM_VALIDATION_EXCEPTION: Tier changes need a review first" in result.output
    assert f"refused Account {accounts[1]}: UNABLE_TO_LOCK_ROW: unable to obtain exclusive access" in result.output
    assert f"refused Account {accounts[2]}: not found in the CRM" in result.output
    assert ready.get("Account", accounts[3])["crmlink_Audited_On__c"] == "2026-11-20"
    assert ready.get("Account", accounts[1])["crmlink_Audited_On__c"] is None
    status = crmlink("status")
    assert "push run" in status.output and "partial" in status.output
    run = status.output.split("push run ")[1].split(":")[0]
    detail = crmlink("status", "--push", run)
    assert "refused Account" in detail.output and "UNABLE_TO_LOCK_ROW" in detail.output
    assert "written Account" in detail.output
    # the lock is gone: the next push writes that record, the validation rule still refuses
    again = push(ready, "--apply")
    assert again.exit_code == 4 and "1 record(s) written" in again.output.replace("\n", " ")
    assert ready.get("Account", accounts[1])["crmlink_Audited_On__c"] == "2026-11-20"


def test_a_field_the_user_may_not_edit_stops_the_push_before_any_write(ready: SalesforceEmulator) -> None:
    ready.set_field_permission("crmlink", "Account.crmlink_Tier__c", editable=False)
    ready.reset_log()
    result = push(ready, "--apply")
    assert result.exit_code == 4
    assert "Account.crmlink_Tier__c is read-only for the user crmlink runs as" in result.output
    assert not [r for r in ready.requests if r.method == "PATCH"]


@pytest.mark.parametrize("fault", [
    Fault(status=503, path_contains="composite/sobjects", method="PATCH"),
    Fault(status=429, error_code="REQUEST_LIMIT_EXCEEDED", message="ConcurrentPerOrgLongTxn Limit exceeded.",
          path_contains="composite/sobjects", method="PATCH", headers={"Retry-After": "0"}),
    Fault.drop(path_contains="composite/sobjects", method="PATCH"),
    Fault.truncate(path_contains="composite/sobjects", method="PATCH"),
    Fault.expired_session(path_contains="composite/sobjects", method="PATCH"),
], ids=["503", "429", "dropped", "cut-off-after-writing", "expired-session"])
def test_faults_mid_push_end_with_every_change_written_once(ready: SalesforceEmulator, fault: Fault,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMLINK_RETRY_INITIAL", "0")
    plan = dry_run(ready)
    ready.add_fault(fault)
    ready.reset_log()
    result = push(ready, "--apply")
    assert result.exit_code == 0, result.output
    assert dry_run(ready)["changes"] == []
    served = [r for r in ready.requests if r.method == "PATCH" and r.fault is None]
    batches = plan["requests"]
    # a request cut off after Salesforce wrote it is not sent again: its records were read back
    assert len(served) == batches - (1 if fault.kind == "truncate" else 0)


def test_a_push_stopped_by_its_budget_resumes_without_writing_twice(ready: SalesforceEmulator) -> None:
    plan = dry_run(ready)
    assert plan["requests"] == 2  # one PATCH for the accounts, one for the deals
    ready.reset_log()
    stopped = push(ready, "--apply", "--api-budget", "6")  # login, 2 describes, 2 queries, 1 PATCH
    assert stopped.exit_code == 5, stopped.output
    assert "push run" in crmlink("status").output and "stopped" in crmlink("status").output
    resumed = push(ready, "--apply")
    assert resumed.exit_code == 0, resumed.output
    assert len([r for r in ready.requests if r.method == "PATCH"]) == 2
    assert dry_run(ready)["changes"] == []


def test_a_store_of_schema_4_gains_the_push_tables(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from crmlink.core import schema
    from crmlink.core.store import Store

    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in ("push_writes", "push_runs", "push_fields", "push_tasks"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql("UPDATE crmlink_meta SET value = '4' WHERE key = 'schema_version'")
    store = Store(url)
    assert store.schema_version == schema.SCHEMA_VERSION >= 5
    assert all(sa.inspect(store.engine).has_table(t) for t in ("push_runs", "push_writes", "push_fields", "push_tasks"))


def test_above_the_bulk_threshold_one_bulk_api_job_per_object_writes_the_same(
        ready: SalesforceEmulator, tmp_path: Path) -> None:
    config = tmp_path / "crmlink.toml"
    config.write_text("[push.salesforce]\nbulk_threshold = 10\n")
    accounts = [r["Id"] for r in ready.records("Account", include_deleted=False)]
    ready.add_validation_rule("Account", "Tier_Needs_Review",
                              lambda rec: rec["Id"] == accounts[0] and rec.get("crmlink_Tier__c") is not None,
                              "Tier changes need a review first", field="crmlink_Tier__c")
    before = ours(ready)
    result = push(ready, "--dry-run", "--format", "json", "--config", str(config))
    plan = json.loads(result.stdout)
    assert plan["requests"] == 6 + 6  # docs/push.md: a Bulk API 2.0 job is 6 requests
    ready.reset_log()
    applied = push(ready, "--apply", "--config", str(config))
    assert applied.exit_code == 4, applied.output
    refusal = f"refused Account {accounts[0]}: FIELD_CUSTOM_VALIDATION_EXCEPTION:Tier changes need a review first"
    assert refusal in applied.output
    jobs = [r for r in ready.requests if r.path.endswith("/jobs/ingest")]
    assert len(jobs) == 2 and not [r for r in ready.requests if r.path.endswith("composite/sobjects")]
    assert len([r for r in ready.requests if "/jobs/ingest" in r.path]) == 12
    expected = dict(before)
    for change in plan["changes"]:
        if change["id"] != accounts[0]:
            expected[(change["object"], change["id"], change["field"])] = change["new"]
    assert ours(ready) == expected


def test_a_named_source_pushes_with_its_config_and_keeps_secrets_out_of_the_output(
        emu: SalesforceEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "crmlink.toml"
    config.write_text(f'[sources.prod]\nconnector = "salesforce"\nlogin_url = "{emu.instance_url}"\n'
                      f'username = "{DEFAULT_USERNAME}"\n')
    monkeypatch.setenv("SALESFORCE_PASSWORD", DEFAULT_PASSWORD)
    monkeypatch.setenv("SALESFORCE_SECURITY_TOKEN", DEFAULT_TOKEN)
    assert crmlink("sync", "prod", "--config", str(config)).exit_code == 0
    setup = crmlink("push", "prod", "--config", str(config), "--setup")
    assert setup.exit_code == 0, setup.output
    plan = crmlink("push", "prod", "--config", str(config), "--dry-run", "--format", "json")
    assert plan.exit_code == 0 and json.loads(plan.stdout)["changes"]
    applied = crmlink("-v", "push", "prod", "--config", str(config), "--apply")
    assert applied.exit_code == 0, applied.output
    assert "Pushed to prod" in applied.output
    for secret in (DEFAULT_PASSWORD, DEFAULT_TOKEN, emu.session_id):
        assert secret not in setup.output + plan.output + applied.output
    assert "push run" in crmlink("status").output
