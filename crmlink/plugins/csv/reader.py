"""A file's items read in a forked process, sent through a pipe in the order they came.

Reading a CSV file and checking its rows is most of an import's Python work, and in the
importing process it shares one interpreter with the writing of the rows. :func:`forked`
runs an iterator of a stream's items in a child process forked for the purpose; the
parent gets the same items, in the same order, with the same errors where they were
raised. Rows come in the store's form (:class:`~crmlink.RowBatch` ``.stored()``): those
cross the pipe at a tenth of the cost of canonical values, and the store binds them as
they are.

The child is a plain ``fork`` with nothing of the parent's to run at its end (it leaves
by ``os._exit``); it writes one message a batch and stops when the parent stops reading
(the pipe breaks). Leaving the iteration early kills it; every exit waits for it.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Iterator
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any

from crmlink import RowBatch

#: Items sent together (rows of a batch count as one; a run of bad rows read one by one
#: is many records).
_GROUP = 256
#: Bytes the pipe holds (Linux ``F_SETPIPE_SZ``; the default is 64 KiB, a third of a
#: batch): the child can then read a batch or more ahead.
PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031

Located = tuple[Any, Any]


def forked(items: Iterator[Located]) -> Iterator[Located]:
    """``items`` (each an item and where it was read) read by a forked child: the same
    pairs, row batches in the store's form; an exception the items raised is raised
    here, where it came."""
    import fcntl  # POSIX, as forking is

    read_end, write_end = os.pipe()
    with suppress(OSError):  # an older kernel or a lower limit: the default size
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, PIPE_BYTES)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (its coverage is not collected)
        os.close(read_end)
        _child(items, Connection(write_end, readable=False))
    os.close(write_end)
    pipe = Connection(read_end, writable=False)
    try:
        while True:
            try:
                message = pickle.loads(pipe.recv_bytes())
            except EOFError:
                raise RuntimeError("the CSV reader process stopped unexpectedly") from None
            for kind, item, where in message:
                if kind == _ITEM:
                    yield item, where
                elif kind == _BATCH:
                    yield RowBatch(item[0], item[1]), where
                elif kind == _RAISED:
                    raise item from None
                else:
                    return
    finally:
        pipe.close()
        _end(pid)


_ITEM, _BATCH, _RAISED, _END = range(4)


def _child(items: Iterator[Located], pipe: Connection) -> None:  # pragma: no cover - runs in the child
    code = 0
    try:
        group: list[tuple[int, Any, Any]] = []
        try:
            for item, where in items:
                if isinstance(item, RowBatch):
                    group.append((_BATCH, (item.entity, item.stored().rows), where))
                    _send(pipe, group)
                    group = []
                    continue
                group.append((_ITEM, _portable(item), where))
                if len(group) >= _GROUP:
                    _send(pipe, group)
                    group = []
        except Exception as exc:  # noqa: BLE001 - handed to the parent, raised there
            group.append((_RAISED, _portable(exc), None))
        else:
            group.append((_END, None, None))
        _send(pipe, group)
    except BaseException:  # noqa: BLE001 - the parent stopped reading, or a signal: just leave
        code = 1
    finally:
        os._exit(code)


def _send(pipe: Connection, group: list[tuple[int, Any, Any]]) -> None:  # pragma: no cover - in the child
    pipe.send_bytes(pickle.dumps(group, protocol=pickle.HIGHEST_PROTOCOL))


def _portable(item: Any) -> Any:
    """An item as it can be pickled: an exception that does not pickle as it is (an
    :class:`~crmlink.InvalidRecord`: its constructor takes other arguments than its
    ``args``) as its parts (:func:`_parts`); others, such as an ``OSError``, pickle
    with what their message is made of."""
    if not isinstance(item, BaseException):
        return item
    try:
        pickle.loads(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - any failure to pickle or rebuild: sent as its parts
        return _Error(*_parts(item))
    return item


def _parts(exc: BaseException) -> tuple[type[BaseException], tuple[Any, ...], dict[str, Any]]:
    """An exception as its class, arguments and attributes."""
    return type(exc), exc.args, dict(vars(exc))


def _rebuilt(kind: type[BaseException], args: tuple[Any, ...], attributes: dict[str, Any]) -> BaseException:
    exc = kind.__new__(kind)
    exc.args = args
    vars(exc).update(attributes)
    return exc


class _Error:
    """An exception yielded as an item, on its way to the parent."""

    def __init__(self, kind: type[BaseException], args: tuple[Any, ...], attributes: dict[str, Any]) -> None:
        self.parts = (kind, args, attributes)

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt, self.parts


def _end(pid: int) -> None:
    """Stop the child if it still runs, and wait for it."""
    with suppress(ProcessLookupError):  # it had ended and was waited for
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
