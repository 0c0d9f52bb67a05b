"""The incremental audit (:mod:`crmlink.core.analysis.cache`): after any writes, the
audit that takes unchanged accounts from its cache writes exactly the document of an
audit that judges every account (``generated_at`` aside), on SQLite and PostgreSQL; each
kind of input raises the revision of the accounts it changes; a killed cache write and
a sync committing while the audit reads leave nothing wrong behind."""

from __future__ import annotations

import copy
import dataclasses
import io
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlink import Finding, hookimpl
from crmlink.core import parallel, revisions, schema
from crmlink.core.analysis import chunks as chunks_module
from crmlink.core.analysis import workers as workers_module
from crmlink.core.analysis.aggregate_build import refresh
from crmlink.core.analysis.assemble import deal_counted
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.cache import read_form
from crmlink.core.analysis.cache_writer import pack, unpack
from crmlink.core.analysis.config import load_config
from crmlink.core.analysis.spill import Pickled
from crmlink.core.analysis.units import SourceData
from crmlink.core.document import account_json
from crmlink.core.host import PluginHost, get_plugin_host
from crmlink.core.model import (
    Account,
    Contact,
    Correspondent,
    ExecutionRecord,
    Interaction,
    Opportunity,
    OpportunityContact,
    Record,
    Stage,
    StageChange,
)
from crmlink.core.report import table
from crmlink.core.store import Store
from tests.conftest import AS_OF, synced

DAY = date.fromisoformat(AS_OF)
WHEN = datetime(2026, 10, 1, tzinfo=timezone.utc)
SEVERITY = re.compile(r'"generated_at": ?"[^"]*"')


def host(extra: bool = False) -> PluginHost:
    found = get_plugin_host(load_entrypoints=False)
    if extra:
        found.register("test-watchlist", Watchlist())
    return found


class Watchlist:
    """A third party's plugin: a finding on the accounts whose name has an "a" in it."""

    @hookimpl
    def account_findings(self, view: Any) -> list[Finding]:
        if "a" not in (view.account.name or "").lower():
            return []
        return [Finding("WATCHLIST", "low", "The account is on the watchlist.")]


def audit(store: Store, config: dict[str, Any], *, cache: bool = True, as_of: date = DAY, extra: bool = False,
          workers: int | str = 1) -> tuple[str, int]:
    """The JSON document (``generated_at`` left out), then the account and deal entries
    the document returned holds (what ``--fail-on`` and ``--save`` read: from the cache,
    left pickled until read), and how many accounts came from the cache."""
    settings_ = copy.deepcopy(config)
    settings_["audit"]["cache"], settings_["audit"]["workers"] = cache, workers
    run = Audit(store, host(extra), settings_, as_of)
    out = io.StringIO()
    document = run.stream(None, out, indent=2)
    entries = "\n".join(repr(entry) for entry in [*document.accounts, *document.opportunities])
    return f"{SEVERITY.sub('', out.getvalue())}\n{entries}", run.from_cache


