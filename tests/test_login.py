"""``crmlink login NAME`` stores a named source's secrets in the keyring; sync and doctor
read them from there when no flag, environment variable or config file gives them.

Tests run with ``PYTHON_KEYRING_BACKEND=crmlink.core.keystore.PrivateFileKeyring`` and a
file in the test's folder (tests/conftest.py), so no developer's keyring is touched."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from click.testing import CliRunner, Result
from keyring.backends import fail
from keyring.errors import PasswordDeleteError

from crmlink.cli import cli
from crmlink.core import keystore
from crmlink.testing.hubspot_emulator import HubSpotEmulator, RateLimits
from crmlink.testing.hubspot_emulator.seed import seed

TOKEN = "pat-na1-10910000-0000-4000-8000-00000000beef"


@pytest.fixture
def portal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HubSpotEmulator, Path]]:
    for name in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with HubSpotEmulator(rate_limits=RateLimits(burst=5000, search_per_second=500)) as emu:
        seed(emu, 20)
        emu.add_token(TOKEN)
        config = tmp_path / "crmlink.toml"
        config.write_text(f'[sources.portal]\nconnector = "hubspot"\nbase_url = "{emu.url}"\n'
                          'rate_limit = 5000\nsearch_rate = 500\n')
        yield emu, config


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, env=env)


def test_login_stores_the_token_privately_and_sync_uses_it(portal: tuple[HubSpotEmulator, Path]) -> None:
    emu, config = portal
    assert run("sync", "portal", "--config", str(config), "-q").exit_code == 2  # no token anywhere
    stored = run("login", "portal", "--config", str(config), input=f"{TOKEN}\n\n\n")
    assert stored.exit_code == 0, stored.output
    assert TOKEN not in stored.output  # hidden input: never echoed
    assert "Stored access_token of source 'portal'" in stored.stdout
    path = keystore.secrets_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert keyring.get_keyring().get_password("crmlink:portal", "access_token") == TOKEN

    synced = run("sync", "portal", "--config", str(config), "-q")
    assert synced.exit_code == 0, synced.output
    assert "contacts" in synced.stdout and TOKEN not in synced.output

    # an environment variable wins over the keyring (a revoked token: refused, exit 4)
    other = run("sync", "portal", "--config", str(config), "-q",
                env={"HUBSPOT_ACCESS_TOKEN": "pat-na1-00000000-0000-4000-8000-0000000dead0"})
    assert other.exit_code == 4 and "invalid or expired" in other.output

    forgotten = run("login", "portal", "--config", str(config), "--forget")
    assert forgotten.exit_code == 0 and "access_token" in forgotten.stdout
    assert run("sync", "portal", "--config", str(config), "-q").exit_code == 2


def test_a_secrets_file_others_can_read_is_refused(portal: tuple[HubSpotEmulator, Path]) -> None:
    _, config = portal
    assert run("login", "portal", "--config", str(config), "--setting", "access_token",
               input=f"{TOKEN}\n").exit_code == 0
    path = keystore.secrets_file()
    path.chmod(0o644)
    refused = run("sync", "portal", "--config", str(config), "-q")
    assert refused.exit_code == 2, refused.output
    assert f"chmod 600 {path}" in refused.output and TOKEN not in refused.output


def test_login_errors_are_usage_errors(portal: tuple[HubSpotEmulator, Path]) -> None:
    _, config = portal
    unknown = run("login", "nowhere", "--config", str(config))
    assert unknown.exit_code == 2 and "no source named 'nowhere'" in unknown.output
    wrong = run("login", "portal", "--config", str(config), "--setting", "base_url")
    assert wrong.exit_code == 2 and "no secret setting 'base_url'" in wrong.output
    assert "access_token" in wrong.output


def test_without_an_os_keyring_the_private_file_is_used(tmp_path: Path) -> None:
    chosen = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # what a headless server has
    try:
        store = keystore.backend()
        assert isinstance(store, keystore.PrivateFileKeyring)
        keystore.save("prod", {"password": "s3cret-Passw0rd"})
        assert keystore.load("prod", ["password", "security_token"]) == {"password": "s3cret-Passw0rd"}
    finally:
        keyring.set_keyring(chosen)
    assert oct(keystore.secrets_file().stat().st_mode & 0o777) == "0o600"


def test_the_keyring_the_library_chooses_is_used(tmp_path: Path) -> None:
    """A backend registered the keyring library's way receives the secrets."""

    class Memory(keyring.backend.KeyringBackend):
        priority = 5  # type: ignore[assignment]
        values: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.values.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.values[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            if self.values.pop((service, username), None) is None:
                raise PasswordDeleteError(username)

    chosen = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        keystore.save("prod", {"password": "s3cret-Passw0rd", "security_token": "T0ken-0001"})
        assert Memory.values == {("crmlink:prod", "password"): "s3cret-Passw0rd",
                                 ("crmlink:prod", "security_token"): "T0ken-0001"}
        assert keystore.forget("prod", ["password", "session_id"]) == ["password"]
    finally:
        keyring.set_keyring(chosen)
    assert not os.path.exists(keystore.secrets_file())  # nothing went to the file
