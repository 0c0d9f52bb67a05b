"""Sequences kept on disk: what the audit keeps of every account and deal (their
summaries for the portfolio step, their slim entries and deal entries for the document)
grows with the portfolio, so it is pickled to a temporary file as it comes and read back
when it is read. The audit's process then holds a few numbers per account, not the
account's findings and coverage: its memory stays flat from a thousand accounts to a
hundred thousand.

Reading costs an unpickling per item and read (the built-in portfolio hooks read the
summaries a few times: a small share of judging each account).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar, overload

T = TypeVar("T")

#: bytes read from the file at a time when items are read in order
_READ = 1 << 20


class Spilled(Sequence[T], Generic[T]):
    """A sequence whose items are pickled to an unlinked temporary file as they are
    :meth:`append`-ed; indexing and iteration unpickle them again (a new object each
    read). The file goes when :meth:`close` is called or the sequence is collected."""

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close() or when collected
        self._ends = array("q")
        self._size = 0
        self.extend(items)

    def append(self, item: T) -> None:
        data = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
        self._file.write(data)
        self._size += len(data)
        self._ends.append(self._size)

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self.append(item)

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return list(self.picked(range(len(self))[index]))
        return self._read(range(len(self))[index])

    def __iter__(self) -> Iterator[T]:
        return self.picked(range(len(self)))

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence (a list too) of equal items in the same order."""
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # equal by value, and not frozen

    def picked(self, numbers: Iterable[int]) -> Iterator[T]:
        """The items numbered ``numbers``, in that order (read a megabyte at a time where
        they follow each other in the file)."""
        self._file.flush()
        fd, ends = self._file.fileno(), self._ends
        buffer, low = b"", 0
        for number in numbers:
            start = ends[number - 1] if number else 0
            end = ends[number]
            if not low <= start or end > low + len(buffer):
                low = start
                buffer = os.pread(fd, max(_READ, end - start), start)
            yield pickle.loads(buffer[start - low:end - low])  # noqa: S301 - written by this process

    def _read(self, number: int) -> T:
        return next(self.picked((number,)))

    def view(self, numbers: Sequence[int]) -> SpilledView[T]:
        """The items numbered ``numbers``, in that order, as a sequence; it reads this
        file, so it lives as long as this does."""
        return SpilledView(self, array("q", numbers))

    def close(self) -> None:
        self._file.close()


class SpilledView(Sequence[T], Generic[T]):
    """Some of a :class:`Spilled`'s items, in an order of their own."""

    def __init__(self, spilled: Spilled[T], numbers: array[int]) -> None:
        self._spilled, self._numbers = spilled, numbers

    def __len__(self) -> int:
        return len(self._numbers)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return list(self._spilled.picked(self._numbers[index]))
        return next(self._spilled.picked([self._numbers[index]]))

    def __iter__(self) -> Iterator[T]:
        return self._spilled.picked(self._numbers)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence (a list too) of equal items in the same order."""
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # equal by value, and not frozen


__all__ = ["Spilled", "SpilledView"]
