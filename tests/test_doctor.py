"""``crmlink doctor`` (and ``crmlink status --check``) against both emulators, through the
real client libraries: connect, what can be read, the API budget, freshness, what to fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli
from crmlink.testing.hubspot_emulator import HubSpotEmulator, RateLimits
from crmlink.testing.hubspot_emulator.seed import seed
from crmlink.testing.salesforce_emulator import (
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    SalesforceEmulator,
)
from tests.sf_standin import StandIn


@pytest.fixture
def orgs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SalesforceEmulator, HubSpotEmulator]]:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as sf, \
            HubSpotEmulator(rate_limits=RateLimits(burst=5000, search_per_second=500)) as hs:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", sf.ca_path or "")
        for name in ("SALESFORCE_PASSWORD", "SALESFORCE_SESSION_ID", "HUBSPOT_ACCESS_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        sf.insert("Account", {"Name": "Acme"})
        sf.add_field("Account", "Tier__c", "string")
        seed(hs, 10)
        yield sf, hs


def write_config(path: Path, sf: SalesforceEmulator, hs: HubSpotEmulator, *, token: str | None = None,
                 password: str = DEFAULT_PASSWORD, extra: str = "") -> Path:
    path.write_text(
        f'[sources.prod]\nconnector = "salesforce"\nlogin_url = "{sf.instance_url}"\n'
        f'username = "{DEFAULT_USERNAME}"\npassword = "{password}"\nsecurity_token = "{DEFAULT_TOKEN}"\n'
        f'tier_field = "Tier__c"\n{extra}'
        f'[sources.portal]\nconnector = "hubspot"\nbase_url = "{hs.url}"\n'
        f'access_token = "{token or hs.token}"\nrate_limit = 5000\nsearch_rate = 500\n')
    return path


def doctor(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["doctor", "--config", str(config), *args])


def checks(result: Result) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """source -> topic -> checks, from --json."""
    document = json.loads(result.stdout)
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for source in document["sources"]:
        for check in source["checks"]:
            found.setdefault(source["name"], {}).setdefault(check["topic"], []).append(check)
    return found


def test_healthy_sources_show_access_budget_and_freshness(orgs: Any, tmp_path: Path) -> None:
    sf, hs = orgs
    config = write_config(tmp_path / "crmlink.toml", sf, hs)
    assert CliRunner().invoke(cli, ["sync", "prod", "--config", str(config), "-q"]).exit_code == 0
    sf.api_limit = (1000, 15000)
    result = doctor(config)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "prod (salesforce)" in text and "portal (hubspot)" in text
    assert "logged in with username, password and security token" in text
    assert "14 objects: User, Account, Contact" in text
    used, total = sf.api_limit
    assert f"{total - used:,} of {total:,} API requests left today" in text  # /limits, read live
    assert "15 of 15: owners, companies, contacts, deals" in text
    assert f"of {RateLimits().daily:,} API requests left today" in text  # HubSpot's daily headers
    assert "last synced" in text and "never synced" in text  # prod synced, portal not yet
    assert "What to fix:" in text and "portal: run: crmlink sync portal" in text
    status = CliRunner().invoke(cli, ["status", "--check", "--config", str(config)])
    assert status.exit_code == 0 and "15 of 15" in status.stdout


def test_what_cannot_be_read_is_named_with_the_fix(orgs: Any, tmp_path: Path) -> None:
    sf, hs = orgs
    limited = hs.add_token("pat-na1-limited-0000", scopes=["crm.objects.owners.read", "crm.objects.companies.read",
                                                           "crm.schemas.companies.read"])
    sf.hide_field("Account", "Tier__c")  # field-level security hides the configured tier field
    sf.hide_field("Contact", "Title")
    sf.api_limit = (14_900, 15_000)
    config = write_config(tmp_path / "crmlink.toml", sf, hs, token=limited)
    result = doctor(config, "--json")
    assert result.exit_code == 4, result.output
    found = checks(result)
    reads = {c["status"]: c for c in found["prod"]["read"]}
    assert "Tier__c" in reads["fail"]["detail"] and "field-level security" in reads["fail"]["fix"]
    assert "Title" in reads["warn"]["detail"]
    assert found["prod"]["API budget"][0]["status"] == "warn"
    used, total = sf.api_limit  # the doctor's own requests count too
    assert f"{total - used} of 15,000" in found["prod"]["API budget"][0]["detail"] and total - used < 100
    refused = [c for c in found["portal"]["read"] if c["status"] == "fail"]
    assert {c["detail"].split(":")[0] for c in refused} >= {"contacts", "deals", "calls", "deal pipelines"}
    assert any("crm.objects.deals.read" in c["detail"] for c in refused)
    assert found["portal"]["connect"][0]["status"] == "ok"


def test_a_source_that_cannot_connect_fails_with_one_sentence(orgs: Any, tmp_path: Path) -> None:
    sf, hs = orgs
    wrong = "Wrong-Passw0rd-Doctor"
    revoked = "pat-na1-revoked-0000-0000"
    config = write_config(tmp_path / "crmlink.toml", sf, hs, token=revoked, password=wrong)
    result = doctor(config)
    assert result.exit_code == 4, result.output
    lines = result.stdout.splitlines()
    assert any(line.strip().startswith("FAIL  connect") and "Reset My Security Token" in line for line in lines)
    assert any(line.strip().startswith("FAIL  connect") and "invalid or expired" in line for line in lines)
    assert wrong not in result.output and revoked not in result.output and DEFAULT_TOKEN not in result.output
    missing = doctor(config, "nowhere")
    assert missing.exit_code == 4 and "no source named 'nowhere'" in missing.stdout


def test_doctor_checks_a_salesforce_cli_login(orgs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf, hs = orgs
    stand_in = StandIn(tmp_path / "bin", sf)
    stand_in.login("prod")
    monkeypatch.setenv("PATH", stand_in.path)
    config = tmp_path / "crmlink.toml"
    config.write_text('[sources.cli]\nconnector = "salesforce"\ntarget_org = "prod"\n'
                      '[sources.gone]\nconnector = "salesforce"\ntarget_org = "staging"\n')
    result = doctor(config)
    assert result.exit_code == 4, result.output
    assert "logged in with the Salesforce CLI login 'prod'" in result.stdout
    assert "knows no org 'staging'" in result.stdout
    for session in sf.valid_session_ids:
        assert session not in result.output


def test_a_failed_last_run_and_store_only_sources_are_reported(orgs: Any, tmp_path: Path) -> None:
    sf, hs = orgs
    config = write_config(tmp_path / "crmlink.toml", sf, hs)
    sample = Path(__file__).parent.parent / "examples" / "sample"
    assert CliRunner().invoke(cli, ["sync", "csv", str(sample), "-q"]).exit_code == 0
    assert CliRunner().invoke(cli, ["sync", "prod", "--config", str(config), "-q"]).exit_code == 0
    hs.access_tokens.discard(hs.token)
    assert CliRunner().invoke(cli, ["sync", "portal", "--config", str(config), "-q"]).exit_code == 4
    result = doctor(config, "--json")
    found = checks(result)
    assert found["csv"]["freshness"][0]["status"] == "ok"  # in the store, not in the config file
    assert found["portal"]["freshness"][0]["status"] == "warn"
    assert "never synced" in found["portal"]["freshness"][0]["detail"]
    assert result.exit_code == 4  # the portal's token was revoked: it cannot connect


def test_doctor_creates_no_store(tmp_path: Path) -> None:
    config = tmp_path / "crmlink.toml"
    config.write_text("")
    db = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["doctor", "--config", str(config), "--db", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    assert "not created yet" in result.stdout and "No named sources" in result.stdout
    assert not db.exists()
