"""Forked worker processes: how many to use (the one place that decides, for the audit's
accounts and the HTML report's pages), :func:`forked`, which runs a range of items in
worker processes and hands their results back in item order, and :func:`shared`, which
runs parts of a range in this process and forked ones, each taking the next part as it
is free.

The work is pure Python (scoring, templates), so processes, not threads, make it faster.
Workers are forked: they start with the parent's memory (the records, the folded
interactions) instead of receiving it, which only ``fork`` allows; where it is not
available (Windows) the work stays in one process.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from crmlink.core.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: never more workers than this, however many CPUs: the parent merges their results alone
MOST_WORKERS = 8


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """Whether worker processes can be forked here."""
    return "fork" in multiprocessing.get_all_start_methods()


def worker_count(items: int, parallel_from: int, setting: int | str | None = None) -> int:
    """How many processes to work on ``items`` items with: ``setting`` when it is a
    number (at least 1), else (``None`` or ``"auto"``) one per usable CPU (at most
    :data:`MOST_WORKERS`), or 1 below ``parallel_from`` items, where starting workers
    costs more than it saves. Always 1 where processes cannot be forked, and never more
    than there are items."""
    if not can_fork() or items < 2:
        return 1
    if setting is None or setting == "auto":
        wanted = 1 if items < parallel_from else min(MOST_WORKERS, usable_cpus())
    else:
        wanted = int(setting)
    return max(1, min(wanted, items))


def workers_setting(config: Any) -> int | str:
    """``[audit] workers``: ``"auto"`` or a number of processes (at least 1). The audit's
    accounts and the build of its aggregates (at the end of a sync, ``crmlink aggregate``)
    both use it."""
    value = config.get("audit", {}).get("workers", "auto")
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value  # type: ignore[no-any-return]
    raise ConfigError(f"[audit] workers = {value!r} in the config file: give \"auto\" (one process per "
                      f"usable CPU for a large portfolio) or a whole number of processes, at least 1")


def slices(count: int, workers: int) -> list[tuple[int, int]]:
    """``range(count)`` cut into ``workers`` contiguous slices as equal as can be."""
    bounds = [count * i // workers for i in range(workers + 1)]
    return list(zip(bounds, bounds[1:]))


def weighted_slices(weights: Sequence[float], workers: int) -> list[tuple[int, int]]:
    """``range(len(weights))`` cut into ``workers`` contiguous slices (none empty, when
    there are enough items) whose weights add up to shares as equal as the cuts allow."""
    count = len(weights)
    workers = max(1, min(workers, count))
    total = float(sum(weights)) or 1.0
    bounds = [0]
    running, index = 0.0, 0
    for part in range(1, workers):
        while index < count and running + weights[index] / 2 < total * part / workers:
            running += weights[index]
            index += 1
        cut = min(max(index, bounds[-1] + 1), count - (workers - part))
        while index < cut:  # pushed on so that no slice is empty
            running += weights[index]
            index += 1
        bounds.append(cut)
    bounds.append(count)
    return list(zip(bounds, bounds[1:]))


class WorkerFailed(Exception):
    """A worker ended without finishing its slice (it raised, or it was killed)."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position


