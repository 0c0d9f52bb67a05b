"""A settable clock plus HubSpot-style time formatting helpers."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Clock:
    """Current time for the emulator.

    By default it follows the wall clock. ``set()`` freezes it at a given instant and
    ``advance()`` moves it forward (frozen or not), so tests can age tokens, roll the
    rate-limit windows over or stamp objects at chosen times.
    """

    def __init__(self, start: datetime | float | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen: float | None = None
        self._offset = 0.0
        if start is not None:
            self.set(start)

    def time(self) -> float:
        """Epoch seconds."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=timezone.utc)

    def now_ms(self) -> int:
        return int(self.time() * 1000)

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def set(self, when: datetime | float) -> None:
        """Freeze the clock at ``when`` (aware/naive-UTC datetime or epoch seconds)."""
        seconds = when if isinstance(when, (int, float)) else _dt_seconds(when)
        with self._lock:
            self._frozen = float(seconds)

    def unfreeze(self) -> None:
        """Follow the wall clock again, keeping the current offset."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - time.time()
                self._frozen = None

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds


def _dt_seconds(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def iso_ms(ms: int) -> str:
    """Epoch milliseconds -> ``2024-01-31T12:00:00.123Z`` (HubSpot's format)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso(text: str) -> int:
    """ISO 8601 date or date-time -> epoch milliseconds. Raises ValueError."""
    value = text.strip()
    if len(value) == 10:
        parsed = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        return int(parsed.timestamp() * 1000)
    if value.endswith("Z") or value.endswith("z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def to_ms(value: object) -> int:
    """Datetime, date, epoch-ms number, numeric string or ISO string -> epoch ms."""
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, datetime):
        return int(round(_dt_seconds(value) * 1000))
    if isinstance(value, date):
        return parse_iso(value.isoformat())
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.lstrip("-").isdigit():
            return int(stripped)
        return parse_iso(stripped)
    raise ValueError(f"not a timestamp: {value!r}")


def day_key(ms: int) -> str:
    """UTC calendar day of an epoch-ms instant (daily limits reset at midnight UTC)."""
    return iso_ms(ms)[:10]
