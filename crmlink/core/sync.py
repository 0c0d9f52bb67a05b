"""The sync engine every connector shares: batches, checkpoints, retries, skips, run records.

For each stream the engine reads the saved cursor, pulls records from the connector,
validates and classifies them, and upserts them in batches. For sorted streams each
batch and the cursor it advances commit in one transaction; a failed or killed run
therefore resumes from the last committed batch. Atomic connectors (file imports) commit
the whole run at once or nothing.

Retries belong here, not in connectors: a :class:`RetriableError` restarts the stream
from its last committed cursor with exponential backoff and jitter (tenacity), honouring
the server's Retry-After, within a total time limit.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
import tenacity

from crmlink.core import collector, model, reconcile
from crmlink.core.analysis.config import DEFAULTS
from crmlink.core.classify import Classification
from crmlink.core.classify import classify as classify_title
from crmlink.core.connector import Connector, Stream, SyncContext
from crmlink.core.errors import ConfigError, CrmlinkError, InvalidRecord, RetriableError, StoreError
from crmlink.core.host import PluginHost
from crmlink.core.readahead import ReadAhead
from crmlink.core.redact import Redactor
from crmlink.core.rows import Row, RowBatch, StoredRows, fields_of, like
from crmlink.core.store import Store

log = logging.getLogger(__name__)
BATCH_SIZE = 2000
#: Entities the engine completes record by record (contacts through the classify hook,
#: users' seniority from their titles): row batches of them are read as records.
PER_RECORD: tuple[type[model.Record], ...] = (model.Contact, model.User)
Item = model.Record | RowBatch
_SOURCE = itemgetter(fields_of(model.Record).index("source"))
_DELETED = fields_of(model.Record).index("deleted")
_CONTACT = fields_of(model.Contact)
_TITLE, _RAW = _CONTACT.index("title"), _CONTACT.index("raw")
#: the contact's fields the classify hook fills in where they are blank, with its answer's
_CLASSIFIED = ("seniority", "department", "buying_role")
_FILLED = tuple((_CONTACT.index(name), name) for name in _CLASSIFIED)  # and where a row holds them
#: Distinct (title, raw) classifications kept by :class:`_TitleRules` (then it starts again).
TITLES_KEPT = 10_000


@dataclass
class StreamCounts:
    entity: str
    read: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "read": self.read, "created": self.created,
                "updated": self.updated, "deleted": self.deleted, "skipped": self.skipped}


@dataclass
class SyncResult:
    run_id: int
    source: str
    status: str
    streams: dict[str, StreamCounts] = field(default_factory=dict)
    skips: list[tuple[str, str | None, str]] = field(default_factory=list)
    error: str | None = None
    #: retries per stream (each one restarted the stream from its last committed cursor)
    retries: dict[str, int] = field(default_factory=dict)


#: Environment variables that override the ``[retry]`` table of the config file.
RETRY_ENV = {"attempts": "CRMLINK_RETRY_ATTEMPTS", "initial": "CRMLINK_RETRY_INITIAL",
             "maximum": "CRMLINK_RETRY_MAXIMUM", "total": "CRMLINK_RETRY_TOTAL"}


@dataclass
class RetryPolicy:
    """How the host retries :class:`RetriableError`: attempts, backoff and a time limit.

    The n-th wait is ``initial * 2**(n-1)`` plus up to ``initial`` of random jitter, at
    most ``maximum``. A server's Retry-After (``exc.retry_after``) is always honoured,
    even above ``maximum``; a connector's own guess (``exc.suggested_wait``, e.g. the
    length of a rate-limit window) is honoured up to ``maximum``. A stream is given up
    after ``attempts`` tries, or when the next wait would end more than ``total`` seconds
    after its first try.
    """

    attempts: int = 6
    initial: float = 1.0
    maximum: float = 60.0
    total: float = 600.0

    @classmethod
    def from_settings(cls, table: Mapping[str, Any] | None = None,
                      environ: Mapping[str, str] | None = None) -> RetryPolicy:
        """The policy from a config table (``[retry]``), overridden by ``CRMLINK_RETRY_*``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = dict(table or {})
        unknown = sorted(set(values) - set(RETRY_ENV))
        if unknown:
            raise ConfigError(f"unknown setting 'retry.{unknown[0]}' in the config file; the [retry] "
                              f"table takes: {', '.join(RETRY_ENV)}")
        for name, var in RETRY_ENV.items():
            if environ.get(var):
                values[name] = environ[var]
        policy = cls()
        for name, value in values.items():
            kind = int if name == "attempts" else float
            try:
                number = kind(value)
            except (TypeError, ValueError):
                number = -1
            if number < (1 if name == "attempts" else 0):
                raise ConfigError(f"retry setting {name!r} must be a {'whole ' if kind is int else ''}"
                                  f"number of at least {1 if name == 'attempts' else 0}, not {value!r}; "
                                  f"fix [retry] in the config file or {RETRY_ENV[name]}")
            setattr(policy, name, number)
        return policy

    def wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        exponential = self.initial * 2.0 ** (state.attempt_number - 1)
        backoff = min(self.maximum, exponential + random.uniform(0, self.initial))
        suggested = getattr(exc, "suggested_wait", None)
        if suggested:
            backoff = max(backoff, min(self.maximum, float(suggested)))
        retry_after = getattr(exc, "retry_after", None)
        return max(backoff, float(retry_after)) if retry_after else backoff

    def stop(self, state: tenacity.RetryCallState) -> bool:
        """Stop after ``attempts`` tries or when the next wait would overrun ``total``."""
        if state.attempt_number >= self.attempts:
            return True
        upcoming = float(getattr(state, "upcoming_sleep", 0.0) or 0.0)
        elapsed = state.seconds_since_start or 0.0  # None only before the first outcome
        return elapsed + upcoming > self.total


