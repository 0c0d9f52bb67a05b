"""Building and refreshing the audit's aggregates (:mod:`.aggregates` reads them).

:class:`Builder` makes one account's aggregate from its classified rows
(:meth:`.Accumulator.classify`, the raw fold's own decisions) and encodes it in the
layout of :data:`.aggregates._ARRAYS`. :func:`refresh` keeps a source's aggregates in step
with its interactions: it rebuilds the accounts the store's writes marked stale
(:mod:`crmlink.core.aggregate_store`), or every account when the settings or plugins
they depend on changed.
"""

from __future__ import annotations

import json
import struct
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from itertools import accumulate, chain, compress, groupby, repeat
from operator import and_, itemgetter, not_
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from crmlink.core import aggregate_store, collector, parallel, schema, vocab
from crmlink.core.analysis.accumulate import Accumulator, Classified, is_executive_user, is_senior
from crmlink.core.analysis.aggregates import (
    _ARRAYS,
    _LITTLE,
    _MAGIC,
    _NONE,
    classifiers,
    fingerprint,
    no_account,
    people_hold,
)
from crmlink.core.analysis.sortedkeys import SortedKeys
from crmlink.core.errors import StoreError
from crmlink.core.model import Contact, User
from crmlink.core.progress import Progress, untold

if TYPE_CHECKING:
    from crmlink.core.host import PluginHost
    from crmlink.core.store import Store

P = TypeVar("P", User, Contact)


