"""The HubSpot connector against the HubSpot emulator, through the real hubspot-api-client."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from crmlink.core.sync import RetryPolicy, SyncEngine
from crmlink.plugins.hubspot import HubSpotConnector
from crmlink.testing.hubspot_emulator import Fault, HubSpotEmulator, RateLimits
from crmlink.testing.hubspot_emulator.seed import seed

SIZE = 3000
ENGAGEMENTS = ("calls", "meetings", "emails", "notes", "tasks")


def sync(emu: HubSpotEmulator, db: str, *extra: str) -> Any:
    return CliRunner().invoke(cli, ["sync", "hubspot", "--base-url", emu.url, "--access-token",
                                    emu.token, "--db", db, "-q", *extra])


def expected_full_requests(counts: dict[str, int], archived: dict[str, int], owners: tuple[int, int]) -> int:
    """The documented formula (docs/connectors/hubspot.md) for a full sync."""
    links = {"companies": 0, "contacts": 1, "deals": 2, "tickets": 2, **{k: 3 for k in ENGAGEMENTS}}
    total = 9 + 2  # property schemas, deal and ticket pipelines
    total += max(1, math.ceil(owners[0] / 500)) + max(1, math.ceil(owners[1] / 500))
    for kind, n in counts.items():
        total += max(1, math.ceil(n / 100)) + links[kind] * math.ceil(n / 1000)
        total += max(1, math.ceil(archived.get(kind, 0) / 100))
    return total


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = f"sqlite:///{tmp_path_factory.mktemp('hs') / 'store.db'}"
    with HubSpotEmulator() as emu:  # burst limit enforced: 100 per 10 s
        emu.add_property("companies", "account_tier", "enumeration", options=["S", "A", "B", "C"])
        ids = seed(emu, SIZE)
        emu.update("companies", ids["companies"][0], {"account_tier": "S"})
        emu.archive("contacts", ids["contacts"][-1])
        result = sync(emu, db, "--tier-property", "account_tier")
        yield emu, db, ids, result, list(emu.requests)


def test_full_sync_is_within_the_burst_limit_and_the_request_formula(portal: Any) -> None:
    emu, db, ids, result, requests = portal
    assert result.exit_code == 0, result.output
    assert emu.token not in result.output
    assert not [r for r in requests if r.status == 429]
    counts = {k: len(ids[k]) for k in ("companies", "contacts", "deals", "tickets", *ENGAGEMENTS)}
    counts["contacts"] -= 1  # one is archived
    expected = expected_full_requests(counts, {"contacts": 1}, (5, 1))
    assert len(requests) <= expected + 2, (len(requests), expected)
    assert len(requests) > 100  # the limiter had to wait for the 10 s window
    assert "contacts" in result.output


def test_audit_shows_stage_labels_and_ltc_stages(portal: Any) -> None:
    emu, db, ids, *_ = portal
    out = CliRunner().invoke(cli, ["audit", "--db", db, "--format", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["summary"]["accounts"] == len(ids["companies"])
    assert doc["summary"]["opportunities"] == len(ids["deals"])
    stages = {o["stage"] for o in doc["opportunities"]}
    assert {"Closed Won", "Closed Lost", "Appointment Scheduled"} <= stages
    assert all(o["ltc_stage"] != "unmapped" for o in doc["opportunities"])
    tiered = {a["remote_id"]: a["tier"] for a in doc["accounts"]}
    assert tiered[ids["companies"][0]] == "S"
    contacts = {c.remote_id: c for c in Store(db).records("contact", include_deleted=True)}
    assert contacts[ids["contacts"][-1]].deleted  # archived in HubSpot
    first = emu.get("contacts", ids["contacts"][0])["properties"]
    assert contacts[ids["contacts"][0]].title == first["jobtitle"]
    assert contacts[ids["contacts"][0]].account_id == first["associatedcompanyid"]
    roles = {c.raw.get("buying_role"): c.buying_role for c in contacts.values()}
    assert roles["DECISION_MAKER"] == "decision_maker"
    links = Store(db).records("opportunity_contact")
    assert {"decision_maker", "economic_buyer", "technical_evaluator"} <= {x.role for x in links}
    assert Store(db).count("stage_change") > len(ids["deals"])


def test_second_run_searches_only_what_changed(portal: Any) -> None:
    emu, db, ids, *_ = portal
    emu.reset_rate_limits()
    for cid in ids["contacts"][:5]:
        emu.update("contacts", cid, {"jobtitle": "Chief Executive Officer"})
    emu.update("deals", ids["deals"][0], {"dealstage": "closedwon"})
    emu.archive("contacts", ids["contacts"][10])
    emu.reset_log()
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    searches = [r for r in emu.requests if r.path.endswith("/search")]
    lists = [r for r in emu.requests if r.method == "GET" and r.path.startswith("/crm/v3/objects/")]
    assert all(r.query.get("archived") == ["True"] for r in lists)  # only archived records listed
    assert len(searches) == 9  # one per object type, each with its saved lower bound
    for req in searches:
        body = req.body
        lower = body["filterGroups"][0]["filters"][0]
        assert lower["operator"] == "GTE" and int(lower["value"]) > 0
    lines = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()[2:]}
    assert int(lines["contacts"][0]) <= 5 + 2 + 2  # 5 changed, 2 archived, ties at the bound
    assert int(lines["deals"][0]) < 30
    # deleted: the contact archived now; the one archived before the first run is listed
    # again (archived lists are read every run) but was stored deleted already
    assert int(lines["contacts"][3]) == 1


def test_search_cap_windowing_reads_every_record_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cap.db'}"
    limits = RateLimits(burst=1000, search_per_second=100)
    with HubSpotEmulator(rate_limits=limits) as emu:
        ids = emu.add_many("contacts", ({"email": f"c{i}@example.com"} for i in range(10_050)))
        first = sync(emu, db, "--rate-limit", "1000", "--search-rate", "100")
        assert first.exit_code == 0, first.output
        same = datetime.now(timezone.utc)  # every update lands on the same millisecond
        for cid in ids:
            emu.update("contacts", cid, {"jobtitle": "Engineer"}, at=same)
        emu.reset_log()
        second = sync(emu, db, "--rate-limit", "1000", "--search-rate", "100")
        assert second.exit_code == 0, second.output
        row = next(line.split() for line in second.output.splitlines() if line.strip().startswith("contacts"))
        assert row[1:4] == ["10050", "0", "10050"], second.output  # read, created, updated
        searches = [r.body for r in emu.requests if r.path.endswith("contacts/search")]
        assert all(int(b.get("after") or 0) + b["limit"] <= 10_000 for b in searches)
        assert all(r.status != 400 for r in emu.requests)


def _engine(emu: HubSpotEmulator, tmp_path: Path, notices: list[str], **settings: Any) -> SyncEngine:
    connector = HubSpotConnector({"base_url": emu.url, "access_token": emu.token, **settings})
    return SyncEngine(Store(f"sqlite:///{tmp_path / 'e.db'}"), get_plugin_host(load_entrypoints=False),
                      connector, "hubspot", policy=RetryPolicy(initial=0.01, maximum=0.05),
                      notice=notices.append)


def test_429_and_503_are_retried(tmp_path: Path) -> None:
    with HubSpotEmulator() as emu:
        seed(emu, 150)
        emu.add_fault(Fault.rate_limit(retry_after=0, path="/crm/v3/objects/contacts", times=1))
        emu.add_fault(Fault.error(503, path="/crm/v4/associations/*", times=1))
        emu.add_fault(Fault.secondly_limit(path="*/search", times=1))
        notices: list[str] = []
        result = _engine(emu, tmp_path, notices).run()
        assert result.status == "ok"
        statuses = [r.status for r in emu.requests]
        assert 429 in statuses and 503 in statuses
        assert sum("retry" in n for n in notices) == 2
        assert result.streams["contacts"].read == 150
        assert all(emu.token not in n for n in notices)


def test_errors_are_classified_without_the_token(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'err.db'}"
    with HubSpotEmulator() as emu:
        seed(emu, 20)
        bad = "pat-na1-00000000-dead-beef-0000-000000000000"
        out = CliRunner().invoke(cli, ["sync", "hubspot", "--base-url", emu.url, "--access-token", bad,
                                       "--db", db, "-q"])
        assert out.exit_code == 4 and "invalid or expired" in out.output and bad not in out.output
        limited = emu.add_token("pat-na1-limited", scopes=["crm.objects.contacts.read"])
        out = CliRunner().invoke(cli, ["sync", "hubspot", "--base-url", emu.url, "--access-token",
                                       limited, "--db", db, "-q"])
        assert out.exit_code == 4 and "scopes" in out.output and limited not in out.output
        emu.add_fault(Fault.daily_limit(path="/crm/v3/objects/deals"))
        out = sync(emu, db)
        assert out.exit_code == 5 and "daily" in out.output, out.output
        emu.clear_faults()
        out = sync(emu, db)  # resumes and finishes
        assert out.exit_code == 0, out.output


def test_a_checkpoint_among_the_archived_keeps_the_cursor_before_them() -> None:
    """The final ``since`` is saved only once the archived are read: a checkpoint taken
    while they are being read still names where the live records ended, so a run cut
    short there reads them again; the next run stores only those archived since (less
    an hour's margin for the two clocks)."""
    with HubSpotEmulator(rate_limits=RateLimits(enabled=False)) as emu:
        ids = seed(emu, 40)
        gone = ids["contacts"][:3]
        emu.advance(-2 * 3600)  # archived two hours ago: outside the margin for clock skew
        for contact in gone:
            emu.archive("contacts", contact)
        emu.advance(2 * 3600)
        connector = HubSpotConnector({"base_url": emu.url, "access_token": emu.token})
        stream = next(s for s in connector.streams() if s.name == "contacts")
        during: list[dict[str, Any]] = []
        records = []
        for record in stream.records(None):
            records.append(record)
            if getattr(record, "deleted", False):
                during.append(stream.checkpoint(record, None))
        final = stream.next_state(None)
        assert [r.remote_id for r in records if r.deleted] == gone
        assert final is not None and "since" in final and "mode" not in final
        assert during and all(state.get("mode") == "list" for state in during), during
        again = [r for r in stream.records(final) if r.deleted]
        assert again == []
        emu.archive("contacts", ids["contacts"][3])
        later = [r.remote_id for r in stream.records(final) if r.deleted]
        assert later == [ids["contacts"][3]]
