"""Secrets never leave crmlink: every command, run as a user would (a subprocess, with
``--debug -vv``), with known secrets in flags, environment variables and a config file,
against the emulators, succeeding and failing. The secrets must appear nowhere: stdout,
stderr (logs, tracebacks, error text), or any byte of the store (every table, run
records and skipped records included, and the write-ahead log)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmlink.testing.hubspot_emulator import Fault as HsFault
from crmlink.testing.hubspot_emulator import HubSpotEmulator, RateLimits
from crmlink.testing.hubspot_emulator.seed import seed
from crmlink.testing.salesforce_emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    SalesforceEmulator,
)
from tests.test_salesforce_connector import _jwt_keys

HS_TOKEN = "pat-na1-5ecre7-0000-4000-8000-5ecre7000001"


class Leaks:
    """Collects every output of the test's commands and checks them for secrets."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "secrets.db"
        self.secrets: set[str] = set()
        self.outputs: list[tuple[str, str]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESFORCE_", "HUBSPOT_"))}
        self.env.update({"CRMLINK_DB": f"sqlite:///{self.db}", "CRMLINK_RETRY_INITIAL": "0.01",
                         "CRMLINK_RETRY_MAXIMUM": "0.02", "CRMLINK_RETRY_ATTEMPTS": "2"})

    def run(self, *args: str, env: dict[str, str] | None = None, code: int | None = 0) -> str:
        done = subprocess.run([sys.executable, "-m", "crmlink", "--debug", "-vv", *args],
                              capture_output=True, text=True, timeout=120, env={**self.env, **(env or {})})
        output = done.stdout + done.stderr
        self.outputs.append((" ".join(args[:2]), output))
        if code is not None:
            assert done.returncode == code, output[-3000:]
        return output

    def check(self) -> None:
        assert self.secrets and all(len(s) >= 8 for s in self.secrets)
        for command, output in self.outputs:
            for secret in self.secrets:
                assert secret not in output, f"{command} printed a secret: ...{secret[:6]}"
        store = b"".join(p.read_bytes() for p in self.db.parent.glob(self.db.name + "*"))
        assert store, "the store was never written"
        for secret in self.secrets:
            assert secret.encode() not in store, f"the store holds a secret: ...{secret[:6]}"


@pytest.fixture
def sf(monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(tls=True) as emu:
        for i in range(30):
            emu.insert("Account", {"Name": f"Secretco {i}"})
        yield emu


def test_salesforce_every_auth_flow_flags_env_config_success_and_failure(sf: SalesforceEmulator,
                                                                         tmp_path: Path) -> None:
    leaks = Leaks(tmp_path)
    leaks.env["REQUESTS_CA_BUNDLE"] = sf.ca_path or ""
    key_path, public = _jwt_keys(tmp_path)
    sf.add_connected_app("3MVG9jwtSECRETS", "jwt-app-secret-unused", jwt_public_key=public)
    key_lines = [line for line in key_path.read_text().splitlines() if "PRIVATE KEY" not in line]
    leaks.secrets |= {DEFAULT_PASSWORD, DEFAULT_TOKEN, DEFAULT_CONSUMER_SECRET, sf.session_id, *key_lines[:3]}
    login = ["sync", "salesforce", "--login-url", sf.instance_url]
    password = ["--username", DEFAULT_USERNAME, "--password", DEFAULT_PASSWORD, "--security-token", DEFAULT_TOKEN]
    oauth = ["--consumer-key", DEFAULT_CONSUMER_KEY, "--consumer-secret", DEFAULT_CONSUMER_SECRET]
    leaks.run(*login, *password)                                          # SOAP login, in flags
    leaks.run(*login, *password, *oauth)                                  # OAuth password flow
    leaks.run(*login, *oauth)                                             # client credentials
    leaks.run(*login, "--consumer-key", "3MVG9jwtSECRETS", "--username", DEFAULT_USERNAME,
              "--private-key-file", str(key_path))                        # JWT bearer
    leaks.run("sync", "salesforce", "--instance-url", sf.instance_url, "--full",
              env={"SALESFORCE_SESSION_ID": sf.session_id})               # session id, in env
    config = tmp_path / "crmlink.toml"
    config.write_text(f'[sources.org]\nconnector = "salesforce"\nlogin_url = "{sf.instance_url}"\n'
                      f'username = "{DEFAULT_USERNAME}"\npassword = "{DEFAULT_PASSWORD}"\n'
                      f'security_token = "{DEFAULT_TOKEN}"\n')
    leaks.run("sync", "org", env={"CRMLINK_CONFIG": str(config)})          # in a config file
    # failures: the org rejects the password; the session id is refused; a 500 after retries
    wrong = "Wr0ng-Secret-Passw0rd"
    leaks.secrets.add(wrong)
    leaks.run(*login, "--username", DEFAULT_USERNAME, "--password", wrong, "--security-token", DEFAULT_TOKEN,
              code=None)
    expired = sf.session_id
    sf.expire_sessions()
    leaks.run("sync", "salesforce", "--instance-url", sf.instance_url, "--session-id", expired, code=None)
    from crmlink.testing.salesforce_emulator import Fault
    sf.add_fault(Fault.server_error(500, path_contains="/query", times=None))
    failed = leaks.run(*login, *password, code=None)
    assert "Traceback" in failed  # --debug shows it, redacted
    for command in (["status"], ["status", "--run", "1", "--json"], ["audit", "--format", "json"], ["ltc"],
                    ["plugins"]):
        leaks.run(*command, env={"SALESFORCE_PASSWORD": DEFAULT_PASSWORD,
                                 "SALESFORCE_SECURITY_TOKEN": DEFAULT_TOKEN}, code=None)
    leaks.check()


def test_salesforce_cli_session_success_renewal_and_failure(sf: SalesforceEmulator, tmp_path: Path) -> None:
    from crmlink.testing.salesforce_emulator import Fault
    from tests.sf_standin import StandIn

    leaks = Leaks(tmp_path)
    stand_in = StandIn(tmp_path / "bin", sf)
    refresh = stand_in.login("prod")
    leaks.env.update({"REQUESTS_CA_BUNDLE": sf.ca_path or "", "PATH": stand_in.path})
    leaks.run("sync", "salesforce", "--target-org", "prod")                 # in a flag
    sf.add_fault(Fault.expired_session(path_contains="/query", times=1))
    leaks.run("sync", "salesforce", "--full", env={"SALESFORCE_TARGET_ORG": "prod"})  # renewed once
    config = tmp_path / "crmlink.toml"
    config.write_text('[sources.org]\nconnector = "salesforce"\ntarget_org = "prod"\n')
    leaks.run("sync", "org", env={"CRMLINK_CONFIG": str(config)})          # a named source
    leaks.run("doctor", env={"CRMLINK_CONFIG": str(config)})
    sf.add_fault(Fault.expired_session(path_contains="/query", times=2))
    assert "Traceback" in leaks.run("sync", "org", "--full", env={"CRMLINK_CONFIG": str(config)}, code=None)
    sf.refresh_tokens.pop(refresh)                                           # the login was revoked
    leaks.run("sync", "salesforce", "--target-org", "prod", code=None)
    leaks.secrets |= {refresh, *sf.valid_session_ids}
    assert len(sf.valid_session_ids) >= 8  # every session the CLI handed out is checked
    leaks.check()


def test_secrets_stored_by_login_never_leak(sf: SalesforceEmulator, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from crmlink.cli import cli

    leaks = Leaks(tmp_path)  # the subprocesses share the test's secrets file (tests/conftest.py)
    leaks.env["REQUESTS_CA_BUNDLE"] = sf.ca_path or ""
    leaks.secrets |= {DEFAULT_PASSWORD, DEFAULT_TOKEN, "wrong-token"}
    config = tmp_path / "crmlink.toml"
    config.write_text(f'[sources.org]\nconnector = "salesforce"\nlogin_url = "{sf.instance_url}"\n'
                      f'username = "{DEFAULT_USERNAME}"\n')
    stored = CliRunner().invoke(cli, ["login", "org", "--config", str(config)],
                                input=f"{DEFAULT_PASSWORD}\n{DEFAULT_TOKEN}\n\n\n")
    assert stored.exit_code == 0, stored.output
    leaks.outputs.append(("login org", stored.output))
    leaks.run("sync", "org", "--config", str(config))
    leaks.run("doctor", "--config", str(config))
    leaks.run("sync", "org", "--config", str(config), "--full", env={"SALESFORCE_SECURITY_TOKEN": "wrong-token"},
              code=None)
    leaks.run("doctor", "--config", str(config), env={"SALESFORCE_SECURITY_TOKEN": "wrong-token"}, code=None)
    leaks.run("status", "--json")
    leaks.check()


def test_hubspot_token_oauth_env_config_success_and_failure(tmp_path: Path) -> None:
    leaks = Leaks(tmp_path)
    with HubSpotEmulator(rate_limits=RateLimits(burst=5000, search_per_second=500)) as emu:
        seed(emu, 40)
        emu.add_token(HS_TOKEN)
        leaks.secrets |= {HS_TOKEN, emu.client_secret, emu.refresh_token}
        base = ["sync", "hubspot", "--base-url", emu.url, "--rate-limit", "5000", "--search-rate", "500"]
        leaks.run(*base, "--access-token", HS_TOKEN)
        leaks.run(*base, env={"HUBSPOT_ACCESS_TOKEN": HS_TOKEN})
        leaks.run(*base, "--full", "--client-id", emu.client_id, "--client-secret", emu.client_secret,
                  "--refresh-token", emu.refresh_token)
        config = tmp_path / "crmlink.toml"
        config.write_text(f'[sources.portal]\nconnector = "hubspot"\nbase_url = "{emu.url}"\n'
                          f'access_token = "{HS_TOKEN}"\nrate_limit = 5000\nsearch_rate = 500\n')
        leaks.run("sync", "portal", env={"CRMLINK_CONFIG": str(config)})
        leaks.run("doctor", env={"CRMLINK_CONFIG": str(config)})
        emu.add_fault(HsFault.error(503, path="/crm/v3/objects/contacts"))
        failed = leaks.run(*base, "--access-token", HS_TOKEN, "--full", code=None)
        assert "Traceback" in failed
        emu.clear_faults()
        emu.access_tokens.discard(HS_TOKEN)  # the portal revoked it
        leaks.run(*base, "--access-token", HS_TOKEN, code=None)
        leaks.run(*base, "--client-id", emu.client_id, "--client-secret", "not-the-client-secret",
                  "--refresh-token", emu.refresh_token, code=None)
        leaks.secrets.add("not-the-client-secret")
    for command in (["status"], ["status", "--run", "5"], ["audit"], ["ltc", "--format", "json"], ["plugins"]):
        leaks.run(*command, env={"HUBSPOT_ACCESS_TOKEN": HS_TOKEN}, code=None)
    leaks.check()