class Builder:
    """One account's classified rows, collected in any order, encoded by :meth:`encode`.

    A row's entry is one tuple shared by every series it belongs to (each pair of its
    people, each contact, its deal); the encoding sorts each series by its entries, so
    the bytes do not depend on the order the rows came in, except for ties in time in
    the running sums (rounding only). The series are encoded together, a segment each,
    by iterator pipelines rather than a Python loop per series."""

    def __init__(self) -> None:
        # (at, external, contact, user, counted, base, link)
        self.rows: list[tuple[float, bool, bool, bool, bool, float, bool]] = []
        # our person -> their contact -> (at, share, theirs, ours, two_way)
        self.pairs: defaultdict[str, defaultdict[str, list[tuple[float, float, bool, bool, bool]]]] = \
            defaultdict(lambda: defaultdict(list))
        self.users: defaultdict[str, list[float]] = defaultdict(list)
        self.contacts: defaultdict[str, list[tuple[float, bool]]] = defaultdict(list)
        self.methods: defaultdict[str, list[float]] = defaultdict(list)
        self.opps: defaultdict[str, list[tuple[float, bool]]] = defaultdict(list)
        self.opp_contacts: defaultdict[tuple[str, str], list[tuple[float, bool]]] = defaultdict(list)
        self.first_two_way: float | None = None
        self.two_way_users: set[str] = set()
        self.two_way_contacts: set[str] = set()

    def add(self, row: Classified) -> None:
        """Add one row as :meth:`.Accumulator.classify` gives it."""
        self.add_all((row,))

    def add_all(self, rows: Iterable[Classified]) -> None:
        """Add each row as :meth:`.Accumulator.classify` gives them (one loop, its
        lookups bound once: this runs once per interaction)."""
        everything, pairs, times, series = self.rows.append, self.pairs, self.users, self.contacts
        methods, opps, deal = self.methods, self.opps, self.opp_contacts
        first = self.first_two_way
        two_way_users: list[tuple[str, ...]] = []
        two_way_contacts: list[tuple[str, ...]] = []
        for (_, at, base, users, contacts, theirs, ours, two_way, method, link, opportunity,
             external, has_user) in rows:
            if base == 0.0:
                everything((at, external, bool(contacts), has_user, False, base, link))
                continue
            everything((at, external, bool(contacts), has_user, True, base, link))
            entry = (at, base / max(1, len(users)), theirs, ours, two_way)
            for user in users:
                times[user].append(at)
                mine = pairs[user]
                for contact in contacts:
                    mine[contact].append(entry)
            flagged = (at, two_way)
            for contact in contacts:
                series[contact].append(flagged)
            if two_way:
                if first is None or at < first:
                    first = at
                two_way_users.append(users)
                two_way_contacts.append(contacts)
            if method:
                methods[method].append(at)
            if opportunity:
                opps[opportunity].append((at, theirs))
                for contact in contacts:
                    deal[(opportunity, contact)].append(flagged)
        self.first_two_way = first
        self.two_way_users.update(chain.from_iterable(two_way_users))
        self.two_way_contacts.update(chain.from_iterable(two_way_contacts))

    def people(self, users: Mapping[str, User], contacts: Mapping[str, Contact]) -> dict[str, list[str]]:
        """Who was in the account's two-way rows and who of them was an executive (ours)
        or senior (theirs) when it was built: its executive links hold while they are."""
        tu, tc = sorted(self.two_way_users), sorted(self.two_way_contacts)
        return {"tu": tu, "xu": [u for u in tu if is_executive_user(users.get(u))],
                "tc": tc, "sc": [c for c in tc if is_senior(contacts.get(c))]}

    def encode(self, half_life: float) -> bytes:
        """The aggregate as bytes (see :data:`_ARRAYS`); ``half_life`` in seconds."""
        out: dict[str, list[Any]] = {name: [] for name, _ in _ARRAYS}  # arrays at the end: faster
        header: dict[str, Any] = {"ftw": self.first_two_way}
        self._account(out, header, half_life)
        ours = sorted(self.pairs)
        theirs = [sorted(self.pairs[u]) for u in ours]  # each one's contacts (text sorts fastest alone)
        user_ids = sorted(self.pairs.keys() | self.users.keys())
        contact_ids = sorted(set(chain.from_iterable(theirs)) | self.contacts.keys())
        uix = {u: i for i, u in enumerate(user_ids)}
        cix = {c: i for i, c in enumerate(contact_ids)}
        header["users"], header["contacts"] = user_ids, contact_ids
        keys = [(uix[u], cix[c]) for u, contacts in zip(ours, theirs) for c in contacts]
        lengths = _pairs(out, [self.pairs[u][c] for u, contacts in zip(ours, theirs) for c in contacts], half_life)
        header["pairs"] = [[u, c, n] for (u, c), n in zip(keys, lengths, strict=True)]
        users = sorted(self.users)
        header["ulast"] = [[uix[u], n] for u, n in zip(users, _times(out["ut"], [self.users[u] for u in users]),
                                                       strict=True)]
        contacts = sorted(self.contacts)
        header["clast"] = [[cix[c], n] for c, n in zip(
            contacts, _flagged(out["ct"], out["cm"], [self.contacts[c] for c in contacts]), strict=True)]
        methods = sorted(self.methods)
        header["meth"] = [[m, n] for m, n in zip(methods, _times(out["mt"], [self.methods[m] for m in methods]),
                                                 strict=True)]
        opps = sorted(self.opps)
        oix = {o: i for i, o in enumerate(opps)}
        header["opps"] = [[o, n] for o, n in zip(opps, _flagged(out["ot"], out["om"], [self.opps[o] for o in opps]),
                                                 strict=True)]
        deals = sorted(self.opp_contacts)
        header["oppc"] = [[oix[o], cix[c], n] for (o, c), n in zip(
            deals, _flagged(out["qt"], out["qm"], [self.opp_contacts[k] for k in deals]), strict=True)]
        header["n"] = [len(out[name]) for name, _ in _ARRAYS]
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        parts = [_MAGIC, struct.pack("<I", len(text)), text]
        for name, code in _ARRAYS:
            values = array(code)
            values.fromlist(out[name])  # twice as fast as array(code, list)
            if not _LITTLE:  # pragma: no cover - stored little-endian everywhere
                values.byteswap()
            parts.append(values.tobytes())
        return b"".join(parts)

    def _account(self, out: dict[str, list[Any]], header: dict[str, Any], half_life: float) -> None:
        rows = sorted(self.rows, key=itemgetter(0))
        # (at, external, contact, user, counted, base, link)
        times, external, contact, user, counted, base, link = zip(*rows, strict=True) if rows else ((),) * 7
        counted_times = list(compress(times, counted))
        ref = header["T"] = max(counted_times) if counted_times else 0.0
        out["at"].extend(times)
        flags = {"ext": external, "unl": map(and_, external, map(not_, contact)), "exc": map(not_, counted),
                 "cnt": counted, "wc": map(and_, external, contact), "wu": map(and_, external, user),
                 "pd": map(and_, counted, map(and_, contact, user))}
        for name, values in flags.items():
            out[name].extend(accumulate(values, initial=0))
        out["ew"].extend(accumulate([b * 2.0 ** ((t - ref) / half_life) if c else 0.0
                                     for t, b, c in zip(times, base, counted)], initial=0.0))
        out["xl"].extend(compress(times, map(and_, counted, link)))


