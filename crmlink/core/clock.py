"""Time in the audit: the as-of date, the instant it stands for, and days between instants.

An audit is "as of" a calendar date and means the end of that day, UTC. The analysis
works on instants as UTC epoch seconds (floats, as the store keeps them); windows and
ages are configured in days. Every conversion between these forms is made here.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

#: Seconds in a day.
DAY = 86400.0

#: An instant: UTC epoch seconds, or an aware datetime.
Moment = float | datetime


def today() -> date:
    """Today's date in UTC (the as-of date when none is given)."""
    return datetime.now(timezone.utc).date()


def end_of_day(day: date | None = None) -> float:
    """The instant an audit as of ``day`` stands for: one millisecond before the next
    midnight, UTC, in epoch seconds (today when ``None``)."""
    day = day or today()
    return datetime.combine(day + timedelta(days=1), time(), timezone.utc).timestamp() - 1e-3


def seconds(days: float) -> float:
    """``days`` as a span of seconds, to move an instant by or compare an age with."""
    return days * DAY


def days_between(earlier: Moment, later: Moment) -> float:
    """The days from ``earlier`` to ``later`` (negative when ``later`` comes first)."""
    if isinstance(earlier, datetime) and isinstance(later, datetime):
        return (later - earlier).total_seconds() / DAY
    return (_epoch(later) - _epoch(earlier)) / DAY


def days_since(moment: Moment | None, as_of: Moment) -> float | None:
    """The days from ``moment`` to ``as_of``; ``None`` when there is no moment."""
    return None if moment is None else days_between(moment, as_of)


def _epoch(moment: Moment) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else moment
