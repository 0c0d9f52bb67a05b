"""HubSpot faults, end to end: the real hubspot-api-client against the emulator through
``crmlink sync hubspot``. Each fault either is retried and the store ends up exactly as
the portal (no duplicates, nothing missing, archived records deleted), or stops the run
with one clear error line, and the next run completes it. Each fault is tried on the full
load (mid-pagination of contacts) and on the incremental run (the search API)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmlink.cli import cli
from crmlink.core.store import Store
from crmlink.testing.hubspot_emulator import Fault, HubSpotEmulator, RateLimits
from crmlink.testing.hubspot_emulator.seed import seed
from tests.faults.common import assert_one_error_line, fast_retries, retries_shown, stored

CONTACTS = "/crm/v3/objects/contacts"
SEARCH = "*/search"
#: The portal's limits are enforced, but high enough that only injected faults say no.
LIMITS = RateLimits(burst=2000, search_per_second=200)
ENTITIES = {"companies": "account", "contacts": "contact", "deals": "opportunity"}


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpotEmulator]:
    fast_retries(monkeypatch)
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    with HubSpotEmulator(rate_limits=LIMITS) as emulator:
        ids = seed(emulator, 120)
        for cid in ids["contacts"][:3]:
            emulator.archive("contacts", cid)
        yield emulator


def sync(emu: HubSpotEmulator, db: str, *extra: str, oauth: bool = False) -> Result:
    auth = (["--client-id", emu.client_id, "--client-secret", emu.client_secret,
             "--refresh-token", emu.refresh_token] if oauth else ["--access-token", emu.token])
    return CliRunner().invoke(cli, ["sync", "hubspot", "--base-url", emu.url, *auth, "--db", db,
                                    "--page-size", "25", "--rate-limit", "2000", "--search-rate",
                                    "200", "--timeout", "0.5", *extra])


def assert_same_as_portal(emu: HubSpotEmulator, db: str) -> None:
    for kind, entity in ENTITIES.items():
        truth = {o["id"]: o["archived"] for o in emu.objects(kind)}
        assert stored(db, entity) == truth, kind
    emails = {c.remote_id: c.email for c in Store(db).records("contact")}
    assert emails == {o["id"]: o["properties"].get("email") for o in emu.objects("contacts", False)}


def change_portal(emu: HubSpotEmulator) -> None:
    """Updates, archives and creations for the incremental run to pick up."""
    live = [o["id"] for o in emu.objects("contacts", archived=False)]
    for cid in live[:5]:
        emu.update("contacts", cid, {"email": f"moved-{cid}@example.org"})
    for cid in live[5:7]:
        emu.archive("contacts", cid)
    for i in range(3):
        emu.add("contacts", {"email": f"new{i}@example.org", "firstname": "New"})
    emu.archive("deals", emu.objects("deals", archived=False)[0]["id"])


Make = Callable[[str], Fault]
#: name -> (fault for a path, exit code of the faulted run, words of its error line)
RETRIED: dict[str, Make] = {
    "429 burst with Retry-After": lambda p: Fault.rate_limit(retry_after=0.2, path=p, after=1, times=3),
    "429 burst without Retry-After": lambda p: Fault.rate_limit(path=p, after=1, times=3),
    "500": lambda p: Fault.error(500, path=p, after=1, times=2),
    "502": lambda p: Fault.error(502, path=p, after=1, times=2),
    "503": lambda p: Fault.error(503, path=p, after=1, times=2),
    "connection reset": lambda p: Fault.drop(path=p, after=1, times=2),
    "read timeout": lambda p: Fault.timeout(1.0, path=p, after=1, times=1),
    "truncated JSON": lambda p: Fault.truncate(path=p, after=1, times=2),
}


@pytest.mark.parametrize("phase", ["full", "incremental"])
@pytest.mark.parametrize("case", sorted(RETRIED))
def test_retried_fault_ends_with_exactly_the_portal(emu: HubSpotEmulator, tmp_path: Path,
                                                   case: str, phase: str) -> None:
    db = f"sqlite:///{tmp_path / 'hs.db'}"
    if phase == "incremental":
        assert sync(emu, db, "-q").exit_code == 0
        change_portal(emu)
    emu.add_fault(RETRIED[case](CONTACTS if phase == "full" else SEARCH))
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    assert all(f.fired for f in emu.faults), "the fault never fired"
    shown = retries_shown(result.stderr)
    assert shown and all(emu.token not in line for line in shown), result.stderr
    assert "retries (each resumed from the last saved batch)" in result.stdout
    if "Retry-After" in case and "without" not in case:
        assert all("in 0.2s" in line for line in shown), shown  # the server's wait, not ours
    assert_same_as_portal(emu, db)


@pytest.mark.parametrize("retry_after", [None, 0.2])
def test_search_secondly_429_is_waited_out(emu: HubSpotEmulator, tmp_path: Path,
                                           retry_after: float | None) -> None:
    """Issue 6: the per-second search limit (policy SECONDLY), with and without Retry-After."""
    db = f"sqlite:///{tmp_path / 'hs.db'}"
    assert sync(emu, db, "-q").exit_code == 0
    change_portal(emu)
    emu.add_fault(Fault.secondly_limit(retry_after=retry_after, path=SEARCH, times=3))
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    limited = [r for r in emu.requests if r.status == 429]
    assert len(limited) == 3 and all(r.path.endswith("/search") for r in limited)
    shown = retries_shown(result.stderr)
    assert len(shown) == 3 and all("SECONDLY" in line for line in shown), shown
    assert all(("in 0.2s" in line) == bool(retry_after) for line in shown), shown
    assert_same_as_portal(emu, db)


def test_expired_oauth_token_mid_pagination_is_renewed(emu: HubSpotEmulator, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hs.db'}"
    emu.add_fault(Fault.expired_token(path=CONTACTS, after=2, times=1))
    result = sync(emu, db, oauth=True)
    assert result.exit_code == 0, result.output
    assert len([r for r in emu.requests if r.path.startswith("/oauth/v1/token")]) == 2
    assert emu.client_secret not in result.output and emu.refresh_token not in result.output
    assert_same_as_portal(emu, db)


STOPPED: dict[str, tuple[Make, int, tuple[str, ...]]] = {
    "daily limit": (lambda p: Fault.daily_limit(path=p, after=1), 5, ("daily", "resumes")),
    "private-app token expired": (lambda p: Fault.expired_token(path=p, after=1), 4,
                                  ("token expired", "--refresh-token")),
    "503 until retries run out": (lambda p: Fault.error(503, path=p, after=1), 4, ("503", "gave up on contacts after 6 tries", "resumes")),
}


@pytest.mark.parametrize("phase", ["full", "incremental"])
@pytest.mark.parametrize("case", sorted(STOPPED))
def test_stopping_fault_is_one_clear_error_and_the_next_run_completes(
        emu: HubSpotEmulator, tmp_path: Path, case: str, phase: str) -> None:
    db = f"sqlite:///{tmp_path / 'hs.db'}"
    if phase == "incremental":
        assert sync(emu, db, "-q").exit_code == 0
        change_portal(emu)
    make, code, words = STOPPED[case]
    emu.add_fault(make(CONTACTS if phase == "full" else SEARCH))
    failed = sync(emu, db)
    assert_one_error_line(failed, code, *words)
    assert emu.token not in failed.output
    run = Store(db).runs()[0]
    assert run["status"] == "failed" and run["error"] and emu.token not in run["error"]
    emu.clear_faults()
    emu.reset_log()
    again = sync(emu, db, "-q")
    assert again.exit_code == 0, again.output
    if phase == "full":  # companies were committed before the fault: not listed again
        relisted = [r for r in emu.requests if r.path == "/crm/v3/objects/companies"
                    and r.query.get("archived") == ["False"]]
        assert not relisted
    assert_same_as_portal(emu, db)


def test_retry_after_committed_batches_is_not_a_duplicate_error(emu: HubSpotEmulator, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A retried stream re-reads the rows at its saved cursor, which this run already stored:
    that is not a "same id appears twice" error (it was, before the engine knew the difference)."""
    monkeypatch.setenv("CRMLINK_BATCH_SIZE", "20")
    db = f"sqlite:///{tmp_path / 'hs.db'}"
    emu.add_fault(Fault.error(503, path=CONTACTS, after=3, times=1))
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    # the planted 503 was retried after three committed pages (a loaded machine may add a
    # timeout retry of its own: the count is not the point, the exact store below is)
    assert any("503" in line for line in retries_shown(result.stderr)), result.stderr
    assert re.search(r"contacts [1-9]", result.stdout), result.stdout
    assert_same_as_portal(emu, db)