def check(store: Store, config: dict[str, Any], **options: Any) -> int:
    """The cached audit equals a fresh one; how many accounts came from the cache."""
    cached, hits = audit(store, config, **options)
    fresh, none = audit(store, config, cache=False, **options)
    assert none == 0
    assert cached == fresh
    return hits


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite store of the sample, synced and audited once (its cache filled)."""
    path = tmp_path_factory.mktemp("cache") / "template.db"
    store, _ = synced(f"sqlite:///{path}")
    audit(store, load_config())
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.engine.dispose()
    return path


def copied(template: Path, folder: Path) -> tuple[Store, str]:
    path = folder / f"store-{time.monotonic_ns()}.db"
    shutil.copy(template, path)
    store = Store(f"sqlite:///{path}")
    return store, store.sources()[0]


# -- the edits a sync (or a person with SQL) makes -------------------------------------------------

def write(store: Store, records: list[Record]) -> None:
    with store.transaction() as conn:
        for entity in dict.fromkeys(r.entity for r in records):
            store.upsert(conn, [r for r in records if r.entity == entity])


def sql(store: Store, statement: str, **values: Any) -> None:
    with store.transaction() as conn:
        conn.execute(sa.text(statement), values)


def deleted(store: Store, entity: str, source: str, ids: list[str]) -> None:
    with store.transaction() as conn:
        store.mark_deleted(conn, entity, source, ids)


def first_id(store: Store, table: str, where: str = "", **values: Any) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(sa.text(f"SELECT remote_id FROM {table} WHERE NOT deleted {where} "
                                        "ORDER BY remote_id LIMIT 1 OFFSET :skip"), values).scalar_one())


Edit = Callable[[Store, str, random.Random], None]
EDITS: dict[str, Edit] = {}


def edit(function: Edit) -> Edit:
    EDITS[function.__name__] = function
    return function


def _data(store: Store, source: str) -> SourceData:
    return SourceData.load(store, source)


@edit
def new_interaction(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    account = rng.choice(sorted(data.contacts_by_account))
    contact = rng.choice(data.contacts_by_account[account]).remote_id
    write(store, [Interaction(remote_id=f"T-{rng.random()}", source=source, account_id=account,
                              kind=rng.choice(["meeting", "email", "call"]),
                              direction=rng.choice(["two_way", "inbound", "outbound"]),
                              occurred_at=WHEN - timedelta(days=rng.randrange(400)), contact_ids=(contact,),
                              user_ids=(rng.choice(sorted(data.users)),))])


@edit
def changed_interaction(store: Store, source: str, rng: random.Random) -> None:
    rid = first_id(store, "interactions", "AND source = :source", source=source, skip=rng.randrange(5000))
    sql(store, "UPDATE interactions SET direction = :direction, occurred_at = occurred_at - 86400 "
        "WHERE source = :source AND remote_id = :rid", direction=rng.choice(["two_way", "outbound"]),
        source=source, rid=rid)


@edit
def moved_interaction(store: Store, source: str, rng: random.Random) -> None:
    rid = first_id(store, "interactions", "AND source = :source", source=source, skip=rng.randrange(5000))
    account = rng.choice(sorted(_data(store, source).accounts))
    sql(store, "UPDATE interactions SET account_id = :account WHERE source = :source AND remote_id = :rid",
        account=account, source=source, rid=rid)


@edit
def deleted_interaction(store: Store, source: str, rng: random.Random) -> None:
    rid = first_id(store, "interactions", "AND source = :source", source=source, skip=rng.randrange(5000))
    deleted(store, "interaction", source, [rid])


@edit
def contact_seniority(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    contact = data.contacts[rng.choice(sorted(data.contacts))]
    write(store, [dataclasses.replace(contact, seniority=rng.choice(["c_suite", "vp", "manager", None]),
                                      buying_role=rng.choice(["decision_maker", "influencer", None]))])


@edit
def contact_seniority_by_sql(store: Store, source: str, rng: random.Random) -> None:
    """A person's SQL, not a sync: no stale mark of the aggregates' people."""
    rid = first_id(store, "contacts", "AND source = :source", source=source, skip=rng.randrange(300))
    sql(store, "UPDATE contacts SET seniority = :seniority WHERE source = :source AND remote_id = :rid",
        seniority=rng.choice(["c_suite", "vp", "entry"]), source=source, rid=rid)


@edit
def contact_moved(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    contact = data.contacts[rng.choice(sorted(data.contacts))]
    write(store, [dataclasses.replace(contact, account_id=rng.choice(sorted(data.accounts)))])


@edit
def contact_gone(store: Store, source: str, rng: random.Random) -> None:
    deleted(store, "contact", source, [rng.choice(sorted(_data(store, source).contacts))])


@edit
def new_contact(store: Store, source: str, rng: random.Random) -> None:
    account = rng.choice(sorted(_data(store, source).accounts))
    write(store, [Contact(remote_id=f"C-{rng.random()}", source=source, account_id=account, name="New Person",
                          email=f"new{rng.randrange(999)}@example.com", seniority=rng.choice(["c_suite", None]))])


@edit
def deal_changed(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    deal = data.opportunities[rng.choice(sorted(data.opportunities))]
    write(store, [dataclasses.replace(deal, amount=deal.amount and deal.amount + 1000,
                                      stage_label=rng.choice(["Qualify", "Propose", "Negotiate", deal.stage_label]))])


@edit
def deal_moved(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    deal = data.opportunities[rng.choice(sorted(data.opportunities))]
    write(store, [dataclasses.replace(deal, account_id=rng.choice(sorted(data.accounts)))])


@edit
def deal_gone(store: Store, source: str, rng: random.Random) -> None:
    deleted(store, "opportunity", source, [rng.choice(sorted(_data(store, source).opportunities))])


@edit
def new_deal(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    account = rng.choice(sorted(data.contacts_by_account))
    deal = f"D-{rng.random()}"
    won = rng.random() < 0.5
    write(store, [Opportunity(remote_id=deal, source=source, account_id=account, name="New deal", amount=50000,
                              stage_label="Closed Won" if won else "Propose", is_won=won, is_closed=won,
                              created_at=WHEN - timedelta(days=90)),
                  StageChange(remote_id=f"{deal}-1", source=source, opportunity_id=deal, stage_label="Qualify",
                              entered_at=WHEN - timedelta(days=60)),
                  StageChange(remote_id=f"{deal}-2", source=source, opportunity_id=deal,
                              stage_label="Closed Won" if won else "Propose", entered_at=WHEN),
                  OpportunityContact(remote_id=f"{deal}-r", source=source, opportunity_id=deal,
                                     contact_id=data.contacts_by_account[account][0].remote_id,
                                     role="decision_maker")])


@edit
def role_changed(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    roles = sorted((r for found in data.roles.values() for r in found), key=lambda r: r.remote_id)
    role = rng.choice(roles)
    write(store, [dataclasses.replace(role, role=rng.choice(["economic_buyer", "influencer", "approver"]),
                                      is_primary=not role.is_primary)])


@edit
def role_gone(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    deleted(store, "opportunity_contact", source,
            [rng.choice(sorted(r.remote_id for found in data.roles.values() for r in found))])


@edit
def stage_history(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    deal = rng.choice(sorted(data.opportunities))
    write(store, [StageChange(remote_id=f"H-{rng.random()}", source=source, opportunity_id=deal,
                              stage_label=rng.choice(["Qualify", "Propose", "Negotiate"]),
                              entered_at=WHEN - timedelta(days=rng.randrange(1, 200)))])


@edit
def user_changed(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    user = data.users[rng.choice(sorted(data.users))]
    write(store, [dataclasses.replace(user, seniority=rng.choice(["c_suite", "vp", "manager"]),
                                      team_role=rng.choice(["AR", "executive", "SR"]))])


@edit
def stage_defined(store: Store, source: str, rng: random.Random) -> None:
    write(store, [Stage(remote_id=rng.choice(["Qualify", "Propose", "Negotiate"]), source=source,
                        label=rng.choice(["Qualify", "Propose", "Negotiate"]), order=rng.randrange(9),
                        probability=rng.random(), is_closed=False, is_won=False)])


@edit
def execution(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    won = sorted(d for d, deal in data.opportunities.items() if deal.is_won) or sorted(data.opportunities)
    deal = rng.choice(won)
    contract = f"K-{rng.random()}"
    write(store, [ExecutionRecord(remote_id=contract, source=source, kind="contract", opportunity_id=deal,
                                  active=True, started_at=WHEN - timedelta(days=20)),
                  ExecutionRecord(remote_id=f"O-{rng.random()}", source=source, kind="invoice", contract_id=contract,
                                  started_at=WHEN - timedelta(days=rng.randrange(1, 19)))])


@edit
def linked_mail(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    account = rng.choice(sorted(data.contacts_by_account))
    contact = data.contacts_by_account[account][0].remote_id
    message = f"m{rng.random()}"
    at = WHEN - timedelta(days=rng.randrange(300))
    write(store, [Interaction(remote_id=f"{message}|{source}|", source="mailbox", link_source=source,
                              account_id=account, kind="email", direction="inbound", occurred_at=at,
                              contact_ids=(contact,), user_ids=(rng.choice(sorted(data.users)),)),
                  Correspondent(remote_id=f"{message}|who@{account}.example", source="mailbox", link_source=source,
                                account_id=account, address=f"who@{account}.example", name="Someone",
                                occurred_at=at, sent=True)])


@edit
def account_changed(store: Store, source: str, rng: random.Random) -> None:
    data = _data(store, source)
    account = data.accounts[rng.choice(sorted(data.accounts))]
    write(store, [dataclasses.replace(account, tier=rng.choice(["S", "A", "B", None]),
                                      annual_revenue=rng.choice([None, 5_000_000, 2_000_000_000]))])


@edit
def account_gone(store: Store, source: str, rng: random.Random) -> None:
    deleted(store, "account", source, [rng.choice(sorted(_data(store, source).accounts))])


@edit
def new_account(store: Store, source: str, rng: random.Random) -> None:
    account = f"A-{rng.random()}"
    write(store, [Account(remote_id=account, source=source, name="Newco", annual_revenue=200_000_000),
                  Contact(remote_id=f"{account}-c", source=source, account_id=account, name="Newco Person",
                          seniority="vp")])


@edit
def refreshed(store: Store, source: str, rng: random.Random) -> None:
    """The end of a sync: the stale aggregates built again."""
    refresh(store, host(), load_config())


@edit
def rebuilt(store: Store, source: str, rng: random.Random) -> None:
    """``crmlink aggregate --rebuild``: every aggregate built again from its rows."""
    refresh(store, host(), load_config(), rebuild=True)


# -- the tests ---------------------------------------------------------------------------------------

def test_an_unchanged_store_is_audited_from_the_cache_alone(template: Path, tmp_path: Path) -> None:
    store, _ = copied(template, tmp_path)
    accounts = store.count("account")
    assert check(store, load_config()) == accounts
    assert check(store, load_config(), workers=2) == accounts


def test_a_table_audit_stores_its_accounts_and_takes_its_hits_like_a_json_one(template: Path, tmp_path: Path) -> None:
    """The table and Markdown formats use the cache as the JSON one does: a first table
    audit judges every account (the template's entries are indented, its texts are not)
    and stores them, the next takes every account from the cache and renders the same
    table and entries, and a JSON document in the same layout takes the table's entries
    and is the document an audit without the cache writes."""
    store, _ = copied(template, tmp_path)
    config = load_config()

    def table_audit() -> tuple[str, list[str], int]:
        run = Audit(store, host(), copy.deepcopy(config), DAY)
        document = run.stream(None)
        return table.render(document, None), [repr(e) for e in [*document.accounts, *document.opportunities]], \
            run.from_cache

    first, first_entries, none = table_audit()
    again, again_entries, hits = table_audit()
    assert none == 0
    assert hits == store.count("account") > 0
    assert (again, again_entries) == (first, first_entries)
    out, fresh = io.StringIO(), io.StringIO()
    run = Audit(store, host(), copy.deepcopy(config), DAY)
    run.stream(None, out)
    assert run.from_cache == hits
    Audit(store, host(), {**copy.deepcopy(config), "audit": {**config["audit"], "cache": False}}, DAY).stream(None, fresh)
    assert SEVERITY.sub("", out.getvalue()) == SEVERITY.sub("", fresh.getvalue())


def test_a_hit_s_text_goes_to_the_document_from_the_cache_s_table_as_stored(template: Path, tmp_path: Path) -> None:
    """A hit's JSON text is read from the table when the document is written, the bytes
    as stored (never made again); a key whose row is gone by then is an error, not a
    document without it."""
    from crmlink.core.analysis.cache import _Texts
    from crmlink.core.analysis.chunks import Reader
    from crmlink.core.errors import StoreError

    store, source = copied(template, tmp_path)
    table = schema.audit_cache
    with store.engine.connect() as conn:
        key, text = conn.execute(sa.select(table.c.account_id, table.c.text)).first()  # type: ignore[misc]
    marked = unpack(text).replace(b'"name": "', b'"name": "Stored ', 1)
    assert marked != unpack(text)
    with store.transaction() as conn:
        conn.execute(table.update().where(table.c.account_id == key).values(text=pack(marked)))
    document, hits = audit(store, load_config())
    assert hits == store.count("account") and "Stored " in document
    with Reader(store) as reader:
        assert _Texts(reader, source)([key]) == {key: marked}
        with pytest.raises(StoreError, match="lost entries"):
            _Texts(reader, source)([key, "no such account"])


def test_accounts_judged_in_workers_are_stored_as_judged(template: Path, tmp_path: Path) -> None:
    """A first audit in two processes stores each account where it was judged (its
    stored form made there: :func:`.cache.stored_pickled`); the next audit takes every one
    from the cache and writes the same document."""
    store, _ = copied(template, tmp_path)
    with store.transaction() as conn:
        conn.execute(schema.audit_cache.delete())
    judged, none = audit(store, load_config(), workers=2)
    assert none == 0
    cached, hits = audit(store, load_config())
    assert hits == store.count("account")
    assert cached == judged


def test_a_hit_gives_the_deal_texts_of_a_judged_account(template: Path, tmp_path: Path) -> None:
    """The cache stores each deal's JSON text beside its entry (a hit copies it into the
    document): it is the text the entry makes, with the audit's indentation."""
    store, _ = copied(template, tmp_path)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(schema.audit_cache.c.judged)).scalars().all()
    deals = [deal for blob in stored for deal in read_form(unpack(blob)).deals]
    assert len(stored) == store.count("account") and deals
    for remote_id, text, counted, pickled in deals:
        kept, summary = pickled.load()
        assert isinstance(kept, Pickled), "a hit's deal entry is unpickled only when read"
        entry = kept.load()
        assert text == account_json(entry, 2).encode("utf-8")
        assert summary.opportunity.remote_id == entry.remote_id == remote_id
        assert counted == deal_counted(summary)


