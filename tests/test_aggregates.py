"""The audit's aggregates give exactly the raw fold's AccountData.

A property test makes random stores (accounts, our people with and without seniority,
contacts, interactions of every kind and direction, internal ones, mass email, meetings
with several people on each side, ties in time, rows naming no account, rows linked from
a mailbox, deals), writes them through the store's own write path, refreshes the
aggregates, then changes and deletes rows and people's seniority through the same path,
and compares each account's AccountData of the aggregate path with the raw fold at
several dates (before some interactions, on a window's edge, the previous period):
counts, times, sets and lists exactly, weights and effort within 1e-9 relative. It does
so both before the refresh (stale accounts come from their rows) and after (every
account from its aggregate), on SQLite and on PostgreSQL, with the refresh reading the
stale accounts' rows through the account index or in one sorted read of the table.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlink.core import aggregate_store
from crmlink.core.analysis import aggregate_build
from crmlink.core.analysis.accumulate import AccountData, Accumulator
from crmlink.core.analysis.aggregate_build import Builder, refresh
from crmlink.core.analysis.aggregates import (
    Aggregate,
    FoldCounts,
    Windows,
    classifiers,
    fingerprint,
    fold_unit,
)
from crmlink.core.analysis.config import DEFAULTS
from crmlink.core.analysis.units import Unit
from crmlink.core.host import get_plugin_host
from crmlink.core.model import Account, Contact, Interaction, User
from crmlink.core.store import Store

BASE = 1_750_000_000.0
DAY = 86400.0
ACCOUNTS = ("a1", "a2", "a3")
USERS = ("u1", "u2", "u3", "u4")
CONTACTS = ("c1", "c2", "c3", "c4", "c5", "c6")
SENIORITY = st.sampled_from([None, "manager", "director", "vp", "c_suite"])
#: few distinct offsets, so that interactions tie in time
OFFSETS = st.sampled_from([0.0, 3.5 * DAY, 20 * DAY, 20 * DAY + 1.0, 100 * DAY, 200 * DAY, 380 * DAY,
                           400 * DAY, 401.25 * DAY, 600 * DAY])
SUBJECTS = st.sampled_from([None, "Quarterly review", "Technical workshop", "Reference site visit", "Expo booth"])

HOST = get_plugin_host(load_entrypoints=False)


def interaction(remote_id: str, source: str = "crm") -> st.SearchStrategy[Interaction]:
    ids = st.lists(st.sampled_from([*USERS, "ux"]), max_size=3)
    contacts = st.lists(st.sampled_from([*CONTACTS, "cx"]), max_size=4)
    return st.builds(
        Interaction, remote_id=st.just(remote_id), source=st.just(source),
        kind=st.sampled_from(["meeting", "call", "email", "visit", "event", "note", "task"]),
        direction=st.sampled_from([None, "inbound", "outbound", "two_way", "internal"]),
        method=st.sampled_from([None, None, "site_visit", "exhibition"]),
        occurred_at=OFFSETS.map(lambda s: datetime.fromtimestamp(BASE + s, timezone.utc)),
        subject=SUBJECTS, account_id=st.sampled_from([*ACCOUNTS, None, "gone"]),
        opportunity_id=st.sampled_from([None, "o1", "o2"]), user_ids=ids.map(tuple),
        contact_ids=contacts.map(tuple), recipient_count=st.sampled_from([None, 0, 1, 3, 12, 60]),
        campaign=st.sampled_from([None, "Tech exchange 2026"]),
        link_source=st.just("crm" if source != "crm" else None))


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    users = [User(remote_id=u, source="crm", seniority=draw(SENIORITY),
                  team_role=draw(st.sampled_from([None, "AR", "executive"]))) for u in USERS]
    contacts = [Contact(remote_id=c, source="crm", account_id=draw(st.sampled_from([*ACCOUNTS, None])),
                        seniority=draw(SENIORITY)) for c in CONTACTS]
    first = [draw(interaction(f"i{k}")) for k in range(draw(st.integers(0, 14)))]
    first += [draw(interaction(f"m{k}", "mail")) for k in range(draw(st.integers(0, 3)))]
    changed = [draw(interaction(i.remote_id, i.source)) for i in first if draw(st.booleans())]
    added = [draw(interaction(f"n{k}")) for k in range(draw(st.integers(0, 4)))]
    deleted = [i.remote_id for i in first if i.source == "crm" and draw(st.integers(0, 4)) == 0]
    promoted = draw(st.sampled_from(CONTACTS))
    config = copy.deepcopy(DEFAULTS)
    config["strength"]["reciprocity_days"] = draw(st.sampled_from([365.0, 20.0]))
    config["strength"]["half_life_days"] = draw(st.sampled_from([90.0, 7.5]))
    config["findings"]["cadence_weeks"] = draw(st.sampled_from([4, 1]))
    return {"users": users, "contacts": contacts, "first": first, "changed": changed, "added": added,
            "deleted": deleted, "promoted": promoted, "new_seniority": draw(SENIORITY),
            "user_seniority": draw(SENIORITY), "config": config,
            # the refresh after the changes: stale accounts through the account index (a
            # share of 1.0 never scans) or the whole table sorted by account (0.0)
            "scan_share": draw(st.sampled_from([0.0, 1.0]))}


def stamps(config: dict[str, Any]) -> list[float]:
    """Dates before, between and after the interactions, on a window's edge, and the
    previous period of the last one."""
    strength, findings = config["strength"], config["findings"]
    edges = [BASE + 20 * DAY + strength["reciprocity_days"] * DAY,
             BASE + 400 * DAY + findings["cadence_weeks"] * 7 * DAY,
             BASE + 100 * DAY + findings["exec_link_days"] * DAY,
             BASE + 3.5 * DAY + config["coverage"]["window_days"] * DAY]
    last = BASE + 700 * DAY
    return sorted([BASE - DAY, BASE, BASE + 20 * DAY, BASE + 250 * DAY, *edges, last - 90 * DAY, last])


def same(raw: AccountData, aggregated: AccountData, where: str) -> None:
    assert raw.pairs.keys() == aggregated.pairs.keys(), where
    for key, pair in raw.pairs.items():
        other = aggregated.pairs[key]
        assert (pair.inbound, pair.outbound, pair.last_two_way, pair.last_any) == (
            other.inbound, other.outbound, other.last_two_way, other.last_any), (where, key)
        assert math.isclose(pair.weight, other.weight, rel_tol=1e-9), (where, key, pair.weight, other.weight)
    assert math.isclose(raw.effort, aggregated.effort, rel_tol=1e-9, abs_tol=0.0), where
    for name in ("contact_last", "user_last", "recent", "exec_links", "first_two_way", "methods",
                 "interactions", "external", "unlinked", "excluded", "window", "opp_contacts",
                 "opp_last_inbound", "opp_last_any", "as_of"):
        assert getattr(raw, name) == getattr(aggregated, name), (where, name)


def compare(store: Store, config: dict[str, Any], *, fresh: bool) -> FoldCounts:
    """Both paths at every date; with ``fresh``, every account came from its aggregate."""
    unit = Unit(store, "crm")
    print_ = fingerprint(config, classifiers(HOST))
    when = stamps(config)
    with store.engine.connect() as conn:
        acc = Accumulator(config, unit.data.users, unit.data.contacts, HOST.interaction_method)
        raw, _ = fold_unit(conn, unit, acc, when, None)
        acc = Accumulator(config, unit.data.users, unit.data.contacts, HOST.interaction_method)
        aggregated, counts = fold_unit(conn, unit, acc, when, print_)
    assert raw.keys() == aggregated.keys() == set(ACCOUNTS)
    for account in raw:
        for k, stamp in enumerate(when):
            same(raw[account][k], aggregated[account][k], f"{account} as of {stamp}")
    if fresh:
        assert counts.raw == 0 and counts.aggregated == len(ACCOUNTS), counts
    return counts


def write(store: Store, records: list[Any]) -> None:
    with store.transaction() as conn:
        for entity in dict.fromkeys(r.entity for r in records):
            store.upsert(conn, [r for r in records if r.entity == entity])


def exercise(store: Store, case: dict[str, Any]) -> None:
    config = case["config"]
    write(store, [Account(remote_id=a, source="crm", name=a) for a in ACCOUNTS])
    write(store, [*case["users"], *case["contacts"], *case["first"]])
    refresh(store, HOST, config)
    compare(store, config, fresh=True)
    # changes through the store's write path: rows changed and added, rows deleted, a
    # contact's and a user's seniority changed
    write(store, case["changed"] + case["added"])
    with store.transaction() as conn:
        store.mark_deleted(conn, "interaction", "crm", case["deleted"])
    contact = next(c for c in case["contacts"] if c.remote_id == case["promoted"])
    user = copy.copy(case["users"][0])
    user.seniority = case["user_seniority"]
    write(store, [Contact(remote_id=contact.remote_id, source="crm", account_id=contact.account_id,
                          seniority=case["new_seniority"]), user])
    compare(store, config, fresh=False)  # stale accounts from their rows
    share, aggregate_build.SCAN_SHARE = aggregate_build.SCAN_SHARE, case["scan_share"]
    try:
        refresh(store, HOST, config)
    finally:
        aggregate_build.SCAN_SHARE = share
    compare(store, config, fresh=True)
    # what the refresh wrote is byte for byte what a rebuild of every account builds
    rebuilt = refresh(store, HOST, config, rebuild=True)
    assert [(done.built, done.left) for done in rebuilt] == [(done.unchanged, 0) for done in rebuilt]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A factory of empty stores, on SQLite or on PostgreSQL."""
    made: list[str] = []
    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None

    def make() -> Store:
        url = server.create() if server else f"sqlite:///{tmp_path / f'store{len(made)}.db'}"
        made.append(url)
        return Store(url)

    yield make
    for url in made:
        if server:
            server.drop(url)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=scenarios())