Progress = Callable[[str, StreamCounts], None]
Notice = Callable[[str], None]


class SyncEngine:
    """Runs one connector into one store under one source name."""

    def __init__(self, store: Store, host: PluginHost, connector: Connector, source: str, *,
                 full: bool = False, on_error: str = "fail", policy: RetryPolicy | None = None,
                 progress: Progress | None = None, notice: Notice | None = None,
                 batch_size: int = BATCH_SIZE, config: Mapping[str, Any] | None = None,
                 status: Notice | None = None) -> None:
        self.store, self.host, self.connector, self.source = store, host, connector, source
        self.full, self.on_error = full, on_error
        self.policy = policy or RetryPolicy()
        self.progress = progress or (lambda name, counts: None)
        self.notice = notice or (lambda message: None)
        self.batch_size = batch_size
        #: the config file with its defaults (the defaults alone when none is given)
        self.config: Mapping[str, Any] = config if config is not None else copy.deepcopy(DEFAULTS)
        self.status = status or (lambda message: None)
        self.redact = Redactor(connector.secrets)  # also what it learns during the run
        #: the run in progress (or the last one), for progress displays
        self.result: SyncResult | None = None
        self._cut: set[str] = set()  # streams that raised an InvalidRecord and were skipped
        self._titles = _TitleRules.of(host)

    def run(self) -> SyncResult:
        """Run the sync, holding the source's sync lock in the store: a second sync of
        the same source meanwhile stops with :class:`~crmlink.core.errors.SyncBusyError` (exit 9)."""
        with self.store.sync_lock(self.source), collector.spared():
            return self._run()

    def _run(self) -> SyncResult:
        run_id = self.store.start_run(self.source, self.connector.name, self.full)
        result = self.result = SyncResult(run_id, self.source, "running")
        try:
            if self.full:  # once the run holds the source (SQLite's lock is its running row)
                self.store.clear_state(self.source)
            self.connector.prepare(self.context())
            if self.connector.atomic:
                self._atomic(result)
            else:
                for stream in self.connector.streams():
                    self._with_retries(stream, result)
        except CrmlinkError as exc:
            result.status, result.error = "failed", self.redact(str(exc))
            self._rolled_back(result)
            self.store.finish_run(run_id, "failed", self._counts(result), result.error, result.skips)
            exc.args = tuple(self.redact(str(a)) for a in exc.args)
            raise
        except Exception as exc:
            result.status, result.error = "failed", self.redact(f"{type(exc).__name__}: {exc}")
            self._rolled_back(result)
            self.store.finish_run(run_id, "failed", self._counts(result), result.error, result.skips)
            raise
        result.status = "partial" if result.skips else "ok"
        self.store.finish_run(run_id, result.status, self._counts(result), None, result.skips)
        self._refresh_aggregates(run_id)
        return result

    def _atomic(self, result: SyncResult) -> None:
        """The whole run in one transaction; the audit's aggregates built beside the
        write where they can be (:mod:`crmlink.core.analysis.aggregate_stream`), and
        written in the same transaction."""
        from crmlink.core.analysis.aggregate_stream import BuildBeside

        with self.store.transaction() as conn, \
                BuildBeside(self.store, self.host, self.config, conn, self.source) as beside:
            for stream in self.connector.streams():
                beside.before(stream.entity)
                self._stream(conn, stream, result)
            self.status("writing the audit's aggregates")
            beside.finish()
            # then the indexes a first import set aside are built and the transaction
            # commits (on SQLite the whole import passes from the log into the database):
            # at 10M interactions a minute or more
            self.status("committing the sync")

    def _refresh_aggregates(self, run_id: int) -> None:
        """Rebuild the audit's aggregates this sync made stale (and any a killed sync or
        another source's left), unless ``[audit] aggregates = false``. The run's records
        are stored by then: a store that fails now (its disk full) fails the command
        with a sentence that says so, and that the aggregates alone are behind (what the
        refresh committed stays; the audit folds the accounts still stale from their rows)."""
        from crmlink.core.analysis.aggregate_build import refresh
        from crmlink.core.analysis.aggregates import enabled

        if not enabled(self.config):
            return

        self.status("updating the audit's aggregates")

        def progress(source: str, done: int, total: int) -> None:
            self.status(f"updating the audit's aggregates of {source}: {done:,} of {total:,} accounts")

        try:
            found = refresh(self.store, self.host, self.config, progress=progress)
        except StoreError as exc:
            raise StoreError(f"the sync was stored (run {run_id}), but updating the audit's aggregates then failed: "
                             f"{exc}. `crmlink aggregate` redoes that step alone; until it succeeds the audit reads "
                             "the accounts this sync changed from their interactions") from None
        for done in found:
            if done.built or done.left:
                log.info("aggregates of %s: %d rebuilt%s, %d left stale", done.source, done.built,
                         " (all)" if done.full else "", done.left)

    def context(self) -> SyncContext:
        """What the connector may know of this run (:meth:`Connector.prepare`)."""
        def records(entity: str, source: str) -> Iterator[model.Record]:
            return self.store.records(entity, source=source)

        sources: dict[str, list[str]] = {}  # per entity, listed once a run

        def find(entity: str, remote_ids: Sequence[str]) -> list[model.Record]:
            if entity not in sources:
                sources[entity] = self.store.sources_of(entity)
            return self.store.find(entity, remote_ids, sources[entity])

        return SyncContext(self.source, self.config, records, self.store.sources,
                           self.notice, self.status, find=find)

    def _rolled_back(self, result: SyncResult) -> None:
        """A failed run of an atomic connector stored nothing (its one transaction was
        rolled back): its counts keep what was read and skipped (the bad rows are bad
        still), and say nothing was created, updated or deleted."""
        if self.connector.atomic:
            result.streams = {name: StreamCounts(c.entity, read=c.read, skipped=c.skipped)
                              for name, c in result.streams.items()}

    def _counts(self, result: SyncResult) -> dict[str, Any]:
        return {name: c.to_json() for name, c in result.streams.items()}

    def _with_retries(self, stream: Stream, result: SyncResult) -> None:
        def log_retry(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0
            result.retries[stream.name] = result.retries.get(stream.name, 0) + 1
            message = (f"{stream.name}: {self.redact(str(exc))}; retry {state.attempt_number} "
                       f"of {self.policy.attempts - 1} in {wait:.1f}s")
            log.info("%s", message)
            self.notice(message)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetriableError),
            wait=self.policy.wait,
            stop=self.policy.stop,
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._stream(None, stream, result)
        except RetriableError as exc:
            tries = 1 + result.retries.get(stream.name, 0)
            reason = str(exc).removesuffix("; will retry").removesuffix(", will retry")
            exc.args = (f"{reason}; gave up on {stream.name} after {tries} tries; run the sync again "
                        "later: it resumes from the last saved batch",)
            raise

    def _stream(self, conn: sa.Connection | None, stream: Stream, result: SyncResult) -> None:
        state = self.store.get_state(self.source, stream.name)  # --full cleared it at the start
        counts = result.streams.setdefault(stream.name, StreamCounts(stream.entity.entity))
        last: model.Record | None = None
        chunks = self._chunks(self._items(stream, state, counts, result))
        with self._ahead(chunks, conn) as (ahead, paused):
            for chunk in ahead:
                with self._txn(conn) as tx:
                    self._write(tx, chunk, counts, stream, result, paused)
                    last = _last(chunk)
                    if stream.is_sorted or stream.resumable:
                        self.store.set_state(tx, self.source, stream.name, stream.checkpoint(last, state))
                self.progress(stream.name, counts)
        if stream.name in self._cut:
            return  # no deletions and no final cursor from a stream that was cut short
        if stream.snapshot:
            with self._txn(conn) as tx:
                skipped = [rid for name, rid, _ in result.skips if name == stream.name and rid]
                self.store.mark_seen(tx, stream.entity.entity, self.source, skipped, result.run_id)
                counts.deleted += self.store.mark_unseen_deleted(tx, stream.entity.entity, self.source, result.run_id)
        elif (present := reconcile.present_ids(self.connector, stream)) is not None:
            with self._txn(conn) as tx:  # hard deletes: ids the source no longer lists
                counts.deleted += reconcile.reconcile(self.store, tx, stream, self.source, present)
        final = stream.next_state(state)
        if final is None and last is not None and not stream.is_sorted:
            final = stream.checkpoint(last, state)
        if final is not None:
            with self._txn(conn) as tx:
                self.store.set_state(tx, self.source, stream.name, final)
        self.progress(stream.name, counts)

    def _chunks(self, items: Iterator[Item]) -> Iterator[list[Item]]:
        """``batch_size`` records a chunk, whether they come one by one or in row batches
        (a row batch is cut where a chunk ends)."""
        chunk: list[Item] = []
        size = 0
        for item in items:
            if not isinstance(item, RowBatch):
                chunk.append(item)
                size += 1
            else:
                start = 0
                while len(item.rows) - start > self.batch_size - size:
                    end = start + self.batch_size - size
                    chunk.append(item.part(start, end))
                    yield chunk
                    chunk, size, start = [], 0, end
                if start < len(item.rows):
                    chunk.append(item.part(start) if start else item)
                    size += len(item.rows) - start
            if size >= self.batch_size:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk

    def _ahead(self, chunks: Iterator[list[Item]], conn: sa.Connection | None
               ) -> AbstractContextManager[tuple[Iterator[list[Item]], AbstractContextManager[Any]]]:
        """The chunks, read ahead in a thread (:class:`~crmlink.core.readahead.ReadAhead`)
        when the run is one transaction (a file import): the next chunk is read and
        checked while the store writes this one. ``paused``: a context in which the
        stream is not being read (to ask it where an id was)."""
        if conn is None:
            return nullcontext((chunks, nullcontext()))
        return ReadAhead(chunks)

    def _txn(self, conn: sa.Connection | None) -> AbstractContextManager[sa.Connection]:
        if conn is not None:
            return nullcontext(conn)
        return self.store.transaction()

    def _items(self, stream: Stream, state: Mapping[str, Any] | None, counts: StreamCounts,
               result: SyncResult) -> Iterator[Item]:
        """The stream's records and row batches (:meth:`Stream.batches`, else
        :meth:`Stream.records`), ready to store: bad records failed or skipped, the source
        filled in, contacts and users classified."""
        found = stream.batches(state)
        iterator = iter(stream.records(state) if found is None else found)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except InvalidRecord as exc:
                if self.on_error != "skip":
                    raise
                # raised, not yielded: the stream cannot go on (an unreadable file)
                self._cut.add(stream.name)
                exc.args = (f"{exc}; the rest of {stream.name} was not read, and none of its "
                            "records were marked deleted",)
                self._skip(stream, exc, counts, result)
                continue
            except Exception as exc:
                classified = self.connector.classify_error(exc)
                if classified is None:
                    raise
                raise classified from exc
            if isinstance(item, InvalidRecord):
                if self.on_error != "skip":
                    raise item
                self._skip(stream, item, counts, result)
            elif not isinstance(item, RowBatch):
                yield self._prepare(item, counts)
            elif self._titles is not None and item.entity is model.Contact and isinstance(item.rows, StoredRows):
                counts.read += len(item.rows)
                yield self._sourced(RowBatch(item.entity, self._titles.fill(item.rows)))
            elif issubclass(item.entity, PER_RECORD):
                for record in item.records():
                    yield self._prepare(record, counts)
            elif item.rows:
                counts.read += len(item.rows)
                yield self._sourced(item)

    def _prepare(self, record: model.Record, counts: StreamCounts) -> model.Record:
        counts.read += 1
        if not record.source:
            record.source = self.source
        if isinstance(record, model.Contact):
            self._classify(record)
        elif isinstance(record, model.User) and record.seniority is None:
            record.seniority = classify_title(record.title).seniority
        return record

    def _sourced(self, batch: RowBatch) -> RowBatch:
        """The batch with this run's source where a row leaves it blank."""
        if all(map(_SOURCE, batch.rows)):
            return batch
        return RowBatch(batch.entity, like(batch.rows, (row if row[1] else (row[0], self.source, *row[2:])
                                                        for row in batch.rows)))

    def _skip(self, stream: Stream, exc: InvalidRecord, counts: StreamCounts, result: SyncResult) -> None:
        counts.skipped += 1
        reason = self.redact(str(exc))
        result.skips.append((stream.name, exc.remote_id, reason))
        log.info("skipped: %s", reason)
        self.notice(f"skipped: {reason}")

    def _classify(self, contact: model.Contact) -> None:
        found = self.host.classify_contact(contact)
        if found is None:
            return
        for name in _CLASSIFIED:
            if getattr(contact, name) is None and getattr(found, name) is not None:
                setattr(contact, name, getattr(found, name))

    def _write(self, conn: sa.Connection, chunk: list[Item], counts: StreamCounts,
               stream: Stream, result: SyncResult, paused: AbstractContextManager[Any]) -> None:
        for entity, (cls, rows) in _by_entity(chunk).items():
            written = self.store.upsert_rows(conn, RowBatch(cls, rows), run_id=result.run_id)
            counts.created += written.created
            counts.updated += written.updated
            kept = {*written.duplicates, *written.unchanged}  # already stored as they are
            counts.deleted += sum(1 for row in rows if row[_DELETED] and row[0] not in kept)
            if written.duplicates and self.connector.atomic:
                with paused:
                    self._duplicates(entity, written.duplicates, stream, counts, result)
            # An API stream retried from its last cursor reads the rows at that cursor again:
            # they were stored by this run already, and are not written twice.

    def _duplicates(self, entity: str, remote_ids: list[str], stream: Stream, counts: StreamCounts,
                    result: SyncResult) -> None:
        """A file gave the same id twice: the first row is kept, each repeat fails or is skipped."""
        for rid in remote_ids:
            error = InvalidRecord(entity, rid, "id", "the same id appears twice; ids must be unique")
            where = stream.locate(rid)
            if where:
                error.at(where)
            if self.on_error != "skip":
                raise error
            self._skip(stream, error, counts, result)


