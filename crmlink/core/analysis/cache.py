"""The incremental audit: an account whose inputs did not change since an audit with
the same settings is not read, folded or judged again; its entry's JSON text and what
the portfolio step reads of it come from the store's ``audit_cache`` table.

An account's entry is reused when all of these hold, else it is judged as usual (and
stored for the next audit):

- its revision (:mod:`crmlink.core.revisions`: raised by every write of its row, its
  contacts, deals, deal contact roles and stage history, its interactions and
  aggregate, the unknown people linked to it) is the one it was judged at;
- the :func:`fingerprint` is the same: the audit date, the settings, the plugins and
  their versions, crmlink's version, the source-wide revision (our people, stages,
  execution records), the values the audit works out for the whole source (the typical
  days won deals spend in each stage, the count of deal contact roles), the output's
  indentation;
- it comes from its aggregate (a fresh one, whose executives still hold): an account
  folded from its rows (stale, or aggregates off or out of date) is always judged.

The JSON, table and Markdown outputs of one CRM source audited in chunks (:mod:`.chunks`)
use the cache (:meth:`.Audit.stream`; a table's audit makes and stores the JSON texts of
the accounts it judges, for the next audit): merged sources, sources audited whole and
the HTML report (with its health history) are judged in full every time.

**Where the others are judged.** After a small sync most accounts are hits and a few
hundred are judged again. With ``[audit] workers = "auto"`` those go to forked workers
from :data:`.workers.BESIDE_FROM` of them (:meth:`UnitCache.processes`), and the audit's
process reads the hits meanwhile: waiting for an account judged elsewhere, it reads the
next hits ahead of their turn (at most :data:`AHEAD`; ``idle`` of
:func:`crmlink.core.parallel.shared`), and judges a part itself only when it may read
no more.

**What is stored, and when.** The audit reads the revisions on the snapshot it reads
everything else on. It stores its new entries while it judges, a batch at a time as
they come back (:mod:`.cache_writer`), each batch in a transaction that first reads the
revisions again: an account whose revision moved meanwhile (a sync committed while the
audit ran) is not stored, and nothing more is once the source-wide revision or any
contact changed (workers on SQLite read on snapshots of their own, taken later). An
entry is thus never stored under a revision it was not judged at. A store that cannot
be written (busy for more than a moment, read-only, its disk full) only costs the next
audit the work; a killed audit keeps the batches it committed. Whether an
account judged now can be stored is told where it is judged, by its chunk's own fold
(:func:`storable`), and its stored form is made there too (:func:`stored_pickled`: a
worker pickles the account once, for the cache and for its way back): the audit's
process only writes the bytes.

**The stored form.** Two columns, each LZ4-compressed (:func:`.cache_writer.pack`: at a
million interactions 160 MB became 70, and both the first audit and one that takes
every account from the cache took less time). The entry's JSON text as UTF-8 (a hit's
text goes to the document unpacked but not decoded, read from the table in the
document's order when the document is written, never copied to the spool first:
:class:`_Texts`); then two pickles, one after the other. The first holds what every audit reads of an
account (:class:`Form`): its place among the accounts that need attention, its
:class:`StoredSummary` (what the portfolio's tally and the built-in portfolio hook read
at hand, the rest still pickled until something reads it) in a pickle of its own, its
findings' severities and codes, and its deals' remote ids, JSON texts (a hit's deals go
to the document as the bytes stored, never made again) and what the tally counts of
them, each deal's entry and summary in a pickle of their own. The second is its slim
entry, which a hit leaves pickled until something reads it (:class:`.spill.Pickled`:
the JSON document does not, ``--fail-on``, ``--save`` and the table do). What is
pickled apart goes to disk as it is when an audit of many accounts spills it
(:mod:`.spill`): a hit's summary and deals are never pickled again. Only crmlink's own
dataclasses and a few standard types are unpickled (:class:`_Unpickler`): any other
object in the table is refused, and the account judged again.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import logging
import pickle
import sys
from array import array
from collections import deque
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import is_dataclass
from enum import Enum
from itertools import chain, compress, islice
from operator import not_
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import sqlalchemy as sa

from crmlink.core import hookspecs, revisions, schema
from crmlink.core.analysis.aggregates import people_hold
from crmlink.core.analysis.assemble import DealCounted, deal_counted, finding_pairs
from crmlink.core.analysis.cache_writer import BATCH, CacheWriter, unpack
from crmlink.core.analysis.sortedkeys import SortedKeys
from crmlink.core.analysis.spill import Pickled
from crmlink.core.analysis.summary import AccountSummary, OpportunitySummary
from crmlink.core.document import AccountEntry, OpportunityEntry
from crmlink.core.errors import StoreError
from crmlink.core.model import Contact
from crmlink.core.readahead import ReadAhead
from crmlink.core.store import cursor_batches, dbapi_statement, of_source_in, records_in

if TYPE_CHECKING:
    from crmlink.core.analysis.aggregates import FoldPlan
    from crmlink.core.analysis.audit import Audit, _UnitDeals
    from crmlink.core.analysis.chunks import Chunk, Reader, SourceChunks
    from crmlink.core.analysis.spool import AccountSpool
    from crmlink.core.analysis.workers import Judged, UnitWork
    from crmlink.core.host import PluginHost

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the stored form's version: another one is a miss (2: the text stored as it is, not
#: compressed; 3: each deal's JSON text beside its entry and summary; 4: what every audit
#: reads of an account and its deals apart, the rest pickled within: :class:`StoredSummary`;
#: 5: the summary and each deal's entry and summary pickled apart within the first pickle,
#: so that an audit that spills them writes them as they are, and each deal's count;
#: 6: the text and the form each LZ4-compressed, :func:`.cache_writer.pack`)
FORMAT = 6
#: what the fingerprint leaves out of the settings: credentials, and what does not
#: change an entry
_NOT_READ = ("sources", "push", "retry", "config_file")


def enabled(config: Mapping[str, Any]) -> bool:
    """Whether ``[audit] cache`` is on (``crmlink audit --no-cache`` turns it off)."""
    return bool(config.get("audit", {}).get("cache", True))


def entries(conn: sa.Connection, source: str) -> int:
    """How many accounts of ``source`` the cache holds (of the last audit with the cache
    on: an audit with other settings, another as-of date or other plugins replaces them)."""
    table = schema.audit_cache
    return int(conn.execute(sa.select(sa.func.count()).where(table.c.source == source)).scalar_one())


def plugins(host: PluginHost) -> dict[str, Any]:
    """Each hook with the plugins that implement it and their versions, and a hash of
    each plugin's module (a plugin whose code changed while its version did not)."""
    spec = f"{hookspecs.PROJECT}_spec"
    hooks = sorted(name for name, value in vars(hookspecs).items() if callable(value) and hasattr(value, spec))
    modules = {name: _module_hash(plugin) for name, plugin in host.pm.list_name_plugin()}
    return {"hooks": [(hook, sorted(host.implementers(hook), key=repr)) for hook in hooks],
            "modules": sorted(modules.items())}