@pytest.mark.skipif(not parallel.can_fork() or parallel.usable_cpus() < 2, reason="workers are forked processes")
def test_the_accounts_judged_again_go_to_a_worker_beside_the_hits(template: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """After a small sync, with ``[audit] workers = "auto"``, the accounts judged again
    (from :data:`.workers.BESIDE_FROM` of them) are judged in a forked worker while the
    audit's process reads the hits: the same document, and the next audit takes every
    account from the cache (each stored where it was judged)."""
    monkeypatch.setattr(workers_module, "BESIDE_FROM", 2)
    store, source = copied(template, tmp_path)
    rng = random.Random(3)
    for _ in range(6):
        new_interaction(store, source, rng)
    refreshed(store, source, rng)
    with caplog.at_level(logging.INFO, logger=workers_module.__name__):
        hits = check(store, load_config(), workers="auto")
    assert 0 < hits < store.count("account")
    assert f"account(s) of {source} in 2 processes" in caplog.text
    assert check(store, load_config(), workers="auto") == store.count("account")


@pytest.mark.parametrize("name", sorted(EDITS))
def test_each_kind_of_write_is_seen(name: str, template: Path, tmp_path: Path) -> None:
    """After each kind of write, then after the refresh a sync ends with: the documents
    are equal, and the accounts the write touched were judged again (not every one)."""
    store, source = copied(template, tmp_path)
    accounts = store.count("account")
    EDITS[name](store, source, random.Random(name))
    hits = check(store, load_config())
    refreshed(store, source, random.Random(0))
    check(store, load_config())
    if name in ("refreshed", "rebuilt", "account_gone"):  # nothing was stale; the account is not audited
        assert hits == store.count("account")
    else:  # the write's accounts were judged again
        assert hits < store.count("account")
    stored = check(store, load_config())
    if name == "contact_seniority_by_sql":  # no sync marked the people: an aggregate whose
        assert stored < accounts             # executives changed is folded from its rows
    else:
        assert stored == store.count("account")  # everything stored now


def test_a_write_raises_the_revision_of_the_accounts_it_changes(template: Path, tmp_path: Path) -> None:
    store, source = copied(template, tmp_path)
    data = _data(store, source)
    first, second = sorted(data.contacts_by_account)[:2]
    before = revisions.of_source(store.engine.connect(), source)
    contact = data.contacts_by_account[first][0]
    write(store, [dataclasses.replace(contact, account_id=second)])
    after = revisions.of_source(store.engine.connect(), source)
    assert after[first] > before.get(first, 0) and after[second] > before.get(second, 0)
    assert after[revisions.CONTACTS] > before.get(revisions.CONTACTS, 0)
    changed = {k for k in after if after[k] != before.get(k, 0)}
    assert changed == {first, second, revisions.CONTACTS}
    write(store, [dataclasses.replace(contact, account_id=second)])  # the same values: nothing
    with store.transaction() as conn:  # a resync that only moves the run id: nothing
        conn.execute(sa.text("UPDATE contacts SET run_id = 99 WHERE source = :s"), {"s": source})
    assert revisions.of_source(store.engine.connect(), source) == after


def aggregates_of(store: Store, source: str) -> dict[str, bytes]:
    with store.engine.connect() as conn:
        return {a: bytes(d) for a, d in conn.execute(sa.select(schema.aggregates.c.account_id, schema.aggregates.c.data)
                                                     .where(schema.aggregates.c.source == source))}


def test_a_rebuild_that_writes_the_same_bytes_keeps_the_cache(template: Path, tmp_path: Path) -> None:
    """``crmlink aggregate --rebuild`` with nothing changed writes nothing: no revision
    moves and every account still comes from the cache."""
    store, source = copied(template, tmp_path)
    with store.engine.connect() as conn:
        before = revisions.of_source(conn, source)
    stored = aggregates_of(store, source)
    [done] = refresh(store, host(), load_config(), rebuild=True)
    assert done.full and done.built == len(stored) == done.unchanged and done.left == 0
    with store.engine.connect() as conn:
        assert revisions.of_source(conn, source) == before
    assert aggregates_of(store, source) == stored
    assert check(store, load_config()) == store.count("account")


def test_a_rebuild_that_writes_other_bytes_judges_their_accounts_again(template: Path, tmp_path: Path) -> None:
    """An aggregate that differs from what its rows make (here one swapped for another
    account's, audited and stored so) is written by the rebuild: its account's revision
    rises and it is judged again; the others' stay and come from the cache."""
    store, source = copied(template, tmp_path)
    stored = aggregates_of(store, source)
    first, second = sorted(stored)[:2]
    with store.transaction() as conn:
        conn.execute(schema.aggregates.update().where(schema.aggregates.c.source == source,
                                                      schema.aggregates.c.account_id == first)
                     .values(data=stored[second]))
    assert check(store, load_config()) == store.count("account") - 1  # the swapped one, judged and stored
    assert check(store, load_config()) == store.count("account")
    with store.engine.connect() as conn:
        before = revisions.of_source(conn, source)
    [done] = refresh(store, host(), load_config(), rebuild=True)
    assert done.built - done.unchanged == 1
    assert aggregates_of(store, source) == stored
    with store.engine.connect() as conn:
        after = revisions.of_source(conn, source)
    assert {k for k in after if after[k] != before.get(k)} == {first}
    assert check(store, load_config()) == store.count("account") - 1


@pytest.mark.parametrize("variant", ["weights", "findings", "as_of", "plugins"])
def test_settings_dates_and_plugins_are_in_the_fingerprint(variant: str, template: Path, tmp_path: Path) -> None:
    store, _ = copied(template, tmp_path)
    config, options = load_config(), {}
    if variant == "weights":
        config["weights"] = {k: v * 2 if isinstance(v, (int, float)) else v for k, v in config["weights"].items()}
    elif variant == "findings":
        config["findings"]["previous_period_days"] += 30
    elif variant == "as_of":
        options["as_of"] = DAY - timedelta(days=45)
    else:
        options["extra"] = True
    assert check(store, config, **options) == 0
    if variant == "weights":  # the aggregates were built with other weights: rebuilt
        refresh(store, host(), config)
        assert check(store, config, **options) == 0
    assert check(store, config, **options) == store.count("account")


def steps() -> st.SearchStrategy[list[tuple[list[str], int, bool]]]:
    """Each step: the writes of one sync, then which audit (settings), and whether the
    sync ended with its refresh."""
    return st.lists(st.tuples(st.lists(st.sampled_from(sorted(EDITS)), min_size=1, max_size=4),
                              st.integers(0, 3), st.booleans()), min_size=1, max_size=4)


VARIANTS: list[dict[str, Any]] = [{}, {"as_of": DAY - timedelta(days=31)}, {"extra": True}, {"workers": 2}]


def replay(store: Store, source: str, plan: list[tuple[list[str], int, bool]], seed: int) -> None:
    rng = random.Random(seed)
    config = load_config()
    for names, variant, refresh_after in plan:
        for name in names:
            EDITS[name](store, source, rng)
        if refresh_after:
            refreshed(store, source, rng)
        check(store, config, **VARIANTS[variant])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps(), seed=st.integers(0, 2**16))
