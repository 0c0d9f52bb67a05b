"""Review periods: ``2026``, ``2026-Q3``, ``2026-H1``, ``2026-07`` or ``2026-01-01..2026-06-30``."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from crmlink.core.errors import ConfigError

FORMS = "2026, 2026-Q3, 2026-H1, 2026-07 or 2026-01-01..2026-06-30"


@dataclass(frozen=True)
class Period:
    """A review period, both days included."""

    name: str
    start: date
    end: date

    @property
    def eve(self) -> date:
        """The day before it starts: where "the start of the period" is measured."""
        return self.start - timedelta(days=1)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def parse_period(text: str) -> Period:
    """The period ``text`` names; a :class:`ConfigError` naming the accepted forms otherwise."""
    value = text.strip()
    try:
        if m := re.fullmatch(r"(\d{4})", value):
            year = int(m[1])
            return Period(value, date(year, 1, 1), date(year, 12, 31))
        if m := re.fullmatch(r"(\d{4})-[Qq]([1-4])", value):
            year, quarter = int(m[1]), int(m[2])
            return _months(value.upper(), year, 3 * quarter - 2, 3)
        if m := re.fullmatch(r"(\d{4})-[Hh]([12])", value):
            return _months(value.upper(), int(m[1]), 1 if m[2] == "1" else 7, 6)
        if m := re.fullmatch(r"(\d{4})-(\d{2})", value):
            return _months(value, int(m[1]), int(m[2]), 1)
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})", value):
            start, end = date.fromisoformat(m[1]), date.fromisoformat(m[2])
            if end < start:
                raise ConfigError(f"period {text!r} ends before it starts; write START..END")
            return Period(value, start, end)
    except ValueError as exc:
        raise ConfigError(f"period {text!r} is not a valid period ({exc}); use {FORMS}") from None
    raise ConfigError(f"period {text!r} is not a period; use {FORMS}")


def _months(name: str, year: int, month: int, count: int) -> Period:
    last = month + count - 1
    return Period(name, date(year, month, 1), date(year, last, calendar.monthrange(year, last)[1]))
