"""Salesforce faults, end to end: the real simple-salesforce against the emulator (TLS)
through ``crmlink sync salesforce``. Each fault either is retried and the store ends up
exactly as the org (no duplicates, nothing missing, soft deletes applied), or stops the run
with one clear error line, and the next run completes it. Faults hit the second page of
the accounts query (``nextRecordsUrl`` ends in ``-200``) on the full load and again on an
incremental run that has to page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli
from crmlink.core.store import Store
from crmlink.testing.salesforce_emulator import (
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    Fault,
    SalesforceEmulator,
)
from tests.faults.common import assert_one_error_line, fast_retries, retries_shown, stored

PAGE2 = "-200"  # the second page of a query with 200 rows per page
ENTITIES = {"Account": "account", "Contact": "contact"}


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    fast_retries(monkeypatch)
    for name in ("SALESFORCE_SESSION_ID", "SALESFORCE_USERNAME", "SALESFORCE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=0.01) as emulator:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)
        accounts = [emulator.insert("Account", {"Name": f"Faultco {i}"}) for i in range(260)]
        for i in range(60):
            emulator.insert("Contact", {"LastName": f"Person {i}", "AccountId": accounts[i]})
        emulator.delete("Account", accounts[-1])
        yield emulator


def sync(emu: SalesforceEmulator, db: str, *extra: str, login: bool = False) -> Result:
    auth = (["--login-url", emu.instance_url, "--username", DEFAULT_USERNAME, "--password",
             DEFAULT_PASSWORD, "--security-token", DEFAULT_TOKEN] if login
            else ["--instance-url", emu.instance_url, "--session-id", emu.session_id])
    return CliRunner().invoke(cli, ["sync", "salesforce", *auth, "--db", db, "--page-size", "200",
                                    "--timeout", "0.5", *extra])


def assert_same_as_org(emu: SalesforceEmulator, db: str) -> None:
    for obj, entity in ENTITIES.items():
        truth = {r["Id"]: bool(r["IsDeleted"]) for r in emu.records(obj)}
        assert stored(db, entity) == truth, obj
    names = {a.remote_id: a.name for a in Store(db).records("account")}
    assert names == {r["Id"]: r["Name"] for r in emu.records("Account", include_deleted=False)}


def change_org(emu: SalesforceEmulator) -> None:
    """Enough updates that the incremental accounts query pages, plus deletes and inserts."""
    emu.advance(3600)
    live = [r["Id"] for r in emu.records("Account", include_deleted=False)]
    for rid in live[:230]:
        emu.update("Account", rid, {"Name": f"Renamed {rid}"})
    for rid in live[230:233]:
        emu.delete("Account", rid)
    emu.delete("Contact", emu.records("Contact", include_deleted=False)[0]["Id"])
    for i in range(2):
        emu.insert("Account", {"Name": f"Newco {i}"})


Make = Callable[[], Fault]
RETRIED: dict[str, tuple[Make, bool]] = {  # name -> (fault, log in with a password flow)
    "429 burst with Retry-After": (lambda: Fault(status=429, headers={"Retry-After": "0.2"},
                                                 path_contains=PAGE2, times=3), False),
    "429 burst without Retry-After": (lambda: Fault(status=429, path_contains=PAGE2, times=3), False),
    "500": (lambda: Fault.server_error(500, path_contains=PAGE2, times=2), False),
    "502": (lambda: Fault.server_error(502, path_contains=PAGE2, times=2), False),
    "503": (lambda: Fault.server_error(503, path_contains=PAGE2, times=2), False),
    "connection reset": (lambda: Fault.drop(path_contains=PAGE2, times=2), False),
    "read timeout": (lambda: Fault.timeout(1.0, path_contains=PAGE2), False),
    "truncated JSON": (lambda: Fault.truncate(keep_length=False, path_contains=PAGE2, times=2), False),
    "short read": (lambda: Fault.truncate(keep_length=True, path_contains=PAGE2), False),
    "concurrent request limit": (lambda: Fault(status=403, error_code="REQUEST_LIMIT_EXCEEDED",
                                               message="ConcurrentPerOrgLongTxn Limit exceeded.",
                                               path_contains=PAGE2), False),
    "session expired mid-pagination": (lambda: Fault.expired_session(path_contains=PAGE2), True),
}


@pytest.mark.parametrize("phase", ["full", "incremental"])
@pytest.mark.parametrize("case", sorted(RETRIED))
def test_retried_fault_ends_with_exactly_the_org(emu: SalesforceEmulator, tmp_path: Path,
                                                case: str, phase: str) -> None:
    db = f"sqlite:///{tmp_path / 'sf.db'}"
    make, login = RETRIED[case]
    if phase == "incremental":
        assert sync(emu, db, "-q", login=login).exit_code == 0
        change_org(emu)
    emu.add_fault(make())
    result = sync(emu, db, login=login)
    assert result.exit_code == 0, result.output
    assert all(f.fired for f in emu.faults), "the fault never fired"
    if case.startswith("session expired"):  # renewed by logging in again, not retried
        assert len([r for r in emu.requests if "/Soap/" in r.path]) == 2 + (phase == "incremental")
        assert [r.status for r in emu.requests if PAGE2 in r.path][-2:] == [401, 200]
    else:
        shown = retries_shown(result.stderr)
        assert shown and all(emu.session_id not in line for line in shown), result.stderr
        if "with Retry-After" in case:
            assert all("in 0.2s" in line for line in shown), shown
    for secret in (emu.session_id, DEFAULT_PASSWORD, DEFAULT_TOKEN):
        assert secret not in result.output
    assert_same_as_org(emu, db)


def _daily_limit(emu: SalesforceEmulator) -> None:
    used, _total = emu.api_limit
    emu.api_limit = (used, used + 4)  # users describe + page, accounts describe + page 1


STOPPED: dict[str, tuple[Callable[[SalesforceEmulator], None], int, tuple[str, ...]]] = {
    "daily limit exhausted": (_daily_limit, 5, ("daily API", "limit", "run again")),
    "direct session expired": (lambda e: e.add_fault(Fault.expired_session(path_contains=PAGE2)), 4,
                               ("INVALID_SESSION_ID", "new session id")),
    "503 until retries run out": (lambda e: e.add_fault(Fault.server_error(503, path_contains=PAGE2,
                                                                          times=None)),
                                  4, ("SERVER_UNAVAILABLE", "gave up on accounts after 6 tries")),
}


@pytest.mark.parametrize("phase", ["full", "incremental"])
@pytest.mark.parametrize("case", sorted(STOPPED))
def test_stopping_fault_is_one_clear_error_and_the_next_run_completes(
        emu: SalesforceEmulator, tmp_path: Path, case: str, phase: str) -> None:
    db = f"sqlite:///{tmp_path / 'sf.db'}"
    if phase == "incremental":
        assert sync(emu, db, "-q").exit_code == 0
        change_org(emu)
    inject, code, words = STOPPED[case]
    inject(emu)
    failed = sync(emu, db)
    assert_one_error_line(failed, code, *words)
    assert emu.session_id not in failed.output
    run = Store(db).runs()[0]
    assert run["status"] == "failed" and run["error"] and emu.session_id not in run["error"]
    users = stored(db, "user")
    assert users, "the users stream finished before the fault and was committed"
    emu.faults.clear()
    emu.api_limit = (0, 15000)
    emu.reset_log()
    again = sync(emu, db, "-q")
    assert again.exit_code == 0, again.output
    user_query = next(r.soql for r in emu.requests if r.soql and "FROM User" in r.soql)
    assert "SystemModstamp >= " in user_query  # resumed from the saved cursor
    assert_same_as_org(emu, db)