def forked(count: int, workers: int, work: Callable[[int, int], Iterator[Sequence[T]]],
           redo: Callable[[int, int], Iterator[T]], *, ordered: bool = True,
           weights: Sequence[float] | None = None) -> Iterator[T]:
    """The results of items ``0 .. count - 1`` in order, worked on by ``workers`` forked
    processes, each over one contiguous slice: ``work(low, high)`` runs in the worker
    and yields the results of items ``low`` to ``high`` a batch at a time (they must
    pickle). Where a worker fails (its work raised, or the process died) the parent
    works out the rest of its slice itself with ``redo(low, high)``, in order: a failure
    that is the work's own (a plugin raising) then raises in this process exactly as it
    would have without workers, and a worker lost otherwise costs time, not results.
    The workers are stopped when the caller stops reading.

    ``ordered=False``: each batch as soon as it comes, whichever worker sent it (each
    slice's results still in their order), for results that can be used in any order:
    memory then holds what the workers sent and the caller has not taken yet, not every
    later slice's results while the first one is read. ``weights``: each item's share of
    the work, for slices of equal work rather than of equal numbers of items
    (:func:`weighted_slices`)."""
    context = multiprocessing.get_context("fork")
    parts = slices(count, workers) if weights is None else weighted_slices(weights, workers)
    readers: list[Connection] = []
    processes: list[Any] = []
    try:
        for low, high in parts:
            _start(context, _work_in_child, (work, low, high), readers, processes)
        yield from (_in_order if ordered else _as_sent)(parts, readers, processes, redo)
    finally:
        _stop(readers, processes)


def _start(context: Any, target: Callable[..., None], args: tuple[Any, ...], readers: list[Connection],
           processes: list[Any]) -> None:
    """Fork a worker running ``target(*args, writer, others)``: ``writer`` its end of a
    new pipe, whose reading end joins ``readers`` (and the process ``processes``);
    ``others`` the pipes of the workers forked before it, which it closes."""
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, writer, list(readers)), daemon=True)
    process.start()
    writer.close()  # the child's end: reading sees the end of it when the child goes
    readers.append(reader)
    processes.append(process)


def _stop(readers: list[Connection], processes: list[Any]) -> None:
    """Stop the workers :func:`_start` forked and close their pipes."""
    for process in processes:
        if process.is_alive():
            process.terminate()
        process.join()
    for reader in readers:
        reader.close()


def _in_order(parts: list[tuple[int, int]], readers: list[Connection], processes: list[Any],
              redo: Callable[[int, int], Iterator[T]]) -> Iterator[T]:
    """Each slice's results in turn, reading every worker's pipe as it fills (a worker
    whose pipe is full waits, so all of them are read while the first is consumed)."""
    inbox = _Inbox(parts, readers, processes)
    for current, (_, high) in enumerate(parts):
        while True:
            item = inbox.next_of(current)
            if item is _DONE:
                break
            if isinstance(item, WorkerFailed):
                log.warning("worker %d failed (%s): finishing its items in this process", current + 1, item)
                yield from redo(item.position, high)
                break
            yield from item


def _as_sent(parts: list[tuple[int, int]], readers: list[Connection], processes: list[Any],
             redo: Callable[[int, int], Iterator[T]]) -> Iterator[T]:
    """The results of every slice as they come (:func:`forked` with ``ordered=False``)."""
    inbox = _Inbox(parts, readers, processes)
    running = set(range(len(parts)))
    while running:
        index, item = inbox.next_of_any(running)
        if item is _DONE:
            running.discard(index)
        elif isinstance(item, WorkerFailed):
            running.discard(index)
            log.warning("worker %d failed (%s): finishing its items in this process", index + 1, item)
            yield from redo(item.position, parts[index][1])
        else:
            yield from item


_DONE = object()


class _Pipes:
    """The pipes of forked workers (``readers``, one a worker of ``processes``; ``open``:
    the workers still to hear from), read as the workers write: each message goes to
    :meth:`_said`, a worker that dies without a word to :meth:`_lost`."""

    readers: list[Connection]
    processes: list[Any]
    open: set[int]

    def _receive(self, *, block: bool) -> None:
        """Take what the open workers have sent (``block``: wait until one has)."""
        if not self.open:
            return
        for reader in wait([self.readers[i] for i in sorted(self.open)], None if block else 0):
            index = self.readers.index(reader)  # type: ignore[arg-type]
            try:
                kind, payload = self.readers[index].recv()
            except EOFError:  # the worker died without a word
                self.processes[index].join()
                self._lost(index, f"the process ended with exit code {self.processes[index].exitcode}")
                continue
            self._said(index, kind, payload)

    def _said(self, index: int, kind: str, payload: Any) -> None:
        raise NotImplementedError

    def _lost(self, index: int, reason: str) -> None:
        raise NotImplementedError