def _module_hash(plugin: object) -> str | None:
    module = inspect.getmodule(plugin) or inspect.getmodule(type(plugin))
    path = getattr(module, "__file__", None)
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


@functools.cache
def code() -> str:
    """A hash of crmlink's own code: a build whose code differs (a development tree that
    keeps its version number) never takes another's entries."""
    import crmlink

    digest = hashlib.sha256()
    root = Path(crmlink.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode("utf-8"))
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprint(audit: Audit, chunks: SourceChunks, source_revision: int, indent: int | None,
                overall: str | None, slim: bool) -> str:
    """Everything an account's entry depends on besides its own revision (see the
    module's docstring), hashed."""
    from crmlink import __version__

    config = {key: value for key, value in audit.config.items() if key not in _NOT_READ}
    config["audit"] = {k: v for k, v in config.get("audit", {}).items() if k not in ("workers", "cache")}
    parts = {"format": FORMAT, "crmlink": __version__, "code": code(), "python": list(sys.version_info[:2]),
             "source": chunks.source, "as_of": audit.as_of_date.isoformat(), "stamps": [audit.as_of, audit.previous],
             "config": config, "plugins": plugins(audit.host), "typical": sorted(chunks.typical.items()),
             "roles": chunks.roles, "revision": source_revision, "indent": indent, "overall": overall, "slim": slim}
    text = json.dumps(parts, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class UnitCache:
    """The cache of one source audited in chunks: which accounts it has (:attr:`hit`,
    taken out of the chunks to read), the judged accounts in key order with the hits
    among them (:meth:`judged`), and the store of the new ones (:meth:`store`)."""

    def __init__(self, audit: Audit, chunks: SourceChunks, spool: AccountSpool, overall: str | None,
                 slim: bool) -> None:
        self.audit, self.chunks, self.spool = audit, chunks, spool
        self.source = chunks.source
        conn = chunks.reader.here
        now = revisions.of_source(conn, self.source)
        self.fingerprint = fingerprint(audit, chunks, now.get(revisions.SOURCE_WIDE, 0), spool.indent, overall, slim)
        found = self._hits(conn, chunks, now)
        #: which of the chunks' keys are hits, by position: a byte each, not a set of keys
        self.hit = bytearray(key in found for key in chunks.keys)
        self.hits = len(found)  # how many
        del found
        # a first audit judges every account: the keys themselves, not a copy
        chunks.todo = SortedKeys(compress(chunks.keys, map(not_, self.hit))) if self.hits else chunks.keys
        audit.from_cache += self.hits
        shared = {key: now.get(key, 0) for key in (revisions.SOURCE_WIDE, revisions.CONTACTS)}
        #: the revision of each account to judge, by its place in ``chunks.todo`` (a
        #: number each, not a key and a number: a first audit judges every account)
        self._revisions = array("q", (now.get(key, 0) for key in chunks.todo))
        del now
        self._texts = _Texts(chunks.reader, self.source)
        #: whether no worker forks any more while the hits are read (:meth:`_stored`) and
        #: the accounts judged now are stored: none is to be judged, or the workers were
        #: forked (:meth:`judged`)
        self._settled = not chunks.todo
        #: stores the accounts judged now as they come, beside the judging
        self.writer = CacheWriter(audit.store, self.source, self.fingerprint, shared, spool.data,
                                  lambda: spool.flush(0), lambda: self._settled)
        log.info("auditing %s: %d account(s) from the audit's cache, %d to judge", self.source,
                 self.hits, len(chunks.todo))

    def _hits(self, conn: sa.Connection, chunks: SourceChunks, now: Mapping[str, int]) -> set[str]:
        """The accounts of ``chunks`` (the chunks' own key strings) whose stored entry
        holds: judged at the revision they have now, with this fingerprint, not stale,
        and either no contact written since (our people are in the fingerprint) or their
        aggregates' executives holding still (:meth:`_from_aggregates`). The stored rows
        are filtered as they are read: no tuple is kept for every stored account."""
        table = schema.audit_cache
        sql, args = dbapi_statement(conn, sa.select(table.c.account_id, table.c.revision, table.c.contacts).where(
            table.c.source == self.source, table.c.fingerprint == self.fingerprint))
        contacts_now = now.get(revisions.CONTACTS, 0)
        same: set[str] = set()  # judged at this revision, a contact written since
        unchanged: set[str] = set()  # ... and none
        for rows in cursor_batches(conn, sql, args, 5000):  # no row object each
            for key, revision, contacts in rows:
                if revision == now.get(key, 0):
                    (unchanged if contacts == contacts_now else same).add(key)
        raw = chunks.plan.raw
        hits = {key for key in chunks.keys if key in unchanged and key not in raw}
        return hits | self._from_aggregates(conn, chunks, [k for k in chunks.keys if k in same and k not in raw])

    @staticmethod
    def _from_aggregates(conn: sa.Connection, chunks: SourceChunks, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` (not stale) the chunks fold from their stored aggregates, as
        the fold decides (:func:`.aggregates.fold_chunk`): their executives unchanged
        (an account without an aggregate has none)."""
        table = schema.aggregates
        holding: set[str] = set()
        for start in range(0, len(keys), BATCH):  # a batch at a time: never every contact of the source at once
            batch = keys[start:start + BATCH]
            people: dict[str, Any] = dict(conn.execute(sa.select(table.c.account_id, table.c.people).where(
                table.c.source == chunks.source, table.c.account_id.in_(batch))).all())
            named = sorted({c for found in people.values() for c in (found or {}).get("tc", ())})
            contacts = {c.remote_id: c for c in records_in(conn, Contact, chunks.source, "remote_id", named)}
            holding.update(key for key in batch
                           if key not in people or people_hold(people[key] or {}, chunks.users, contacts))
        return holding

    # -- the audit's accounts ------------------------------------------------------------------

    def judged(self, work: UnitWork, deals: _UnitDeals) -> Iterator[Judged]:
        """Every account of the source in key order: those ``work`` judges now, each
        kept to be stored, and the hits, each with its text numbered in the spool (read
        from the table when the document is written) and its deals given to ``deals`` as
        the others' are. The accounts to judge go to forked
        workers when there are enough of them (:meth:`processes`), and while this process
        waits for one of them it reads the next hits ahead of their turn (at most
        :data:`AHEAD`): the hits are read while the others are judged."""
        stored = self._stored()
        ahead = _Ahead(self, stored)

        def idle() -> bool:
            self._settled = True  # the workers were forked before anything waits for them
            return ahead.read()

        found = work.results(self.processes(work), idle if self.hits else None)
        try:
            for key, hit in zip(self.chunks.keys, self.hit, strict=True):
                if hit:
                    yield self._hit(key, ahead.next(), deals)
                    continue
                judged = next(found)
                self._settled = True  # the workers, if any, were forked before the first came
                assert judged.key == key, "the judged accounts come in key order"
                self._keep(judged)
                yield judged
            for extra in found:  # ends the workers
                raise AssertionError(f"account {extra.key!r} was judged but not listed")
        finally:
            stored.close()  # its reading thread, if any, ends now, not when it is collected

    def processes(self, work: UnitWork) -> int:
        """The processes to judge ``work``'s accounts in: as many as for a unit without
        the cache (:meth:`.Audit.workers`), and with hits to read beside them as many
        from :data:`.workers.BESIDE_FROM` accounts (``[audit] workers = "auto"``)."""
        from crmlink.core import parallel
        from crmlink.core.analysis.workers import BESIDE_FROM

        count = self.audit.workers(len(work.keys))
        if count > 1 or not self.hits:
            return count
        return parallel.worker_count(len(work.keys), BESIDE_FROM, parallel.workers_setting(self.audit.config))

    def _stored(self) -> Generator[tuple[str, bytes], None, None]:
        """The stored judged form of each hit, in key order, a batch at a time. Once no
        worker can fork any more (:attr:`_settled`: a fork while a thread is in the
        database's library could leave its locks held in the worker) the next batch is
        read in a thread while this one is unpickled (on PostgreSQL, a wait for the server)."""
        batches = self._stored_batches()
        while not self._settled:
            batch = next(batches, None)
            if batch is None:
                return
            yield from batch
        with ReadAhead(batches) as (ahead, _):
            yield from chain.from_iterable(ahead)

    def _stored_batches(self) -> Iterator[list[tuple[str, bytes]]]:
        """:meth:`_stored`'s batches, straight from the DB-API cursor (no SQLAlchemy row
        per hit)."""
        hits = compress(self.chunks.keys, self.hit)  # a batch of keys at a time, not a list of all
        with self.chunks.reader.reading():
            conn = self.chunks.reader.here
            while batch := list(islice(hits, BATCH)):
                sql, args = of_source_in(conn, schema.audit_cache.name, "account_id, judged", self.source, batch)
                rows = dict(chain.from_iterable(cursor_batches(conn, sql, args, BATCH)))
                yield [(key, rows[key]) for key in batch]

    def read(self, stored: tuple[str, bytes]) -> _Read:
        """A hit's row as :func:`read_form` reads it (nothing kept or added yet)."""
        key, blob = stored
        try:
            return key, read_form(unpack(blob))
        except (pickle.UnpicklingError, ValueError, TypeError, EOFError, AttributeError, ImportError) as exc:
            self._clear()
            raise StoreError(f"the audit's cache of {self.source!r} held an entry it cannot read ({exc}); the "
                             "cache of that source was cleared: run the audit again") from None

    def _hit(self, key: str, read: _Read, deals: _UnitDeals) -> Judged:
        from crmlink.core.analysis.workers import Judged

        found, form = read
        assert found == key, "the stored entries come in key order"
        ids = self.chunks.deal_ids
        placed: list[StoredDeal] = []
        for deal_id, text, deal_count, pair in form.deals:
            position = ids.position(deal_id)
            if position < len(ids) and ids[position] == deal_id:
                placed.append((position, pair, deal_count, text))
        self.spool.add_elsewhere(self._texts, key)
        deals.adopt_stored(key, placed)
        return Judged(key, form.attention, form.entry, None, [], form.summary, counted=form.counted,
                      summary_form=form.summary_form)

    def _keep(self, judged: Judged) -> None:
        """Keep ``judged`` to store, when it was given its stored form where it was
        judged (:func:`storable`, :func:`stored_pickled`)."""
        if judged.stored is None or judged.span is None:
            return
        todo = self.chunks.todo
        place = todo.position(judged.key)
        assert place < len(todo) and todo[place] == judged.key, "a judged account is one to judge"
        self.writer.add((judged.key, self._revisions[place], judged.span, judged.stored))

    def _clear(self) -> None:
        with self.audit.store.transaction() as conn:
            conn.execute(schema.audit_cache.delete().where(schema.audit_cache.c.source == self.source))

    # -- storing -----------------------------------------------------------------------------------

    def store(self) -> None:
        """The accounts judged now are all kept: the writer stores the last of them (see
        :mod:`.cache_writer`) while the audit's process goes on to the portfolio step and
        the document. :meth:`wait` for it before the spool closes, and before another
        unit's workers fork."""
        self.writer.finish()

    def abandon(self) -> None:
        """The judging failed: the writer stores nothing more than the batch under way.
        :meth:`wait` for it all the same before the spool closes."""
        self.writer.abandon()

    def wait(self) -> None:
        """Wait for the writer; what it raised (never a store that cannot be written:
        that is only logged) is raised here."""
        self.writer.wait()


class _Texts:
    """The stored texts of a source's hits, read when the document is written
    (:meth:`.AccountSpool.add_elsewhere`: never copied to the spool first), a batch of
    keys at a time, on the snapshot the hits were read on (the audit's reader is open
    until the document is done). It holds the reader alone, not the unit's cache."""

    def __init__(self, reader: Reader, source: str) -> None:
        self.reader, self.source = reader, source

    def __call__(self, keys: Sequence[str]) -> dict[str, bytes]:
        with self.reader.reading():
            conn = self.reader.here
            sql, args = of_source_in(conn, schema.audit_cache.name, "account_id, text", self.source, keys)
            try:
                found = {key: unpack(text) for rows in cursor_batches(conn, sql, args, BATCH) for key, text in rows}
            except ValueError as exc:
                raise StoreError(f"the audit's cache of {self.source!r} held an entry it cannot read ({exc}); run "
                                 "the audit again with --no-cache") from None
        if len(found) != len(set(keys)):
            raise StoreError(f"the audit's cache of {self.source!r} lost entries while the audit read it; run the "
                             "audit again")
        return found


#: a hit's row as :meth:`UnitCache.read` reads it: its key and its form
_Read = tuple[str, "Form"]
#: hits read ahead of their turn at most, while the audit's process waits for accounts
#: judged in workers (about 10 kB each at the benchmark's size)
AHEAD = 1000


class _Ahead:
    """The hits of a unit as :meth:`UnitCache.read` reads them, in key order: read when
    their turn comes (:meth:`next`), or a batch ahead of it (:meth:`read`)."""

    def __init__(self, cache: UnitCache, stored: Iterator[tuple[str, bytes]]) -> None:
        self.cache, self.stored = cache, stored
        self.read_ahead: deque[_Read] = deque()

    def read(self) -> bool:
        """Read the next :data:`BATCH` hits ahead; whether there were any to read."""
        if len(self.read_ahead) >= AHEAD:
            return False
        before = len(self.read_ahead)
        self.read_ahead.extend(self.cache.read(stored) for stored in islice(self.stored, BATCH))
        return len(self.read_ahead) > before

    def next(self) -> _Read:
        """The next hit."""
        return self.read_ahead.popleft() if self.read_ahead else self.cache.read(next(self.stored))


def unit_cache(audit: Audit, chunks: SourceChunks | None, spool: AccountSpool | None, overall: str | None,
               slim: bool, history: bool) -> UnitCache | None:
    """The cache of a unit audited in chunks, or ``None`` where the audit does not use
    one: ``[audit] cache`` off, no spool of JSON texts (a whole document, made with
    :meth:`.Audit.document`), the health history (the HTML report), a unit audited whole,
    a source folded from its rows, a store in memory."""
    if chunks is None or spool is None or history or not enabled(audit.config) or chunks.plan.reason is not None:
        return None
    database = audit.store.engine.url.database
    if audit.store.engine.dialect.name == "sqlite" and (not database or database == ":memory:"):
        return None
    return UnitCache(audit, chunks, spool, overall, slim)


# -- the judged form -----------------------------------------------------------------------------

def _dumps(value: Any) -> bytes:
    """Pickled, not compressed: a few kilobytes an account, and compressing them cost a
    first audit more than it saved (measured)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _loads(data: bytes) -> Any:
    return _Unpickler(io.BytesIO(data)).load()


def storable(chunk: Chunk, plan: FoldPlan) -> frozenset[str]:
    """The accounts of ``chunk`` the cache can store once judged: those its fold took
    from their fresh aggregates (:func:`.aggregates.fold_chunk`: their executives held;
    an account without an aggregate has none), told from the chunk's own counts. The
    plan's stale accounts are folded from their rows; a chunk that folded more of them
    from their rows (executives that changed since the last refresh, a rare case the
    counts do not name) stores none of its accounts: the next audit judges them again."""
    stale = [key for key in chunk.keys if key in plan.raw]
    if chunk.counts.raw != len(stale):
        return frozenset()
    return frozenset(chunk.keys).difference(stale)


def stored_pickled(judged: Judged) -> tuple[bytes, Pickled[AccountEntry], Pickled[AccountSummary]]:
    """The form the cache stores ``judged`` in (besides its text: two pickles, one after
    the other, see the module's docstring and :func:`read_form`), and the entry and the
    summary in it left pickled, as :func:`read_form` leaves them: the process that judged
    the account keeps the entry in that form, as a worker's accounts and the cache's
    hits come back, and spills the summary in it, pickling nothing more."""
    assert judged.deal_texts is not None, "an account judged for the JSON document has its deals' texts"
    assert not isinstance(judged.entry, Pickled), "an account judged now has its entry"
    deals = [(deal.opportunity.remote_id, text, deal_counted(deal), _dumps((_dumps(deal_entry), deal)))
             for (_, deal_entry, deal), text in zip(judged.deals, judged.deal_texts, strict=True)]
    summary = judged.summary
    entry, form = _dumps(judged.entry), _dumps(StoredSummary.of(summary))
    lean = (judged.attention, form, finding_pairs(summary.findings), deals)
    return _dumps(lean) + entry, Pickled(entry, _loads_entry), Pickled(form, _loads_summary)


class Form(NamedTuple):
    """A judged account as :func:`read_form` reads its stored form: what every audit
    reads of it (what the portfolio's tally and the deals' placing read, and no more)
    at hand, the rest still pickled."""

    #: its place among the accounts that need attention (:func:`.assemble.attention_key`)
    attention: tuple[int, int, bool, float, str]
    summary: StoredSummary
    #: :attr:`summary` as stored: what goes to disk if the audit spills it (never pickled again)
    summary_form: Pickled[AccountSummary]
    #: its findings' severities and codes (:func:`.assemble.finding_pairs`)
    counted: tuple[tuple[str, str], ...]
    #: its deals: each one's remote id, JSON text, what the tally counts of it
    #: (:func:`.assemble.deal_counted`), and its entry and summary, still pickled together
    #: (:func:`loads_deal`: the built-in ``ltc`` plugin reads every deal's summary once,
    #: the JSON document its text)
    deals: list[tuple[str, bytes, DealCounted, Pickled[StoredPair]]]
    #: its entry, which only a few uses of the document read (``--fail-on``, ``--save``,
    #: the table): read then
    entry: Pickled[AccountEntry]


#: a deal's entry and summary as the audit keeps them: a hit's (:func:`loads_deal`) with
#: its entry still pickled, read as its item where the document reads the deals' entries
#: (:class:`.spill.FieldView`)
StoredPair = tuple[OpportunityEntry | Pickled[OpportunityEntry], OpportunitySummary]
#: a deal of a hit as :meth:`._UnitDeals.adopt_stored` keeps it: its position among the
#: deals, its entry and summary still pickled, what the tally counts of it, its JSON text
StoredDeal = tuple[int, Pickled[StoredPair], DealCounted, bytes]


def read_form(data: bytes) -> Form:
    """What :func:`stored_pickled` made (two pickles, one after the other, the first
    holding the summary's own pickle and each deal's): what every audit reads of a
    judged account at hand, the rest left pickled (:class:`.spill.Pickled`)."""
    file = io.BytesIO(data)
    read = _Unpickler(file).load()
    if not (isinstance(read, tuple) and len(read) == 4 and isinstance(read[1], bytes)):
        raise pickle.UnpicklingError("not a judged account")
    attention, form, counted, deals = read
    summary = _Unpickler(io.BytesIO(form)).load()
    if not isinstance(summary, StoredSummary):
        raise pickle.UnpicklingError("not a judged account's summary")
    return Form(attention, summary, Pickled(form, _loads_summary), counted,
                [(deal_id, text, deal_count, Pickled(pair, loads_deal)) for deal_id, text, deal_count, pair in deals],
                Pickled(data[file.tell():], _loads_entry))


#: the fields of :class:`~.summary.AccountSummary` a :class:`StoredSummary` keeps pickled
_REST = ("previous_scores", "findings", "relationship", "personalization")


class StoredSummary(AccountSummary):
    """An account's summary as the audit's cache stores it: what the audit reads of every
    account (its record, key, scores, coverage, effort: the portfolio's tally and coverage,
    the built-in portfolio hook) at hand, the rest (:data:`_REST`: the findings, ...)
    still pickled, unpickled on the first read of any of it. It equals the summary it
    was made of. (The record is at hand, not pickled apart: the portfolio's coverage reads
    it of each account with thin evidence, 4 in 10 in the benchmark, and unpickling it
    apart cost those more than unpickling it with the rest cost every account.)"""

    @classmethod
    def of(cls, summary: AccountSummary) -> StoredSummary:
        """``summary`` in the stored form (its rest pickled)."""
        made = object.__new__(cls)
        object.__setattr__(made, "__dict__", {
            "account": summary.account, "key": summary.key, "scores": summary.scores, "coverage": summary.coverage,
            "effort": summary.effort, "_rest": _dumps(tuple(getattr(summary, name) for name in _REST))})
        return made

    def __getattr__(self, name: str) -> Any:  # only for what the instance lacks: a field still pickled
        data = self.__dict__.pop("_rest", None) if name in _REST else None
        if data is None:
            raise AttributeError(name)
        values = _stored(data, tuple, "an account summary")
        self.__dict__.update(zip(_REST, values, strict=True))
        return getattr(self, name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AccountSummary):
            return NotImplemented
        return all(getattr(self, field) == getattr(other, field) for field in _FIELDS)

    __hash__ = AccountSummary.__hash__


_FIELDS = tuple(AccountSummary.__dataclass_fields__)


def loads_deal(data: bytes) -> StoredPair:
    """A hit's deal's entry and summary, left pickled by :func:`read_form`: the summary
    unpickled, the entry still pickled apart (the built-in ``ltc`` plugin reads every
    deal's summary, and a JSON document no deal's entry)."""
    pair = _stored(data, tuple, "a deal's entry and summary")
    if not (len(pair) == 2 and isinstance(pair[0], bytes) and isinstance(pair[1], OpportunitySummary)):
        raise StoreError("the audit's cache held something else than a deal's entry and summary; run the audit "
                         "again with --no-cache")
    return Pickled(pair[0], _loads_deal_entry), pair[1]


def _loads_deal_entry(data: bytes) -> OpportunityEntry:
    """A hit's deal's entry, left pickled by :func:`loads_deal`."""
    return _stored(data, OpportunityEntry, "a deal entry")


def _loads_summary(data: bytes) -> AccountSummary:
    """A summary left pickled by :func:`read_form`."""
    return _stored(data, StoredSummary, "an account summary")


def _loads_entry(data: bytes) -> AccountEntry:
    """An entry left pickled by :func:`read_form`."""
    return _stored(data, AccountEntry, "an account entry")


def _stored(data: bytes, kind: type[T], what: str) -> T:
    """What the cache left pickled, of ``kind``; one that cannot be read, or is something
    else, says where it came from and what to do (``what``: what it should have been)."""
    try:
        found = _loads(data)
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, AttributeError, ImportError) as exc:
        raise StoreError(f"the audit's cache held {what} it cannot read ({exc}); run the audit again with "
                         "--no-cache") from None
    if not isinstance(found, kind):
        raise StoreError(f"the audit's cache held something else than {what}; run the audit again with --no-cache")
    return found


#: the standard types a judged account holds
_STANDARD = {("datetime", "datetime"), ("datetime", "date"), ("datetime", "timezone"), ("datetime", "timedelta"),
             ("decimal", "Decimal"), ("collections", "defaultdict"), ("collections", "OrderedDict"),
             ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "list"), ("builtins", "dict"),
             ("builtins", "tuple"), ("builtins", "str"), ("builtins", "int"), ("builtins", "float"),
             ("builtins", "bool"), ("builtins", "complex"), ("builtins", "bytes")}


class _Unpickler(pickle.Unpickler):
    """Unpickles crmlink's dataclasses and enums and :data:`_STANDARD` alone: nothing
    else in the table can be called."""

    #: the classes found so far (every entry names the same few dozen)
    allowed: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        found = self.allowed.get((module, name))
        if found is not None:
            return found
        if (module, name) in _STANDARD or module == "crmlink" or module.startswith("crmlink."):
            found = super().find_class(module, name)
            if (module, name) in _STANDARD or (
                    isinstance(found, type) and (is_dataclass(found) or issubclass(found, Enum))):
                self.allowed[module, name] = found
                return found
        raise pickle.UnpicklingError(f"the audit's cache holds {module}.{name}, which it never stores")


__all__ = ["BATCH", "FORMAT", "Form", "StoredDeal", "StoredPair", "StoredSummary", "UnitCache", "enabled", "entries",
           "fingerprint",
           "loads_deal", "plugins", "read_form", "storable", "stored_pickled", "unit_cache"]