def _starts(lengths: Sequence[int]) -> list[bool]:
    """For series of ``lengths`` laid end to end, whether each place begins one."""
    starts = [False] * sum(lengths)
    place = 0
    for length in lengths:
        if length:
            starts[place] = True
        place += length
    return starts


def _pairs(out: dict[str, list[Any]], series: list[list[tuple[float, float, bool, bool, bool]]],
           half_life: float) -> list[int]:
    """Append the pairs' series (each sorted) to ``out``: times, factored weights so far
    (each pair's reference time its latest), running inbound and outbound counts over
    all pairs, latest two-way time so far, reference times. Their lengths. All pairs in
    one pass over their entries laid end to end (an account has dozens of pairs of a
    few entries each: a pass per pair cost more than the entries). The sums and maxima
    that start again at each pair are one comprehension each, a name carried from entry
    to entry and reset where a pair begins: a fifth less time to encode than a running
    sum or maximum (``accumulate``) per pair, and the same numbers, added in the same order."""
    for entries in series:
        entries.sort()
    lengths = list(map(len, series))
    refs = [entries[-1][0] for entries in series]
    out["pr"].extend(refs)
    flat = list(chain.from_iterable(series))
    out["pt"].extend(map(itemgetter(0), flat))
    starts = _starts(lengths)
    each_ref = chain.from_iterable(map(repeat, refs, lengths))
    total = 0.0
    out["pw"].extend([(total := w * 2.0 ** ((t - ref) / half_life) if first
                       else total + w * 2.0 ** ((t - ref) / half_life))
                      for (t, w, _, _, _), ref, first in zip(flat, each_ref, starts)])
    out["pi"].extend(accumulate(map(itemgetter(2), flat), initial=0))
    out["po"].extend(accumulate(map(itemgetter(3), flat), initial=0))
    out["pm"].extend(_latest(flat, starts, 4))
    return lengths


def _latest(flat: list[tuple[Any, ...]], starts: list[bool], flag: int) -> list[float]:
    """The latest time so far whose ``flag`` field is set, in each series of ``flat``
    (sorted by time within each one; ``starts``: where each begins), or :data:`_NONE`."""
    latest = none = _NONE
    return [(latest := entry[0]) if entry[flag] else (latest := none) if first else latest
            for entry, first in zip(flat, starts)]


def _times(target: list[float], series: list[list[float]]) -> list[int]:
    """Append each series sorted; their lengths."""
    for times in series:
        times.sort()
    target.extend(chain.from_iterable(series))
    return list(map(len, series))


def _flagged(times: list[float], latest: list[float], series: list[list[tuple[float, bool]]]) -> list[int]:
    """Append each series' sorted times and its running latest time whose flag is set;
    their lengths."""
    for entries in series:
        entries.sort()
    lengths = list(map(len, series))
    flat = list(chain.from_iterable(series))
    times.extend(map(itemgetter(0), flat))
    latest.extend(_latest(flat, _starts(lengths), 1))
    return lengths


