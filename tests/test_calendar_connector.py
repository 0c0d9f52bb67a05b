"""``crmlink sync calendar``: iCalendar files with recurring, moved, cancelled and
declined meetings, linked to a CRM in the same store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmlink import Interaction, SyncContext
from crmlink.cli import cli
from crmlink.core.store import Store
from crmlink.plugins.calendar import CalendarConnector
from crmlink.testing.conformance import ConnectorContract, SuiteConfig
from tests.mailfixtures import crm_export


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


NOW = datetime.now(timezone.utc).replace(microsecond=0)
#: a Monday 10 weeks ago, 09:00 UTC: the weekly series starts there
START = (NOW - timedelta(weeks=10, days=NOW.weekday())).replace(hour=9, minute=0, second=0)


def calendar_text() -> str:
    """A weekly series with Lena (accepted) and Raj (declined) that runs 20 weeks (half in
    the future), one occurrence excluded, one moved, one cancelled; a one-off with Omar
    that Omar declined; a cancelled meeting; an internal meeting; an all-day event with an
    unknown person at Pinnacle who accepted."""
    week = timedelta(weeks=1)
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//crmlink tests//EN",
        "BEGIN:VEVENT", "UID:weekly@vendor.example", f"DTSTAMP:{stamp(START)}",
        f"DTSTART:{stamp(START)}", f"DTEND:{stamp(START + timedelta(hours=1))}",
        "RRULE:FREQ=WEEKLY;COUNT=20", f"EXDATE:{stamp(START + week)}",
        "SUMMARY:Weekly steering", "ORGANIZER;CN=Alice Chen:mailto:alice@vendor.example",
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=Lena Ng:mailto:lena@pinnaclebank.example",
        "ATTENDEE;PARTSTAT=DECLINED:mailto:raj@pinnaclebank.example", "END:VEVENT",
        "BEGIN:VEVENT", "UID:weekly@vendor.example", f"DTSTAMP:{stamp(START)}",
        f"RECURRENCE-ID:{stamp(START + 2 * week)}", f"DTSTART:{stamp(START + 2 * week + timedelta(hours=5))}",
        f"DTEND:{stamp(START + 2 * week + timedelta(hours=6))}", "SUMMARY:Weekly steering (moved)",
        "ORGANIZER:mailto:alice@vendor.example",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:lena@pinnaclebank.example", "END:VEVENT",
        "BEGIN:VEVENT", "UID:weekly@vendor.example", f"DTSTAMP:{stamp(START)}",
        f"RECURRENCE-ID:{stamp(START + 3 * week)}", f"DTSTART:{stamp(START + 3 * week)}",
        "STATUS:CANCELLED", "ORGANIZER:mailto:alice@vendor.example", "END:VEVENT",
        "BEGIN:VEVENT", "UID:oneoff@vendor.example", f"DTSTAMP:{stamp(START)}",
        f"DTSTART:{stamp(START + timedelta(days=2))}", "ORGANIZER:mailto:ben@vendor.example",
        "ATTENDEE;PARTSTAT=DECLINED:mailto:omar@harbor.example", "END:VEVENT",
        "BEGIN:VEVENT", "UID:cancelled@vendor.example", f"DTSTAMP:{stamp(START)}",
        f"DTSTART:{stamp(START + timedelta(days=3))}", "STATUS:CANCELLED",
        "ORGANIZER:mailto:ben@vendor.example",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:omar@harbor.example", "END:VEVENT",
        "BEGIN:VEVENT", "UID:internal@vendor.example", f"DTSTAMP:{stamp(START)}",
        f"DTSTART:{stamp(START + timedelta(days=4))}", "ORGANIZER:mailto:ben@vendor.example",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@vendor.example", "END:VEVENT",
        "BEGIN:VEVENT", "UID:allday@vendor.example", f"DTSTAMP:{stamp(START)}",
        f"DTSTART;VALUE=DATE:{(START + timedelta(days=8)):%Y%m%d}", "SUMMARY:Site visit",
        "ORGANIZER:mailto:ben@vendor.example",
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=\"Groß, Jürgen\":mailto:juergen@pinnaclebank.example", "END:VEVENT",
        "END:VCALENDAR", ""])


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert invoke("sync", "csv", str(crm_export(tmp_path / "crm")), "--db", url, "-q").exit_code == 0
    return url


def meetings(url: str) -> dict[str, Interaction]:
    return {r.remote_id: r for r in Store(url).records("interaction", source="calendar")
            if isinstance(r, Interaction)}


def test_recurring_meetings_are_expanded_up_to_now(tmp_path: Path, db: str) -> None:
    ics = tmp_path / "alice.ics"
    ics.write_text(calendar_text(), encoding="utf-8")
    result = invoke("sync", "calendar", str(ics), "--db", db)
    assert result.exit_code == 0, result.output
    found = meetings(db)
    weekly = sorted(k for k in found if k.startswith("weekly@"))
    expected = [f"weekly@vendor.example/{stamp(START + timedelta(weeks=n))}|csv|A1"
                for n in range(11) if n not in (1, 3) and START + timedelta(weeks=n) <= NOW]
    assert weekly == sorted(expected)  # not week 1 (EXDATE) nor 3 (cancelled), nothing in the future
    moved = found[f"weekly@vendor.example/{stamp(START + timedelta(weeks=2))}|csv|A1"]
    assert moved.occurred_at == START + timedelta(weeks=2, hours=5)
    first = found[f"weekly@vendor.example/{stamp(START)}|csv|A1"]
    assert (first.kind, first.direction, first.user_ids, first.contact_ids, first.duration_minutes) == (
        "meeting", "two_way", ("U1",), ("C1",), 60.0)  # Raj declined: not a participant
    assert first.subject is None
    assert set(found) - set(weekly) == {"allday@vendor.example|csv|A1"}  # declined, cancelled, internal: none
    people = list(Store(db).records("correspondent", source="calendar"))
    assert [(p.address, p.name) for p in people] == [("juergen@pinnaclebank.example", "Groß, Jürgen")]
    again = invoke("sync", "calendar", str(tmp_path), "--db", db)  # the folder: the same file, once
    assert again.exit_code == 0 and len(meetings(db)) == len(found)


def test_an_unreadable_calendar_file_is_one_clear_error(tmp_path: Path, db: str) -> None:
    (tmp_path / "cal").mkdir()
    bad = tmp_path / "cal" / "broken.ics"
    bad.write_text("BEGIN:VCALENDAR\r\nthis is not iCalendar\r\n", encoding="utf-8")
    result = invoke("sync", "calendar", str(bad), "--db", db, "--on-error", "fail")
    assert result.exit_code == 3
    assert f"{bad}" in result.output and "not a readable iCalendar file" in result.output
    assert meetings(db) == {}
    empty = invoke("sync", "calendar", str(tmp_path / "crm"), "--db", db)
    assert empty.exit_code == 2 and "holds no .ics file" in empty.output


class TestCalendarConformance(ConnectorContract):
    connector = CalendarConnector
    config: dict[str, Any] = {}
    suite = SuiteConfig()

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _calendar(cls, tmp_path_factory: pytest.TempPathFactory) -> None:
        folder = tmp_path_factory.mktemp("calendar")
        url = f"sqlite:///{folder / 'store.db'}"
        assert invoke("sync", "csv", str(crm_export(folder / "crm")), "--db", url, "-q").exit_code == 0
        (folder / "alice.ics").write_text(calendar_text(), encoding="utf-8")
        cls.config = {"path": str(folder / "alice.ics")}
        cls.store = Store(url)

    def make_connector(self) -> CalendarConnector:
        connector = CalendarConnector(dict(self.config))
        store = self.store
        connector.prepare(SyncContext("calendar", records=lambda entity, source: store.records(entity, source=source),
                                      crm_sources=store.sources))
        return connector