def test_random_syncs_sqlite(template: Path, tmp_path: Path, plan: list[tuple[list[str], int, bool]],
                             seed: int) -> None:
    store, source = copied(template, tmp_path)
    replay(store, source, plan, seed)


@pytest.fixture(scope="module")
def postgres_template(postgres_server: Any) -> Iterator[str]:
    """A PostgreSQL database of the sample, synced and audited once, to copy."""
    with postgres_server.database() as url:
        store, _ = synced(url)
        audit(store, load_config())
        store.engine.dispose()
        yield url


def postgres_copy(server: Any, template_url: str) -> str:
    name = sa.make_url(template_url).database
    copy_name = f"copy_{time.monotonic_ns()}"
    with server._admin() as admin:  # the template's idle pooled connections would refuse the copy
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                      "AND pid <> pg_backend_pid()", (name,))
        admin.execute(f'CREATE DATABASE "{copy_name}" TEMPLATE "{name}"')
    return str(sa.make_url(template_url).set(database=copy_name))


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps(), seed=st.integers(0, 2**16))
def test_random_syncs_postgres(postgres_server: Any, postgres_template: str, plan: list[tuple[list[str], int, bool]],
                               seed: int) -> None:
    url = postgres_copy(postgres_server, postgres_template)
    store = Store(url)
    try:
        replay(store, store.sources()[0], plan, seed)
    finally:
        store.engine.dispose()
        postgres_server.drop(url)