class _Inbox(_Pipes):
    """What the workers sent, by slice."""

    def __init__(self, parts: list[tuple[int, int]], readers: list[Connection], processes: list[Any]) -> None:
        self.readers, self.processes = readers, processes
        self.pending: list[deque[Any]] = [deque() for _ in parts]
        self.sent = [low for low, _ in parts]  # the first item each worker has not sent yet
        self.open = set(range(len(parts)))

    def next_of(self, index: int) -> Any:
        """The next batch of slice ``index`` (a list), :data:`_DONE` or a :class:`WorkerFailed`."""
        while not self.pending[index]:
            self._receive(block=True)
        self._receive(block=False)  # keep every worker's pipe flowing
        return self.pending[index].popleft()

    def next_of_any(self, indexes: set[int]) -> tuple[int, Any]:
        """The next batch (or end) of any slice of ``indexes``, and its slice: the first
        one that has something, waiting for the workers when none has."""
        while True:
            for index in sorted(indexes):
                if self.pending[index]:
                    return index, self.pending[index].popleft()
            self._receive(block=True)

    def _lost(self, index: int, reason: str) -> None:
        self._end(index, WorkerFailed(self.sent[index], reason))

    def _said(self, index: int, kind: str, payload: Any) -> None:
        if kind == "batch":
            self.pending[index].append(payload)
            self.sent[index] += len(payload)
        elif kind == "done":
            self._end(index, _DONE)
        else:  # "failed": the first item not sent, and why
            self._end(index, WorkerFailed(payload[0], payload[1]))

    def _end(self, index: int, last: Any) -> None:
        self.pending[index].append(last)
        self.open.discard(index)


