"""Per-account aggregates of the interactions: the fold of :mod:`.accumulate` for any
as-of date at a cost per (pair of people, date) instead of per (interaction, pair).

Time decay factors out of a sum: ``sum(b * 2^(-(as_of - t)/h)) = 2^(-(as_of - T)/h) *
sum(b * 2^((t - T)/h))`` for any reference time ``T``. So each account keeps, for every
pair of our person and their contact, the pair's interactions sorted by their exact time
with prefix arrays (the factored weight with the pair's latest time as ``T``, inbound and
outbound counts, the latest two-way time so far); the same for each of our people, each
contact, each method, each deal and each deal's contact, and for the account as a whole
(counts, window counts, effort). The :class:`~.accumulate.AccountData` of any date is
then a binary search per series: counts within a window are the difference of two
prefix counts, the last time is the entry before the date.

:class:`~.aggregate_build.Builder` makes one account's aggregate from its classified
rows and encodes it as bytes: a JSON header (ids, segment lengths) and arrays of machine
numbers (:mod:`array`), nothing a reader executes. :class:`Aggregate` decodes them and answers
:meth:`Aggregate.at`. What it answers equals the raw fold's ``AccountData`` exactly
(counts, times, sets) and within rounding for the weights and effort (summed in another
order). :mod:`crmlink.core.aggregate_store` keeps them in the store, and
:func:`.aggregate_build.refresh` keeps them fresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from crmlink.core import aggregate_store
from crmlink.core.analysis.accumulate import (
    AccountData,
    Accumulator,
    Pair,
    WindowCounts,
    is_executive_user,
    is_senior,
)
from crmlink.core.model import Contact, User

if TYPE_CHECKING:
    from crmlink.core.analysis.units import Unit
    from crmlink.core.host import PluginHost

log = logging.getLogger(__name__)

#: The layout of an encoded aggregate; a new one makes every stored aggregate stale.
FORMAT = 2
_MAGIC = b"CLAG"
_NONE = -math.inf  # "no such time yet" in a running-maximum array
_LITTLE = sys.byteorder == "little"

#: The encoded arrays, in order: name and typecode ('d' float64, 'i' int32: a count
#: within one account, and a fifth of an aggregate's bytes against int64). Account
#: series ``a*`` (every row, by time): times, then running counts from 0 (one longer
#: than the times): external, unlinked, excluded, counted, external naming a contact,
#: external naming one of ours, counted naming both, and the factored effort.
_ARRAYS = (("at", "d"), ("ext", "i"), ("unl", "i"), ("exc", "i"), ("cnt", "i"), ("wc", "i"),
           ("wu", "i"), ("pd", "i"), ("ew", "d"), ("xl", "d"),
           # pairs: times, factored weight so far (per pair), running inbound and outbound
           # counts (over all pairs, from 0), latest two-way time so far (per pair), and
           # each pair's reference time
           ("pt", "d"), ("pw", "d"), ("pi", "i"), ("po", "i"), ("pm", "d"), ("pr", "d"),
           # our people: times; contacts: times and latest two-way so far; methods: times;
           # deals: times and latest inbound so far; a deal's contacts: times, latest two-way
           ("ut", "d"), ("ct", "d"), ("cm", "d"), ("mt", "d"), ("ot", "d"), ("om", "d"),
           ("qt", "d"), ("qm", "d"))


def enabled(config: Mapping[str, Any]) -> bool:
    """Whether syncs keep the audit's aggregates and audits read them (``[audit]
    aggregates``, on unless set false)."""
    return bool(config.get("audit", {}).get("aggregates", True))


def fingerprint(config: Mapping[str, Any], classifiers: Iterable[tuple[str, str | None]]) -> str:
    """What an aggregate depends on besides the rows and the people: the base weights,
    the half-life, the mass email limit, the meeting group size, the plugins that
    classify methods (name and version) and this code's version. Windows are applied
    when an aggregate is read, so they are not in it."""
    from crmlink import __version__

    strength = config["strength"]
    parts = {"format": FORMAT, "crmlink": __version__, "weights": config["weights"],
             "half_life_days": strength["half_life_days"], "mass_email_limit": strength["mass_email_limit"],
             "meeting_group_size": strength["meeting_group_size"], "classifiers": sorted(classifiers)}
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Windows:
    """The read-time settings of :meth:`Aggregate.at` (seconds), from an accumulator."""

    half_life: float
    reciprocity: float
    cadence: float
    executive: float
    coverage: float

    @classmethod
    def of(cls, acc: Accumulator) -> Windows:
        return cls(acc.half_life, acc.reciprocity, acc.cadence_window, acc.exec_window, acc.coverage_window)


class Aggregate:
    """A decoded aggregate: :meth:`at` gives the account's ``AccountData`` of any date."""

    def __init__(self, blob: bytes) -> None:
        view = memoryview(blob)
        if bytes(view[:4]) != _MAGIC:
            raise ValueError("not an encoded aggregate")
        (size,) = struct.unpack_from("<I", view, 4)
        header = _header(view[8:8 + size])
        position = 8 + size
        self.a: dict[str, array[Any]] = {}
        for (name, code), count in zip(_ARRAYS, header["n"], strict=True):
            values = array(code)
            end = position + count * values.itemsize
            values.frombytes(view[position:end])
            if not _LITTLE:  # pragma: no cover
                values.byteswap()
            self.a[name] = values
            position = end
        self.h = header

    def at(self, as_of: float, w: Windows) -> AccountData:
        """The account's aggregates as of ``as_of`` (epoch seconds)."""
        return self.at_each([as_of], w)[0]

    def at_each(self, stamps: Sequence[float], w: Windows) -> list[AccountData]:
        """The account's aggregates as of each of ``stamps``, one pass over each series."""
        datas = [self._account(as_of, w) for as_of in stamps]
        live = [d for d in datas if d.external or d.excluded]  # any row at or before the date
        if live:
            self._pairs(live, w)
            self._people(live)
            self._deals(live)
        return datas

    def _account(self, as_of: float, w: Windows) -> AccountData:
        data = AccountData(as_of)
        a = self.a
        times = a["at"]
        n = bisect_right(times, as_of)
        if n == 0:
            return data
        ext, cnt = a["ext"], a["cnt"]
        data.external, data.unlinked, data.excluded, data.interactions = ext[n], a["unl"][n], a["exc"][n], cnt[n]
        j = _since(times, as_of, w.coverage, 0, n)
        data.window = WindowCounts(ext[n] - ext[j], a["wc"][n] - a["wc"][j], a["wu"][n] - a["wu"][j],
                                   a["pd"][n] - a["pd"][j])
        data.recent = cnt[n] - cnt[_since(times, as_of, w.cadence, 0, n)]
        if cnt[n]:
            data.effort = a["ew"][n] * 2.0 ** ((self.h["T"] - as_of) / w.half_life)
        first = self.h["ftw"]
        if first is not None and first <= as_of:
            data.first_two_way = first
        links = a["xl"]
        i = bisect_right(links, as_of)
        if i:
            data.exec_links = links[_since(links, as_of, w.executive, 0, i):i].tolist()
        return data

    # The loops below run once per pair, person, method or deal of every account of the
    # audit (millions at 1M interactions): each reads its arrays and the dates into locals
    # once and inlines :func:`_since`, which halves their time (measured).

    def _pairs(self, datas: list[AccountData], w: Windows) -> None:
        a, h = self.a, self.h
        times, weights, inbound, outbound, latest, refs = a["pt"], a["pw"], a["pi"], a["po"], a["pm"], a["pr"]
        users, contacts = h["users"], h["contacts"]
        half_life, reciprocity = w.half_life, w.reciprocity
        dates = [(data.as_of, data.as_of - reciprocity, data.pairs) for data in datas]
        start = 0
        for k, (u, c, count) in enumerate(h["pairs"]):
            end = start + count
            first, last, ref = times[start], times[end - 1], refs[k]
            key = (users[u], contacts[c])
            for as_of, low, pairs in dates:
                if as_of < first:
                    continue
                if as_of >= last:
                    i, at = end, last
                else:
                    i = bisect_right(times, as_of, start, end)
                    at = times[i - 1]
                two_way = latest[i - 1]
                weight = weights[i - 1] * 2.0 ** ((ref - as_of) / half_life)
                if as_of - at > reciprocity:  # no time of the pair within the window: none after at
                    pairs[key] = Pair(weight, 0, 0, None if two_way == _NONE else two_way, at)
                    continue
                if as_of - first <= reciprocity:
                    j = start
                else:  # _since(times, as_of, reciprocity, start, i)
                    j = bisect_left(times, low, start, i)
                    while j > start and as_of - times[j - 1] <= reciprocity:
                        j -= 1
                    while j < i and as_of - times[j] > reciprocity:
                        j += 1
                pairs[key] = Pair(weight, inbound[i] - inbound[j], outbound[i] - outbound[j],
                                  None if two_way == _NONE else two_way, at)
            start = end

    def _people(self, datas: list[AccountData]) -> None:
        a, h = self.a, self.h
        users, contacts = h["users"], h["contacts"]
        dates = [(data.as_of, data) for data in datas]
        times, start = a["ut"], 0
        for u, count in h["ulast"]:
            end, user = start + count, users[u]
            for as_of, data in dates:
                i = end if as_of >= times[end - 1] else bisect_right(times, as_of, start, end)
                if i > start:
                    data.user_last[user] = times[i - 1]
            start = end
        times, latest, start = a["ct"], a["cm"], 0
        for c, count in h["clast"]:
            end, contact = start + count, contacts[c]
            for as_of, data in dates:
                i = end if as_of >= times[end - 1] else bisect_right(times, as_of, start, end)
                if i > start:
                    two_way = latest[i - 1]
                    data.contact_last[contact] = [times[i - 1], None if two_way == _NONE else two_way]
            start = end
        times, start = a["mt"], 0
        for method, count in h["meth"]:
            end = start + count
            for as_of, data in dates:
                i = end if as_of >= times[end - 1] else bisect_right(times, as_of, start, end)
                if i > start:
                    data.methods[method] = times[i - 1]
            start = end

    def _deals(self, datas: list[AccountData]) -> None:
        a, h = self.a, self.h
        opps, contacts = h["opps"], h["contacts"]
        dates = [(data.as_of, data) for data in datas]
        times, latest, start = a["ot"], a["om"], 0
        for opp, count in opps:
            end = start + count
            for as_of, data in dates:
                i = end if as_of >= times[end - 1] else bisect_right(times, as_of, start, end)
                if i > start:
                    data.opp_contacts[opp] = {}
                    data.opp_last_any[opp] = times[i - 1]
                    if latest[i - 1] != _NONE:
                        data.opp_last_inbound[opp] = latest[i - 1]
            start = end
        times, latest, start = a["qt"], a["qm"], 0
        for o, c, count in h["oppc"]:
            end, opp, contact = start + count, opps[o][0], contacts[c]
            for as_of, data in dates:
                i = end if as_of >= times[end - 1] else bisect_right(times, as_of, start, end)
                if i > start:
                    two_way = latest[i - 1]
                    data.opp_contacts[opp][contact] = [times[i - 1], None if two_way == _NONE else two_way]
            start = end