# -- the refresh: rebuild the stale aggregates from their rows ----------------------------------

@dataclass
class Refreshed:
    """What :func:`refresh` did for one source."""

    source: str
    #: every aggregate was rebuilt (first build, ``--rebuild``, other settings or plugins)
    full: bool = False
    #: aggregates rebuilt from their rows
    built: int = 0
    #: marks left for the next refresh: a write marked the account again meanwhile
    left: int = 0
    #: aggregates whose executives no longer held, rebuilt among ``built``
    people_changed: int = 0
    #: of ``built``, those the same as stored: not written (their accounts' revisions stay)
    unchanged: int = 0


def refresh(store: Store, host: PluginHost, config: Mapping[str, Any], sources: Sequence[str] | None = None,
            *, rebuild: bool = False, progress: Progress | None = None) -> list[Refreshed]:
    """Bring the aggregates of ``sources`` (every audited source when ``None``) up to
    date with their interactions and with ``config``'s settings and the host's plugins:
    a source built with another fingerprint (or never, or ``rebuild``) is rebuilt
    whole, otherwise only its stale accounts. Marks of sources nothing audits (a
    mailbox's own rows) are dropped. Safe beside a sync: a mark written meanwhile stays.
    The garbage collector is spared while it runs (:func:`.collector.spared`); ``progress``
    is told of each source's accounts to rebuild as their aggregates are written."""
    with collector.spared():
        return _refresh_all(store, host, config, sources, rebuild, progress or untold)


def _refresh_all(store: Store, host: PluginHost, config: Mapping[str, Any], sources: Sequence[str] | None,
                 rebuild: bool, progress: Progress) -> list[Refreshed]:
    print_ = fingerprint(config, classifiers(host))
    audited = store.sources()
    with store.engine.connect() as conn:
        orphans = [s for s in aggregate_store.marked_sources(conn) if s not in audited]
    if orphans:
        with store.transaction() as conn:
            aggregate_store.drop_marks(conn, orphans)
    return [_refresh(store, host, config, print_, source, rebuild, progress)
            for source in (sources if sources is not None else audited) if source in audited]


class People:
    """What the classification needs of a source's people: our executives (deleted ones
    too, as the audit loads them) and their senior contacts (live ones). Nobody else is
    loaded: for :func:`.is_executive_user` and :func:`.is_senior` a person who is neither
    answers as one not found. The database is asked for the seniorities and roles those
    two accept (a superset: each person found is tested again), and people of the same
    seniority and role share one record of those fields alone (all those tests read).
    The contacts are a :class:`Packed` mapping, read in the order of their ids.
    Read on ``conn`` when given (a transaction that wrote them), else on a connection of
    its own."""

    def __init__(self, store: Store, source: str, conn: sa.Connection | None = None) -> None:
        from crmlink.core.store import plain_rows

        users, contacts = schema.TABLES["user"], schema.TABLES["contact"]
        senior = [s for s in vocab.SENIORITIES if is_senior(_person(Contact, source, s, None))]
        roles = [r for r in vocab.TEAM_ROLES if is_executive_user(_person(User, source, None, r))]
        with nullcontext(conn) if conn is not None else store.engine.connect() as conn:
            found = plain_rows(conn, sa.select(users.c.remote_id, users.c.seniority, users.c.team_role).where(
                users.c.source == source, sa.or_(users.c.seniority.in_(senior), users.c.team_role.in_(roles))))
            self.users: Mapping[str, User] = dict(_who(User, source, found, is_executive_user))
            remote_id = contacts.c.remote_id
            in_order = sa.collate(remote_id, "C") if conn.dialect.name == "postgresql" else remote_id
            found = plain_rows(conn, sa.select(remote_id, contacts.c.seniority, sa.null()).where(
                contacts.c.source == source, contacts.c.deleted.is_(False), contacts.c.seniority.in_(senior))
                .order_by(in_order))
            self.contacts: Mapping[str, Contact] = Packed(_who(Contact, source, found, is_senior))