def parts(count: int, workers: int, most: int) -> list[tuple[int, int]]:
    """``range(count)`` cut into contiguous parts for :func:`shared`: at most ``most``
    items each, and at least four parts a process where there are enough items (so
    that whoever is free takes the next one, and no process waits long for another at
    the end)."""
    size = max(1, min(most, count // (4 * max(1, workers))))
    return [(low, min(low + size, count)) for low in range(0, count, size)]


def shared(parts: Sequence[tuple[int, int]], workers: int, work: Callable[[int, int, int], Iterator[T]],
           done: Callable[[], None] | None = None, idle: Callable[[], bool] | None = None) -> Iterator[T]:
    """The results of each part of ``parts`` (``(low, high)`` item ranges), in the order
    of the parts, worked on by ``workers`` processes: this one (process 0) and
    ``workers - 1`` forked ones (1, 2 ...). ``work(low, high, process)`` yields a part's
    results in whichever process runs it (a forked one's must pickle).

    Each process starts with the part of its own number, then takes the next part no
    one has taken whenever it is done with one (a counter in shared memory), so that
    they all finish together however uneven the parts' costs. A forked process writes
    each part's results, pickled, to a file of its own and says where (a few bytes
    through a pipe, which never fills): it never waits for this process, which reads
    them when their turn comes. This process works on the next part itself when that
    part is not done yet and no one has taken it; when another process has it, it works
    on a later one meanwhile, and keeps what it made until its turn.

    ``done()`` runs in each forked process once it has no part left.

    ``idle()``: work of this process's own beside the parts (the audit's cache's hits,
    read ahead of their turn), a little at a time, ``False`` when there is none left
    for now. With it, this process takes no part at first (the forked ones start with
    the first parts), and while it waits for a part another process has, it calls
    ``idle()`` until that says ``False``; only then does it work on a later part itself.

    Failures are as :func:`forked` has them: a part whose forked process failed (its
    work raised, or the process died) is worked on again here when its turn comes (a
    failure that is the work's own then raises here, in order, exactly as it would have
    without workers; a lost process costs time, not results), and so is a part this
    process worked on ahead of its turn whose work raised. The forked processes are
    stopped when the caller stops reading."""
    beside = idle is not None
    workers = max(1, min(workers, len(parts) + beside))
    if workers == 1:
        for low, high in parts:
            yield from work(low, high, 0)
        return
    context = multiprocessing.get_context("fork")
    first = 1 - beside  # the first forked process's first part
    board = _Board(context, workers, first)
    readers: list[Connection] = []
    processes: list[Any] = []
    files: list[Any] = []
    try:
        for number in range(1, workers):
            file = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
            files.append(file)
            _start(context, _share_in_child, (work, done, parts, number, number - 1 + first, board, file),
                   readers, processes)
        yield from _Shared(parts, board, readers, processes, files, work, idle).results()
    finally:
        _stop(readers, processes)
        for file in files:
            file.close()
        board.close()


class _Board:
    """Which part each process of :func:`shared` works on, in shared memory: ``cells[0]``
    the next part no one has taken, ``cells[n]`` the part process ``n`` works on (-1:
    none; process ``n`` starts with part ``n - 1 + first``). Taking a part holds an advisory lock (``flock``) on a file of the board's own,
    which the system lets go when the process holding it dies: a multiprocessing lock
    held by a process that was killed (for memory, say) would never be let go, and every
    other process would wait for it forever."""

    def __init__(self, context: Any, workers: int, first: int = 1) -> None:
        self.cells = context.Array("q", [workers - 1 + first, *range(first, workers - 1 + first)], lock=False)
        handle, self.path = tempfile.mkstemp(prefix="crmlink-parts-")
        os.close(handle)
        self._fd, self._pid = -1, -1

    def take(self, number: int, count: int) -> int:
        """Take the next part no one has taken for process ``number`` (``count``: none left)."""
        import fcntl  # POSIX, as forking is

        fd = self._lock_file()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            taken = int(self.cells[0])
            self.cells[0] = taken + 1 if taken < count else taken
            if number:
                self.cells[number] = taken if taken < count else -1
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return taken

    def _lock_file(self) -> int:
        """This process's own open file of the lock (``flock`` excludes open files from
        each other, and a forked process shares its parent's unless it opens its own)."""
        if self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDWR), os.getpid()
        return self._fd

    def close(self) -> None:
        """In the process that made the board, once its processes are gone."""
        if self._pid == os.getpid():
            os.close(self._fd)
        os.unlink(self.path)


class _Shared(_Pipes):
    """This process's side of :func:`shared`."""

    def __init__(self, parts: Sequence[tuple[int, int]], board: _Board, readers: list[Connection],
                 processes: list[Any], files: list[Any], work: Callable[[int, int, int], Iterator[Any]],
                 idle: Callable[[], bool] | None = None) -> None:
        self.parts, self.board, self.work, self.idle = parts, board, work, idle
        self.readers, self.processes, self.files = readers, processes, files
        self.open = set(range(len(readers)))
        self.mine = set() if idle is not None else {0}  #: the parts this process took
        self.ahead: dict[int, list[Any] | None] = {}  #: its results of later parts (None: the work raised)
        self.sent: dict[int, tuple[int, int, int]] = {}  #: part -> (file, offset, length)
        self.lost: dict[int, str] = {}  #: parts to work on here, and why

    def results(self) -> Iterator[Any]:
        count = len(self.parts)
        for current in range(count):
            while True:
                self._receive(block=False)
                if current in self.sent:
                    yield from self._load(*self.sent.pop(current))
                elif current in self.ahead:
                    found = self.ahead.pop(current)
                    yield from self.work(*self.parts[current], 0) if found is None else found
                elif current in self.lost:
                    log.warning("%s: finishing its items in this process", self.lost.pop(current))
                    yield from self.work(*self.parts[current], 0)
                elif current in self.mine:
                    yield from self.work(*self.parts[current], 0)
                elif self.idle is not None and self.idle():  # another process has it: do this one's own
                    continue                                  # work meanwhile, or a later part, or wait
                else:
                    self._ahead(current, count)
                    continue
                break

    def _ahead(self, current: int, count: int) -> None:
        taken = self.board.take(0, count)
        if taken >= count:
            if self.open:
                self._receive(block=True)
            else:  # pragma: no cover - every worker ended, none with this part: cannot be
                self.lost[current] = "no worker finished its part"
            return
        self.mine.add(taken)
        try:
            self.ahead[taken] = list(self.work(*self.parts[taken], 0))
        except Exception:  # noqa: BLE001 - raised again in its turn (worked on again then)
            self.ahead[taken] = None

    def _load(self, index: int, offset: int, length: int) -> list[Any]:
        fd, data = self.files[index].fileno(), bytearray()
        while len(data) < length:  # os.pread: the file's offset is the writer's, shared with it
            block = os.pread(fd, length - len(data), offset + len(data))
            if not block:
                raise OSError("a worker's results file ended early")
            data += block
        return pickle.loads(data)  # type: ignore[no-any-return]

    def _lost(self, index: int, reason: str) -> None:
        self._end(index, reason)

    def _said(self, index: int, kind: str, payload: Any) -> None:
        if kind == "part":
            part, offset, length = payload
            self.sent[part] = (index, offset, length)
        elif kind == "done":
            self.open.discard(index)
        else:  # "failed": why
            self._end(index, str(payload))

    def _end(self, index: int, reason: str) -> None:
        """Worker ``index`` (process ``index + 1``) ended without finishing its part."""
        self.open.discard(index)
        part = int(self.board.cells[index + 1])
        if 0 <= part < len(self.parts) and part not in self.sent:
            self.lost[part] = f"worker {index + 2} failed ({reason})"


def _share_in_child(work: Callable[[int, int, int], Iterator[Any]], done: Callable[[], None] | None,
                    parts: Sequence[tuple[int, int]], number: int, part: int, board: _Board, file: Any,
                    conn: Connection, others: list[Connection]) -> None:
    """Process ``number`` of :func:`shared`: work on its part (``part`` first), write the results to
    ``file``, say where, take the next part, until none is left; on an exception, why
    (not its message: the part is worked on again where it raises for real)."""
    for other in others:
        other.close()
    _die_with_parent()
    count = len(parts)
    try:
        while part < count:
            results = list(work(*parts[part], number))
            offset = file.tell()
            pickle.dump(results, file, protocol=pickle.HIGHEST_PROTOCOL)
            file.flush()
            conn.send(("part", (part, offset, file.tell() - offset)))
            part = board.take(number, count)
        if done is not None:
            done()
        conn.send(("done", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which works the part again
        conn.send(("failed", f"{type(exc).__name__} in the worker"))
    finally:
        conn.close()


def _work_in_child(work: Callable[[int, int], Iterator[Sequence[Any]]], low: int, high: int,
                   conn: Connection, others: list[Connection]) -> None:
    """In the worker: send each batch of results, then ``done``; on an exception, where
    it stopped and the exception's type (not its message: the parent redoes the item and
    raises the real one, so nothing of it is printed twice or out of place).

    The worker ends with the parent: it closes its copies of the earlier workers' pipes
    (so that a worker whose parent is gone fails at its next send instead of waiting on
    a pipe another worker keeps open), and on Linux asks to be killed when the parent
    dies, so that nothing the parent held open (a database session and its locks) lives
    on in it."""
    for other in others:
        other.close()
    _die_with_parent()
    sent = low
    try:
        for batch in work(low, high):
            conn.send(("batch", list(batch)))
            sent += len(batch)
        conn.send(("done", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which redoes the item
        conn.send(("failed", (sent, f"{type(exc).__name__} in the worker")))
    finally:
        conn.close()


def _die_with_parent() -> None:
    """Linux: have the kernel send this process SIGKILL when its parent ends
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere nothing (the next send fails instead)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return
    if os.getppid() != parent:  # pragma: no cover - the parent ended before the request
        os._exit(1)


_PR_SET_PDEATHSIG = 1