class _TitleRules:
    """The classify hook where only the built-in title rules answer it
    (:mod:`crmlink.plugins.classify`), applied to contacts' rows in the store's form:
    what :meth:`SyncEngine._classify` does to a record made of each row, without the
    record (reading a row back as canonical values and making a record of it cost
    three times the classification), and once per distinct title and ``raw``, which
    are all the rules read."""

    def __init__(self, rules: Callable[..., Classification]) -> None:
        self.rules = rules
        self._known: dict[tuple[Any, Any], tuple[tuple[int, Any], ...]] = {}

    @classmethod
    def of(cls, host: PluginHost) -> _TitleRules | None:
        """The rules, when the built-in plugin alone implements the hook and hook calls
        are not traced (``CRMLINK_TRACE_PLUGINS``); else ``None``: each record asks the hook."""
        from crmlink.plugins import classify as builtin

        answering = [name for name, _ in host.implementers("classify_contact")]
        if answering != ["classify"] or host.pm.get_plugin("classify") is not builtin \
                or os.environ.get("CRMLINK_TRACE_PLUGINS") == "1":
            return None
        return cls(classify_title)

    def fill(self, rows: StoredRows) -> StoredRows:
        """The rows with their blank seniority, department and buying role filled in."""
        known, answer = self._known, self._answer
        if len(known) > TITLES_KEPT:
            known.clear()
        filled = StoredRows()
        for row in rows:
            key = (row[_TITLE], row[_RAW])
            found = known.get(key)
            if found is None:
                found = known[key] = answer(*key)
            if found and any(row[index] is None for index, _ in found):
                values = list(row)
                for index, value in found:
                    if values[index] is None:
                        values[index] = value
                row = tuple(values)
            filled.append(row)
        return filled

    def _answer(self, title: str | None, raw: str | None) -> tuple[tuple[int, Any], ...]:
        """What the rules say of a title and a stored ``raw``: (the row's index, the
        value) of each of seniority, department and buying role they give."""
        values = json.loads(raw) if raw else {}
        found = self.rules(title, values.get("department"), values.get("buying_role"))
        return tuple((index, value) for index, name in _FILLED if (value := getattr(found, name)) is not None)