class Packed(Mapping[str, P]):
    """People by remote id, given in ascending order of it, held in little memory: the
    ids packed (:class:`.SortedKeys`) and, for each, the number of its record among a
    few shared ones. A dict cost about 88 bytes a person (35 MiB for the 400,000 senior
    contacts of a ten-million-interaction export, in the import's process and again in
    its builder's); this about 23 (measured at 3M: 10.6 MiB against 2.7)."""

    def __init__(self, found: Iterable[tuple[str, P]]) -> None:
        self._records: list[P] = []
        numbers: dict[int, int] = {}  # id() of a shared record -> its place in _records
        self._codes = array("H")

        def ids() -> Iterator[str]:
            for remote_id, person in found:
                number = numbers.get(id(person))
                if number is None:
                    number = numbers[id(person)] = len(self._records)
                    self._records.append(person)
                self._codes.append(number)
                yield remote_id

        self._ids = SortedKeys(ids())

    def get(self, key: str, default: Any = None) -> Any:  # the only lookup the builds make
        at = self._ids.find(key)
        return self._records[self._codes[at]] if at >= 0 else default

    def __getitem__(self, key: str) -> P:
        at = self._ids.find(key)
        if at < 0:
            raise KeyError(key)
        return self._records[self._codes[at]]

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)


def _who(cls: type[P], source: str, found: Iterable[Sequence[Any]], test: Callable[[P], bool]
         ) -> Iterator[tuple[str, P]]:
    """The people of ``found`` (remote id, seniority, team role) who pass ``test``, in
    the order found, each with its shared record."""
    shared: dict[tuple[str | None, str | None], P | None] = {}
    for remote_id, seniority, role in found:
        key = (seniority, role)
        if key not in shared:
            made = _person(cls, source, seniority, role)
            shared[key] = made if test(made) else None
        if (person := shared[key]) is not None:
            yield remote_id, person


def _person(cls: type[P], source: str, seniority: str | None, role: str | None) -> P:
    """A record of ``cls`` with its seniority (and team role) alone, unchecked."""
    person = cls.__new__(cls)
    values = {"remote_id": "", "source": source, "seniority": seniority}
    if cls is User:
        values["team_role"] = role
    for key, value in values.items():
        object.__setattr__(person, key, value)
    return person


def _refresh(store: Store, host: PluginHost, config: Mapping[str, Any], print_: str, source: str,
             rebuild: bool, progress: Progress) -> Refreshed:
    done = Refreshed(source)
    with store.engine.connect() as conn:
        same = aggregate_store.built(conn, source) == print_
    done.full = rebuild or not same
    if not same:  # built with other settings (or never): none of them holds
        with store.transaction() as conn:
            aggregate_store.restart(conn, source, print_)
    with store.engine.connect() as conn:
        stale = aggregate_store.marks(conn, source)
    people: People | None = None
    if aggregate_store.PEOPLE in stale:
        people = People(store, source)
        with store.engine.connect() as conn:
            changed = [a for a, found in aggregate_store.people_of(conn, source)
                       if a not in stale and not people_hold(found, people.users, people.contacts)]
        with store.transaction() as conn:
            aggregate_store.mark(conn, [(source, a) for a in changed])
            aggregate_store.clear(conn, source, aggregate_store.PEOPLE, stale[aggregate_store.PEOPLE])
        done.people_changed = len(changed)
        with store.engine.connect() as conn:
            stale = aggregate_store.marks(conn, source)
    stale.pop(aggregate_store.PEOPLE, None)
    if rebuild and same:  # every account again, unmarked: one that comes out the same is not written
        with store.engine.connect() as conn:
            every = aggregate_store.with_rows(conn, source) | aggregate_store.with_aggregates(conn, source)
        stale = {**dict.fromkeys(every, 0), **stale}
    if not stale:
        return done
    people = people or People(store, source)
    acc = Accumulator(config, people.users, people.contacts, host.interaction_method)
    with store.engine.connect() as conn:
        scan = done.full or len(stale) > SCAN_SHARE * aggregate_store.count(conn, source)
    _build(store, acc, source, stale, scan, people, done, parallel.workers_setting(config), progress)
    return done


