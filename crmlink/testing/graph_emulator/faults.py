"""Injected faults and the per-mailbox request limit."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from crmlink.testing.emulation import PathFault


class Fault(PathFault):
    """One fault rule (:class:`~crmlink.testing.emulation.PathFault` says how ``path``,
    ``method``, ``after`` and ``times`` choose the requests). A ``stale_delta`` rule only
    matches requests that carry a ``$deltatoken``."""

    KINDS = ("throttle", "error", "expire_token", "stale_delta", "delay", "timeout", "drop", "truncate")

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

    def matches(self, method: str, path: str, query: str = "") -> bool:
        if self.kind == "stale_delta" and "$deltatoken=" not in query.lower():
            return False
        return super().matches(method, path, query)


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