def test_the_aggregates_give_the_raw_fold_s_account_data(new_store: Callable[[], Store], case: dict[str, Any]) -> None:
    store = new_store()
    try:
        exercise(store, case)
    finally:
        store.engine.dispose()


def test_an_encoded_aggregate_round_trips_and_refuses_other_bytes() -> None:
    builder = Builder()
    builder.add(("a1", BASE, 2.5, ("u1", "u2"), ("c1",), True, True, True, "site_visit", True, "o1", True, True))
    builder.add(("a1", BASE + DAY, 0.0, (), ("c1",), False, False, False, None, False, None, True, False))
    found = Aggregate(builder.encode(90 * DAY))
    data = found.at(BASE + 2 * DAY, Windows(90 * DAY, 365 * DAY, 28 * DAY, 180 * DAY, 365 * DAY))
    assert sorted(data.pairs) == [("u1", "c1"), ("u2", "c1")]
    assert data.interactions == 1 and data.excluded == 1 and data.exec_links == [BASE]
    assert data.opp_contacts == {"o1": {"c1": [BASE, BASE]}} and data.methods == {"site_visit": BASE}
    with pytest.raises(ValueError, match="not an encoded aggregate"):
        Aggregate(b"\x80\x04pickle")


def blobs(store: Store) -> dict[str, tuple[bytes, Any]]:
    import sqlalchemy as sa

    from crmlink.core import schema

    table = schema.aggregates
    with store.engine.connect() as conn:
        return {a: (bytes(d), p) for a, d, p in conn.execute(sa.select(table.c.account_id, table.c.data, table.c.people)
                                                            .where(table.c.source == "crm"))}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_both_reads_of_a_refresh_build_the_same_aggregates_as_rows_in_any_order(
        request: pytest.FixtureRequest, tmp_path: Path, dialect: str) -> None:
    """Accounts interleaved across the CRM's rows and a mailbox's rows linked to it, ties
    in time, rows naming no account: the sorted read of the whole table and the read
    through the account index give the same bytes, and so does a Builder fed each
    account's rows (as classified) in reverse order."""
    url = (str(request.getfixturevalue("postgres_url")) if dialect == "postgresql"
           else f"sqlite:///{tmp_path / 'store.db'}")
    store = Store(url)
    config = copy.deepcopy(DEFAULTS)
    users = [User(remote_id=u, source="crm", seniority="vp" if u == "u1" else None) for u in USERS]
    contacts = [Contact(remote_id=c, source="crm", account_id=ACCOUNTS[k % 3], seniority="c_suite" if k % 2 else None)
                for k, c in enumerate(CONTACTS)]
    rows = []
    for k in range(60):
        source = "mail" if k % 4 == 3 else "crm"
        rows.append(Interaction(
            remote_id=f"r{k}", source=source, kind=("meeting", "email", "call")[k % 3],
            direction=(None, "inbound", "outbound", "two_way")[k % 4],
            occurred_at=datetime.fromtimestamp(BASE + (k % 7) * DAY, timezone.utc),
            account_id=(*ACCOUNTS, None)[k % 4 if source == "crm" else k % 3], opportunity_id="o1" if k % 5 == 0 else None,
            user_ids=(USERS[k % 4], USERS[(k + 1) % 4])[: 1 + k % 2], contact_ids=(CONTACTS[k % 6], CONTACTS[(k + 2) % 6]),
            recipient_count=None, link_source="crm" if source == "mail" else None))
    write(store, [Account(remote_id=a, source="crm", name=a) for a in ACCOUNTS])
    write(store, [*users, *contacts, *rows])
    try:
        refresh(store, HOST, config)  # the first build: one sorted read of the table
        scanned = blobs(store)
        assert sorted(scanned) == sorted(ACCOUNTS)
        with store.transaction() as conn:
            aggregate_store.mark(conn, [("crm", a) for a in ACCOUNTS])
        share, aggregate_build.SCAN_SHARE = aggregate_build.SCAN_SHARE, 1.0
        try:
            assert sum(done.built for done in refresh(store, HOST, config)) == len(ACCOUNTS)
        finally:
            aggregate_build.SCAN_SHARE = share
        assert blobs(store) == scanned  # through the account index, a chunk at a time
        people = aggregate_build.People(store, "crm")
        acc = Accumulator(config, people.users, people.contacts, HOST.interaction_method)
        with store.engine.connect() as conn:
            classified = list(acc.classify(aggregate_store.rows_by_account(conn, "crm"), set(ACCOUNTS),
                                           lambda _: None))
        windows, when = Windows.of(acc), stamps(config)
        for account in ACCOUNTS:
            builder = Builder()
            builder.add_all(reversed([row for row in classified if row[0] == account]))
            assert builder.people(people.users, people.contacts) == scanned[account][1]
            # rows at one time summed in another order: the same within rounding
            found = Aggregate(builder.encode(acc.half_life)).at_each(when, windows)
            for k, data in enumerate(Aggregate(scanned[account][0]).at_each(when, windows)):
                same(data, found[k], f"{account} as of {when[k]}")
    finally:
        store.engine.dispose()


