"""The as-of instant and day arithmetic every part of the audit shares."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from crmlink.core import clock

UTC = timezone.utc


def test_an_as_of_date_stands_for_the_end_of_that_day_utc() -> None:
    end = clock.end_of_day(date(2026, 11, 20))
    assert datetime.fromtimestamp(end, UTC) == datetime(2026, 11, 20, 23, 59, 59, 999000, UTC)
    assert end < datetime(2026, 11, 21, tzinfo=UTC).timestamp()


def test_no_date_means_today_utc() -> None:
    before = clock.today()
    end = clock.end_of_day()
    assert datetime.fromtimestamp(end, UTC).date() in (before, clock.today())


def test_days_between_epoch_seconds_and_datetimes_agree() -> None:
    a = datetime(2026, 1, 1, 12, tzinfo=UTC)
    b = a + timedelta(days=2, hours=6)
    assert clock.days_between(a, b) == 2.25
    assert clock.days_between(a.timestamp(), b.timestamp()) == 2.25
    assert clock.days_between(a, b.timestamp()) == 2.25
    assert clock.days_between(b, a) == -2.25


def test_days_since_nothing_is_none() -> None:
    as_of = clock.end_of_day(date(2026, 6, 30))
    assert clock.days_since(None, as_of) is None
    assert clock.days_since(as_of - clock.seconds(10), as_of) == 10.0
