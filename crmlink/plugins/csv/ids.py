"""The ids of a file that other files refer to, kept in little memory.

An import checks that every reference names an id of its file (``contact_ids`` the ids
of contacts.csv, ...), so it keeps the ids of each file that is referred to. A set of
the ids themselves costs over 100 bytes an id (the string and its slot): 166 MiB for
1.5 million ids, about what the accounts, users, contacts and deals of a
ten-million-interaction export hold. :class:`IdSet` keeps 8 bytes of each, its 64-bit
hash (Python's ``hash`` of the text), in a sorted array, the latest few thousand in a
set until they are merged into it: 16 MiB for the same ids.

Two different ids share a hash with a chance of about one in 2**64 for each pair; a
reference to a missing id would then pass as present. With a million ids that is about
one chance in 10**13 for each wrong reference.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

#: Hashes kept in the set of the latest before they are merged into the sorted array.
RECENT = 1 << 16


class IdSet:
    """Ids added and asked about (see the module's docstring)."""

    def __init__(self) -> None:
        self._sorted = array("q")
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def add(self, remote_id: str) -> None:
        self._recent.add(hash(remote_id))
        if len(self._recent) >= RECENT:
            self._merge()

    def update(self, remote_ids: Iterable[str]) -> None:
        self._recent.update(map(hash, remote_ids))
        if len(self._recent) >= RECENT:
            self._merge()

    def __contains__(self, remote_id: object) -> bool:
        found = hash(remote_id)
        if found in self._recent:
            return True
        at = bisect_left(self._sorted, found)
        return at < len(self._sorted) and self._sorted[at] == found

    def missing(self, remote_ids: Iterable[str]) -> set[str]:
        """The ids of ``remote_ids`` that are not in the set."""
        return {remote_id for remote_id in remote_ids if remote_id not in self}

    def _merge(self) -> None:
        """The latest hashes into the sorted array: each one's place found by bisection,
        the runs of the old array between them copied whole, so that the cost is one
        step of Python for each id, once (an id added twice is there twice: no matter to
        a lookup)."""
        old, merged, start = self._sorted, array("q"), 0
        for found in sorted(self._recent):
            at = bisect_left(old, found, start)
            merged.extend(old[start:at])
            merged.append(found)
            start = at
        merged.extend(old[start:])
        self._sorted, self._recent = merged, set()
