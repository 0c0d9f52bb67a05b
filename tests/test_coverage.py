"""Honest audits on sparse data: exports as real CRMs hold them (accounts and deals only;
contacts but no activities; activities naming nobody), audited end to end through the
CLI on a real SQLite store. "No data" must never read as "bad relationship"."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample"
AS_OF = "2026-11-20"
LAYER_PREFIXES = ("KEY_", "BROAD_", "ORG_", "OPPONENT_", "RANK_", "PERSONALIZED_", "RELATIONSHIP_")
DEAL_RELATIONSHIP_CODES = {"LTC_NO_POWER", "LTC_SINGLE_THREADED", "LTC_NO_TECHNICAL_EVALUATOR",
                           "LTC_NO_ECONOMIC_BUYER", "LTC_NO_PROCUREMENT"}

ACCOUNTS = [  # id, name, tier
    ("A1", "Pinnacle Bank", "S"), ("A2", "Northwind Freight", "S"), ("A3", "Blue Ridge Power", "A"),
    ("A4", "Kestrel Foods", "A"), ("A5", "Orchard Clinics", ""), ("A6", "东方港务 Eastern Port", ""),
]
DEALS = [  # id, account, amount, stage, closed, won
    ("O1", "A1", "900000", "Proposal/Price Quote", "false", "false"),
    ("O2", "A1", "150000", "Negotiation/Review", "false", "false"),
    ("O3", "A2", "2500000", "Qualification", "false", "false"),
    ("O4", "A3", "40000", "Closed Won", "true", "true"),
    ("O5", "A5", "70000", "Needs Analysis", "false", "false"),
]


def write(folder: Path, name: str, header: list[str], rows: list[tuple[Any, ...]]) -> None:
    with (folder / name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def accounts_and_deals(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write(folder, "accounts.csv", ["id", "name", "tier"], ACCOUNTS)
    write(folder, "opportunities.csv", ["id", "account_id", "name", "amount", "currency", "stage", "is_closed",
                                        "is_won", "created_at", "stage_entered_at"],
          [(d, a, f"Deal {d}", amount, "USD", stage, closed, won, "2026-09-01T00:00:00Z", "2026-11-10T00:00:00Z")
           for d, a, amount, stage, closed, won in DEALS])
    return folder


def with_contacts(folder: Path) -> Path:
    accounts_and_deals(folder)
    write(folder, "users.csv", ["id", "name", "email", "team_role", "active"],
          [("U1", "Lena Park", "lena@vendor.example", "AR", "true"), ("U2", "Omar Haddad", "omar@vendor.example", "SR", "true")])
    write(folder, "contacts.csv", ["id", "account_id", "name", "title"],
          [(f"C{a}{i}", a, f"Person {a}{i}", title) for a, _, _ in ACCOUNTS
           for i, title in enumerate(("Chief Information Officer", "Network Engineer", "Procurement Manager"))])
    return folder


def audit(runner: CliRunner, folder: Path, *args: str) -> Result:
    return runner.invoke(cli, ["audit", str(folder), "--as-of", AS_OF, *args])


def audit_json(runner: CliRunner, folder: Path) -> dict[str, Any]:
    result = audit(runner, folder, "--format", "json")
    assert result.exit_code == 0, result.output[-3000:]
    return json.loads(result.stdout)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CRMLINK_DB", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.delenv("CRMLINK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def codes(entry: dict[str, Any]) -> list[str]:
    return [f["code"] for f in entry["findings"]]


def test_accounts_and_deals_only(runner: CliRunner, tmp_path: Path) -> None:
    doc = audit_json(runner, accounts_and_deals(tmp_path / "export"))
    for account in doc["accounts"]:
        assert account["coverage"]["assessment"] == "not_assessable"
        assert set(account["scores"].values()) == {None}, account["name"]
        assert codes(account) == ["DATA_NO_CONTACTS"], account["name"]
        finding = account["findings"][0]
        assert finding["severity"] in ("low", "info")
        assert f"no contact is recorded for {account['name']}" in finding["message"]
        assert account["coverage"]["gaps"] == ["no_contacts", "no_activity"]
    # the deals are still tagged, but not judged on people the CRM does not record
    stages = {o["remote_id"]: o["ltc_stage"] for o in doc["opportunities"]}
    assert stages == {"O1": "bid", "O2": "negotiate", "O3": "validate", "O4": "contract", "O5": "guide_bid"}
    assert not {c for o in doc["opportunities"] for c in codes(o)} & DEAL_RELATIONSHIP_CODES
    portfolio = {f["code"]: f for f in doc["portfolio_findings"]}
    assert set(portfolio) == {"DATA_NO_CONTACT_ROLES"}
    assert portfolio["DATA_NO_CONTACT_ROLES"]["evidence"]["open_deals_skipped"] == {"csv": ["O1", "O2", "O3", "O5"]}
    coverage = doc["summary"]["coverage"]
    assert coverage["accounts"] == {"assessable": 0, "partial": 0, "not_assessable": 6}
    assert coverage["contacts"] == 0 and coverage["interactions"] == 0
    assert coverage["linked_to_contact_share"] is None and coverage["titled_share"] is None
    assert coverage["opportunities"] == 5 and coverage["opportunities_with_contact_roles"] == 0
    # fix first: the most open pipeline and the least evidence
    assert [a["remote_id"] for a in coverage["fix_first"]] == ["A2", "A1", "A5", "A3", "A4"]
    assert coverage["fix_first"][0]["open_pipeline"] == 2500000.0


def test_missing_data_does_not_fail_ci_unless_asked(runner: CliRunner, tmp_path: Path) -> None:
    folder = accounts_and_deals(tmp_path / "export")
    assert audit(runner, folder, "--fail-on", "info", "--format", "json").exit_code == 0
    refused = audit(runner, folder, "--fail-on-coverage", "not_assessable", "--format", "json")
    assert refused.exit_code == 1
    assert audit(runner, folder, "--fail-on-coverage", "partial", "--format", "json").exit_code == 1


def test_every_output_starts_with_the_coverage_and_shows_no_score_as_a_dash(runner: CliRunner,
                                                                            tmp_path: Path) -> None:
    folder = accounts_and_deals(tmp_path / "export")
    table = audit(runner, folder)
    assert table.exit_code == 0, table.output
    head = table.stdout.splitlines()[:8]
    assert any("Data coverage: 0 of 6 accounts assessable" in line for line in head), head
    assert any(line.startswith("Fix first:") and "Northwind Freight" in line for line in head), head
    row = next(line for line in table.stdout.splitlines() if "Pinnacle Bank" in line and "DATA_" in line)
    assert "–" in row and " 0 " not in row
    markdown = audit(runner, folder, "--format", "markdown")
    assert "## Data coverage" in markdown.stdout.split("## Accounts")[0]
    assert "| – |" in markdown.stdout


def test_contacts_but_no_activity_is_dormant_or_unrecorded(runner: CliRunner, tmp_path: Path) -> None:
    doc = audit_json(runner, with_contacts(tmp_path / "export"))
    for account in doc["accounts"]:
        assert codes(account) == ["DATA_NO_ACTIVITY"], account["name"]
        assert "dormant or unrecorded" in account["findings"][0]["message"]
        assert account["coverage"]["contacts"] == 3 and account["coverage"]["titled_contacts"] == 3
    assert doc["summary"]["coverage"]["titled_share"] == 1.0
    assert doc["summary"]["coverage"]["accounts"]["not_assessable"] == 6


def test_activity_that_names_no_contact(runner: CliRunner, tmp_path: Path) -> None:
    folder = with_contacts(tmp_path / "export")
    write(folder, "interactions.csv", ["id", "account_id", "occurred_at", "kind", "user_ids", "contact_ids"],
          [(f"I{a}{w}", a, f"2026-{(w % 10) + 1:02d}-1{w % 9}T10:00:00Z", "call", "U1", "")
           for a, _, _ in ACCOUNTS for w in range(12)])
    doc = audit_json(runner, folder)
    for account in doc["accounts"]:
        assert codes(account) == ["DATA_UNLINKED_ACTIVITY"], account["name"]
        assert account["coverage"]["interactions"] == 12 and account["coverage"]["interactions_paired"] == 0
    coverage = doc["summary"]["coverage"]
    assert coverage["linked_to_contact_share"] == 0.0 and coverage["linked_to_our_people_share"] == 1.0


def test_well_documented_accounts_keep_their_scores_beside_sparse_ones(runner: CliRunner,
                                                                         tmp_path: Path) -> None:
    alone = audit_json(runner, SAMPLE)
    mixed_folder = tmp_path / "mixed"
    shutil.copytree(SAMPLE, mixed_folder)
    with (mixed_folder / "accounts.csv").open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for rid, name, tier in ACCOUNTS:
            writer.writerow([f"X-{rid}", name, "", "", tier, "", "", "", ""])
    mixed = audit_json(runner, mixed_folder)
    kept = {a["remote_id"]: a for a in mixed["accounts"]}
    for account in alone["accounts"]:
        other = kept[account["remote_id"]]
        for field in ("scores", "previous_scores", "score_evidence", "personalization", "findings",
                      "relationship_map", "coverage"):
            assert other[field] == account[field], (account["name"], field)
    for rid, _, _ in ACCOUNTS:
        assert codes(kept[f"X-{rid}"]) == ["DATA_NO_CONTACTS"]


def test_the_bundled_sample_is_fully_assessable(runner: CliRunner) -> None:
    """The sample's scores and findings are untouched by the evidence rules: every account
    has evidence for every layer, so no layer is left unscored and no gap is reported."""
    doc = audit_json(runner, SAMPLE)
    assert doc["summary"]["coverage"]["accounts"]["assessable"] == len(doc["accounts"]) == 50
    for account in doc["accounts"]:
        assert None not in account["scores"].values()
        assert account["coverage"]["gaps"] == []
        assert not [c for c in codes(account) if c.startswith("DATA_") and c != "DATA_QUALITY"]
    assert doc["summary"]["coverage"]["linked_to_contact_share"] > 0.5


def test_no_layer_finding_without_evidence_anywhere(runner: CliRunner, tmp_path: Path) -> None:
    for folder in (accounts_and_deals(tmp_path / "a"), with_contacts(tmp_path / "b")):
        doc = audit_json(runner, folder)
        alarms = [c for a in doc["accounts"] for c in codes(a) if c.startswith(LAYER_PREFIXES)]
        assert alarms == []
        assert not [f for a in doc["accounts"] for f in a["findings"] if f["severity"] in ("high", "critical")]


def test_real_salesforce_sample_data_end_to_end(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real trailheadapps sample orgs (tests/data/realdata, CC0: accounts, contacts and
    deals, no activities, no contact roles) seeded into the Salesforce emulator and synced
    with simple-salesforce: every account is reported as a data gap, none as a bad
    relationship, and the deals keep their LTC stages."""
    from datetime import datetime, timedelta, timezone

    from crmlink.testing.salesforce_emulator import SalesforceEmulator
    from tests.test_ltc_realdata import LEADS, PLANS, REALDATA

    monkeypatch.setenv("CRMLINK_DB", f"sqlite:///{tmp_path / 'real.db'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
        for plan in PLANS:
            emu.seed_plan(REALDATA / plan)
        emu.seed_tree_json(LEADS)
        synced = runner.invoke(cli, ["sync", "salesforce", "--instance-url", emu.instance_url,
                                     "--session-id", emu.session_id])
        assert synced.exit_code == 0, synced.output
    result = runner.invoke(cli, ["audit", "--format", "json", "--fail-on", "medium"])
    assert result.exit_code == 0, result.output[-3000:]   # no medium or worse: data gaps are low at most
    doc = json.loads(result.stdout)
    accounts = doc["accounts"]
    assert len(accounts) >= 60
    by_code: dict[str, int] = {}
    for account in accounts:
        assert account["coverage"]["assessment"] == "not_assessable"
        assert set(account["scores"].values()) == {None}
        assert len(account["findings"]) == 1, (account["name"], codes(account))
        code = account["findings"][0]["code"]
        by_code[code] = by_code.get(code, 0) + 1
        expected = "DATA_NO_ACTIVITY" if account["coverage"]["contacts"] else "DATA_NO_CONTACTS"
        assert code == expected, account["name"]
    assert by_code["DATA_NO_ACTIVITY"] > 0 and by_code["DATA_NO_CONTACTS"] > 0
    coverage = doc["summary"]["coverage"]
    assert coverage["accounts"]["not_assessable"] == len(accounts)
    assert coverage["contacts"] > 100 and coverage["interactions"] == 0
    assert {f["code"] for f in doc["portfolio_findings"]} == {"DATA_NO_CONTACT_ROLES"}
    assert not {c for o in doc["opportunities"] for c in codes(o)} & DEAL_RELATIONSHIP_CODES
    assert {o["ltc_stage"] for o in doc["opportunities"]} > {"validate", "contract", "lost"}
