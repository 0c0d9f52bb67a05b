"""The aggregates of a first import, built from its rows as they are written.

A file import writes every row in one transaction, and the aggregates of its accounts
(:mod:`.aggregate_build`) used to be built after the commit, from a second, sorted read
of the rows. :class:`StreamedBuild` builds them from the same rows while the import
writes them: the writing process hands each batch of interaction rows it stored to a
forked process through a pipe, which classifies them (:meth:`.Accumulator.classify`),
collects each account's rows (:class:`.Builder`) and encodes an account as soon as the
rows of another one begin. Before the transaction commits, the aggregates are written in
it and their stale marks cleared, so rows and aggregates commit together (or not at
all); the refresh after the sync then finds nothing left to build.

It builds an account the way :func:`.refresh` would, byte for byte: the same rows
(those the import stored, live, naming an account), in the order they were stored (the
refresh reads each account's rows in ``pk`` order), classified with the same people
(read in the transaction, after the users and contacts were written). It only applies
where that holds, and where memory stays flat, so otherwise it steps aside and the
refresh builds what is left, as before:

- the interactions table was empty when the stream began (nothing else to read), on
  SQLite or PostgreSQL, with the aggregates on and more than one process (``[audit] workers``);
- each account's rows come together in the file (exports grouped by account): an
  account whose rows begin again after another's is *reopened*, and left to the refresh;
  past :data:`REOPENED_LIMIT` such accounts the build gives up;
- no row of another source, and no user or contact written after the build began.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import queue
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from itertools import groupby
from multiprocessing.connection import Connection
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa

from crmlink.core import aggregate_store, model, parallel, schema
from crmlink.core.analysis.accumulate import Accumulator
from crmlink.core.analysis.aggregate_build import Builder, People
from crmlink.core.analysis.aggregates import classifiers, enabled, fingerprint, no_account
from crmlink.core.rows import fields_of
from crmlink.core.store import INTERACTION_COLUMNS
from crmlink.core.upsert import Row

if TYPE_CHECKING:
    from crmlink.core.host import PluginHost
    from crmlink.core.store import Store

log = logging.getLogger(__name__)

#: Accounts reopened (their rows began again after another account's) past which the
#: streamed build gives up: the file is not grouped by account, and the refresh after
#: the commit builds every account instead.
REOPENED_LIMIT = 64
#: Aggregates written to the store per statement at the end.
_WRITE = 32
_FIELDS = fields_of(model.Interaction)
_SOURCE, _ACCOUNT, _DELETED = (_FIELDS.index(n) for n in ("source", "account_id", "deleted"))
_KEY = itemgetter(_SOURCE, _FIELDS.index("remote_id"))
_PICK = itemgetter(*(_FIELDS.index(name) for name in INTERACTION_COLUMNS))
_ACCOUNT_OF, _DELETED_OF = itemgetter(_ACCOUNT), itemgetter(_DELETED)


class StreamedBuild:
    """The build of one import's aggregates beside its write (see the module's docstring).
    :meth:`start` forks the builder, :meth:`watch` is the store's watcher of the
    transaction's writes (:meth:`.Store.watching`), :meth:`finish` writes the aggregates
    in the transaction, :meth:`close` stops the builder whatever happened."""

    def __init__(self, source: str, print_: str, pipe: Connection, process: Any, spool: IO[bytes]) -> None:
        self.source, self.print_ = source, print_
        self._pipe, self._process, self._spool = pipe, process, spool
        self._sender = _Sender(pipe)
        #: why the build stepped aside, once it did
        self.abandoned: str | None = None
        self._ended = False

    @classmethod
    def start(cls, store: Store, host: PluginHost, config: Mapping[str, Any], conn: sa.Connection,
              source: str) -> StreamedBuild | None:
        """Fork the builder for an import into ``source`` on ``conn`` (its transaction),
        or ``None`` where the build cannot be streamed (see the module's docstring)."""
        if not _applies(config, conn):
            return None
        people = People(store, source, conn)
        acc = Accumulator(config, people.users, people.contacts, host.interaction_method)
        print_ = fingerprint(config, classifiers(host))
        # unnamed: nothing is left behind, whatever ends the import; both processes hold it
        spool = tempfile.TemporaryFile(prefix="crmlink-aggregates-")
        context = multiprocessing.get_context("fork")
        mine, theirs = context.Pipe(duplex=True)
        process = context.Process(target=_build, args=(theirs, mine, acc, people, spool),
                                  name="crmlink-aggregates", daemon=True)
        process.start()
        theirs.close()
        return cls(source, print_, mine, process, spool)

    def watch(self, entity: type[model.Record], rows: Sequence[Row], kept: set[tuple[str, str]]) -> None:
        """Hand the builder the interaction rows just written (their values as stored,
        the columns the build reads; not the rows left as they were); step aside on a
        write it cannot follow."""
        if self.abandoned is not None:
            return
        if entity in (model.User, model.Contact):
            self._abandon("users or contacts were written after the build began")
        elif entity is model.Interaction:
            source = self.source
            if any(row[_SOURCE] != source for row in rows):
                self._abandon("rows of another source")
                return
            if not kept and all(map(_ACCOUNT_OF, rows)) and not any(map(_DELETED_OF, rows)):
                picked = list(map(_PICK, rows))  # every row (a first import's usual batch)
            else:
                picked = [_PICK(row) for row in rows
                          if row[_ACCOUNT] and not row[_DELETED] and (not kept or _KEY(row) not in kept)]
            if picked:
                self._send(picked)

    def _send(self, rows: list[tuple[Any, ...]] | None) -> None:
        # pickled here: multiprocessing's own pickler is several times slower on rows
        if not self._sender.put(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)):
            self._abandon(self._why())  # the builder stopped: the refresh builds the aggregates

    def _why(self) -> str:
        """Why the builder stopped, as it said before it did (if it could)."""
        try:
            reply = self._pipe.recv() if self._pipe.poll(5) else None
        except (EOFError, OSError):
            reply = None
        return str(reply[1]) if reply and reply[0] == "failed" else "the builder stopped"

    def _abandon(self, reason: str) -> None:
        self.abandoned = reason
        log.info("aggregates not built during the import (%s): the refresh after it builds them", reason)
        self.close()

    def end(self) -> None:
        """Tell the builder the rows are all sent (it finishes them meanwhile: the
        caller may do other work before :meth:`finish`)."""
        if self.abandoned is None and not self._ended:
            self._ended = True
            self._send(None)

    def finish(self, conn: sa.Connection) -> int:
        """Wait for the builder, then write what it built in the transaction on ``conn``
        and clear those accounts' stale marks (and the mark of changed people: the build
        used the people as they are now); the reopened accounts keep theirs, for the
        refresh. How many aggregates were written."""
        if self.abandoned is not None:
            return 0
        self.end()
        if self.abandoned is None and not self._sender.stop():
            self._abandon(self._why())
        if self.abandoned is not None:
            return 0
        try:
            reply = self._pipe.recv()
        except (EOFError, OSError):
            reply = None
        if reply is None or reply[0] != "done":
            self._abandon(str(reply[1]) if reply else "the builder stopped")
            return 0
        skipped: set[str] = set(reply[1])
        aggregate_store.restart(conn, self.source, self.print_)
        stale = aggregate_store.marks(conn, self.source)
        if aggregate_store.PEOPLE in stale:
            aggregate_store.clear(conn, self.source, aggregate_store.PEOPLE, stale[aggregate_store.PEOPLE])
        written = 0
        self._spool.seek(0)  # where the builder's writes ended: the file is shared
        for batch in _batches(self._spool, skipped):
            written += len(batch) - len(aggregate_store.replace(
                conn, self.source, [(account, stale[account], data, people)
                                    for account, data, people in batch if account in stale])[0])
        self.close()
        log.info("aggregates of %s: %d built during the import, %d left to the refresh", self.source, written,
                 len(skipped))
        return written

    def close(self) -> None:
        """Stop the builder (if it still runs) and close its file (unnamed: nothing is left)."""
        self._sender.cancel()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._sender.stop()
        self._pipe.close()
        self._spool.close()


