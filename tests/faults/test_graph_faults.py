"""Microsoft Graph faults, end to end: msal and requests against the Graph emulator
through ``crmlink sync graph``. Each fault is tried on the full read (in the middle of a
folder's or calendar's pages) and on the incremental one (the saved delta links). A fault
the host's retry policy can wait out ends with the store exactly as a run without faults
leaves it (no duplicates, nothing missing); one it cannot stops the run with one clear
error line and the documented exit code, and the next run completes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from crmlink.core.store import Store
from crmlink.testing.graph_emulator import Fault, GraphEmulator
from crmlink.testing.graph_emulator.seed import seed
from tests.faults.common import assert_one_error_line, fast_retries, retries_shown
from tests.test_graph_connector import NOW, crm_store
from tests.test_graph_connector import sync as graph_sync

MAIL = "*/messages/delta"
CALENDAR = "*/calendarView/delta"
TOKEN = "*/oauth2/v2.0/token"
#: What a stored interaction is compared on.
FIELDS = ("kind", "direction", "account_id", "user_ids", "contact_ids", "recipient_count",
          "campaign", "occurred_at", "link_source", "deleted")


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphEmulator]:
    fast_retries(monkeypatch)
    monkeypatch.setenv("CRMLINK_BATCH_SIZE", "7")  # positions are saved as pages go by
    monkeypatch.delenv("GRAPH_CLIENT_SECRET", raising=False)
    with GraphEmulator() as emulator:
        assert emulator.ca_path
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)
        seed(emulator, 90, start=NOW - timedelta(days=200))
        yield emulator


def sync(emu: GraphEmulator, db: str, *extra: str) -> Result:
    return graph_sync(emu, db, "--page-size", "6", "--timeout", "0.5", *extra)


def snapshot(db: str) -> dict[str, tuple[Any, ...]]:
    """Every stored interaction and unknown person of the graph source, by remote id
    (asserting that no id is stored twice)."""
    found: dict[str, tuple[Any, ...]] = {}
    for entity in ("interaction", "correspondent"):
        for record in Store(db).records(entity, source="graph", include_deleted=True):
            key = f"{entity}:{record.remote_id}"
            assert key not in found, f"{key} stored twice"
            found[key] = tuple(getattr(record, f, None) for f in FIELDS)
    return found


def reference(emu: GraphEmulator, tmp_path: Path) -> dict[str, tuple[Any, ...]]:
    """What a run without faults stores from the emulator's data as it is now."""
    faults, emu.faults[:] = list(emu.faults), []
    db = crm_store(tmp_path / f"clean{len(list(tmp_path.glob('clean*')))}")
    result = sync(emu, db, "-q")
    assert result.exit_code == 0, result.output
    emu.faults[:] = faults
    found = snapshot(db)
    assert sum(k.startswith("interaction:") for k in found) > 20
    return found


def change_tenant(emu: GraphEmulator) -> None:
    """New threads and meetings for the incremental run (changes that take place after a
    first run: a reply to an older message would be one-way for a run that did not read
    the message it answers, so there is none)."""
    ann, bob = (emu.mailbox(a) for a in ("ann@contoso.test", "bob@contoso.test"))
    when = NOW - timedelta(days=3)
    for i in range(8):
        first = f"<late{i}@northwind.test>"
        emu.add_message(ann, "inbox", sender="bob@northwind.test", to=[ann], sent=when,
                        internet_message_id=first)
        emu.add_message(ann, "sentitems", sender=ann, to=["bob@northwind.test"],
                        sent=when + timedelta(hours=1), headers=[("In-Reply-To", first)])
    emu.add_meeting(bob, attendees=[("carl@adatum.test", "accepted")], subject="Late",
                    start=when, end=when + timedelta(hours=1))
    emu.update_message(ann, emu.messages(ann, "inbox")[0]["id"], isRead=True)


def prepare(emu: GraphEmulator, db: str, phase: str) -> None:
    if phase == "incremental":
        assert sync(emu, db, "-q").exit_code == 0
        change_tenant(emu)


Make = Callable[[str], Fault]
#: Faults the host's retry policy waits out (each fires in the middle of the paging).
RETRIED: dict[str, Make] = {
    "429 with Retry-After": lambda p: Fault.throttle(retry_after=0.2, path=p, after=1, times=3),
    "429 without Retry-After": lambda p: Fault.throttle(path=p, after=1, times=3),
    "500": lambda p: Fault.error(500, path=p, after=1, times=2),
    "502": lambda p: Fault.error(502, path=p, after=1, times=2),
    "503 with Retry-After": lambda p: Fault.error(503, retry_after=0.1, path=p, after=1, times=2),
    "504": lambda p: Fault.error(504, path=p, after=1, times=2),
    "dropped connection": lambda p: Fault.drop(path=p, after=1, times=2),
    "truncated body": lambda p: Fault.truncate(path=p, after=1, times=2),
    "read timeout": lambda p: Fault.timeout(1.5, path=p, after=1, times=1),
}


@pytest.mark.parametrize("phase", ["full", "incremental"])
@pytest.mark.parametrize("where", [MAIL, CALENDAR])
@pytest.mark.parametrize("case", sorted(RETRIED))
def test_retried_fault_ends_with_exactly_the_tenants_data(emu: GraphEmulator, tmp_path: Path,
                                                          case: str, where: str, phase: str) -> None:
    db = crm_store(tmp_path)
    prepare(emu, db, phase)
    emu.add_fault(RETRIED[case](where))
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    assert all(f.fired for f in emu.faults), "the fault never fired"
    shown = retries_shown(result.stderr)
    assert shown and all(emu.client_secret not in line for line in shown), result.stderr
    if "with Retry-After" in case:  # the server's wait, not the policy's backoff
        assert all("in 0.2s" in line or "in 0.1s" in line for line in shown), shown
    assert snapshot(db) == reference(emu, tmp_path)