def test_a_refresh_leaves_an_account_marked_again_while_it_was_built(tmp_path: Path) -> None:
    """The generation of a mark: what a refresh read is cleared and written, a mark a
    write raised meanwhile stays, and the account keeps its old aggregate until then."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    write(store, [Account(remote_id=a, source="crm", name=a) for a in ACCOUNTS])
    write(store, [Interaction(remote_id=f"i{k}", source="crm", kind="call", account_id=a, user_ids=("u1",),
                              contact_ids=("c1",), occurred_at=datetime.fromtimestamp(BASE + k * DAY, timezone.utc))
                  for k, a in enumerate(ACCOUNTS)])
    refresh(store, HOST, DEFAULTS)
    before = blobs(store)
    with store.transaction() as conn:
        aggregate_store.mark(conn, [("crm", "a1"), ("crm", "a2")])
        read = aggregate_store.marks(conn, "crm")
        aggregate_store.mark(conn, [("crm", "a2")])  # a write after the refresh read the marks
    with store.transaction() as conn:
        left, _ = aggregate_store.replace(conn, "crm", [("a1", read["a1"], b"new", {}), ("a2", read["a2"], b"new", {})])
    assert left == {"a2"}
    with store.engine.connect() as conn:
        assert aggregate_store.marks(conn, "crm") == {"a2": read["a2"] + 1}
    after = blobs(store)
    assert after["a1"][0] == b"new" and after["a2"] == before["a2"] and after["a3"] == before["a3"]


def _built_store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    write(store, [Account(remote_id=a, source="crm", name=a) for a in ACCOUNTS])
    write(store, [Interaction(remote_id=f"i{k}", source="crm", kind="call", account_id=ACCOUNTS[k % 3],
                              user_ids=("u1",), contact_ids=("c1",),
                              occurred_at=datetime.fromtimestamp(BASE + k * DAY, timezone.utc)) for k in range(9)])
    refresh(store, HOST, DEFAULTS)
    return store


def test_a_refresh_commits_its_batches_past_the_transaction_bound(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of one aggregate, a transaction each (past a bound of one byte): the same
    aggregates as one transaction writes, every mark cleared."""
    store, other = _built_store(tmp_path / "one"), _built_store(tmp_path / "other")
    for each in (store, other):
        with each.transaction() as conn:
            aggregate_store.mark_all(conn, "crm")
    monkeypatch.setattr(aggregate_build, "_BATCH", 1)
    monkeypatch.setattr(aggregate_build, "_TRANSACTION_BYTES", 1)
    assert [(done.built, done.left) for done in refresh(store, HOST, DEFAULTS)] == [(len(ACCOUNTS), 0)]
    monkeypatch.setattr(aggregate_build, "_TRANSACTION_BYTES", 1 << 30)
    refresh(other, HOST, DEFAULTS)
    assert blobs(store) == blobs(other)
    with store.engine.connect() as conn:
        assert aggregate_store.marks(conn, "crm") == {}


