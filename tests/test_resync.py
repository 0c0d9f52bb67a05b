"""A sync that brings nothing new counts nothing as updated, on SQLite and PostgreSQL: the
bundled sample imported twice, and incremental API syncs that re-read their boundary
record and snapshot streams (Salesforce stages, HubSpot archived lists) against the
emulators."""

from __future__ import annotations

import csv
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli
from crmlink.core.store import Store
from crmlink.testing.hubspot_emulator import HubSpotEmulator, RateLimits
from crmlink.testing.hubspot_emulator.seed import seed as seed_hubspot
from crmlink.testing.salesforce_emulator import SalesforceEmulator
from tests.conftest import SAMPLE

COLUMNS = ("read", "created", "updated", "deleted", "skipped")


def table(result: Result) -> dict[str, dict[str, int]]:
    """The summary table: stream -> column -> number."""
    assert result.exit_code == 0, result.output
    rows = re.findall(r"^\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", result.stdout, re.M)
    return {name: dict(zip(COLUMNS, map(int, nums))) for name, *nums in rows}


def sync(*args: str) -> dict[str, dict[str, int]]:
    return table(CliRunner().invoke(cli, ["sync", *args]))


def test_the_unchanged_sample_synced_again_counts_nothing_updated(tmp_path: Path, store_url: str) -> None:
    export = tmp_path / "export"
    shutil.copytree(SAMPLE, export)
    first = sync("csv", str(export))
    assert first["interactions"]["created"] == 13202 and first["leads"]["created"] == 25
    again = sync("csv", str(export))
    for name, counts in again.items():
        assert counts["read"] == first[name]["read"], name
        assert (counts["created"], counts["updated"], counts["deleted"]) == (0, 0, 0), (name, counts)

    path = export / "interactions.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    changed, removed = rows[7]["id"], rows[8]["id"]
    rows[7]["subject"] = "Renewal workshop, moved to Thursday"
    del rows[8]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    third = sync("csv", str(export))
    assert third["interactions"]["updated"] == 1 and third["interactions"]["deleted"] == 1
    assert all(c["updated"] == c["deleted"] == 0 for n, c in third.items() if n != "interactions")
    stored = {r.remote_id: r for r in Store().records("interaction", include_deleted=True)}
    assert stored[changed].subject == "Renewal workshop, moved to Thursday"
    assert stored[removed].deleted
    # a snapshot stream still marks deletions after unchanged rows were skipped, not rewritten
    fourth = sync("csv", str(export))
    assert all(c["updated"] == c["deleted"] == 0 for c in fourth.values())
    assert sum(r.deleted for r in Store().records("interaction", include_deleted=True)) == 1


@pytest.fixture
def salesforce(monkeypatch: pytest.MonkeyPatch) -> SalesforceEmulator:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path or "")
        yield emu


def test_an_incremental_salesforce_sync_counts_only_real_changes(salesforce: SalesforceEmulator,
                                                                 store_url: str) -> None:
    emu = salesforce
    accounts = [emu.insert("Account", {"Name": f"Account {i}"}) for i in range(5)]
    contacts = [emu.insert("Contact", {"LastName": f"Buyer {i}", "AccountId": accounts[i]}) for i in range(5)]
    opportunity = emu.insert("Opportunity", {"Name": "Core refresh", "AccountId": accounts[0],
                                             "StageName": "Prospecting", "CloseDate": "2027-01-31"})
    args = ("salesforce", "--instance-url", emu.instance_url, "--session-id", emu.session_id)
    first = sync(*args)
    assert first["accounts"]["created"] == 5 and first["stages"]["created"] > 0
    emu.advance(3600)
    again = sync(*args)
    # each stream re-reads the record at its saved cursor (an inclusive bound) and the whole
    # stage table: all of it was stored already
    assert again["accounts"]["read"] >= 1 and again["stages"]["read"] == first["stages"]["read"]
    assert all(c["created"] == c["updated"] == c["deleted"] == 0 for c in again.values()), again
    emu.advance(3600)
    emu.update("Account", accounts[2], {"Industry": "Energy"})
    emu.update("Opportunity", opportunity, {"StageName": "Qualification"})
    emu.delete("Contact", contacts[4])
    third = sync(*args)
    assert third["accounts"]["updated"] == 1 and third["opportunities"]["updated"] == 1
    assert third["contacts"]["deleted"] == 1 and third["stage_changes"]["created"] >= 1
    assert third["stages"]["updated"] == 0 and third["users"]["updated"] == 0


def test_an_incremental_hubspot_sync_counts_only_real_changes(store_url: str) -> None:
    with HubSpotEmulator(rate_limits=RateLimits(burst=5000, search_per_second=500)) as emu:
        ids = seed_hubspot(emu, 30)
        emu.archive("contacts", ids["contacts"][-1])
        args = ("hubspot", "--base-url", emu.url, "--access-token", emu.token, "--rate-limit", "5000",
                "--search-rate", "500", "-q")
        first = sync(*args)
        assert first["contacts"]["deleted"] == 1
        again = sync(*args)
        assert all(c["created"] == c["updated"] == c["deleted"] == 0 for c in again.values()), again
        emu.update("companies", ids["companies"][0], {"industry": "TELECOMMUNICATIONS"})
        emu.archive("contacts", ids["contacts"][3])
        third = sync(*args)
        assert third["companies"]["updated"] == 1, third
        assert third["contacts"]["deleted"] == 1  # the contact archived before is not counted again
        assert all(c["updated"] == 0 for n, c in third.items() if n not in ("companies", "contacts"))