@pytest.mark.parametrize("phase", ["full", "incremental"])
def test_token_expiring_mid_paging_is_renewed_without_a_retry(emu: GraphEmulator, tmp_path: Path,
                                                             phase: str) -> None:
    db = crm_store(tmp_path)
    prepare(emu, db, phase)
    emu.reset_log()
    emu.add_fault(Fault.expire_token(path=MAIL, after=2, times=1))
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    assert not retries_shown(result.stderr)
    assert len([r for r in emu.requests if r.path.endswith("/oauth2/v2.0/token")]) == 2
    assert [r.status for r in emu.requests if r.fault] == [401]
    assert snapshot(db) == reference(emu, tmp_path)


#: Faults of the sign-in host's token endpoint, waited out the same way.
TOKEN_FAULTS: dict[str, Callable[[], Fault]] = {
    "503": lambda: Fault.error(503, path=TOKEN, times=2),
    "429 with Retry-After": lambda: Fault.throttle(retry_after=0.1, path=TOKEN, times=1),
    "dropped connection": lambda: Fault.drop(path=TOKEN, times=1),
    "truncated body": lambda: Fault.truncate(path=TOKEN, times=1),
}


@pytest.mark.parametrize("case", sorted(TOKEN_FAULTS))
def test_sign_in_faults_are_retried(emu: GraphEmulator, tmp_path: Path, case: str) -> None:
    db = crm_store(tmp_path)
    emu.add_fault(TOKEN_FAULTS[case]())
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    assert retries_shown(result.stderr) and all(f.fired for f in emu.faults)
    assert snapshot(db) == reference(emu, tmp_path)


def test_sign_in_down_for_good_is_one_error(emu: GraphEmulator, tmp_path: Path) -> None:
    db = crm_store(tmp_path)
    emu.add_fault(Fault.error(503, path=TOKEN))
    failed = sync(emu, db)
    assert_one_error_line(failed, 4, "could not issue a token now (HTTP 503)", "gave up on")
    emu.clear_faults()
    assert sync(emu, db, "-q").exit_code == 0
    assert snapshot(db) == reference(emu, tmp_path)


@pytest.mark.parametrize("where", [MAIL, CALENDAR])
def test_a_stale_delta_link_reads_that_part_again(emu: GraphEmulator, tmp_path: Path,
                                                  where: str) -> None:
    db = crm_store(tmp_path)
    prepare(emu, db, "incremental")
    emu.add_fault(Fault.stale_delta(path=where, times=1))
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    assert "no longer knows the saved position" in result.stderr
    assert snapshot(db) == reference(emu, tmp_path)


def test_every_delta_link_gone_at_once(emu: GraphEmulator, tmp_path: Path) -> None:
    db = crm_store(tmp_path)
    prepare(emu, db, "incremental")
    emu.invalidate_delta_tokens()
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    assert snapshot(db) == reference(emu, tmp_path)


#: name -> (fault for a path, exit code, words of the error line)
STOPPED: dict[str, tuple[Make, int, tuple[str, ...]]] = {
    "429 until retries run out": (lambda p: Fault.throttle(retry_after=0.01, path=p, after=1), 4,
                                  ("throttling", "ApplicationThrottled", "gave up on", "resumes")),
    "503 until retries run out": (lambda p: Fault.error(503, path=p, after=1), 4,
                                  ("serviceNotAvailable", "gave up on", "after 6 tries")),
    "connection dropped for good": (lambda p: Fault.drop(path=p, after=1), 4,
                                    ("did not answer", "gave up on")),
    "token refused after renewal": (lambda p: Fault.expire_token(path=p, after=1), 4,
                                    ("rejected a token it had just issued", "tenant")),
}


@pytest.mark.parametrize("phase", ["full", "incremental"])
@pytest.mark.parametrize("where", [MAIL, CALENDAR])
@pytest.mark.parametrize("case", sorted(STOPPED))
def test_stopping_fault_is_one_clear_error_and_the_next_run_completes(
        emu: GraphEmulator, tmp_path: Path, case: str, where: str, phase: str) -> None:
    db = crm_store(tmp_path)
    prepare(emu, db, phase)
    make, code, words = STOPPED[case]
    emu.add_fault(make(where))
    failed = sync(emu, db)
    assert_one_error_line(failed, code, *words)
    assert emu.client_secret not in failed.output
    run = Store(db).runs()[0]
    assert run["status"] == "failed" and run["error"]
    emu.clear_faults()
    emu.reset_log()
    again = sync(emu, db, "-q")
    assert again.exit_code == 0, again.output
    assert snapshot(db) == reference(emu, tmp_path)


def test_a_retry_goes_on_from_the_saved_page(emu: GraphEmulator, tmp_path: Path) -> None:
    """The host saves the position after every stored batch: a retry asks for the page it
    was reading, not for the folder from the start."""
    db = crm_store(tmp_path)
    pages = "*/ann@contoso.test/mailFolders('sentitems')/messages/delta"  # the next links
    emu.add_fault(Fault.error(503, path=pages, after=2, times=1))
    result = sync(emu, db)
    assert result.exit_code == 0, result.output
    failed_at = next(i for i, r in enumerate(emu.requests) if r.fault)
    again = [r for r in emu.requests[failed_at + 1:] if "mailFolders" in r.path
             and "sentitems" in r.path and "ann@" in r.path]
    assert again and "$skiptoken" in again[0].query
    assert snapshot(db) == reference(emu, tmp_path)
