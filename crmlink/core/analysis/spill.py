"""Sequences kept on disk past a bound: what the audit keeps of every account and deal
(their summaries for the portfolio step, their slim entries and deal entries for the
document) grows with the portfolio. The first :data:`KEEP` items stay in memory as they
are (those already in bytes, up to :data:`HOLD_BYTES` of them); the rest are pickled to
a temporary file as they come and read back when they are read. The audit's process
then holds at most :data:`KEEP` accounts' findings, coverage and summaries, whatever
the portfolio's size, and a portfolio under it pays nothing for the disk but the
writing of bytes. The order the document lists the accounts in is sorted the same way
(:class:`SortedNumbers`: sorted runs on disk, merged when read): past :data:`KEEP` the
process keeps a few machine numbers an account (where each item is), not its items.

Reading a spilled item unpickles it (about 45 microseconds for an account's summary on
the benchmark's machine): the document's counts are added up as the accounts are judged
(:class:`.assemble.PortfolioTally`), and the built-in portfolio hook reads the summaries
back once.
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, Generic, TypeVar, overload

T = TypeVar("T")
K = TypeVar("K")

#: items a sequence keeps in memory before it spills the rest to disk: about 90 MiB of an
#: audit's summaries, slim entries and deals (measured: bench/RESULTS.md); a portfolio of
#: 10,000 accounts (a million interactions in the benchmark) spills nothing
KEEP = 10_000
#: bytes of already pickled or encoded items (:class:`Pickled`, ``bytes``) a sequence
#: keeps in memory, however few they are: what is kept as bytes costs no pickling to
#: spill (a copy of the bytes, written), and most of it (the cache's forms to store, the
#: entries it left pickled, the deals' texts) is read back once at most, in order; 4 MiB
#: of them instead of 10,000 (about 80 MB at the benchmark's million interactions)
HOLD_BYTES = 4 << 20
#: bytes read from the file at a time when items are read in order
_READ = 1 << 20
#: bytes written to the file at a time: an item is a few kilobytes, and at the default
#: buffer (8 KiB) every other one cost a system call (a tenth of a nothing-changed audit
#: of 100,000 accounts)
_WRITE = 1 << 20
#: the type code of the arrays of items' numbers, places and sizes (an account's or a
#: deal's number in a sequence, its place in the document's order, the length of its
#: text): 4 bytes each, room for two billion items (and texts up to 2 GB), where 8 bytes
#: held 0.4 MB more an array at 100,000 accounts; offsets in files stay 8 bytes
NUMBERS = "i"
#: how a spilled item is written (:meth:`Spilled._spilled`): pickled, or bytes as they are
_PICKLED, _BYTES = -1, -2


class Pickled(Generic[T]):
    """An item in the pickled form it came in (the audit's cache stores its entries so):
    :class:`Spilled` keeps the bytes and unpickles them with ``loads`` only when the item
    is read; an item never read costs its copy alone."""

    __slots__ = ("data", "loads")

    def __init__(self, data: bytes, loads: Callable[[bytes], T]) -> None:
        self.data, self.loads = data, loads  # ``loads``: a module's function (picklable)

    def __reduce__(self) -> tuple[type[Pickled[T]], tuple[bytes, Callable[[bytes], T]]]:
        return Pickled, (self.data, self.loads)

    def load(self) -> T:
        return self.loads(self.data)


class _ByValue(Sequence[T], Generic[T]):
    """A sequence equal to any sequence (a list too) of equal items in the same order."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # equal by value, and not frozen


class _Numbered(_ByValue[T]):
    """A sequence of some of a :class:`Spilled`'s items (:meth:`_order`, their numbers
    there), read through :meth:`_pick`."""

    def _order(self) -> Sequence[int]:
        raise NotImplementedError

    def _pick(self, numbers: Iterable[int]) -> Iterator[T]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._order())

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return list(self._pick(self._order()[index]))
        return next(self._pick([self._order()[index]]))

    def __iter__(self) -> Iterator[T]:
        return self._pick(self._order())


