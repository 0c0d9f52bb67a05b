"""The audit of one source in chunks of accounts (:mod:`crmlink.core.analysis.chunks`):
each chunk's records, folded interactions and unknown people are exactly those of the
whole source restricted to the chunk, on SQLite and PostgreSQL, with deleted records,
deals without an account, execution records reached through contracts, linked mail,
and accounts whose aggregates are stale."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core import aggregate_store
from crmlink.core.analysis.accumulate import Accumulator
from crmlink.core.analysis.aggregates import classifiers, fingerprint, fold_unit
from crmlink.core.analysis.audit import as_of_timestamp, typical_days_in_stage
from crmlink.core.analysis.chunks import Reader, SourceChunks, whole_reason
from crmlink.core.analysis.config import load_config
from crmlink.core.analysis.people import unknown_people
from crmlink.core.analysis.units import SourceData, Unit
from crmlink.core.host import get_plugin_host
from crmlink.core.model import (
    Correspondent,
    ExecutionRecord,
    Interaction,
    Opportunity,
    OpportunityContact,
    StageChange,
)
from crmlink.core.store import Store
from tests.conftest import AS_OF, synced

HOST = get_plugin_host(load_entrypoints=False)
DAY = date.fromisoformat(AS_OF)
WHEN = datetime(2026, 10, 1, tzinfo=timezone.utc)


def write(store: Store, records: list[Any]) -> None:
    with store.transaction() as conn:
        for entity in dict.fromkeys(r.entity for r in records):
            store.upsert(conn, [r for r in records if r.entity == entity])


def edited(store: Store, source: str) -> dict[str, Any]:
    """Deleted records, deals outside the source's accounts, execution records through
    contracts, unknown people and linked mail, and stale accounts, written through the
    store (as syncs write them); what was done, by kind."""
    data = SourceData.load(store, source)
    accounts = sorted(data.accounts)
    deals = sorted(data.opportunities)
    gone_account, gone_contact = accounts[5], sorted(data.contacts)[3]
    gone_deal, gone_role = deals[2], next(iter(data.roles.values()))[0].remote_id
    gone_change = "S-K2"
    first, second = accounts[0], accounts[1]
    contact = data.contacts_by_account[second][0].remote_id
    write(store, [
        Opportunity(remote_id="D-NONE", source=source, name="no account", stage_label="Closed Won", is_won=True,
                    is_closed=True),
        Opportunity(remote_id="D-LOST", source=source, account_id="NO-SUCH", name="unknown account"),
        Opportunity(remote_id="D-GONE", source=source, account_id=gone_account, name="deleted account",
                    extra={"ContractId": "K-9"}),
        Opportunity(remote_id="D-K", source=source, account_id=first, name="contract", is_won=True,
                    stage_label="Closed Won"),
        OpportunityContact(remote_id="R-NONE", source=source, opportunity_id="D-NONE", contact_id=contact),
        StageChange(remote_id="S-1", source=source, opportunity_id="D-NONE", stage_label="Qualify",
                    entered_at=WHEN - timedelta(days=30)),
        StageChange(remote_id="S-2", source=source, opportunity_id="D-NONE", stage_label="Closed Won",
                    entered_at=WHEN),
        StageChange(remote_id="S-K1", source=source, opportunity_id="D-K", stage_label="Qualify",
                    entered_at=WHEN - timedelta(days=10)),
        StageChange(remote_id="S-K2", source=source, opportunity_id="D-K", stage_label="Propose",
                    entered_at=WHEN - timedelta(days=5)),
        StageChange(remote_id="S-K3", source=source, opportunity_id="D-K", stage_label="Closed Won",
                    entered_at=WHEN),
        StageChange(remote_id="S-X", source=source, opportunity_id=deals[0], stage_label="Qualify",
                    entered_at=WHEN),
        ExecutionRecord(remote_id="K-1", source=source, kind="contract", opportunity_id="D-K", contract_id="K-2"),
        ExecutionRecord(remote_id="K-2", source=source, kind="contract"),
        ExecutionRecord(remote_id="O-1", source=source, kind="order", contract_id="K-2"),
        ExecutionRecord(remote_id="O-9", source=source, kind="order", contract_id="K-9"),
        ExecutionRecord(remote_id="K-9", source=source, kind="contract", opportunity_id="D-NONE"),
        Correspondent(remote_id="m1|x@acme.example", source="mailbox", link_source=source, account_id=first,
                      address="x@acme.example", name="X", occurred_at=WHEN, sent=True),
        Correspondent(remote_id="m2|x@acme.example", source="mailbox", link_source=source, account_id=first,
                      address="x@acme.example", name="Xavier", occurred_at=WHEN, sent=False),
        Correspondent(remote_id="m3|y@b.example", source="mailbox", link_source=source, account_id=second,
                      address="y@b.example", occurred_at=WHEN - timedelta(days=200)),
        Interaction(remote_id=f"m4|{source}|", source="mailbox", link_source=source, account_id=second,
                    kind="email", direction="inbound", occurred_at=WHEN, contact_ids=(contact,),
                    user_ids=("U01",)),
    ])
    with store.transaction() as conn:
        store.mark_deleted(conn, "account", source, [gone_account])
        store.mark_deleted(conn, "contact", source, [gone_contact])
        store.mark_deleted(conn, "opportunity", source, [gone_deal])
        store.mark_deleted(conn, "opportunity_contact", source, [gone_role])
        store.mark_deleted(conn, "stage_change", source, [gone_change])
    # a changed interaction of the first account: its aggregate is stale until the next sync
    row = Interaction(remote_id="NEW-1", source=source, account_id=first, kind="meeting", occurred_at=WHEN,
                      contact_ids=(data.contacts_by_account[first][0].remote_id,), user_ids=("U01",))
    write(store, [row])
    return {"deleted": [gone_account, gone_contact, gone_deal], "stale": [first, second]}


@pytest.fixture
def store_and_source(store_url: str) -> tuple[Store, str]:
    store, source = synced(store_url)
    edited(store, source)
    return store, source


def _records(records: Any) -> list[Any]:
    return [dataclasses.astuple(r) for r in records]


@pytest.mark.parametrize("size", [1, 3, 17, 1000])
def test_a_chunk_s_records_are_the_whole_source_s_restricted_to_it(store_and_source: tuple[Store, str],
                                                                   size: int) -> None:
    store, source = store_and_source
    whole = SourceData.load(store, source)
    with Reader(store) as reader:
        chunks = SourceChunks(reader, source, load_config(), HOST.interaction_method, None,
                              [as_of_timestamp(DAY), as_of_timestamp(DAY) - 90 * 86400.0])
        assert list(chunks.keys) == sorted(whole.accounts)
        assert chunks.users == whole.users and chunks.stages == whole.stages
        assert list(chunks.deal_ids) == sorted(whole.opportunities)
        assert chunks.roles == sum(len(found) for found in whole.roles.values())
        seen: list[str] = []
        for low, high in chunks.slices(size):
            keys = chunks.keys[low:high]
            part = SourceData.load_chunk(reader.here, source, keys, chunks.users, chunks.stages)
            seen.extend(part.accounts)
            assert _records(part.accounts.values()) == _records(whole.accounts[k] for k in keys)
            for key in keys:
                assert _records(part.contacts_by_account.get(key, [])) == _records(
                    whole.contacts_by_account.get(key, []))
                assert _records(part.opps_by_account.get(key, [])) == _records(whole.opps_by_account.get(key, []))
            for deal in part.opportunities.values():
                assert _records(part.roles.get(deal.remote_id, [])) == _records(whole.roles.get(deal.remote_id, []))
                assert _records(part.history.get(deal.remote_id, [])) == _records(
                    whole.history.get(deal.remote_id, []))
                assert _records(part.execution.of(deal)) == _records(whole.execution.of(deal))
        assert seen == list(chunks.keys)
        outside = chunks.outside()
    assert sorted(outside.opportunities) == sorted(
        d for d, opp in whole.opportunities.items() if (opp.account_id or "") not in whole.accounts)
    assert {"D-NONE", "D-LOST", "D-GONE"} <= set(outside.opportunities)
    for deal in outside.opportunities.values():
        assert _records(outside.roles.get(deal.remote_id, [])) == _records(whole.roles.get(deal.remote_id, []))
        assert _records(outside.history.get(deal.remote_id, [])) == _records(whole.history.get(deal.remote_id, []))
        assert _records(outside.execution.of(deal)) == _records(whole.execution.of(deal))
    assert [r.remote_id for r in outside.execution.of(outside.opportunities["D-GONE"])] == ["K-9", "O-9"]


def test_the_portfolio_s_deal_figures_are_the_whole_source_s(store_and_source: tuple[Store, str]) -> None:
    store, source = store_and_source
    audit_config = load_config()
    from crmlink.core.analysis.audit import Audit

    audit = Audit(store, HOST, audit_config, DAY)
    whole = audit.opportunity_views(SourceData.load(store, source), {})
    with Reader(store) as reader:
        chunks = SourceChunks(reader, source, audit_config, HOST.interaction_method, None, [0.0, 0.0])
    assert chunks.typical == typical_days_in_stage(whole) and "Qualify" in chunks.typical
    assert list(chunks.typical) == list(typical_days_in_stage(whole))


@pytest.mark.parametrize("aggregates", [True, False], ids=["aggregates", "rows"])
def test_a_chunk_s_fold_and_people_are_the_whole_source_s(store_and_source: tuple[Store, str],
                                                          aggregates: bool) -> None:
    store, source = store_and_source
    config = load_config()
    print_ = fingerprint(config, classifiers(HOST)) if aggregates else None
    as_of = as_of_timestamp(DAY)
    stamps = [as_of, as_of - 90 * 86400.0, as_of - 200 * 86400.0]
    unit = Unit(store, source)
    with store.engine.connect() as conn:
        acc = Accumulator(config, unit.data.users, unit.data.contacts, HOST.interaction_method)
        whole, counts = fold_unit(conn, unit, acc, stamps, print_)
        stale = set(aggregate_store.marks(conn, source))
    assert {"ACC-001", "ACC-002"} <= stale or not aggregates or counts.raw  # the edits marked them
    people = [unknown_people(unit.correspondents(stamp)) for stamp in stamps[:2]]
    with Reader(store) as reader:
        chunks = SourceChunks(reader, source, config, HOST.interaction_method, print_, stamps[:2], stamps[2:])
        assert chunks.plan.reason is None if aggregates else chunks.plan.reason
        assert bool(chunks.plan.raw) is aggregates  # the stale ones
        found = 0
        for low, high in chunks.slices(4):
            chunk = chunks.chunk(chunks.keys[low:high])
            for key in chunk.keys:
                found += 1
                assert [chunk.now[key], chunk.before[key], *chunk.past[key]] == whole[key], key
                assert chunk.people_now.get(key) == people[0].get(key)
                assert chunk.people_before.get(key) == people[1].get(key)
            assert chunk.counts.raw == (high - low if not aggregates else len(chunks.plan.raw & set(chunk.keys)))
        assert found == len(whole)
    assert any(people[0].values())


def test_the_units_that_must_be_audited_whole(store_url: str, tmp_path: Path) -> None:
    store, source = synced(store_url)
    until = as_of_timestamp(DAY)
    with store.engine.connect() as conn:
        assert whole_reason(conn, Unit(store, source), until) is None
    write(store, [Interaction(remote_id="NA-1", source="mailbox", link_source=source, kind="email",
                              occurred_at=WHEN + timedelta(days=100), contact_ids=("C0001",))])
    with store.engine.connect() as conn:
        assert whole_reason(conn, Unit(store, source), until) is None  # after the audit date
    write(store, [Interaction(remote_id="NA-2", source="mailbox", link_source=source, kind="email",
                              occurred_at=WHEN, contact_ids=("C0001",))])
    with store.engine.connect() as conn:
        assert "name no account" in str(whole_reason(conn, Unit(store, source), until))
    with store.transaction() as conn:
        store.mark_deleted(conn, "interaction", "mailbox", ["NA-2"])
    with store.engine.connect() as conn:
        assert whole_reason(conn, Unit(store, source), until) is None
    write(store, [Interaction(remote_id="NA-3", source=source, account_id="", kind="call", occurred_at=WHEN)])
    with store.engine.connect() as conn:
        assert whole_reason(conn, Unit(store, source), until) is not None


def test_each_account_read_once_however_the_chunks_fall(store_and_source: tuple[Store, str]) -> None:
    store, source = store_and_source
    with Reader(store) as reader:
        chunks = SourceChunks(reader, source, load_config(), HOST.interaction_method, None, [0.0, 0.0])
        for size in (1, 3, 1000):
            slices = chunks.slices(size)
            assert [k for low, high in slices for k in chunks.keys[low:high]] == list(chunks.keys)
            assert [c.keys for c in chunks.chunks(2, 9, size)] == [
                chunks.keys[s:min(s + size, 9)] for s in range(2, 9, size)]


def _document(url: str, workers: int, *, history: bool, whole: bool, size: int,
              monkeypatch: pytest.MonkeyPatch) -> str:
    """The audit document of ``url`` (normalised) with ``workers`` processes, audited
    whole (``whole``) or in chunks of ``size`` accounts."""
    from crmlink.core.analysis import audit as audit_module
    from crmlink.core.analysis import chunks as chunks_module
    from crmlink.core.analysis.audit import Audit

    with monkeypatch.context() as patch:
        patch.setattr(chunks_module, "CHUNK", size)
        if whole:
            patch.setattr(audit_module, "whole_reason", lambda *_: "whole, to compare")
        config = load_config()
        config["audit"]["workers"] = workers
        document = Audit(Store(url), HOST, config, DAY).document(history=history)
    text = document.dumps(2)
    return text.replace(document.generated_at, "")


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_chunked_audit_is_the_whole_audit(store_and_source: tuple[Store, str], workers: int,
                                              monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    store, _ = store_and_source
    url = store.url
    for history in (False, True):
        whole = _document(url, 1, history=history, whole=True, size=1, monkeypatch=monkeypatch)
        assert '"D-NONE"' in whole and '"D-GONE"' in whole and "x@acme.example" in whole
        for size in (1, 3, 1000):
            with caplog.at_level("INFO", "crmlink.core.analysis.audit"):
                caplog.clear()
                chunked = _document(url, workers, history=history, whole=False, size=size, monkeypatch=monkeypatch)
            assert f"in chunks of {size} accounts" in caplog.text
            assert "2 from interactions" in caplog.text  # the stale accounts
            assert chunked == whole, (history, size)


def _verbose_audit(url: str, out: Path, *extra: str) -> str:
    """The log of ``crmlink -v audit`` (a process of its own, as a user runs it), its
    document written to ``out``."""
    import subprocess
    import sys


    done = subprocess.run([sys.executable, "-m", "crmlink", "-v", "audit", "--db", url, "--as-of", AS_OF,
                           "--format", "json", "--output", str(out), *extra],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_crmlink_v_audit_says_which_path_each_unit_takes(tmp_path: Path) -> None:
    from tests.mergefixtures import split

    url = f"sqlite:///{tmp_path / 'one.db'}"
    store, source = synced(url)
    assert (f"auditing {source} in chunks of 100 accounts: 50 account(s) from aggregates, 0 from interactions"
            in _verbose_audit(url, tmp_path / "audit.json"))
    write(store, [Interaction(remote_id="E-1", source=source, kind="email", occurred_at=WHEN,
                              contact_ids=("C0001",), user_ids=("U01",))])  # as HubSpot stores engagements
    assert (f"auditing {source} whole: {source!r} has interactions that name no account"
            in _verbose_audit(url, tmp_path / "audit.json"))
    merged = f"sqlite:///{tmp_path / 'two.db'}"
    sales, marketing = split(tmp_path / "split")
    for name, folder in (("marketing", marketing), ("sales", sales)):
        result = CliRunner().invoke(cli, ["sync", "csv", str(folder), "--source", name, "--db", merged, "-q"])
        assert result.exit_code == 0, result.output
    config = tmp_path / "crmlink.toml"
    config.write_text('[identity.match]\nsource_order = ["sales", "marketing"]\n', encoding="utf-8")
    log = _verbose_audit(merged, tmp_path / "audit.json", "--config", str(config))
    assert "auditing sales+marketing whole: merged sources: matching identities needs every record" in log
    log = _verbose_audit(merged, tmp_path / "audit.json", "--config", str(config), "--no-merge")
    assert "auditing marketing in chunks of" in log and "auditing sales in chunks of" in log