def _header(text: memoryview) -> dict[str, Any]:
    """An encoded aggregate's JSON header, read by orjson (a third of the decoding's time
    with the standard library's reader); by the standard library where orjson refuses
    what it accepts (``NaN``, ``Infinity``, integers past 64 bits): the same values."""
    try:
        return orjson.loads(text)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError:
        return json.loads(bytes(text))  # type: ignore[no-any-return]


def _segments(entries: list[list[Any]]) -> Iterator[tuple[list[Any], int]]:
    """Each header entry (its last item the segment's length) with its segment's start."""
    start = 0
    for entry in entries:
        yield entry, start
        start += entry[-1]


def people_hold(people: Mapping[str, Any], users: Mapping[str, User], contacts: Mapping[str, Contact]) -> bool:
    """Whether who was an executive (ours) or senior (theirs) when an aggregate was built,
    as :meth:`Builder.people` recorded it, still is: else its executive links are stale."""
    executives = set(people.get("xu", ()))
    if any(is_executive_user(users.get(u)) != (u in executives) for u in people.get("tu", ())):
        return False
    senior = set(people.get("sc", ()))
    return all(is_senior(contacts.get(c)) == (c in senior) for c in people.get("tc", ()))


def _time(value: float) -> float | None:
    return None if value == _NONE else value