def _by_entity(chunk: list[Item]) -> dict[str, tuple[type[model.Record], list[Row]]]:
    """A chunk's rows, entity by entity, in order: in the store's form
    (:class:`~crmlink.core.rows.StoredRows`) where any of an entity's came in that form."""
    parts: dict[str, list[RowBatch | list[model.Record]]] = {}
    for item in chunk:
        if isinstance(item, RowBatch):
            parts.setdefault(item.entity.entity, []).append(item)
            continue
        found = parts.setdefault(item.entity, [])
        if found and isinstance(found[-1], list):
            found[-1].append(item)  # a run of records: one batch of them
        else:
            found.append([item])
    merged: dict[str, tuple[type[model.Record], list[Row]]] = {}
    for entity, pieces in parts.items():
        cls = model.ENTITIES[entity]
        batches = [part if isinstance(part, RowBatch) else RowBatch.of(cls, part) for part in pieces]
        if len(batches) == 1:
            merged[entity] = (cls, batches[0].rows)
            continue
        if any(isinstance(batch.rows, StoredRows) for batch in batches):
            batches = [batch.stored() for batch in batches]
        rows = like(batches[0].rows, [])
        for batch in batches:
            rows.extend(batch.rows)
        merged[entity] = (cls, rows)
    return merged


def _last(chunk: list[Item]) -> model.Record:
    """The last record of a chunk, as a record object."""
    item = chunk[-1]
    return item.record(-1) if isinstance(item, RowBatch) else item
