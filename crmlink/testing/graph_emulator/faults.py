"""Injected faults and the per-mailbox request limit."""

from __future__ import annotations

import fnmatch
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

KINDS = ("throttle", "error", "expire_token", "stale_delta", "delay", "timeout", "drop", "truncate")


@dataclass
class Fault:
    """One fault rule.

    ``path`` is a prefix of the request path, or an fnmatch pattern when it holds
    ``*?[``; ``method`` an HTTP verb. The rule skips the first ``after`` requests it
    matches, then fires ``times`` times (``None``: for ever). A ``stale_delta`` rule only
    matches requests that carry a ``$deltatoken``.
    """

    kind: str
    status: int = 0
    seconds: float = 0.0
    retry_after: float | None = None
    path: str | None = None
    method: str | None = None
    after: int = 0
    times: int | None = None
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {KINDS}")

    @classmethod
    def throttle(cls, retry_after: float | None = None, **kw: Any) -> Fault:
        """429 ApplicationThrottled, with ``Retry-After`` only when given."""
        return cls("throttle", 429, retry_after=retry_after, **kw)

    @classmethod
    def error(cls, status: int = 503, retry_after: float | None = None, **kw: Any) -> Fault:
        """Any status with Graph's error body (502 comes as a gateway's HTML page)."""
        return cls("error", status, retry_after=retry_after, **kw)

    @classmethod
    def expire_token(cls, **kw: Any) -> Fault:
        """The request's access token expires now: this request and every later one that
        presents it get 401 InvalidAuthenticationToken, until the client gets a new one."""
        return cls("expire_token", 401, **kw)

    @classmethod
    def stale_delta(cls, **kw: Any) -> Fault:
        """410 syncStateNotFound for a request with a ``$deltatoken`` (an expired delta link)."""
        return cls("stale_delta", 410, **kw)

    @classmethod
    def delay(cls, seconds: float, **kw: Any) -> Fault:
        return cls("delay", seconds=seconds, **kw)

    @classmethod
    def timeout(cls, seconds: float = 10.0, **kw: Any) -> Fault:
        """Sleep ``seconds`` (past the client's read timeout), then close without answering."""
        return cls("timeout", seconds=seconds, **kw)

    @classmethod
    def drop(cls, **kw: Any) -> Fault:
        """Close the connection without answering."""
        return cls("drop", **kw)

    @classmethod
    def truncate(cls, **kw: Any) -> Fault:
        """Announce the full Content-Length, send half the body, close."""
        return cls("truncate", **kw)

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self.kind == "stale_delta" and "$deltatoken=" not in query.lower():
            return False
        if not self.path:
            return True
        if any(c in self.path for c in "*?["):
            return fnmatch.fnmatchcase(path, self.path)
        return path.startswith(self.path)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class Faults:
    """The rules, consulted in order; every matching rule counts the request."""

    def __init__(self) -> None:
        self.rules: list[Fault] = []
        self._lock = threading.Lock()

    def pick(self, method: str, path: str, query: str) -> Fault | None:
        chosen: Fault | None = None
        with self._lock:
            for fault in self.rules:
                if not fault.matches(method, path, query):
                    continue
                fault.seen += 1
                if chosen is None and fault.seen > fault.after and not fault.exhausted:
                    fault.fired += 1
                    chosen = fault
        return chosen


@dataclass
class Limits:
    """Outlook's documented per-app, per-mailbox limit: 10,000 requests in 10 minutes.
    Past it the emulator answers 429 ApplicationThrottled with a Retry-After."""

    enabled: bool = True
    requests: int = 10_000
    window: float = 600.0


class Limiter:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, app: str, mailbox: str, now: float) -> float | None:
        """None when the request may go ahead, else the seconds to wait (it is not counted)."""
        if not self.limits.enabled:
            return None
        with self._lock:
            window = self._windows.setdefault((app, mailbox), deque())
            while window and window[0] <= now - self.limits.window:
                window.popleft()
            if len(window) >= self.limits.requests:
                return max(1.0, math.ceil(window[0] + self.limits.window - now))
            window.append(now)
            return None

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


