"""Reading the next items of an iterator in a thread while the caller works on this one.

A file import reads and checks its rows in Python and writes them through the database
driver, which lets go of the interpreter while the database works (SQLite's statement,
PostgreSQL's server round trip). :class:`ReadAhead` runs the reading in a thread, a few
items ahead, so that those two overlap on a second core. The items come out in order, an
exception the reading raised comes out where its item would have, and nothing is read
further than ``depth`` items ahead (memory stays bounded).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: How often (seconds) Python's running thread offers the interpreter to the other while
#: reading ahead. The writer wants it back as soon as the database is done with a
#: statement; at Python's default (5 ms) it would wait that long after each one.
SWITCH_INTERVAL = 0.0005
_ITEM, _END, _ERROR = range(3)


class ReadAhead(Generic[T]):
    """``with ReadAhead(items) as (ahead, paused)``: ``ahead`` yields ``items``' items,
    read in a thread of its own up to ``depth`` items ahead; inside ``with paused`` the
    thread reads nothing (the caller may then look at what the reading keeps, such as a
    stream's recent lines). Leaving the ``with`` stops the thread and closes ``items``
    (a generator's ``finally`` then runs: its file is closed)."""

    def __init__(self, items: Iterator[T], depth: int = 1) -> None:
        self._items = items
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.paused = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="crmlink-read-ahead", daemon=True)
        self._interval = sys.getswitchinterval()

    def __enter__(self) -> tuple[Iterator[T], threading.Lock]:
        sys.setswitchinterval(min(self._interval, SWITCH_INTERVAL))
        self._thread.start()
        return self._ahead(), self.paused

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        while self._thread.is_alive():
            self._drain()
            self._thread.join(0.05)
        self._drain()
        sys.setswitchinterval(self._interval)
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def _ahead(self) -> Generator[T, None, None]:
        while True:
            kind, value = self._queue.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    def _read(self) -> None:
        try:
            while not self._stop.is_set():
                with self.paused:
                    try:
                        item = next(self._items)
                    except StopIteration:
                        self._put((_END, None))
                        return
                self._put((_ITEM, item))
        except BaseException as exc:  # handed to the caller, raised where the item would be
            self._put((_ERROR, exc))

    def _put(self, entry: tuple[int, Any]) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)
                return
            except queue.Full:
                continue

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
