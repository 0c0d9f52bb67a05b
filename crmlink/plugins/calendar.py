"""The calendar connector: ``crmlink sync calendar PATH`` reads iCalendar (``.ics``)
files and links their meetings to the CRM sources in the store
(docs/connectors/calendar.md).

Files are parsed by ``icalendar``; recurring meetings are expanded by
``recurring-ical-events`` (RRULE, RDATE, EXDATE and moved or cancelled occurrences by
RECURRENCE-ID) from ``[identity] history_days`` before the sync up to the sync time,
never into the future. :class:`crmlink.ActivityMapper` decides what each occurrence is:
cancelled ones and declined invitations do not count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta, timezone
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from crmlink import (
    ActivityMapper,
    Address,
    Attendee,
    CalendarEvent,
    ConfigError,
    Connector,
    Interaction,
    InvalidRecord,
    Record,
    Setting,
    Stream,
    SyncContext,
    UnknownPeopleStream,
    hookimpl,
)

# The libraries take a tenth of a second to import: checked here (so a missing one marks
# the plugin missing, with the install line), imported when a calendar is read.
for _module in ("icalendar", "recurring_ical_events"):
    if find_spec(_module) is None:
        raise ModuleNotFoundError(f"No module named {_module!r}", name=_module)


def _moment(value: Any) -> datetime | None:
    """An iCalendar DATE or DATE-TIME as an aware UTC datetime (floating times and
    all-day dates are taken as UTC)."""
    moment = getattr(value, "dt", value)
    if isinstance(moment, datetime):
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    if isinstance(moment, date):
        return datetime.combine(moment, time(), timezone.utc)
    return None


def _address(value: Any) -> Address | None:
    if value is None:
        return None
    params = getattr(value, "params", {}) or {}
    return Address.parse(str(value), params.get("CN"))


def _attendees(component: Any) -> tuple[Attendee, ...]:
    values = component.get("ATTENDEE")
    if values is None:
        return ()
    found = []
    for value in values if isinstance(values, list) else [values]:
        address = _address(value)
        if address is not None:
            partstat = str((getattr(value, "params", {}) or {}).get("PARTSTAT", "NEEDS-ACTION")).upper()
            found.append(Attendee(address, partstat))
    return tuple(found)


def event_of(component: Any, recurring: bool) -> CalendarEvent:
    """One VEVENT occurrence as a :class:`crmlink.CalendarEvent`; ``ValueError`` when it
    has no UID or start."""
    uid = str(component.get("UID") or "").strip()
    if not uid:
        raise ValueError("the event has no UID")
    start = _moment(component.get("DTSTART"))
    if start is None:
        raise ValueError("the event has no DTSTART")
    end = _moment(component.get("DTEND"))
    if end is None and component.get("DURATION") is not None:
        end = start + component.get("DURATION").dt
    recurrence = _moment(component.get("RECURRENCE-ID")) or start if recurring else None
    summary = component.get("SUMMARY")
    return CalendarEvent(uid, start, end, _address(component.get("ORGANIZER")), _attendees(component),
                         str(component.get("STATUS") or "") or None, recurrence,
                         str(summary) if summary is not None else None)


class MeetingsStream(Stream):
    """Every meeting occurrence in the files within the history window, as interactions."""

    name = "meetings"
    entity = Interaction

    def __init__(self, files: list[Path], mapper: ActivityMapper, context: SyncContext, since: datetime) -> None:
        self.files, self.mapper, self.context, self.since = files, mapper, context, since

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        import icalendar
        import recurring_ical_events  # type: ignore[import-untyped]  # it ships no type information

        occurrences = 0
        for number, path in enumerate(self.files, start=1):
            self.context.progress(f"calendar: file {number} of {len(self.files)}, {occurrences:,} meetings")
            try:
                calendar = icalendar.Calendar.from_ical(path.read_bytes())
                recurring = _recurring_uids(calendar.walk("VEVENT"))
                found = recurring_ical_events.of(calendar).between(self.since, self.context.now)
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidRecord("calendar", None, "file", (
                    f"is not a readable iCalendar file ({exc}); export the calendar as .ics")).at(str(path)) from None
            for component in found:
                occurrences += 1
                try:
                    event = event_of(component, str(component.get("UID") or "") in recurring)
                except ValueError as exc:
                    yield InvalidRecord("event", str(component.get("UID") or "") or None, "event",
                                        str(exc)).at(str(path))
                    continue
                yield from self.mapper.event(event)
        self.context.notice(f"calendar: {occurrences:,} meeting occurrences from {len(self.files)} files "
                            f"since {self.since:%Y-%m-%d}: {self.mapper.summary()}")


def _recurring_uids(events: Iterable[Any]) -> set[str]:
    return {str(e.get("UID") or "") for e in events
            if e.get("RRULE") is not None or e.get("RDATE") is not None or e.get("RECURRENCE-ID") is not None}


def ics_files(path: Path) -> list[Path]:
    """The .ics file at ``path``, or every .ics file under the folder, by name."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".ics")
    raise ConfigError(f"{path} does not exist; give an .ics file or a folder holding .ics files")


class CalendarConnector(Connector):
    """Meetings from iCalendar files, linked to the CRM sources in the store."""

    name = "calendar"
    description = ("iCalendar (.ics) files: meetings with accepted attendees linked to the CRM sources in "
                   "the store, recurring ones expanded up to now (docs/connectors/calendar.md).")
    settings = (
        Setting("path", "An .ics file or a folder of .ics files.", required=True, argument=True),
        Setting("internal_domain", "One of our mail domains (repeat for more); added to [identity] "
                "internal_domains and our users' domains.", multiple=True),
    )
    atomic = True
    on_error = "skip"

    def streams(self) -> Iterator[Stream]:
        files = ics_files(Path(self.config["path"]))
        if not files:
            raise ConfigError(f"{self.config['path']} holds no .ics file")
        mapper = ActivityMapper.for_run(self.context, self.config["internal_domain"], "calendar")
        days = mapper.resolver.settings.history_days
        yield MeetingsStream(files, mapper, self.context, self.context.now - timedelta(days=days))
        yield UnknownPeopleStream(mapper)


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    register(CalendarConnector)


__all__ = ["CalendarConnector", "MeetingsStream", "event_of", "ics_files"]
