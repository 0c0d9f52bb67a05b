"""The audit in worker processes (``[audit] workers``, ``crmlink audit --workers``) gives
the documents of one process, byte for byte: JSON (streamed and whole, with the health
history), Markdown and table, on SQLite and PostgreSQL, for one source and for two
sources merged into one portfolio; a plugin that raises in a worker raises exactly as in
one process, and a worker that dies costs time, not results."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmlink import AccountView, Finding, OpportunityView, PortfolioView, hookimpl
from crmlink.cli import cli
from crmlink.core import parallel
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.errors import ConfigError
from crmlink.core.host import PluginHost, get_plugin_host
from crmlink.core.store import Store
from tests.conftest import AS_OF, SAMPLE
from tests.mergefixtures import split

pytestmark = pytest.mark.skipif(not parallel.can_fork(), reason="workers are forked processes")

MERGE = '[identity.match]\nsource_order = ["sales", "marketing"]\n'


def _normalised(text: str) -> str:
    return re.sub(r'"generated_at": ?"[^"]*"', '"generated_at": ""', text, count=1)


def _invoke(*args: str, host: PluginHost | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), obj={"host": host} if host else None)


def _ok(*args: str) -> None:
    result = _invoke(*args)
    assert result.exit_code == 0, result.output


def _sync(url: str, tmp_path: Path, merged: bool) -> None:
    if not merged:
        _ok("sync", "csv", str(SAMPLE), "--db", url)
        return
    sales, marketing = split(tmp_path / "split")
    _ok("sync", "csv", str(marketing), "--source", "marketing", "--db", url)
    _ok("sync", "csv", str(sales), "--source", "sales", "--db", url)


def _documents(url: str, tmp_path: Path, workers: int, host: PluginHost | None = None) -> dict[str, str]:
    """The JSON, Markdown and table audits of ``url`` with ``--workers workers``, each
    judging every account (the audit's cache would give the second its entries)."""
    found = {}
    for fmt in ("json", "markdown", "table"):
        out = tmp_path / f"audit-{workers}.{fmt}"
        result = _invoke("audit", "--db", url, "--as-of", AS_OF, "--format", fmt, "--output", str(out), "--all",
                         "--workers", str(workers), "--no-cache", "--config", str(tmp_path / "crmlink.toml"),
                         host=host)
        assert result.exit_code == 0, result.output
        found[fmt] = _normalised(out.read_text(encoding="utf-8"))
    return found


@pytest.mark.parametrize("merged", [False, True], ids=["one-source", "merged"])
def test_two_workers_write_the_documents_of_one(store_url: str, tmp_path: Path, merged: bool,
                                               caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "crmlink.toml").write_text(MERGE, encoding="utf-8")
    _sync(store_url, tmp_path, merged)
    one = _documents(store_url, tmp_path, 1)
    with caplog.at_level(logging.INFO, "crmlink.core.analysis.workers"):
        two = _documents(store_url, tmp_path, 2)
    assert "in 2 processes" in caplog.text  # the workers ran
    assert ('"accounts_joined":10' in one["json"]) is merged  # the merged path ran, or did not
    for fmt in one:
        assert two[fmt] == one[fmt], fmt
    three = _documents(store_url, tmp_path, 3)  # parts of 4 accounts taken by three processes
    assert three["json"] == one["json"]


def _audit(url: str, workers: int, host: PluginHost | None = None, merge: bool = True) -> Audit:
    config = load_config(None)
    config["audit"]["workers"] = workers
    return Audit(Store(url), host or get_plugin_host(), config, date.fromisoformat(AS_OF), merge=merge)


def test_the_whole_document_with_its_history_is_the_same(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    _sync(url, tmp_path, True)
    for merge in (True, False):  # one merged unit; two sources side by side, each in workers
        one = _audit(url, 1, merge=merge).document(history=True)
        two = _audit(url, 2, merge=merge).document(history=True)
        assert any(a.health_history for a in one.accounts)
        assert _normalised(two.dumps(2)) == _normalised(one.dumps(2))


def _account_values(a: AccountView) -> tuple[Any, ...]:
    """What a portfolio plugin may read of an account's full view: what judging it set
    (scores, stage and level, findings) and what the view derives from its data."""
    assert a.previous is not None
    return (a.account.remote_id, a.scores, a.previous.scores, a.findings, a.relationship,
            a.personalization, a.coverage, sorted(a.contact_stats), a.user_strength,
            a.pair_strengths, a.score_evidence, a.previous.score_evidence, a.assessment,
            a.previous.personalization)


def _deal_values(o: OpportunityView) -> tuple[Any, ...]:
    return (o.opportunity.remote_id, o.account.account.remote_id if o.account else None, o.ltc_stage,
            o.days_in_stage, o.engaged_contacts(90), o.linked_contacts, dict(o.typical_days_in_stage),
            o.source_contact_roles, len(o.contact_roles))


class Watcher:
    """A portfolio plugin that reads the full views (``PortfolioView.accounts`` and
    ``opportunities``): what the audit built again for it, not what judged the accounts."""

    seen: list[tuple[Any, ...]]
    deals: list[tuple[Any, ...]]

    def __init__(self) -> None:
        self.seen, self.deals = [], []

    @hookimpl
    def portfolio_findings(self, view: PortfolioView) -> list[Finding]:
        accounts = {id(a) for a in view.accounts}
        self.seen = [_account_values(a) for a in view.accounts]
        self.deals = [_deal_values(o) for o in view.opportunities]
        assert all(o.account is None or id(o.account) in accounts for o in view.opportunities)
        return []


def test_portfolio_plugins_see_the_same_account_views(tmp_path: Path) -> None:
    """At 1 and 2 workers a plugin reading the full views gets what judging each account
    afresh in one process gives (``Audit.account_views``), deals pointing at them."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    _sync(url, tmp_path, False)
    audit = _audit(url, 1)
    (unit,) = audit.units(None)
    fresh = audit.account_views(unit)
    by_key = {unit.key(v): v for v in fresh}
    deals = [o for d in unit.deal_sets() for o in audit.opportunity_views(d, by_key)]
    for workers in (1, 2):
        host, watcher = get_plugin_host(load_entrypoints=False), Watcher()
        host.register("watcher", watcher)
        _audit(url, workers, host).stream()
        assert len(watcher.seen) == 50 and len(watcher.deals) == len(deals) > 0
        assert watcher.seen == [_account_values(v) for v in fresh], workers
        assert watcher.deals == [_deal_values(o) for o in deals], workers
        assert any(d[1] is not None and d[5] for d in watcher.deals)  # deals linked to their accounts' data


class Raising:
    """A findings plugin that fails on one account (in whichever process judges it), or
    with ``die`` kills each forked worker at its first account."""

    def __init__(self, account: str, die: bool = False) -> None:
        self.account, self.die, self.parent = account, die, os.getpid()

    @hookimpl
    def account_findings(self, view: AccountView) -> list[Finding]:
        if self.die and os.getpid() != self.parent:
            os._exit(3)  # the worker is lost, as if the system killed it
        if view.account.remote_id == self.account and not self.die:
            raise LookupError(f"no rule for account {self.account} (token s3cr3t-not-printed)")
        return []


def _raising_host(plugin: Raising) -> PluginHost:
    host = get_plugin_host(load_entrypoints=False)
    host.register("raising", plugin)
    return host


@pytest.mark.parametrize("workers", [1, 2])
def test_a_plugin_raising_in_a_worker_raises_as_in_one_process(tmp_path: Path, workers: int) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    _sync(url, tmp_path, False)
    with pytest.raises(LookupError, match=r"^no rule for account ACC-040 \(token s3cr3t-not-printed\)$"):
        _audit(url, workers, _raising_host(Raising("ACC-040"))).stream()
    result = _invoke("audit", "--db", url, "--as-of", AS_OF, "--format", "json", "--output",
                     str(tmp_path / "audit.json"), "--workers", str(workers), host=_raising_host(Raising("ACC-040")))
    assert result.exit_code == 70, result.output
    assert result.output == ("Error: internal error (LookupError: no rule for account ACC-040 (token "
                             "s3cr3t-not-printed)); run with --debug for the traceback and report it\n")
    assert not (tmp_path / "audit.json").exists()


def test_a_lost_worker_costs_time_not_results(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    _sync(url, tmp_path, False)
    (tmp_path / "crmlink.toml").write_text("", encoding="utf-8")
    want = _documents(url, tmp_path, 1)
    got = _documents(url, tmp_path, 2, host=_raising_host(Raising("ACC-040", die=True)))
    assert got == want
    assert "worker 2 failed (the process ended with exit code 3): finishing its items in this process" in caplog.text


def test_the_worker_count() -> None:
    assert parallel.worker_count(10_000, 500, 3) == 3
    assert parallel.worker_count(100, 500, "auto") == 1
    assert parallel.worker_count(10_000, 500, "auto") == min(parallel.MOST_WORKERS, parallel.usable_cpus())
    assert parallel.worker_count(2, 500, 4) == 2  # never more workers than accounts
    assert parallel.slices(33, 2) == [(0, 16), (16, 33)]
    assert parallel.parts(50, 2, 100) == [(low, min(low + 6, 50)) for low in range(0, 50, 6)]
    assert parallel.parts(10_000, 2, 100) == [(low, low + 100) for low in range(0, 10_000, 100)]
    assert parallel.parts(3, 4, 100) == [(0, 1), (1, 2), (2, 3)]


def _tagged(low: int, high: int, process: int, fail: Any = None) -> Iterator[tuple[int, int]]:
    """Each item of a part with the process that worked on it (``fail(item, process)``
    may raise, or end the process)."""
    for item in range(low, high):
        if fail is not None:
            fail(item, process)
        yield item, process


def test_shared_parts_come_back_in_order_from_every_process() -> None:
    parts = parallel.parts(90, 3, 100)
    found = list(parallel.shared(parts, 3, _tagged))
    assert [item for item, _ in found] == list(range(90))
    by_part = {process for item, process in found if parts[1][0] <= item < parts[1][1]}
    assert by_part == {1} and {process for item, process in found if item < parts[0][1]} == {0}  # first parts
    assert {process for _, process in found} == {0, 1, 2}


def test_a_process_with_work_of_its_own_leaves_the_first_parts_to_the_others() -> None:
    """With ``idle`` (the audit's cache's hits, read while the others judge) this process
    takes no part at first and does its own work while it waits; the results still come
    in order, and a part is worked on here only once its own work is done."""
    parts = parallel.parts(60, 2, 100)
    own = list(range(50))
    done: list[int] = []

    def idle() -> bool:
        if not own:
            return False
        done.append(own.pop())
        return True

    found = list(parallel.shared(parts, 2, _tagged, idle=idle))
    assert [item for item, _ in found] == list(range(60))
    assert {process for item, process in found if item < parts[0][1]} == {1}  # the first part: the other's
    if any(process == 0 for _, process in found):  # this one judged a part: its own work was done first
        assert not own


def test_a_process_with_work_of_its_own_finishes_a_lost_part() -> None:
    parts = parallel.parts(40, 2, 100)

    def lost(item: int, process: int) -> None:
        if process:
            os._exit(5)

    found = list(parallel.shared(parts, 2, lambda lo, hi, p: _tagged(lo, hi, p, lost), idle=lambda: False))
    assert found == [(item, 0) for item in range(40)]


def test_a_shared_part_that_fails_is_worked_again_here_in_its_turn() -> None:
    parts = parallel.parts(40, 2, 100)

    def lost(item: int, process: int) -> None:
        if process:
            os._exit(5)  # every forked process dies at its first item: this one does it all

    assert [item for item, _ in parallel.shared(parts, 2, lambda lo, hi, p: _tagged(lo, hi, p, lost))] == list(range(40))

    def raising(item: int, process: int) -> None:
        if item == 27:
            raise LookupError("no rule for item 27")

    got: list[int] = []
    with pytest.raises(LookupError, match="^no rule for item 27$"):
        for item, _ in parallel.shared(parts, 2, lambda lo, hi, p: _tagged(lo, hi, p, raising)):
            got.append(item)
    assert got == list(range(27))  # raised in its turn, as in one process


def test_a_process_killed_while_it_takes_a_part_does_not_stop_the_others() -> None:
    """A forked process killed (for memory, say) while it holds the lock on the board of
    parts takes the lock with it: the others still take parts, nobody waits forever."""
    import fcntl
    import multiprocessing
    import signal
    import threading

    board = parallel._Board(multiprocessing.get_context("fork"), 2)
    child = os.fork()
    if child == 0:  # holds the lock as a process in the middle of taking a part, and is killed
        fcntl.flock(board._lock_file(), fcntl.LOCK_EX)
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(child, 0)
    taken: list[int] = []
    taker = threading.Thread(target=lambda: taken.append(board.take(0, 5)), daemon=True)
    taker.start()
    taker.join(30)
    assert taken == [2]  # the board starts with parts 0 and 1 given to processes 0 and 1
    board.close()


@pytest.mark.parametrize("value", ["many", 0, 1.5, True])
def test_a_bad_workers_setting_says_what_to_give(tmp_path: Path, value: object) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    _sync(url, tmp_path, False)
    audit = _audit(url, 1)
    audit.config["audit"]["workers"] = value
    with pytest.raises(ConfigError, match=r'\[audit\] workers = .* give "auto" .* or a whole number'):
        audit.stream()