def test_every_kind_of_write_in_turn(store_url: str) -> None:
    """Each kind of write in turn on one store (SQLite and PostgreSQL)."""
    store, source = synced(store_url)
    config = load_config()
    audit(store, config)
    rng = random.Random(7)
    for name in sorted(EDITS):
        EDITS[name](store, source, rng)
        check(store, config)
    assert check(store, config) > store.count("account") // 2  # those folded from their aggregates


# -- a sync while the audit reads, a killed write -----------------------------------------------------

def cache_rows(store: Store, source: str) -> dict[str, int]:
    table = schema.audit_cache
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.account_id, table.c.revision).where(table.c.source == source)).all())


@pytest.mark.parametrize("what", ["account", "contact"])
def test_a_sync_committing_while_the_audit_reads_is_never_stored_under_its_revision(
        what: str, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync commits after the audit read its revisions and before it reads the first
    chunk: every entry the audit stores has the revision the audit read, never the one
    the sync made, and the next audit is right."""
    store, source = synced(store_url)
    config = load_config()
    data = _data(store, source)
    account = sorted(data.contacts_by_account)[0]
    contact = data.contacts_by_account[account][0]
    original = chunks_module.SourceChunks.chunk
    done: list[bool] = []

    def chunk(self: Any, keys: Any) -> Any:
        if not done:
            done.append(True)
            if what == "account":
                write(store, [dataclasses.replace(data.accounts[account], name="Renamed While Auditing")])
            else:
                write(store, [dataclasses.replace(contact, seniority="c_suite", name="Renamed While Auditing")])
        return original(self, keys)

    with store.engine.connect() as conn:
        before = revisions.of_source(conn, source)
    monkeypatch.setattr(chunks_module.SourceChunks, "chunk", chunk)
    audit(store, config)
    monkeypatch.setattr(chunks_module.SourceChunks, "chunk", original)
    assert done
    with store.engine.connect() as conn:
        after = revisions.of_source(conn, source)
    assert after[account] > before.get(account, 0)
    stored = cache_rows(store, source)
    assert all(revision == before.get(key, 0) for key, revision in stored.items())
    assert account not in stored
    if what == "contact":  # any contact: the executives of other accounts may have changed
        assert not stored
    else:
        assert len(stored) == store.count("account") - 1
    check(store, config)
    assert cache_rows(store, source)[account] == after[account]


def test_a_killed_cache_write_leaves_a_usable_store(tmp_path: Path, store_url: str) -> None:
    """The audit killed at random points while it writes its cache: the store opens and
    the next audit is right."""
    store, _ = synced(store_url)
    config = load_config()
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for attempt in range(3):
        with store.transaction() as conn:
            conn.execute(schema.audit_cache.delete())
        proc = subprocess.Popen([sys.executable, "-m", "crmlink", "audit", "--db", store_url, "--as-of", AS_OF,
                                 "--format", "json", "--output", str(tmp_path / "out.json")],
                                env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3 + 0.25 * attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check(store, config)
    assert check(store, config) == store.count("account")


def test_no_cache_judges_every_account(template: Path, tmp_path: Path) -> None:
    """``crmlink -v audit`` says how many accounts came from the cache; ``--no-cache`` none."""
    store, _ = copied(template, tmp_path)

    def verbose(*extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "crmlink", "-v", "audit", "--db", str(store.engine.url),
                               "--as-of", AS_OF, "--format", "json", "--output", str(tmp_path / "out.json"), *extra],
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "from the audit's cache" not in verbose("--no-cache")
    verbose()  # the command's own settings and plugins: stored
    assert f"{store.count('account')} account(s) from the audit's cache, 0 to judge" in verbose()


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "not-packed"])
def test_a_tampered_cache_is_refused(template: Path, tmp_path: Path, packed: bool) -> None:
    """An entry that holds anything but crmlink's data is not unpickled, nor one that is
    not packed as the cache packs its entries."""
    import pickle

    store, source = copied(template, tmp_path)
    bad = pickle.dumps(subprocess.Popen)
    bad = pack(bad) if packed else bad
    with store.transaction() as conn:
        conn.execute(schema.audit_cache.update().values(judged=bad))
    from crmlink.core.errors import StoreError

    with pytest.raises(StoreError, match="cannot read"):
        audit(store, load_config())
    assert check(store, load_config()) == 0  # cleared: judged again


def test_a_store_of_schema_7_gains_the_revisions_and_the_cache(store_url: str) -> None:
    """An older store opens: its tables and triggers are made, and a write raises revisions."""
    store, source = synced(store_url)
    store.engine.dispose()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:  # make it what crmlink wrote before schema 8
        for name, table in [(t.name, t) for t in schema.metadata.sorted_tables]:
            if name in ("audit_cache", "audit_revisions"):
                conn.exec_driver_sql(f"DROP TABLE {table.name}" + (" CASCADE" if "postgresql" in store_url else ""))
        if "postgresql" in store_url:
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS crmlink_revise_accounts() CASCADE")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS crmlink_revise_accounts_update")
        conn.exec_driver_sql("UPDATE crmlink_meta SET value = '7' WHERE key = 'schema_version'")
    engine.dispose()
    store = Store(store_url)
    assert store.schema_version == schema.SCHEMA_VERSION >= 8
    account = _data(store, source).accounts
    first = account[sorted(account)[0]]
    write(store, [dataclasses.replace(first, name="Renamed After The Upgrade")])
    with store.engine.connect() as conn:
        assert revisions.of_source(conn, source)[first.remote_id] >= 1
    audit(store, load_config())
    assert check(store, load_config()) == store.count("account")
