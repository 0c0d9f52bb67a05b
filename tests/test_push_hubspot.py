"""crmlink push hubspot against the HubSpot emulator, through the real hubspot-api-client."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli
from crmlink.core.push.fields import FIELDS
from crmlink.plugins.hubspot.push import HubSpotPushTarget
from crmlink.testing.hubspot_emulator import Fault, HubSpotEmulator
from crmlink.testing.hubspot_emulator.seed import seed

NAMES = HubSpotPushTarget.default_names
TYPES = {"account": "companies", "opportunity": "deals"}
BATCH = "/crm/v3/objects/*/batch/update"


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator() as emulator:
        seed(emulator, 300)
        yield emulator


def crmlink(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def push(emu: HubSpotEmulator, *args: str) -> Result:
    return crmlink("push", "hubspot", "--base-url", emu.url, "--access-token", emu.token,
                   "--as-of", "2026-11-20", "-q", *args)


@pytest.fixture
def ready(emu: HubSpotEmulator) -> HubSpotEmulator:
    assert crmlink("sync", "hubspot", "--base-url", emu.url, "--access-token", emu.token, "-q").exit_code == 0
    result = push(emu, "--setup")
    assert result.exit_code == 0, result.output
    return emu


def ours(emu: HubSpotEmulator) -> dict[tuple[str, str, str], object]:
    out = {}
    for spec in FIELDS:
        otype = TYPES[spec.obj]
        for obj in emu.objects(otype, archived=False):
            value = obj["properties"].get(NAMES[spec.key])
            out[(otype, obj["id"], NAMES[spec.key])] = None if value in (None, "") else value
    return out


def dry_run(emu: HubSpotEmulator) -> dict:
    result = push(emu, "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_setup_creates_the_group_and_properties(emu: HubSpotEmulator) -> None:
    result = push(emu, "--setup")
    assert result.exit_code == 0, result.output
    assert "Created 14 field(s)" in result.output  # 10 on companies, 3 on deals, the task key
    schema = emu._store.schema
    assert "Written by crmlink push" in schema["tasks"]["crmlink_task_key"].description
    assert schema["companies"]["crmlink_health"].group_name == "crmlink"
    assert schema["companies"]["crmlink_health"].type == "number"
    assert schema["companies"]["crmlink_audited_on"].type == "date"
    assert schema["deals"]["crmlink_ltc_stage"].type == "string"
    assert "Written by crmlink push" in schema["deals"]["crmlink_findings"].description
    assert "crmlink" in emu._store.groups["companies"] and "crmlink" in emu._store.groups["deals"]
    again = push(emu, "--setup")
    assert again.exit_code == 0 and "Created 0 field(s)" in again.output


def test_dry_run_equals_apply_and_a_second_push_writes_nothing(ready: HubSpotEmulator) -> None:
    before = ours(ready)
    plan = dry_run(ready)
    assert plan["changes"] and plan["tasks"] == []
    expected = dict(before)
    for change in plan["changes"]:
        key = (change["object"], change["id"], change["field"])
        assert before[key] == change["old"]
        expected[key] = change["new"]
    first = push(ready)
    assert first.exit_code == 0 and "Dry run" in first.output
    assert push(ready, "--apply").exit_code == 0

    def canonical(value: object) -> object:
        if value is None:
            return None
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return value

    assert {k: canonical(v) for k, v in ours(ready).items()} == {k: canonical(v) for k, v in expected.items()}
    ready.reset_log()
    assert dry_run(ready)["changes"] == []
    assert push(ready, "--apply").exit_code == 0
    assert not [r for r in ready.requests if r.path.endswith("/batch/update")]


def test_request_counts_follow_the_documented_formula(ready: HubSpotEmulator) -> None:
    plan = dry_run(ready)
    changed = {t: len({c["id"] for c in plan["changes"] if c["object"] == t}) for t in TYPES.values()}
    writes = sum(math.ceil(n / 100) for n in changed.values())
    assert plan["requests"] == writes
    reads = sum(math.ceil(len(ready.objects(t, archived=False)) / 100) for t in TYPES.values())
    ready.reset_log()
    assert push(ready, "--apply").exit_code == 0
    # docs/push.md: 2 property listings + batch reads + batch updates
    assert len(ready.requests) == 2 + reads + writes


def test_a_property_crmlink_did_not_create_is_never_written(emu: HubSpotEmulator) -> None:
    emu.add_property("companies", "crmlink_tier", "string")
    result = push(emu, "--setup")
    assert result.exit_code == 2
    assert "companies property crmlink_tier exists in HubSpot and crmlink did not create it" in result.output
    assert "[push.<source>.fields] tier" in result.output
    assert crmlink("sync", "hubspot", "--base-url", emu.url, "--access-token", emu.token, "-q").exit_code == 0
    refused = push(emu, "--apply")
    assert refused.exit_code == 2
    assert all(not o["properties"].get("crmlink_tier") for o in emu.objects("companies"))


def test_refused_and_deleted_records_are_reported_and_the_rest_is_written(ready: HubSpotEmulator) -> None:
    companies = [o["id"] for o in ready.objects("companies", archived=False)]
    ready.refuse_update("companies", companies[0], "This company is being merged")
    result = push(ready, "--apply")
    assert result.exit_code == 4, result.output
    assert f"refused companies {companies[0]}: VALIDATION_ERROR: This company is being merged" in result.output
    assert ready.get("companies", companies[1])["properties"]["crmlink_audited_on"] == "2026-11-20"
    assert not ready.get("companies", companies[0])["properties"].get("crmlink_audited_on")
    ready.refuse_update("companies", companies[0], "")
    assert push(ready, "--apply").exit_code == 0
    assert dry_run(ready)["changes"] == []


@pytest.mark.parametrize("fault", [
    Fault.rate_limit(retry_after=0, path=BATCH, method="POST", times=1),
    Fault.error(503, path=BATCH, method="POST", times=1),
    Fault.drop(path=BATCH, method="POST", times=1),
], ids=["429", "503", "dropped"])
def test_faults_mid_push_end_with_every_change_written_once(ready: HubSpotEmulator, fault: Fault,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMLINK_RETRY_INITIAL", "0")
    plan = dry_run(ready)
    ready.add_fault(fault)
    ready.reset_log()
    result = push(ready, "--apply")
    assert result.exit_code == 0, result.output
    assert dry_run(ready)["changes"] == []
    served = [r for r in ready.requests if r.path.endswith("/batch/update") and r.status in (200, 207)]
    assert len(served) == plan["requests"]


def test_an_expired_oauth_token_is_renewed_mid_push(ready: HubSpotEmulator) -> None:
    ready.add_fault(Fault.expired_token(path=BATCH, method="POST", times=1))
    result = crmlink("push", "hubspot", "--base-url", ready.url, "--client-id", ready.client_id,
                     "--client-secret", ready.client_secret, "--refresh-token", ready.refresh_token,
                     "--as-of", "2026-11-20", "--apply")
    assert result.exit_code == 0, result.output
    assert dry_run(ready)["changes"] == []


def tasks_plan(emu: HubSpotEmulator) -> list[dict]:
    result = push(emu, "--tasks", "high", "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["tasks"]


def crmlink_tasks(emu: HubSpotEmulator) -> dict[str, dict]:
    return {t["properties"]["crmlink_task_key"]: t for t in emu.objects("tasks", archived=False)
            if t["properties"].get("crmlink_task_key")}


def test_high_findings_become_tasks_linked_to_company_and_deal_once(ready: HubSpotEmulator,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    planned = tasks_plan(ready)
    assert planned and all(t["action"] == "create" for t in planned)
    monkeypatch.setenv("CRMLINK_RETRY_INITIAL", "0")
    ready.add_fault(Fault.truncate(path="/crm/v3/objects/tasks/batch/create", method="POST", times=1))
    result = push(ready, "--tasks", "high", "--apply")
    assert result.exit_code == 0, result.output
    made = crmlink_tasks(ready)
    assert set(made) == {t["key"] for t in planned}  # none twice, though the first answer was cut off
    for spec in planned:
        task = made[spec["key"]]
        assert task["properties"]["hs_task_status"] == "NOT_STARTED"
        assert task["properties"]["hubspot_owner_id"] == (spec["owner"] or None)
        companies = [a["toObjectId"] for a in ready.associations("tasks", task["id"], "companies")]
        assert companies == [spec["account"]]
        if spec["deal"]:
            assert [a["toObjectId"] for a in ready.associations("tasks", task["id"], "deals")] == [spec["deal"]]
    first = next(iter(made.values()))
    ready.update("tasks", first["id"], {"hs_task_subject": "Retitled by a person"})
    assert tasks_plan(ready) == []
    assert push(ready, "--tasks", "high", "--apply").exit_code == 0
    assert len(crmlink_tasks(ready)) == len(made)


def test_an_archived_company_is_reported_not_written(ready: HubSpotEmulator) -> None:
    companies = [o["id"] for o in ready.objects("companies", archived=False)]
    ready.archive("companies", companies[0])
    result = push(ready, "--apply", "--daily-budget", "1000")
    assert result.exit_code == 4, result.output
    assert f"refused companies {companies[0]}: not found in the CRM" in result.output
    assert ready.token not in result.output


def test_the_daily_budget_stops_a_push_and_the_next_one_finishes_it(ready: HubSpotEmulator) -> None:
    plan = dry_run(ready)
    assert plan["requests"] == 2  # one batch update each for companies and deals
    ready.reset_log()
    stopped = push(ready, "--apply", "--daily-budget", "5")  # 2 listings, 2 reads, 1 update
    assert stopped.exit_code == 5, stopped.output
    assert push(ready, "--apply").exit_code == 0
    assert len([r for r in ready.requests if r.path.endswith("/batch/update")]) == 2
    assert dry_run(ready)["changes"] == []


def test_a_batch_hubspot_refuses_whole_is_written_record_by_record(ready: HubSpotEmulator) -> None:
    ready.options.batch_errors = "400"  # the first bad input fails the batch, nothing is written
    plan = dry_run(ready)
    companies = sorted({c["id"] for c in plan["changes"] if c["object"] == "companies"})
    ready.refuse_update("companies", companies[0], "This company is being merged")
    ready.reset_log()
    result = push(ready, "--apply")
    assert result.exit_code == 4, result.output
    assert f"refused companies {companies[0]}: VALIDATION_ERROR: This company is being merged" in result.output
    # docs/push.md: one request per record of a refused batch; each record written once (a 429
    # of the emulator's rate limit, counting the earlier commands' requests, may add a retry)
    written = Counter(r.path for r in ready.requests if r.method == "PATCH" and r.status == 200)
    assert len(written) == len(companies) - 1 and set(written.values()) == {1}
    assert {c["id"] for c in dry_run(ready)["changes"]} == {companies[0]}