#: Above this share of a source's aggregates to rebuild, one sorted read of the whole
#: table is cheaper than reading their rows through the account index.
SCAN_SHARE = 0.2
#: Aggregates written at a time (held in memory meanwhile), and the bytes after which a
#: batch is written anyway.
_BATCH, _BATCH_BYTES = 200, 4 << 20
#: The bytes of aggregates after which the transaction a refresh's batches are written
#: in is committed and the next batch begins another: a refresh after a small sync writes
#: in one (on SQLite each commit of 4 MB also checkpointed the log: a sixth of the refresh
#: of 300 changed interactions at 1M, 8 MB of aggregates, went to six commits), holding
#: SQLite's write lock a few seconds at most. A whole build (the first, ``--rebuild``,
#: other settings) commits each batch: killed, it keeps what it wrote.
_TRANSACTION_BYTES = 16 << 20
#: Below this many accounts to rebuild a build stays in one process with ``[audit]
#: workers = "auto"``: forking and connecting cost more than the workers save.
PARALLEL_FROM = 200
#: Aggregates a worker sends back at a time.
_SEND = 16

#: One account's rebuilt aggregate (:data:`.aggregate_store.Built`).
Built = aggregate_store.Built


def _build(store: Store, acc: Accumulator, source: str, stale: Mapping[str, int], scan: bool,
           people: People, done: Refreshed, workers: int | str = "auto", progress: Progress = untold) -> None:
    """Rebuild the aggregates of the ``stale`` accounts (their generations as read) from
    their rows, read grouped by account (``scan``: in one read of the whole table, else
    theirs alone through the account index), each account encoded as soon as its rows
    are in and written in batches: memory holds one account's rows and one batch.
    ``workers`` (``[audit] workers``): the sorted accounts are cut into contiguous
    slices, each read and encoded in a forked process (:func:`.parallel.forked`), and
    this process alone writes what they send, as it comes (a slice of a worker that
    fails is finished here). The bytes are the same whatever the number of workers."""
    work = _Slices(store, acc, source, stale, scan, people)
    count = parallel.worker_count(len(work.keys), PARALLEL_FROM, workers) if _other_processes_see(store) else 1
    built: Iterator[Built] = work.here(0, len(work.keys))
    if count > 1:
        weights = work.weights()
        store.engine.dispose()  # no pooled connection of this process goes to the workers
        built = parallel.forked(len(work.keys), count, work.in_worker, work.here, ordered=False, weights=weights)
    total, written = len(work.keys), 0
    progress(source, 0, total)
    with _Writer(store, source, done) as writer:
        pending: list[Built] = []
        size = 0

        def write() -> None:
            nonlocal written, size
            written += len(pending)
            writer.write(pending, size)
            progress(source, written, total)
            size = 0

        for item in built:
            pending.append(item)
            size += len(item[2] or b"")
            if len(pending) >= _BATCH or size >= _BATCH_BYTES:
                write()
        if pending:
            write()


def _other_processes_see(store: Store) -> bool:
    """Whether another process opening the store sees its data: not an SQLite database
    in memory, which only this process's connection holds."""
    url = store.engine.url
    if url.get_backend_name() != "sqlite":
        return True
    return url.database not in (None, "", ":memory:") and "mode=memory" not in str(url.query)


