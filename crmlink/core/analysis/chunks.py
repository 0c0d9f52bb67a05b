"""The audit of one CRM source in chunks of accounts: each chunk's records are read from
the store, and its interactions folded, where the chunk is judged (in a worker process,
or in the audit's own), and let go before the next, so the audit's memory follows the
chunk, not the portfolio.

What the whole source needs is read once, by the audit's process, before any chunk: the
sorted account keys (keys only), the users and stages (small, whole), which accounts
come from their aggregates (:class:`~.aggregates.FoldPlan`), the typical days won deals
spend in each stage and the source's count of deal contact roles (every deal view reads
both), and the sorted deal ids (each deal's place in the document). A chunk then reads
its accounts, their contacts and deals, the deals' roles, stage history and execution
records (:meth:`.SourceData.load_chunk`), its aggregates and, for the stale accounts, its
rows (:func:`.aggregates.fold_chunk`), and its unknown people. Deals whose account is
not one of the source's live accounts are read and judged at the end.

**Consistency while a sync writes.** Every read of a unit's audit sees one committed
state of the store on PostgreSQL: the audit's process opens a ``REPEATABLE READ``
transaction, exports its snapshot, and every worker's connection reads that snapshot
(``SET TRANSACTION SNAPSHOT``). On SQLite a snapshot cannot pass to another process:
the audit's process reads its part in one transaction, and each worker reads all of its
chunks in one transaction of its own, begun when it starts; a sync that commits in
between shows in the chunks of the workers that began after it (never half of a sync
batch, which is one transaction). The accounts audited are those of the audit's
process's snapshot (an account deleted after it was listed is read as it is then).

**Where chunks cannot work** (:func:`whole_reason`; ``crmlink -v audit`` logs which
path each unit takes and why), the unit is loaded and folded whole:

- several CRM sources merged into one portfolio: matching identities needs every
  account, contact and user of every source;
- a source with interactions that name no account (a HubSpot portal's engagements):
  such a row belongs to the account of its first contact that has one, which only the
  whole contact table can tell.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from crmlink.core import aggregate_store, schema
from crmlink.core.analysis.accumulate import AccountData, Accumulator
from crmlink.core.analysis.aggregates import FoldCounts, fold_chunk, plan_fold
from crmlink.core.analysis.people import UnknownPerson, unknown_people
from crmlink.core.analysis.sortedkeys import SortedKeys
from crmlink.core.analysis.units import SourceData, Unit, account_keys, small_tables
from crmlink.core.model import Contact, StageChange
from crmlink.core.store import Store, correspondent_rows, records_in, records_where

log = logging.getLogger(__name__)

#: Accounts read, folded and judged together. Each chunk costs a few queries (its
#: accounts, contacts, deals, roles, history, execution records, aggregates, unknown
#: people, and the rows of its stale accounts), so a chunk of a few hundred accounts
#: makes that a small share of judging them, while the records and folded data of a
#: chunk stay a few megabytes (measured: bench/RESULTS.md).
CHUNK = 100


#: why several CRM sources merged into one portfolio are audited whole
MERGED_WHOLE = "merged sources: matching identities needs every record of every source"


def whole_reason(conn: sa.Connection, unit: Unit, until: float) -> str | None:
    """Why ``unit`` must be audited whole (loaded and folded at once), or ``None`` when
    it can be audited in chunks (on ``conn``'s snapshot, up to ``until``)."""
    if unit.merged:
        return MERGED_WHOLE
    if aggregate_store.has_accountless(conn, unit.sources[0], until):
        return (f"{unit.sources[0]!r} has interactions that name no account (they belong to the account "
                "of their contacts, which only every contact tells)")
    return None


class Reader:
    """The connections a unit's audit reads the store on: the audit's process's own,
    in one transaction held for the audit, and each worker's (see the module's
    docstring for the snapshot they see)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pid = os.getpid()
        self.conn: sa.Connection | None = None
        self.snapshot: str | None = None
        self._worker: sa.Connection | None = None

    def __enter__(self) -> Reader:
        conn = self.store.engine.connect()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
        if conn.dialect.name == "postgresql":
            self.snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
        self.conn = conn
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Read in the block: on the open transaction, or on a new one when the reader
        was closed (the audit is done and a plugin kept its portfolio's view: that read
        sees the store as it is then)."""
        if self.conn is not None:
            yield
            return
        with self:
            yield

    def close(self) -> None:
        """End the audit's process's transaction (a read: rolled back)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    @property
    def here(self) -> sa.Connection:
        """The connection of the process this runs in: the audit's own, or the worker's."""
        if os.getpid() == self.pid:
            assert self.conn is not None, "the reader is open"
            return self.conn
        if self._worker is None:
            self._worker = self._open_in_worker()
        return self._worker

    def _open_in_worker(self) -> sa.Connection:
        """A forked worker's connection: the pool it inherited holds the audit process's
        connections, which the worker must never use (nor close), so it is left behind."""
        self.store.engine.dispose(close=False)
        conn = self.store.engine.connect()
        if self.snapshot is not None:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            conn.begin()
            conn.execute(sa.text(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'"))
        else:
            conn.begin()
        return conn

    def close_worker(self) -> None:
        """End the worker's transaction (its slice is done)."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None


@dataclass
class Chunk:
    """A chunk of a source's accounts, read and folded: what :class:`~.workers.UnitWork`
    builds their views from."""

    keys: list[str]
    data: SourceData
    now: dict[str, AccountData]
    before: dict[str, AccountData]
    #: each account's data at the month ends of the health history (empty without it)
    past: dict[str, list[AccountData]]
    people_now: dict[str, list[UnknownPerson]]
    people_before: dict[str, list[UnknownPerson]]
    counts: FoldCounts


class SourceChunks:
    """One source's audit in chunks: what the audit's process reads once (see the
    module's docstring), and :meth:`chunk` to read and fold each chunk."""

    def __init__(self, reader: Reader, source: str, config: Any, classify: Callable[..., str | None],
                 fingerprint: str | None, stamps: Sequence[float], history: Sequence[float] = ()) -> None:
        """``stamps``: the audit date and the previous period (epoch seconds);
        ``history``: the month ends of the health history, when it is made."""
        self.reader, self.source, self.config, self.classify = reader, source, config, classify
        self.stamps, self.history = list(stamps), list(history)
        conn = reader.here
        self.keys = account_keys(conn, source)
        self.users, self.stages = small_tables(conn, source)
        self.plan = plan_fold(conn, source, self.keys, fingerprint, self.users)
        self.typical = stage_percentiles(won_histories(conn, source))
        self.roles = role_count(conn, source)
        self.deal_ids = deal_keys(conn, source)
        #: the accounts to read and judge, sorted: :attr:`keys` but those whose entries
        #: the audit takes from its cache (:mod:`.cache`)
        self.todo = self.keys
        #: accounts a chunk (:data:`CHUNK`)
        self.size = CHUNK

    def counts(self) -> FoldCounts:
        """Where the accounts' folded data comes from, as the plan has it (a chunk may
        also find an account whose executives changed: :func:`.aggregates.fold_chunk`)."""
        raw = len(self.keys) if self.plan.reason is not None else len(self.plan.raw)
        return FoldCounts(len(self.keys) - raw, raw, [self.plan.reason] if self.plan.reason else [])

    def slices(self, size: int | None = None) -> list[tuple[int, int]]:
        """The chunks of :attr:`keys`, as ``(low, high)`` index ranges."""
        size = size or self.size
        return [(low, min(low + size, len(self.keys))) for low in range(0, len(self.keys), size)]

    def chunk(self, keys: Sequence[str]) -> Chunk:
        """Read and fold the accounts ``keys`` (sorted, consecutive in :attr:`keys`)."""
        conn, source = self.reader.here, self.source
        data = SourceData.load_chunk(conn, source, keys, self.users, self.stages)
        contacts: dict[str, Contact] = dict(data.contacts)

        def more_contacts(ids: Iterable[str]) -> None:
            missing = {c for c in ids if c not in contacts}
            contacts.update((c.remote_id, c) for c in records_in(conn, Contact, source, "remote_id", sorted(missing)))

        acc = Accumulator(self.config, self.users, contacts, self.classify)
        folded, counts = fold_chunk(conn, self.plan, keys, acc, [*self.stamps, *self.history], more_contacts)
        as_of, previous = self.stamps
        people = correspondent_rows(conn, source, max(as_of, previous), keys)  # both dates' in one read
        return Chunk(list(keys), data, {a: f[0] for a, f in folded.items()}, {a: f[1] for a, f in folded.items()},
                     {a: f[2:] for a, f in folded.items()} if self.history else {},
                     unknown_people(row for row in people if row[3] <= as_of),
                     unknown_people(row for row in people if row[3] <= previous), counts)

    def chunks(self, low: int, high: int, size: int | None = None, keys: Sequence[str] | None = None) -> Iterator[Chunk]:
        """The chunks of the accounts ``keys[low:high]`` (:attr:`todo` when ``None``), one at a time."""
        size, keys = size or self.size, self.todo if keys is None else keys
        for start in range(low, high, size):
            yield self.chunk(keys[start:min(start + size, high)])

    def outside(self) -> SourceData:
        """The deals whose account is not one of the source's live accounts."""
        return SourceData.load_deals(self.reader.here, self.source, self.stages)


def won_histories(conn: sa.Connection, source: str) -> list[list[StageChange]]:
    """The stage history of each live won deal of ``source`` (by the deal's remote id),
    each in the order of :class:`~.view.OpportunityView`'s ``stage_history``."""
    deals = schema.TABLES["opportunity"]
    won = sa.select(deals.c.remote_id).where(deals.c.source == source, deals.c.deleted.is_(False),
                                             deals.c.is_won.is_(True))
    found: dict[str, list[StageChange]] = defaultdict(list)
    changes = schema.TABLES["stage_change"]
    for change in records_where(conn, StageChange, source, changes.c.opportunity_id.in_(won)):
        found[change.opportunity_id or ""].append(change)
    return [sorted(found[deal], key=lambda h: (h.entered_at, h.remote_id)) for deal in sorted(found)]


def stage_percentiles(histories: Iterable[Sequence[StageChange]]) -> dict[str, float]:
    """The 75th percentile of the days won deals spent in each native stage, from the
    deals' ``histories`` (each in time order): what every deal view reads as
    ``typical_days_in_stage``."""
    spans: dict[str, list[float]] = defaultdict(list)
    for history in histories:
        for current, following in zip(history, history[1:]):
            assert following.entered_at is not None and current.entered_at is not None, "required"
            days = (following.entered_at - current.entered_at).total_seconds() / 86400.0
            spans[current.stage_label or current.stage_id or ""].append(days)
    result = {}
    for stage, values in spans.items():
        values.sort()
        result[stage] = values[min(len(values) - 1, int(0.75 * len(values)))]
    return result


def role_count(conn: sa.Connection, source: str) -> int:
    """How many live deal contact roles ``source`` has."""
    table = schema.TABLES["opportunity_contact"]
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(
        table.c.source == source, table.c.deleted.is_(False))).scalar_one())


def deal_keys(conn: sa.Connection, source: str) -> SortedKeys:
    """The remote ids of the live deals of ``source``, sorted (the document's order)."""
    table = schema.TABLES["opportunity"]
    return SortedKeys(sorted(conn.execute(sa.select(table.c.remote_id).where(
        table.c.source == source, table.c.deleted.is_(False))).scalars()))


__all__ = ["CHUNK", "MERGED_WHOLE", "Chunk", "Reader", "SourceChunks", "stage_percentiles", "whole_reason"]
