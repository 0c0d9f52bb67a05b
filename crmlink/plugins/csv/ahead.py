"""Reading ahead in a thread, so that parsing a file overlaps the store's writes.

SQLite and PostgreSQL's client release the interpreter while the database works, so the
next batches of a file can be read and validated meanwhile. At most ``depth`` items wait
(memory stays flat); an exception of the reader reaches the consumer in its place; a
consumer that stops early stops the reader.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Empty, Full, Queue
from typing import TypeVar

T = TypeVar("T")
_END = object()
#: How often (seconds) a waiting reader checks that it is still wanted.
_POLL = 0.05


def ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced by a thread of their own up to ``depth`` items ahead."""
    queue: Queue[tuple[bool, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=_POLL)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put((False, exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put((False, _END))

    thread = threading.Thread(target=produce, name="crmlink-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            try:
                ok, item = queue.get(timeout=_POLL)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    raise RuntimeError("the read-ahead thread ended without a word") from None
                continue
            if ok:
                yield item  # type: ignore[misc]
            elif item is _END:
                return
            else:
                assert isinstance(item, BaseException)
                raise item
    finally:
        stop.set()
        thread.join()
