"""``crmlink sync salesforce --target-org ALIAS``: the Salesforce CLI's session, through a
stand-in ``sf`` on PATH, against the Salesforce emulator with the real simple-salesforce."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli
from crmlink.testing.salesforce_emulator import Fault, SalesforceEmulator
from tests.sf_standin import StandIn


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as emulator:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path or "")
        for name in ("SALESFORCE_SESSION_ID", "SALESFORCE_USERNAME", "SALESFORCE_PASSWORD",
                     "SALESFORCE_TARGET_ORG"):
            monkeypatch.delenv(name, raising=False)
        for i in range(3):
            emulator.insert("Account", {"Name": f"Cli Account {i}"})
        yield emulator


@pytest.fixture
def sf(emu: SalesforceEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    stand_in = StandIn(tmp_path / "bin", emu)
    monkeypatch.setenv("PATH", stand_in.path)
    return stand_in


def sync(*args: str) -> Result:
    return CliRunner().invoke(cli, ["sync", "salesforce", *args])


def accounts_read(result: Result) -> int:
    found = re.search(r"^\s+accounts\s+(\d+)", result.stdout, re.M)
    assert found, result.output
    return int(found.group(1))


def test_target_org_uses_the_cli_session_and_keeps_its_token_out_of_output(
        emu: SalesforceEmulator, sf: StandIn) -> None:
    sf.login("prod")
    result = sync("--target-org", "prod")
    assert result.exit_code == 0, result.output
    assert accounts_read(result) == 3
    # recent CLIs redact the token in 'org display': it came from show-access-token
    assert sf.calls() == ["org display --target-org prod --json",
                          "org auth show-access-token --target-org prod --json"]
    for session in emu.valid_session_ids:
        assert session not in result.output


def test_an_older_cli_that_shows_the_token_needs_one_command(emu: SalesforceEmulator, sf: StandIn) -> None:
    sf.login("prod")
    sf.state["redact"] = False
    sf.save()
    result = sync("--target-org", "prod")
    assert result.exit_code == 0, result.output
    assert sf.calls() == ["org display --target-org prod --json"]


def test_an_expired_session_is_renewed_through_the_cli_once(emu: SalesforceEmulator, sf: StandIn,
                                                           tmp_path: Path) -> None:
    sf.login("prod")
    config = tmp_path / "crmlink.toml"
    config.write_text('[sources.prod]\nconnector = "salesforce"\ntarget_org = "prod"\n')
    assert CliRunner().invoke(cli, ["sync", "prod", "--config", str(config)]).exit_code == 0
    # the session expires in the middle of the next run: the first query is refused
    emu.add_fault(Fault.expired_session(path_contains="/query", times=1))
    emu.insert("Account", {"Name": "Added later"})
    calls = len(sf.calls())
    emu.reset_log()
    result = CliRunner().invoke(cli, ["sync", "prod", "--config", str(config), "--full"])
    assert result.exit_code == 0, result.output
    assert accounts_read(result) == 4
    statuses = [r.status for r in emu.requests]
    assert statuses.count(401) == 1
    assert len(sf.calls()) == calls + 4  # the login at the start, and one renewal
    refused = statuses.index(401)
    before = emu.requests[refused].headers.get("authorization")
    after = next(r.headers.get("authorization") for r in emu.requests[refused + 1:]
                 if r.headers.get("authorization"))
    assert before and after and before != after  # the query was repeated with the new session

    # a session refused again right after the CLI renewed it: one sentence, exit 4
    emu.add_fault(Fault.expired_session(path_contains="/query", times=2))
    result = CliRunner().invoke(cli, ["sync", "prod", "--config", str(config), "--full"])
    assert result.exit_code == 4, result.output
    assert "the Salesforce CLI renewed" in result.output and "sf org login web" in result.output


def test_an_unknown_alias_is_one_clear_usage_error(sf: StandIn) -> None:
    sf.login("prod")
    result = sync("--target-org", "staging")
    assert result.exit_code == 2, result.output
    assert "knows no org 'staging'" in result.output and "sf org login web --alias staging" in result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1


def test_a_revoked_cli_login_is_refused_with_exit_4(emu: SalesforceEmulator, sf: StandIn) -> None:
    refresh = sf.login("prod")
    emu.refresh_tokens.pop(refresh)  # an admin revoked the CLI's access in Setup
    result = sync("--target-org", "prod")
    assert result.exit_code == 4, result.output
    assert "RefreshTokenAuthError" in result.output and "sf org login web --alias prod" in result.output
    assert refresh not in result.output


def test_a_broken_or_missing_cli(sf: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    sf.login("prod")
    sf.state["broken"] = True
    sf.save()
    broken = sync("--target-org", "prod")
    assert broken.exit_code == 4 and "answered with no JSON" in broken.output, broken.output
    monkeypatch.setenv("PATH", str(sf.folder.parent / "nowhere"))
    missing = sync("--target-org", "prod")
    assert missing.exit_code == 2, missing.output
    assert "'sf' is not on PATH" in missing.output and "sf org login web" in missing.output


def test_the_cli_session_is_a_secret_the_host_redacts(emu: SalesforceEmulator, sf: StandIn) -> None:
    from crmlink.core.redact import Redactor
    from crmlink.plugins.salesforce import SalesforceConnector

    sf.login("prod")
    connector = SalesforceConnector({"target_org": "prod"})
    redact = Redactor(connector.secrets)  # built before the login, as the sync engine does
    assert connector.secrets() == []
    token = connector.client.sf.session_id
    assert token in emu.valid_session_ids
    assert redact(f"header Authorization: Bearer {token}") == "header Authorization: Bearer ********"