def _since(times: array[Any], as_of: float, window: float, lo: int, hi: int) -> int:
    """The first index in ``[lo, hi)`` whose time is within ``window`` seconds before
    ``as_of`` (``as_of - t <= window``, compared exactly as the raw fold does), else ``hi``."""
    k = bisect_left(times, as_of - window, lo, hi)
    while k > lo and as_of - times[k - 1] <= window:
        k -= 1
    while k < hi and as_of - times[k] > window:
        k += 1
    return k


# -- the audit's side: each account's AccountData from its aggregate or its rows -------------

#: Above this share of accounts to fold from their rows, reading the whole table once is
#: cheaper than reading their rows through the account index.
RAW_SHARE = 0.3


@dataclass
class FoldCounts:
    """Where a fold's accounts came from (the audit says it with ``--verbose``)."""

    aggregated: int = 0
    raw: int = 0
    #: why every account was folded from its rows, when it was
    reasons: list[str] = field(default_factory=list)

    def add(self, other: FoldCounts) -> None:
        self.aggregated += other.aggregated
        self.raw += other.raw
        self.reasons.extend(r for r in other.reasons if r not in self.reasons)


def classifiers(host: PluginHost) -> list[tuple[str, str | None]]:
    """The plugins that classify an interaction's method, with their versions."""
    return host.implementers("classify_interaction")


