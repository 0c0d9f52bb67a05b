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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from crmlink.core import aggregate_store
from crmlink.core.analysis.accumulate import Accumulator, Classified, is_executive_user, is_senior
from crmlink.core.analysis.aggregates import (
    _ARRAYS,
    _LITTLE,
    _MAGIC,
    _NONE,
    classifiers,
    fingerprint,
    people_hold,
)
from crmlink.core.model import Contact, User

if TYPE_CHECKING:
    from crmlink.core.host import PluginHost
    from crmlink.core.store import Store


class Builder:
    """One account's classified rows, collected in any order, encoded by :meth:`encode`."""

    def __init__(self) -> None:
        # (at, external, contact, user, counted, base, link)
        self.rows: list[tuple[float, bool, bool, bool, bool, float, bool]] = []
        self.pairs: dict[tuple[str, str], list[tuple[float, float, bool, bool, bool]]] = {}
        self.users: dict[str, list[float]] = {}
        self.contacts: dict[str, list[tuple[float, bool]]] = {}
        self.methods: dict[str, list[float]] = {}
        self.opps: dict[str, list[tuple[float, bool]]] = {}
        self.opp_contacts: dict[tuple[str, str], list[tuple[float, bool]]] = {}
        self.first_two_way: float | None = None
        self.two_way_users: set[str] = set()
        self.two_way_contacts: set[str] = set()

    def add(self, row: Classified) -> None:
        """Add one row as :meth:`.Accumulator.classify` gives it."""
        (_, at, base, users, contacts, theirs, ours, two_way, method, link, opportunity,
         external, has_user) = row
        counted = base != 0.0
        self.rows.append((at, external, bool(contacts), has_user, counted, base, link))
        if not counted:
            return
        share = base / max(1, len(users))
        for user in users:
            self.users.setdefault(user, []).append(at)
            for contact in contacts:
                self.pairs.setdefault((user, contact), []).append((at, share, theirs, ours, two_way))
        for contact in contacts:
            self.contacts.setdefault(contact, []).append((at, two_way))
        if two_way:
            if self.first_two_way is None or at < self.first_two_way:
                self.first_two_way = at
            self.two_way_users.update(users)
            self.two_way_contacts.update(contacts)
        if method:
            self.methods.setdefault(method, []).append(at)
        if opportunity:
            self.opps.setdefault(opportunity, []).append((at, theirs))
            for contact in contacts:
                self.opp_contacts.setdefault((opportunity, contact), []).append((at, two_way))

    def people(self, users: Mapping[str, User], contacts: Mapping[str, Contact]) -> dict[str, list[str]]:
        """Who was in the account's two-way rows and who of them was an executive (ours)
        or senior (theirs) when it was built: its executive links hold while they are."""
        tu, tc = sorted(self.two_way_users), sorted(self.two_way_contacts)
        return {"tu": tu, "xu": [u for u in tu if is_executive_user(users.get(u))],
                "tc": tc, "sc": [c for c in tc if is_senior(contacts.get(c))]}

    def encode(self, half_life: float) -> bytes:
        """The aggregate as bytes (see :data:`_ARRAYS`); ``half_life`` in seconds."""
        out: dict[str, array[Any]] = {name: array(code) for name, code in _ARRAYS}
        header: dict[str, Any] = {"ftw": self.first_two_way}
        self._account(out, header, half_life)
        user_ids = sorted({u for u, _ in self.pairs} | set(self.users))
        contact_ids = sorted({c for _, c in self.pairs} | set(self.contacts))
        uix = {u: i for i, u in enumerate(user_ids)}
        cix = {c: i for i, c in enumerate(contact_ids)}
        header["users"], header["contacts"] = user_ids, contact_ids
        header["pairs"] = [[uix[u], cix[c], len(self.pairs[(u, c)])] for u, c in sorted(self.pairs)]
        theirs: list[bool] = []
        ours: list[bool] = []
        for key in sorted(self.pairs):
            entries = sorted(self.pairs[key])
            ref = entries[-1][0]
            out["pr"].append(ref)
            out["pt"].extend([e[0] for e in entries])
            out["pw"].extend(accumulate([e[1] * 2.0 ** ((e[0] - ref) / half_life) for e in entries]))
            theirs.extend([e[2] for e in entries])
            ours.extend([e[3] for e in entries])
            out["pm"].extend(accumulate([e[0] if e[4] else _NONE for e in entries], max))
        out["pi"].extend(accumulate(theirs, initial=0))
        out["po"].extend(accumulate(ours, initial=0))
        header["ulast"] = [[uix[u], _times(out["ut"], self.users[u])] for u in sorted(self.users)]
        header["clast"] = [[cix[c], _flagged(out["ct"], out["cm"], self.contacts[c])] for c in sorted(self.contacts)]
        header["meth"] = [[m, _times(out["mt"], self.methods[m])] for m in sorted(self.methods)]
        opps = sorted(self.opps)
        oix = {o: i for i, o in enumerate(opps)}
        header["opps"] = [[o, _flagged(out["ot"], out["om"], self.opps[o])] for o in opps]
        header["oppc"] = [[oix[o], cix[c], _flagged(out["qt"], out["qm"], self.opp_contacts[(o, c)])]
                          for o, c in sorted(self.opp_contacts)]
        header["n"] = [len(out[name]) for name, _ in _ARRAYS]
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        parts = [_MAGIC, struct.pack("<I", len(text)), text]
        for name, _ in _ARRAYS:
            values = out[name]
            if not _LITTLE:  # pragma: no cover - stored little-endian everywhere
                values.byteswap()
            parts.append(values.tobytes())
        return b"".join(parts)

    def _account(self, out: dict[str, array[Any]], header: dict[str, Any], half_life: float) -> None:
        rows = sorted(self.rows, key=itemgetter(0))
        counted = [r[0] for r in rows if r[4]]
        ref = header["T"] = max(counted) if counted else 0.0
        out["at"].extend([r[0] for r in rows])
        # (at, external, contact, user, counted, base, link)
        flags = {"ext": [r[1] for r in rows], "unl": [r[1] and not r[2] for r in rows],
                 "exc": [not r[4] for r in rows], "cnt": [r[4] for r in rows],
                 "wc": [r[1] and r[2] for r in rows], "wu": [r[1] and r[3] for r in rows],
                 "pd": [r[4] and r[2] and r[3] for r in rows]}
        for name, values in flags.items():
            out[name].extend(accumulate(values, initial=0))
        out["ew"].extend(accumulate([r[5] * 2.0 ** ((r[0] - ref) / half_life) if r[4] else 0.0 for r in rows],
                                    initial=0.0))
        out["xl"].extend([r[0] for r in rows if r[4] and r[6]])