class Spilled(_Numbered[T]):
    """A sequence of the items :meth:`append`-ed: the first ``keep`` (:data:`KEEP`) in a
    list, each later one pickled to an unlinked temporary file and unpickled again when
    read (a new object each read: items are read, never changed in place; ``bytes`` and
    :class:`Pickled` ones are written as the bytes they are). Those (weighing their
    length) are held only while the bytes held stay under ``hold`` (:data:`HOLD_BYTES`);
    the others are held up to ``keep`` still (pickling them costs far more than writing
    bytes). The file goes when :meth:`close` is called or the sequence is collected."""

    def __init__(self, items: Iterable[T] = (), keep: int | None = None, *, hold: int | None = None) -> None:
        self._keep = KEEP if keep is None else keep
        self._hold = HOLD_BYTES if hold is None else hold
        self._held_bytes = 0
        self._held: list[T | Pickled[T]] = []
        #: where each item is: its index in :attr:`_held`, or ``-1 - n`` for the file's ``n``th
        self._where = array(NUMBERS)
        self._file: IO[bytes] | None = None
        self._ends = array("q")  # where each spilled item's pickle ends in the file
        #: how each spilled item is written: :data:`_PICKLED`, :data:`_BYTES`, or the index
        #: in :attr:`_loads` of the function a :class:`Pickled` item's bytes (written as
        #: they are) are loaded with
        self._kinds = array("b")
        self._loads: list[Callable[[bytes], T]] = []
        self._size = 0
        self.extend(items)

    def append(self, item: T | Pickled[T], form: Pickled[T] | None = None) -> None:
        """Add ``item`` (one still :class:`Pickled` is unpickled when read). ``form``:
        the item already pickled (an account's summary as the audit's cache stores it),
        which goes to the file in its place if it spills: no pickle made of it again."""
        if len(self._held) < self._keep:
            weight = self._weight(item)
            if not weight or self._held_bytes + weight <= self._hold:
                self._where.append(len(self._held))
                self._held.append(item)
                self._held_bytes += weight
                return
        if self._file is None:
            self._file = tempfile.TemporaryFile(buffering=_WRITE)  # noqa: SIM115 - closed by close() or when collected
        data, kind = self._spilled(item if form is None else form)
        self._file.write(data)
        self._size += len(data)
        self._where.append(-1 - len(self._ends))
        self._ends.append(self._size)
        self._kinds.append(kind)

    def _spilled(self, item: T | Pickled[T]) -> tuple[bytes, int]:
        """What the file holds of ``item``, and how it is read back: bytes and the bytes
        of a :class:`Pickled` as they are (no pickle of them: a copy, written)."""
        if isinstance(item, bytes):
            return item, _BYTES
        if isinstance(item, Pickled):
            try:
                kind = self._loads.index(item.loads)
            except ValueError:
                self._loads.append(item.loads)
                kind = len(self._loads) - 1
            return item.data, kind
        return pickle.dumps(item, pickle.HIGHEST_PROTOCOL), _PICKLED

    @staticmethod
    def _weight(item: T | Pickled[T]) -> int:
        if isinstance(item, bytes):
            return len(item)
        return len(item.data) if isinstance(item, Pickled) else 0

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self.append(item)

    def _order(self) -> Sequence[int]:
        return range(len(self._where))

    def _pick(self, numbers: Iterable[int]) -> Iterator[T]:
        return self.picked(numbers)

    def picked(self, numbers: Iterable[int]) -> Iterator[T]:
        """The items numbered ``numbers``, in that order (the spilled ones read a
        megabyte at a time where they follow each other in the file, else each alone: a
        document's accounts come in another order than they were judged in)."""
        held, where, ends = self._held, self._where, self._ends
        if self._file is not None:
            self._file.flush()
        buffer, low, after = b"", 0, -1
        for number in numbers:
            place = where[number]
            if place >= 0:
                item = held[place]
                yield item.load() if isinstance(item, Pickled) else item
                continue
            place = -1 - place
            start = ends[place - 1] if place else 0
            end = ends[place]
            if not low <= start or end > low + len(buffer):
                assert self._file is not None, "an item not held is in the file"
                low = start
                buffer = os.pread(self._file.fileno(), max(_READ, end - start) if place == after else end - start,
                                  start)
            after = place + 1
            yield self._read(buffer[start - low:end - low], self._kinds[place])

    def _read(self, data: bytes, kind: int) -> T:
        """A spilled item from what the file holds of it (:meth:`_spilled`)."""
        if kind == _PICKLED:
            return pickle.loads(data)  # type: ignore[no-any-return]  # noqa: S301 - written by this process
        if kind == _BYTES:
            return data  # type: ignore[return-value]  # a sequence of bytes
        return self._loads[kind](data)

    def view(self, numbers: Sequence[int]) -> SpilledView[T]:
        """The items numbered ``numbers``, in that order, as a sequence; it reads this
        file, so it lives as long as this does."""
        return SpilledView(self, array(NUMBERS, numbers))

    def field(self, numbers: Sequence[int], index: int) -> FieldView:
        """Field ``index`` of each item (a tuple) numbered ``numbers``, in that order, as
        a sequence (as :meth:`view`): a sequence of pairs read as two, neither copied."""
        return FieldView(self, array(NUMBERS, numbers), index)

    def close(self) -> None:
        self._held = []  # the sequence is done with: nothing more is read from it
        if self._file is not None:
            self._file.close()