def fold_unit(conn: sa.Connection, unit: Unit, acc: Accumulator, stamps: Sequence[float],
              fingerprint: str | None) -> tuple[dict[str, list[AccountData]], FoldCounts]:
    """Each account of ``unit`` as of each of ``stamps``: from its stored aggregate when
    it is fresh (built with ``fingerprint``, not marked stale, its executives unchanged),
    else from its rows; the rows naming no account are folded from the table every time.
    ``fingerprint`` ``None`` folds every row (aggregates off); so do merged units."""
    data = unit.data
    slots = {a: [AccountData(stamp) for stamp in stamps] for a in data.accounts}
    counts = FoldCounts()
    if not stamps:
        return slots, counts
    until = max(stamps)

    def account_of(contact_ids: tuple[str, ...]) -> str | None:
        for contact_id in contact_ids:
            contact = data.contacts.get(contact_id)
            if contact is not None and contact.account_id:
                return contact.account_id
        return None

    reason = _raw_reason(conn, unit, fingerprint)
    if reason is None:
        source = unit.sources[0]
        stale = aggregate_store.marks(conn, source)
        raw = [a for a in slots if a in stale]
        if len(raw) <= RAW_SHARE * len(slots):
            raw += _from_aggregates(conn, source, slots, stale, Windows.of(acc), data.users, data.contacts)
            if len(raw) <= RAW_SHARE * len(slots):
                counts.aggregated, counts.raw = len(slots) - len(raw), len(raw)
                acc.fold(unit.rows_of(conn, until, raw), slots, account_of)
                return slots, counts
            slots = {a: [AccountData(stamp) for stamp in stamps] for a in data.accounts}
        reason = f"{len(raw)} of {len(slots)} accounts stale"
    counts.raw, counts.reasons = len(slots), [reason]
    acc.fold(unit.rows(conn, until), slots, account_of)
    return slots, counts


def _raw_reason(conn: sa.Connection, unit: Unit, fingerprint: str | None) -> str | None:
    """Why no account of ``unit`` can come from aggregates, or ``None``."""
    if unit.merged and fingerprint is not None:
        return "merged sources are folded from their rows"
    return _source_reason(conn, unit.sources[0], fingerprint)


def _source_reason(conn: sa.Connection, source: str, fingerprint: str | None) -> str | None:
    if fingerprint is None:
        return "aggregates are off ([audit] aggregates = false)"
    found = aggregate_store.built(conn, source)
    if found is None:
        return f"no aggregates of {source!r} yet (crmlink aggregate builds them)"
    if found != fingerprint:
        return (f"the aggregates of {source!r} were built with other settings or plugins "
                "(crmlink aggregate rebuilds them)")
    return None


# -- the fold of a chunk of accounts (the chunked audit, :mod:`.chunks`) ----------------------

@dataclass(frozen=True)
class FoldPlan:
    """What a source's fold reads, decided once for all its chunks as :func:`fold_unit`
    decides it for the whole source: every account from its rows (``reason`` says why),
    or each from its aggregate but those in ``raw`` (marked stale, or their executives
    changed: found by the parent only when a contact or one of ours changed since the
    last refresh, else by each chunk as it reads its aggregates)."""

    source: str
    reason: str | None
    raw: frozenset[str]


