"""Fault injection rules: error statuses, delays, timeouts, dropped connections, short bodies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

KINDS = ("status", "delay", "timeout", "drop", "truncate")


@dataclass
class Fault:
    """One fault rule.

    ``kind`` is inferred: ``"status"`` when ``status`` is given. Matching requests (by
    ``method`` and ``path_contains``, both optional) are counted; the first ``after`` of them
    are served normally, then the fault fires ``times`` times (``None`` = forever).

    * status: reply ``status`` with a Salesforce error body (``error_code``/``message``).
    * delay: sleep ``seconds`` and then serve normally (combines with other faults).
    * timeout: sleep ``seconds`` (longer than the client's timeout), then close the socket.
    * drop: close the connection without sending any response.
    * truncate: send only the first half of the real body; with ``keep_length`` the header
      still announces the full Content-Length (the client sees a short read), otherwise the
      Content-Length matches the cut body (the client sees invalid JSON).
    """

    status: int | None = None
    error_code: str | None = None
    message: str | None = None
    kind: str | None = None
    times: int | None = 1
    after: int = 0
    path_contains: str | None = None
    method: str | None = None
    seconds: float = 0.0
    keep_length: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind is None:
            self.kind = "status" if self.status is not None else None
        if self.kind not in KINDS:
            raise ValueError(f"Fault needs a status or a kind in {KINDS}, got {self.kind!r}")
        if self.kind == "status" and self.status is None:
            raise ValueError("a status fault needs status=")
        if self.kind == "timeout" and not self.seconds:
            self.seconds = 5.0

    # ---- convenience constructors -----------------------------------------------------------
    @classmethod
    def expired_session(cls, **kw: Any) -> Fault:
        return cls(status=401, error_code="INVALID_SESSION_ID", **kw)

    @classmethod
    def limit_exceeded(cls, **kw: Any) -> Fault:
        return cls(status=403, error_code="REQUEST_LIMIT_EXCEEDED", **kw)

    @classmethod
    def server_error(cls, status: int = 500, **kw: Any) -> Fault:
        return cls(status=status, **kw)

    @classmethod
    def slow(cls, seconds: float, **kw: Any) -> Fault:
        kw.setdefault("times", None)
        return cls(kind="delay", seconds=seconds, **kw)

    @classmethod
    def timeout(cls, seconds: float = 5.0, **kw: Any) -> Fault:
        return cls(kind="timeout", seconds=seconds, **kw)

    @classmethod
    def drop(cls, **kw: Any) -> Fault:
        return cls(kind="drop", **kw)

    @classmethod
    def truncate(cls, keep_length: bool = True, **kw: Any) -> Fault:
        return cls(kind="truncate", keep_length=keep_length, **kw)

    # ---- matching -------------------------------------------------------------------------
    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, method: str, target: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path_contains or self.path_contains in target

    def consume(self, method: str, target: str) -> bool:
        """Count a matching request; True when the fault fires for it."""
        if self.exhausted or not self.matches(method, target):
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        self.fired += 1
        return True


class FaultQueue:
    """The emulator's fault rules, consulted in insertion order for every request."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._rules.extend(faults)

    append = add

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def __iter__(self) -> Iterator[Fault]:
        return iter(list(self._rules))

    def __len__(self) -> int:
        return len(self._rules)

    @property
    def pending(self) -> list[Fault]:
        return [f for f in self._rules if not f.exhausted]

    def pick(self, method: str, target: str) -> tuple[float, Fault | None]:
        """(total delay seconds, the first non-delay fault that fires) for one request."""
        delay, chosen = 0.0, None
        with self._lock:
            for rule in self._rules:
                if rule.kind == "delay":
                    if rule.consume(method, target):
                        delay += rule.seconds
                elif chosen is None and rule.consume(method, target):
                    chosen = rule
        return delay, chosen
