"""Rate limits (burst, search, daily) and injected faults."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from crmlink.testing.emulation import PathFault

from .clock import Clock, day_key

TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
DAILY = "DAILY"
SECONDLY = "SECONDLY"


@dataclass
class RateLimits:
    """Portal limits. Free/Starter private apps: 100 per 10 s and 250k per day;
    Professional 190/650k; Enterprise 190/1M; capacity pack 250 per 10 s."""

    enabled: bool = True
    burst: int = 100
    interval_ms: int = 10_000
    daily: int = 250_000
    search_per_second: int = 5
    oauth_burst: int = 110
    retry_after: bool = False  # send Retry-After on enforced 429s (HubSpot usually does not)


@dataclass
class Verdict:
    policy: str | None  # None: allowed
    headers: dict[str, str]
    retry_after: int | None = None


class RateLimiter:
    """Rolling-window counters driven by the emulator clock (so ``advance()`` resets them)."""

    def __init__(self, limits: RateLimits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._burst: dict[str, deque[int]] = {}
        self._search: deque[int] = deque()
        self._day = day_key(clock.now_ms())
        self.daily_used = 0

    def reset(self) -> None:
        with self._lock:
            self._burst.clear()
            self._search.clear()
            self.daily_used = 0

    def check(self, bucket: str, *, oauth: bool, search: bool) -> Verdict:
        now = self._clock.now_ms()
        lim = self.limits
        with self._lock:
            window = self._burst.setdefault(bucket, deque())
            _purge(window, now - lim.interval_ms)
            _purge(self._search, now - 1000)
            if day_key(now) != self._day:
                self._day, self.daily_used = day_key(now), 0
            burst_max = lim.oauth_burst if oauth else lim.burst
            policy = self._exceeded(window, burst_max, oauth, search) if lim.enabled else None
            if policy is None:
                self.daily_used += 1
                (self._search if search else window).append(now)
            headers = {} if search else self._headers(window, burst_max, oauth)
            retry = self._retry_after(policy, window, now) if policy else None
        return Verdict(policy, headers, retry)

    def _exceeded(self, window: deque[int], burst_max: int, oauth: bool,
                  search: bool) -> str | None:
        if not oauth and self.daily_used >= self.limits.daily:
            return DAILY
        if search:
            return SECONDLY if len(self._search) >= self.limits.search_per_second else None
        return TEN_SECONDLY if len(window) >= burst_max else None

    def _headers(self, window: deque[int], burst_max: int, oauth: bool) -> dict[str, str]:
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.limits.interval_ms),
            "X-HubSpot-RateLimit-Max": str(burst_max),
            "X-HubSpot-RateLimit-Remaining": str(max(burst_max - len(window), 0)),
        }
        if not oauth:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.limits.daily)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(self.limits.daily - self.daily_used, 0))
        return headers

    def _retry_after(self, policy: str, window: deque[int], now: int) -> int:
        if policy == DAILY:
            return 86_400 - (now // 1000) % 86_400
        if policy == SECONDLY or not window:
            return 1
        return max(1, math.ceil((window[0] + self.limits.interval_ms - now) / 1000))


def _purge(window: deque[int], cutoff: int) -> None:
    while window and window[0] <= cutoff:
        window.popleft()


class Fault(PathFault):
    """An injected fault (:class:`~crmlink.testing.emulation.PathFault` says how ``path``,
    ``method``, ``after`` and ``times`` choose the requests)."""

    KINDS = ("rate_limit", "daily_limit", "secondly_limit", "error", "expired", "delay",
             "timeout", "drop", "truncate")

    @classmethod
    def rate_limit(cls, retry_after: float | None = None, **kw: Any) -> Fault:
        """429 TEN_SECONDLY_ROLLING, with a Retry-After header only if ``retry_after``."""
        return cls("rate_limit", 429, retry_after=retry_after, **kw)

    @classmethod
    def daily_limit(cls, **kw: Any) -> Fault:
        return cls("daily_limit", 429, **kw)

    @classmethod
    def secondly_limit(cls, retry_after: float | None = None, **kw: Any) -> Fault:
        return cls("secondly_limit", 429, retry_after=retry_after, **kw)

    @classmethod
    def error(cls, status: int = 503, retry_after: float | None = None, **kw: Any) -> Fault:
        """Any status: 500/502/503/504 (502/504 come as an HTML page), 401, 423, 477..."""
        return cls("error", status, retry_after=retry_after, **kw)

    @classmethod
    def expired_token(cls, **kw: Any) -> Fault:
        """401 EXPIRED_AUTHENTICATION, as when an OAuth access token runs out mid-sync."""
        return cls("expired", 401, **kw)
