"""Storing the accounts an audit judged in its cache, beside the judging.

The audit's process hands the judged accounts over a batch at a time (:meth:`CacheWriter.add`)
as they come back from where they were judged, and a thread of its own writes each batch
in a transaction of its own while the judging goes on: the database's work (most of a
store's, done by SQLite's library without the interpreter, or by PostgreSQL's server)
overlaps the judging instead of following it. Measured at a million interactions on
PostgreSQL, storing 10,000 accounts at the end of the judging took 1.6 s of a 7.7 s
first audit.

Each batch's transaction reads the revisions again first, as the store did when it wrote
everything at the end: an account whose revision moved since it was read (a sync
committed meanwhile) is not stored, and nothing more is once the source-wide revision or
any contact changed. An entry is thus never stored under a revision it was not judged
at. A store that cannot be written (busy for more than a moment, read-only, its disk
full) only costs the next audit the work: it is logged, and the batches still to come
are dropped. A killed audit keeps the batches it committed, each valid.

The thread starts only once no worker process can fork any more (``settled``): a fork
while the thread is inside the database's library could leave the library's locks held
in the worker.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import lz4.block
import sqlalchemy as sa

from crmlink.core import revisions, schema
from crmlink.core.engine import BUSY_SECONDS, WRITE, first_line
from crmlink.core.errors import StoreError

if TYPE_CHECKING:
    from crmlink.core.analysis.spool import Span
    from crmlink.core.store import Store

log = logging.getLogger(__name__)

#: accounts a query of the audit's cache or a batch of its writer (one transaction) takes
BATCH = 200
#: batches handed over and not yet written before :meth:`CacheWriter.add` waits for the
#: thread (about 1.5 MB each at a million interactions)
QUEUED = 8
#: milliseconds a batch's write waits for another process's write on SQLite
SQLITE_WAIT_MS = 2000

#: one judged account to store: its key, its revision as read, where its text is in the
#: spool, its stored form (its contacts revision is the source's, in ``shared``)
Kept = tuple[str, int, "Span", bytes]


def pack(data: bytes) -> bytes:
    """A text or form as the table holds it: LZ4-compressed (a block with its size).
    At a million interactions an account's JSON text and form take 16 kB, 7 kB packed:
    compressing them cost the writer less than writing the difference saved, and a hit
    reads and unpacks its row in the time it read it whole (measured)."""
    packed: bytes = lz4.block.compress(data)
    return packed


def unpack(data: bytes) -> bytes:
    """What :func:`pack` packed; :class:`ValueError` for anything else."""
    try:
        unpacked: bytes = lz4.block.decompress(data)
    except lz4.block.LZ4BlockError as exc:
        raise ValueError(f"not a packed entry ({exc})") from None
    return unpacked


class CacheWriter:
    """Writes one source's judged accounts to the ``audit_cache`` table, a batch at a
    time, in a thread (see the module's docstring). ``shared``: the source-wide and the
    contacts revisions as the audit read them (the latter stored with every account); ``text``: an account's JSON text from its
    span; ``flush``: makes the audit's own spool file readable before a batch is handed
    over (the workers flush theirs as they write); ``settled``: whether no worker can
    fork any more."""

    def __init__(self, store: Store, source: str, fingerprint: str, shared: dict[str, int],
                 text: Callable[[Span], bytes], flush: Callable[[], None], settled: Callable[[], bool]) -> None:
        self.store, self.source, self.fingerprint, self.shared = store, source, fingerprint, shared
        self._text, self._flush, self._settled = text, flush, settled
        self._pending: list[Kept] = []
        self._batches: queue.Queue[list[Kept] | None] = queue.Queue(QUEUED)
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._finished = False
        self.stored = 0

    def add(self, kept: Kept) -> None:
        """Keep one judged account to store; a full batch goes to the thread."""
        self._pending.append(kept)
        if len(self._pending) >= BATCH and self._settled():
            self._hand_over()

    def finish(self) -> None:
        """No more accounts: the last batch goes to the thread, which ends once it has
        written everything (:meth:`wait`). Called again, it does nothing."""
        if self._finished:
            return
        self._finished = True
        if self._pending:
            self._hand_over()
        if self._thread is not None:
            self._batches.put(None)

    def abandon(self) -> None:
        """No more accounts, and those not handed over yet are dropped: the thread ends
        after the batches it has (:meth:`wait`)."""
        self._pending = []
        self.finish()

    def wait(self) -> None:
        """Wait for the thread; what it raised (never a store that cannot be written:
        that is only logged) is raised here."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        failed, self._failed = self._failed, None
        if failed is not None:
            raise failed

    def _hand_over(self) -> None:
        self._flush()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"crmlink-cache-{self.source}", daemon=True)
            self._thread.start()
        batch, self._pending = self._pending, []
        self._batches.put(batch)

    def _run(self) -> None:
        ended = False
        try:
            ended = self._write_all()
        except BaseException as exc:  # noqa: BLE001 - raised again by wait(), in the audit's thread
            self._failed = exc
        finally:
            while not ended and self._batches.get() is not None:  # what is still handed over is dropped
                pass

    def _write_all(self) -> bool:
        """Write the batches as they come; whether it read them to their end (else it
        stopped early: the store cannot be written, or changed)."""
        try:
            with self.store.engine.connect() as conn:
                sqlite = conn.dialect.name == "sqlite"
                if sqlite:  # on the driver's connection: no transaction of SQLAlchemy's begins
                    _pragma(conn, f"busy_timeout = {SQLITE_WAIT_MS}")
                try:
                    while (batch := self._batches.get()) is not None:
                        with conn.execution_options(**WRITE).begin():
                            if not self._write(conn, batch):
                                return False
                finally:
                    if sqlite:
                        _pragma(conn, f"busy_timeout = {int(BUSY_SECONDS * 1000)}")
        except (sa.exc.DBAPIError, StoreError) as exc:
            log.warning("the audit's cache of %s was not written (%s); the next audit judges those accounts again",
                        self.source, first_line(exc))
            return False
        finally:
            if self.stored:
                log.info("stored %d account(s) of %s in the audit's cache", self.stored, self.source)
        return True

    def _write(self, conn: sa.Connection, batch: Sequence[Kept]) -> bool:
        """Write ``batch`` (those of its accounts whose revisions held); ``False`` when
        the source-wide revisions moved: nothing more is to be stored."""
        now = revisions.of_source(conn, self.source, [*self.shared, *(key for key, *_ in batch)])
        if any(now.get(key, 0) != revision for key, revision in self.shared.items()):
            log.info("not storing more of the audit's cache of %s: the store changed while the audit read it",
                     self.source)
            return False
        held = [kept for kept in batch if now.get(kept[0], 0) == kept[1]]
        if not held:
            return True
        table = schema.audit_cache
        contacts = self.shared[revisions.CONTACTS]
        conn.execute(table.delete().where(table.c.source == self.source,
                                          table.c.account_id.in_([key for key, *_ in held])))
        conn.execute(table.insert(), [
            {"source": self.source, "account_id": key, "fingerprint": self.fingerprint, "revision": revision,
             "contacts": contacts, "judged": pack(form), "text": pack(self._text(span))}
            for key, revision, span, form in held])
        self.stored += len(held)
        return True


def _pragma(conn: sa.Connection, setting: str) -> None:
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None, "a live connection"
    dbapi.execute(f"PRAGMA {setting}")



__all__ = ["BATCH", "QUEUED", "SQLITE_WAIT_MS", "CacheWriter", "Kept", "pack", "unpack"]
