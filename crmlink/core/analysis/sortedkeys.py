"""A source's account keys and deal ids as the audit's process holds them for the whole
audit: sorted, in one string with an array of where each ends.

A list of 100,000 remote ids of a dozen characters costs about 6.4 MB (a string object
of 60 bytes and a pointer each); packed, 2 MB, and forked workers share it page for
page. Reading a key slices it from the string (a new small string each read, as reading
it from the store would be); finding one bisects a sample of every :data:`STEP`-th key,
then the keys between two of them.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

#: one key in this many is kept apart as a string to bisect first
STEP = 32


class SortedKeys(Sequence[str]):
    """Distinct strings in ascending order (given so: checked), read as a sequence."""

    __slots__ = ("_ends", "_sample", "_text")

    def __init__(self, keys: Iterable[str] = ()) -> None:
        # the keys joined a block of STEP at a time as they come: never a string object
        # for each key at once (a source's senior contacts are 400,000 at 10M interactions)
        blocks: list[str] = []
        block: list[str] = []
        sample: list[str] = []
        ends = array("q")
        size = 0
        last: str | None = None
        for key in keys:
            if last is not None and key <= last:
                raise ValueError(f"keys out of order: {key!r} after {last!r}")
            if not block:
                sample.append(key)
            block.append(key)
            if len(block) == STEP:
                blocks.append("".join(block))
                block.clear()
            size += len(key)
            ends.append(size)
            last = key
        blocks.append("".join(block))
        self._text = "".join(blocks)
        self._ends = ends
        self._sample = sample

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._key(i) for i in range(*index.indices(len(self._ends)))]
        if index < 0:
            index += len(self._ends)
        if not 0 <= index < len(self._ends):
            raise IndexError("key index out of range")
        return self._key(index)

    def _key(self, index: int) -> str:
        ends = self._ends
        return self._text[ends[index - 1] if index else 0:ends[index]]

    def __iter__(self) -> Iterator[str]:
        text, start = self._text, 0
        for end in self._ends:
            yield text[start:end]
            start = end

    def position(self, key: str) -> int:
        """Where ``key`` is, or would be inserted (``bisect_left``'s answer)."""
        block = bisect_right(self._sample, key) - 1
        if block < 0:
            return 0
        low = block * STEP
        return bisect_left(self, key, low, min(low + STEP, len(self._ends)))

    def find(self, key: object) -> int:
        """Where ``key`` is, or -1 (``str.find``'s answer)."""
        if not isinstance(key, str):
            return -1
        at = self.position(key)
        return at if at < len(self._ends) and self._key(at) == key else -1

    def __contains__(self, key: object) -> bool:
        return self.find(key) >= 0

    def index(self, key: object, start: int = 0, stop: int | None = None) -> int:
        at = self.find(key)
        if at < 0 or not start <= at < (len(self) if stop is None else stop):
            raise ValueError(f"{key!r} is not among the keys")
        return at

    def __repr__(self) -> str:
        return f"SortedKeys({list(self)!r})"


__all__ = ["STEP", "SortedKeys"]