def _times(target: array[Any], times: list[float]) -> int:
    target.extend(sorted(times))
    return len(times)


def _flagged(times: array[Any], latest: array[Any], entries: list[tuple[float, bool]]) -> int:
    """Append sorted times and the running latest time whose flag is set."""
    best = _NONE
    for at, flag in sorted(entries):
        if flag and at > best:
            best = at
        times.append(at)
        latest.append(best)
    return len(entries)




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


def refresh(store: Store, host: PluginHost, config: Mapping[str, Any], sources: Sequence[str] | None = None,
            *, rebuild: bool = False) -> list[Refreshed]:
    """Bring the aggregates of ``sources`` (every audited source when ``None``) up to
    date with their interactions and with ``config``'s settings and the host's plugins:
    a source built with another fingerprint (or never, or ``rebuild``) is rebuilt
    whole, otherwise only its stale accounts. Marks of sources nothing audits (a
    mailbox's own rows) are dropped. Safe beside a sync: a mark written meanwhile stays."""
    print_ = fingerprint(config, classifiers(host))
    audited = store.sources()
    with store.engine.connect() as conn:
        orphans = [s for s in aggregate_store.marked_sources(conn) if s not in audited]
    if orphans:
        with store.transaction() as conn:
            aggregate_store.drop_marks(conn, orphans)
    return [_refresh(store, host, config, print_, source, rebuild)
            for source in (sources if sources is not None else audited) if source in audited]


class _People:
    """A source's users and contacts, loaded when a refresh first needs them."""

    def __init__(self, store: Store, source: str) -> None:
        from crmlink.core.model import Contact, User

        self.users = {u.remote_id: u for u in store.records_of(User, source=source, include_deleted=True)}
        self.contacts = {c.remote_id: c for c in store.records_of(Contact, source=source)}


def _refresh(store: Store, host: PluginHost, config: Mapping[str, Any], print_: str, source: str,
             rebuild: bool) -> Refreshed:
    done = Refreshed(source)
    with store.engine.connect() as conn:
        done.full = rebuild or aggregate_store.built(conn, source) != print_
    if done.full:
        with store.transaction() as conn:
            aggregate_store.restart(conn, source, print_)
    with store.engine.connect() as conn:
        stale = aggregate_store.marks(conn, source)
    people: _People | None = None
    if aggregate_store.PEOPLE in stale:
        people = _People(store, source)
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
    if not stale:
        return done
    people = people or _People(store, source)
    acc = Accumulator(config, people.users, people.contacts, host.interaction_method)
    accounts = sorted(stale)
    for start in range(0, len(accounts), 500):
        chunk = accounts[start:start + 500]
        encoded = _build(store, acc, source, chunk, people)
        with store.transaction() as conn:
            for account in chunk:
                if aggregate_store.clear(conn, source, account, stale[account]):
                    aggregate_store.write(conn, source, account, *encoded[account])
                    done.built += 1
                else:
                    done.left += 1
    return done


def _build(store: Store, acc: Accumulator, source: str, accounts: list[str],
           people: _People) -> dict[str, tuple[bytes | None, dict[str, Any] | None]]:
    """The encoded aggregates of ``accounts`` from their rows (``None`` for no rows)."""
    builders = {a: Builder() for a in accounts}
    with store.engine.connect() as conn:
        for row in acc.classify(aggregate_store.account_rows(conn, source, accounts), builders, lambda _: None):
            builders[row[0]].add(row)
    return {a: (b.encode(acc.half_life), b.people(people.users, people.contacts)) if b.rows else (None, None)
            for a, b in builders.items()}