class _Slices:
    """The build of contiguous slices of the stale accounts in sorted order, each
    account's result (:data:`Built`) in that order, one for each, in this process or
    in a forked worker."""

    def __init__(self, store: Store, acc: Accumulator, source: str, stale: Mapping[str, int], scan: bool,
                 people: People) -> None:
        self.store, self.acc, self.source, self.stale = store, acc, source, stale
        self.scan, self.people = scan, people
        self.keys = sorted(stale)

    def weights(self) -> list[int]:
        """Each account's rows (:func:`.aggregate_store.rows_per_account`), at least one:
        the workers' slices hold about as many rows each, not as many accounts (a few
        large accounts can hold most of the rows)."""
        with self.store.engine.connect() as conn:
            counts = aggregate_store.rows_per_account(conn, None if self.scan else self.keys)
        return [counts.get(account, 0) + 1 for account in self.keys]

    def here(self, low: int, high: int) -> Iterator[Built]:
        """The results of the accounts ``keys[low:high]``, read on a connection of this process."""
        if low >= high:
            return
        with self.store.engine.connect() as conn:
            yield from self._built(conn, self.keys[low:high])

    def in_worker(self, low: int, high: int) -> Iterator[list[Built]]:
        """:meth:`here` in a forked worker, a few accounts at a time, on a connection of
        its own (any the parent's pool held are left alone, not closed)."""
        self.store.engine.dispose(close=False)
        batch: list[Built] = []
        for item in self.here(low, high):
            batch.append(item)
            if len(batch) >= _SEND:
                yield batch
                batch = []
        if batch:
            yield batch

    def _built(self, conn: sa.Connection, keys: list[str]) -> Iterator[Built]:
        """Walk the rows of ``keys``' accounts, sorted by account, beside ``keys``: an
        account without rows gets no data."""
        acc, stale, people = self.acc, self.stale, self.people
        rows = aggregate_store.rows_by_account(conn, self.source, None if self.scan else keys,
                                               (keys[0], keys[-1]) if self.scan else None)
        position, last = 0, ""
        for account, group in groupby(rows, key=itemgetter(0)):
            if account <= last:  # the read's order is what the walk relies on
                raise StoreError(f"the store returned account {account!r} after {last!r}: the aggregates' "
                                 "build needs the rows sorted by account")
            last = account
            while position < len(keys) and keys[position] < account:
                yield keys[position], stale[keys[position]], None, None
                position += 1
            if position == len(keys) or keys[position] != account:
                continue  # not stale
            builder = Builder()
            # one classification per account: what it caches lasts as long as the account
            builder.add_all(acc.classify(group, stale, no_account))
            yield account, stale[account], builder.encode(acc.half_life), builder.people(people.users, people.contacts)
            position += 1
        for account in keys[position:]:
            yield account, stale[account], None, None


class _Writer:
    """Writes the batches of a build (:func:`.aggregate_store.replace`), in transactions
    of :data:`_TRANSACTION_BYTES` at most (a whole build's: one a batch), the last
    committed when the block ends without an error (a build that fails leaves its open
    transaction rolled back: each committed one has cleared the marks of what it wrote,
    so nothing is half-written)."""

    def __init__(self, store: Store, source: str, done: Refreshed) -> None:
        self.store, self.source, self.done = store, source, done
        self._bound = 0 if done.full else _TRANSACTION_BYTES
        self._open: AbstractContextManager[sa.Connection] | None = None
        self._conn: sa.Connection | None = None
        self._size = 0

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        self._end(kind, error, trace)

    def write(self, pending: list[Built], size: int) -> None:
        """Write ``pending`` (``size`` bytes of aggregates) and empty it."""
        if self._conn is None:
            self._open = self.store.transaction()
            self._conn = self._open.__enter__()
        left, same = aggregate_store.replace(self._conn, self.source, pending)
        done = self.done
        done.built += len(pending) - len(left)
        done.unchanged += same
        done.left += len(left)
        pending.clear()
        self._size += size
        if self._size >= self._bound:
            self._end(None, None, None)

    def _end(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        opened, self._open, self._conn, self._size = self._open, None, None, 0
        if opened is not None:
            opened.__exit__(kind, error, trace)