class SpilledView(_Numbered[T]):
    """Some of a :class:`Spilled`'s items, in an order of their own."""

    def __init__(self, spilled: Spilled[T], numbers: array[int]) -> None:
        self._spilled, self._numbers = spilled, numbers

    def _order(self) -> Sequence[int]:
        return self._numbers

    def _pick(self, numbers: Iterable[int]) -> Iterator[T]:
        return self._spilled.picked(numbers)


class FieldView(SpilledView[Any]):
    """One field of some of a :class:`Spilled`'s tuples, in an order of their own (a
    field still :class:`Pickled` read as its item)."""

    def __init__(self, spilled: Spilled[Any], numbers: array[int], index: int) -> None:
        super().__init__(spilled, numbers)
        self._index = index

    def _pick(self, numbers: Iterable[int]) -> Iterator[Any]:
        index = self._index
        for item in self._spilled.picked(numbers):
            field = item[index]
            yield field.load() if isinstance(field, Pickled) else field


class Chained(_ByValue[T]):
    """Sequences one after the other, as one (each unit's deals, as the audit judged
    them, without copying them into a sequence of its own)."""

    def __init__(self) -> None:
        self._parts: list[Sequence[T]] = []
        self._starts: list[int] = []  # where each part begins
        self._length = 0

    def add(self, part: Sequence[T]) -> None:
        """Add ``part``'s items at the end (``part`` is read, not copied)."""
        self._parts.append(part)
        self._starts.append(self._length)
        self._length += len(part)

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self[number] for number in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("index out of range")
        part = bisect_right(self._starts, index) - 1
        return self._parts[part][index - self._starts[part]]

    def __iter__(self) -> Iterator[T]:
        for part in self._parts:
            yield from part


class SortedNumbers(Generic[K]):
    """Numbers (an account's place in :class:`Spilled` sequences) read back sorted by
    the key each came with, then by number: ``sorted(pairs)``'s numbers. Past ``keep``
    pairs (:data:`KEEP`) the pairs so far are sorted and written to a temporary file as
    a run, in blocks of ``block``; :meth:`numbers` merges the runs a block of each at a
    time (the merge holds a block of each run: 250 pairs, small enough for a hundred
    runs, a million accounts). The audit's order of its accounts (their attention keys:
    a remote id, a score, ...) so costs its process 8 bytes an account past ``keep``,
    not the key."""

    def __init__(self, keep: int | None = None, *, block: int = 250) -> None:
        self._keep = KEEP if keep is None else max(1, keep)
        self._block = max(1, block)
        self._pairs: list[tuple[K, int]] = []
        self._file: IO[bytes] | None = None
        self._size = 0
        self._runs: list[array[int]] = []  # where each block of each run ends in the file
        self._count = 0

    def add(self, key: K, number: int) -> None:
        self._pairs.append((key, number))
        self._count += 1
        if len(self._pairs) >= self._keep:
            self._write_run()

    def __len__(self) -> int:
        return self._count

    def _write_run(self) -> None:
        """The pairs held, sorted, to the file as the next run."""
        if self._file is None:
            self._file = tempfile.TemporaryFile(buffering=_WRITE)  # noqa: SIM115 - closed by numbers() or when collected
        self._pairs.sort()
        ends = array("q")
        for low in range(0, len(self._pairs), self._block):
            data = pickle.dumps(self._pairs[low:low + self._block], pickle.HIGHEST_PROTOCOL)
            self._file.write(data)
            self._size += len(data)
            ends.append(self._size)
        self._runs.append(ends)
        self._pairs = []

    def _run(self, ends: array[int], start: int) -> Iterator[tuple[K, int]]:
        assert self._file is not None, "a run is in the file"
        for end in ends:
            yield from pickle.loads(os.pread(self._file.fileno(), end - start, start))  # noqa: S301 - written here
            start = end

    def numbers(self) -> array[int]:
        """Every number added, sorted by its key, then by number; the file goes."""
        if self._file is None:
            self._pairs.sort()
            found = array(NUMBERS, (number for _, number in self._pairs))
            self._pairs = []
            return found
        if self._pairs:
            self._write_run()
        self._file.flush()
        starts = [0, *(ends[-1] for ends in self._runs[:-1])]
        merged = heapq.merge(*(self._run(ends, start) for ends, start in zip(self._runs, starts, strict=True)))
        found = array(NUMBERS, (number for _, number in merged))
        self._file.close()
        self._file, self._runs = None, []
        return found


__all__ = ["NUMBERS", "Chained", "FieldView", "Pickled", "SortedNumbers", "Spilled", "SpilledView"]