def plan_fold(conn: sa.Connection, source: str, accounts: Sequence[str], fingerprint: str | None,
              users: Mapping[str, User]) -> FoldPlan:
    """The :class:`FoldPlan` of the live ``accounts`` of ``source``, on ``conn``'s snapshot."""
    reason = _source_reason(conn, source, fingerprint)
    if reason is not None:
        return FoldPlan(source, reason, frozenset())
    stale = aggregate_store.marks(conn, source)
    live = set(accounts)
    raw = {a for a in stale if a in live}
    if aggregate_store.PEOPLE in stale and len(raw) <= RAW_SHARE * len(live):
        seniors = _senior_contacts(conn, source)
        raw.update(a for a, people in aggregate_store.people_of(conn, source)
                   if a in live and a not in stale and not people_hold(people, users, seniors))
    if len(raw) > RAW_SHARE * len(live):
        return FoldPlan(source, f"{len(raw)} of {len(live)} accounts stale", frozenset())
    return FoldPlan(source, None, frozenset(raw))


def _senior_contacts(conn: sa.Connection, source: str) -> dict[str, Contact]:
    """The live contacts of ``source`` that :func:`.is_senior` accepts (for
    :func:`people_hold`, a contact who is not senior answers as one not found)."""
    from crmlink.core import schema, vocab
    from crmlink.core.store import records_where

    table = schema.TABLES["contact"]
    ranks = [s for s in vocab.SENIORITIES if vocab.SENIORITY_RANK[s] >= vocab.SENIORITY_RANK["vp"]]
    return {c.remote_id: c for c in records_where(conn, Contact, source, table.c.seniority.in_(ranks))
            if is_senior(c)}


def fold_chunk(conn: sa.Connection, plan: FoldPlan, accounts: Sequence[str], acc: Accumulator,
               stamps: Sequence[float], more_contacts: Callable[[Iterable[str]], None]) -> tuple[
                   dict[str, list[AccountData]], FoldCounts]:
    """Each of ``accounts`` (a chunk of the source's) as of each of ``stamps``, as
    :func:`fold_unit` folds it for the whole source: from its aggregate where ``plan``
    allows and its executives hold, else from its rows (read through the account index:
    each account's rows in the order the whole table gives them). The source has no
    rows naming no account (the chunked audit checks that first). ``acc``'s contacts
    are the chunk's; ``more_contacts(ids)`` adds those of other accounts among ``ids``
    (an aggregate's or a row's people) before they are asked for."""
    slots = {a: [AccountData(stamp) for stamp in stamps] for a in accounts}
    counts = FoldCounts()
    if not stamps or not accounts:
        return slots, counts
    if plan.reason is not None:
        raw, counts.reasons = list(accounts), [plan.reason]
    else:
        raw = [a for a in accounts if a in plan.raw]
        found = list(aggregate_store.stored(conn, plan.source, [a for a in accounts if a not in plan.raw]))
        more_contacts(c for _, _, people in found for c in people.get("tc", ()))
        windows = Windows.of(acc)
        for account, blob, people in found:
            if not people_hold(people, acc.users, acc.contacts):
                raw.append(account)
                continue
            targets = slots[account]
            targets[:] = Aggregate(blob).at_each([data.as_of for data in targets], windows)
    counts.aggregated, counts.raw = len(accounts) - len(raw), len(raw)
    if raw:
        from_rows = set(raw)
        rows = list(aggregate_store.account_rows(conn, plan.source, [a for a in accounts if a in from_rows],
                                                 max(stamps)))
        more_contacts(c for row in rows if row[6] for c in row[6].split(";"))
        acc.fold(rows, slots, no_account)
    return slots, counts


def no_account(_: tuple[str, ...]) -> None:
    """The account of a row that names none: none. Such rows are never in an aggregate
    (the audit reads them), nor folded into an account from their contacts."""
    return None


def _from_aggregates(conn: sa.Connection, source: str, slots: dict[str, list[AccountData]],
                     stale: Mapping[str, int], windows: Windows, users: Mapping[str, User],
                     contacts: Mapping[str, Contact]) -> list[str]:
    """Fill ``slots`` from the stored aggregates; the accounts whose executives changed."""
    changed = []
    for account, blob, people in aggregate_store.stored(conn, source):
        targets = slots.get(account)
        if targets is None or account in stale:
            continue
        if not people_hold(people, users, contacts):
            changed.append(account)
            continue
        targets[:] = Aggregate(blob).at_each([data.as_of for data in targets], windows)
    return changed
