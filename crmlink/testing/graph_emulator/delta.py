"""Change tracking behind the delta functions, and the state tokens in their links.

Every change to an item (created, updated, deleted) takes the next number of one
emulator-wide sequence. A round of delta calls fixes a high-water mark ``hi`` when it
starts and returns, in sequence order, the items whose last change lies in ``(lo, hi]``;
its deltaLink carries ``hi`` as the next round's ``lo``. A change made during a round is
after ``hi``, so it comes in the next round: nothing is lost and an item comes at most
once per round. The initial round (``lo == 0``) lists live items only; later rounds also
list deletions as ``{"id", "@removed": {"reason": "deleted"}}``.

Tokens are base64url JSON. Clients must treat them as opaque, as Graph's are.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request, sync_state_not_found


class Sequence:
    """The emulator-wide change counter."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._value += 1
            return self._value

    @property
    def current(self) -> int:
        return self._value


@dataclass
class Item:
    """One tracked item: its Graph JSON (``None`` once deleted) and last change number."""

    id: str
    seq: int
    data: dict[str, Any] | None

    @property
    def live(self) -> bool:
        return self.data is not None


@dataclass
class Collection:
    """Items with an append-only log of their changes (a folder's messages, a calendar)."""

    key: str
    items: dict[str, Item] = field(default_factory=dict)
    _seqs: list[int] = field(default_factory=list)
    _ids: list[str] = field(default_factory=list)
    #: Bumped by :meth:`invalidate`: older tokens then answer 410 syncStateNotFound.
    generation: int = 0

    def put(self, item_id: str, seq: int, data: dict[str, Any] | None) -> Item:
        item = Item(item_id, seq, data)
        self.items[item_id] = item
        self._seqs.append(seq)
        self._ids.append(item_id)
        return item

    def live(self) -> Iterable[Item]:
        return (i for i in self.items.values() if i.live)

    def changes(self, lo: int, hi: int, after: int, size: int) -> tuple[list[Item], int | None]:
        """Up to ``size`` items whose current change is in ``(lo, hi]`` and after ``after``,
        in change order, and the cursor to continue from (``None``: the round is done)."""
        out: list[Item] = []
        i = bisect.bisect_right(self._seqs, max(lo, after))
        while i < len(self._seqs) and len(out) < size:
            seq = self._seqs[i]
            if seq > hi:
                return out, None
            item = self.items[self._ids[i]]
            if item.seq == seq and (item.live or lo > 0):
                out.append(item)
            i += 1
        more = i < len(self._seqs) and self._seqs[i] <= hi
        return out, (self._seqs[i - 1] if more else None)

    def invalidate(self) -> None:
        self.generation += 1


@dataclass
class State:
    """What a skip or delta token stands for."""

    kind: str  # "skip" or "delta"
    collection: str
    generation: int
    lo: int
    hi: int = 0
    after: list[Any] = field(default_factory=list)  # cursor; its form depends on the resource
    select: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # changeType, calendar window

    def encode(self) -> str:
        raw = json.dumps({"k": self.kind, "c": self.collection, "g": self.generation,
                          "lo": self.lo, "hi": self.hi, "a": self.after, "s": self.select,
                          "x": self.extra}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, token: str, kind: str) -> State:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            state = cls(data["k"], data["c"], int(data["g"]), int(data["lo"]), int(data["hi"]),
                        list(data["a"]), list(data["s"]), dict(data["x"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise bad_request(f"The {kind} token is malformed.") from None
        if state.kind != kind:
            raise bad_request(f"The {kind} token is malformed.")
        return state

    def check(self, collection: Collection) -> None:
        """A token of another collection is a 400; one from an older generation a 410."""
        if self.collection != collection.key:
            raise bad_request("The state token does not belong to this collection.")
        if self.generation != collection.generation:
            raise sync_state_not_found()