def test_a_refresh_that_fails_leaves_its_open_transaction_unwritten(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that fails after some batches were written in its open transaction
    writes none of them: the old aggregates and every mark stay, for the next refresh."""
    store = _built_store(tmp_path)
    before = blobs(store)
    write(store, [Interaction(remote_id=f"n{k}", source="crm", kind="meeting", account_id=a, user_ids=("u1",),
                              contact_ids=("c1",), occurred_at=datetime.fromtimestamp(BASE + DAY / 2, timezone.utc))
                  for k, a in enumerate(ACCOUNTS)])
    with store.engine.connect() as conn:
        marked = aggregate_store.marks(conn, "crm")
    replace, calls = aggregate_store.replace, []

    def failing(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the build failed")
        return replace(*args)

    monkeypatch.setattr(aggregate_build, "_BATCH", 1)
    monkeypatch.setattr(aggregate_store, "replace", failing)
    with pytest.raises(RuntimeError, match="the build failed"):
        refresh(store, HOST, DEFAULTS)
    assert blobs(store) == before
    with store.engine.connect() as conn:
        assert aggregate_store.marks(conn, "crm") == marked
    monkeypatch.setattr(aggregate_store, "replace", replace)
    assert [(done.built, done.left) for done in refresh(store, HOST, DEFAULTS)] == [(len(ACCOUNTS), 0)]
    assert blobs(store) != before


def test_a_refresh_writes_only_the_aggregates_that_differ(store_url: str) -> None:
    """The database compares what a refresh built with what is stored, data and people:
    an equal aggregate is not written (its account's revision stays), one that differs
    in either is, a new one is inserted, one without rows removed; each counted once."""
    from crmlink.core import revisions

    store = Store(store_url)
    try:
        with store.transaction() as conn:
            aggregate_store.replace(conn, "crm", [("a1", 0, b"one", {"tu": ["u1"]}), ("a2", 0, b"two", {}),
                                                  ("a3", 0, b"three", {})])
        with store.engine.connect() as conn:
            before = revisions.of_source(conn, "crm")
        built = [("a1", 0, b"one", {"tu": ["u1"]}),  # the same
                 ("a2", 0, b"two", {"tu": ["u2"]}),  # other people
                 ("a3", 0, None, None),  # no rows left
                 ("a4", 0, b"four", None),  # new
                 ("a5", 0, None, None)]  # neither stored nor built
        with store.transaction() as conn:
            left, same = aggregate_store.replace(conn, "crm", built)
        assert (left, same) == (set(), 2)
        with store.engine.connect() as conn:
            after = revisions.of_source(conn, "crm")
        assert {a for a in ("a1", "a2", "a3", "a4", "a5") if after.get(a, 0) != before.get(a, 0)} == {"a2", "a3", "a4"}
        assert {a: (data, people) for a, (data, people) in blobs(store).items()} == {
            "a1": (b"one", {"tu": ["u1"]}), "a2": (b"two", {"tu": ["u2"]}), "a4": (b"four", {})}
    finally:
        store.engine.dispose()


def documents(url: str) -> tuple[dict[str, Any], dict[str, Any], FoldCounts]:
    """The audit document (monthly history included) through the aggregates and through
    the raw fold, and where the first one's accounts came from."""
    from crmlink.core.analysis.audit import Audit
    from crmlink.core.analysis.config import load_config

    store = Store(url)
    settings = load_config()
    fast = Audit(store, HOST, settings, date(2026, 11, 20))
    through = fast.run(history=True)
    raw = Audit(store, HOST, settings | {"audit": {"aggregates": False}}, date(2026, 11, 20)).run(history=True)
    for document in (through, raw):
        document.pop("generated_at")
    return through, raw, fast.fold_counts


@pytest.mark.parametrize("people", ["sample", "multiparty"])
def test_the_audit_document_is_the_same_through_the_aggregates(store_url: str, tmp_path: Path, people: str) -> None:
    from click.testing import CliRunner

    from crmlink.cli import cli
    from crmlink.testing.generate import generate
    from tests.conftest import SAMPLE

    folder = SAMPLE
    if people == "multiparty":
        folder = tmp_path / "export"
        generate(folder, 40, 4000, contacts=300, profile="multiparty")
    synced = CliRunner().invoke(cli, ["sync", "csv", str(folder), "--db", store_url, "-q"])
    assert synced.exit_code == 0, synced.output
    through, raw, counts = documents(store_url)
    assert counts.raw == 0 and counts.aggregated > 0, counts
    assert through == raw


def test_a_store_of_schema_6_is_audited_from_its_rows_until_its_aggregates_are_built(store_url: str) -> None:
    import sqlalchemy as sa
    from click.testing import CliRunner

    from crmlink.cli import cli
    from crmlink.core import schema
    from tests.conftest import SAMPLE

    assert CliRunner().invoke(cli, ["sync", "csv", str(SAMPLE), "--db", store_url, "-q"]).exit_code == 0
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:  # make it what crmlink wrote before schema 7
        for table in ("aggregates", "aggregate_sources", "aggregate_stale"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP TRIGGER interactions_mark_aggregates ON interactions")
            conn.exec_driver_sql("DROP FUNCTION interactions_mark_aggregates()")
        else:
            conn.exec_driver_sql("DROP TRIGGER interactions_mark_aggregates")
        conn.exec_driver_sql("UPDATE crmlink_meta SET value = '6' WHERE key = 'schema_version'")
    engine.dispose()
    store = Store(store_url)
    assert store.schema_version == schema.SCHEMA_VERSION >= 7
    through, raw, counts = documents(store_url)
    assert through == raw and counts.aggregated == 0 and "no aggregates" in counts.reasons[0]
    built = CliRunner().invoke(cli, ["aggregate", "--db", store_url])
    assert built.exit_code == 0 and "csv: 50 aggregate(s) written (every account rebuilt)" in built.output
    through, raw, counts = documents(store_url)
    assert through == raw and counts.raw == 0
    with store.transaction() as conn:  # the upgrade made the trigger: a changed row marks its account
        conn.exec_driver_sql("UPDATE interactions SET direction = 'internal' WHERE remote_id = "
                             "(SELECT min(remote_id) FROM interactions WHERE account_id IS NOT NULL)")
    through, raw, counts = documents(store_url)
    assert through == raw and counts.raw == 2  # one account, in the fold of the audit date and of the history


def test_clearing_the_marks_of_written_aggregates_looks_each_account_up_by_the_key(tmp_path: Path) -> None:
    """``replace`` deletes the marks it read through the marks' key, not by scanning every
    mark of the source for the (account, generation) pairs: the scan, a statement of 32
    accounts at a time, made writing a first import's aggregates quadratic in its accounts."""
    import sqlalchemy as sa

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    statements: list[tuple[str, Any]] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, sql, args, context, many: statements.append((sql, args)))
    with store.transaction() as conn:
        aggregate_store.mark(conn, [("crm", a) for a in ACCOUNTS])
        read = aggregate_store.marks(conn, "crm")
        statements.clear()
        left, _ = aggregate_store.replace(conn, "crm", [(a, read[a], b"data", {}) for a in ACCOUNTS])
        deleting = [(sql, args) for sql, args in statements if sql.startswith("DELETE FROM aggregate_stale")]
        assert left == set() and len(deleting) == 1
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + deleting[0][0],
                                                                     deleting[0][1]))
        assert aggregate_store.marks(conn, "crm") == {}
    assert "account_id=?" in plan, plan


def test_marking_many_accounts_writes_them_a_part_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first import's end marks every account: on SQLite the marks go in parts of
    ``_MARKS`` (the parameters of all at once held 47 MiB at 100,000 accounts), each
    raising the generation of a mark already there, in sorted order."""
    import sqlalchemy as sa

    monkeypatch.setattr(aggregate_store, "_MARKS", 3)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    sizes: list[int] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, sql, args, context, many: sizes.append(len(args) if many else 1)
                    if sql.startswith("INSERT INTO aggregate_stale") else None)
    keys = [("crm", f"a{n:02d}") for n in range(10)]
    with store.transaction() as conn:
        aggregate_store.mark(conn, reversed(keys + keys[:4]))
        aggregate_store.mark(conn, keys[:2])
        assert aggregate_store.marks(conn, "crm") == {a: 2 if a in ("a00", "a01") else 1 for _, a in keys}
    assert sizes == [3, 3, 3, 1, 2]