class _Sender:
    """Sends the builder its batches from a thread of this process, up to :data:`AHEAD`
    batches ahead of it: the import's writer then waits for the builder only when the
    builder is that far behind, not whenever it is busy with a batch (the pipe itself
    holds less than one)."""

    def __init__(self, pipe: Connection) -> None:
        self._pipe = pipe
        self._queue: queue.Queue[object] = queue.Queue(maxsize=AHEAD)
        self.failed = False
        self._thread = threading.Thread(target=self._run, name="crmlink-aggregates-send", daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> bool:
        """Queue ``data`` to send; ``False`` once a send failed (the builder stopped)."""
        while not self.failed:
            try:
                self._queue.put(data, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def stop(self) -> bool:
        """Send what is queued and end the thread; whether every send went through."""
        if self._thread.is_alive():
            self._queue.put(_STOP)  # the thread drains the queue even after a failed send
            self._thread.join()
        return not self.failed

    def cancel(self) -> None:
        """Send nothing more (the builder is being stopped)."""
        self.failed = True

    def _run(self) -> None:
        while (data := self._queue.get()) is not _STOP:
            if self.failed:
                continue  # cancelled: drain until the end
            try:
                self._pipe.send_bytes(data)  # type: ignore[arg-type]  # bytes: all put() takes
            except OSError:
                self.failed = True


#: Batches queued for the builder at most (a few hundred kilobytes each).
AHEAD = 16
_STOP = object()


def _applies(config: Mapping[str, Any], conn: sa.Connection) -> bool:
    """Whether an import on ``conn`` can build its aggregates as it writes."""
    if conn.dialect.name not in ("sqlite", "postgresql") or not enabled(config):
        return False
    if parallel.worker_count(2, 0, parallel.workers_setting(config)) < 2:
        return False
    table = schema.TABLES["interaction"].name
    return conn.exec_driver_sql(f'SELECT 1 FROM "{table}" LIMIT 1').first() is None


def _batches(handle: IO[bytes], skipped: set[str]) -> Iterator[list[tuple[str, bytes, dict[str, Any]]]]:
    """The builder's aggregates from its file, :data:`_WRITE` at a time, but those of
    ``skipped`` accounts."""
    batch: list[tuple[str, bytes, dict[str, Any]]] = []
    while True:
        try:
            item = pickle.load(handle)
        except EOFError:
            break
        if item[0] not in skipped:
            batch.append(item)
            if len(batch) >= _WRITE:
                yield batch
                batch = []
    if batch:
        yield batch


def _build(pipe: Connection, parents: Connection, acc: Accumulator, people: People, out: IO[bytes]) -> None:
    """In the builder: read batches of rows until ``None``, write each account's
    aggregate to ``out`` as the next account begins, then send ``("done", reopened)``
    (or ``("failed", why)``)."""
    parents.close()
    parallel._die_with_parent()  # nothing of the parent's (its transaction) outlives it
    try:
        reopened = _Accounts(acc, people, out).run(pipe)
        out.flush()  # before the parent reads it
        pipe.send(("done", reopened))
    except _NotGrouped:
        pipe.send(("failed", f"more than {REOPENED_LIMIT} accounts' rows are not together in the file"))
    except BaseException as exc:  # noqa: BLE001 - the parent steps aside; the refresh raises it there
        pipe.send(("failed", f"{type(exc).__name__} in the builder"))
    finally:
        pipe.close()


class _Accounts:
    """The builder's walk through the rows: one account open at a time."""

    def __init__(self, acc: Accumulator, people: People, out: IO[bytes]) -> None:
        self.acc, self.people, self.out = acc, people, out
        self.finished: set[str] = set()
        self.reopened: set[str] = set()
        self.account: str | None = None
        self.builder: Builder | None = None

    def run(self, pipe: Connection) -> list[str]:
        while (sent := pickle.loads(pipe.recv_bytes())) is not None:
            for account, group in groupby(sent, key=itemgetter(0)):
                if account != self.account:
                    self._next(account)
                if self.builder is not None:  # every row sent names its account: it is the group's
                    self.builder.add_all(self.acc.classify(group, (account,), no_account))
            if len(self.reopened) > REOPENED_LIMIT:
                raise _NotGrouped
        self._next(None)
        return sorted(self.reopened)

    def _next(self, account: str | None) -> None:
        """Close the open account (encode and write it) and open ``account``."""
        if self.builder is not None and self.account is not None:
            data = self.builder.encode(self.acc.half_life)
            pickle.dump((self.account, data, self.builder.people(self.people.users, self.people.contacts)),
                        self.out, protocol=pickle.HIGHEST_PROTOCOL)
        if self.account is not None:
            self.finished.add(self.account)
        self.account, self.builder = account, None
        if account is None:
            return
        if account in self.finished:
            self.reopened.add(account)
        else:
            self.builder = Builder()


class _NotGrouped(Exception):
    """The rows are not grouped by account: the build gives up."""


class BuildBeside:
    """``with BuildBeside(...) as beside``: an import's transaction that builds the
    aggregates as it writes where it can. :meth:`before` each stream (the build begins
    with the first stream of interactions, once the users and contacts are written),
    :meth:`finish` before the transaction commits; leaving the ``with`` stops the
    builder whatever happened (an import that failed writes nothing of it)."""

    def __init__(self, store: Store, host: PluginHost, config: Mapping[str, Any], conn: sa.Connection,
                 source: str) -> None:
        self.store, self.host, self.config, self.conn, self.source = store, host, config, conn, source
        self.build: StreamedBuild | None = None
        self._tried = False
        self._stack = ExitStack()

    def __enter__(self) -> BuildBeside:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        if self.build is not None:
            self.build.close()

    def before(self, entity: type[model.Record]) -> None:
        """A stream of ``entity`` begins: the first of interactions starts the build."""
        if entity is not model.Interaction or self._tried:
            return
        self._tried = True
        self.build = StreamedBuild.start(self.store, self.host, self.config, self.conn, self.source)
        if self.build is not None:
            self._stack.enter_context(self.store.watching(self.conn, self.build.watch))

    def finish(self) -> int:
        """Write the aggregates built (in the transaction); how many."""
        if self.build is None:
            return 0
        self._stack.close()  # no more writes to watch: the rest of the transaction is the build's own
        self.build.end()
        # the indexes the import set aside are built while the builder finishes its last rows
        self.store.restore_indexes(self.conn)
        return self.build.finish(self.conn)
