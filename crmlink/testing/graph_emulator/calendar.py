"""Events of a mailbox's primary calendar and the calendar view over a time window.

A calendar view lists single events and the occurrences of recurring series (``type``
``occurrence``, ``seriesMasterId`` set) that overlap the window; series masters are not
listed. Recurrence patterns ``daily`` and ``weekly`` (with ``daysOfWeek``) and range
types ``endDate``, ``numbered`` and ``noEnd`` are expanded. A cancelled occurrence is gone
from the series; an event the organizer cancelled stays with ``isCancelled: true``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .delta import Collection
from .errors import item_not_found
from .shapes import AddressLike, Selector, change_key, etag, local_time, recipient, stamp

RESPONSES = ("none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded")
EVENT_DEFAULT = (
    "createdDateTime", "lastModifiedDateTime", "changeKey", "categories", "transactionId",
    "originalStartTimeZone", "originalEndTimeZone", "iCalUId", "reminderMinutesBeforeStart",
    "isReminderOn", "hasAttachments", "subject", "bodyPreview", "importance", "sensitivity",
    "isAllDay", "isCancelled", "isOrganizer", "responseRequested", "seriesMasterId", "showAs",
    "type", "webLink", "onlineMeetingUrl", "isOnlineMeeting", "onlineMeetingProvider",
    "allowNewTimeProposals", "isDraft", "hideAttendees", "responseStatus", "body", "start", "end",
    "location", "locations", "recurrence", "attendees", "organizer", "onlineMeeting",
)
EVENTS = Selector("Event", EVENT_DEFAULT)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_GOID = "040000008200E00074C5B7101A82E008"


@dataclass
class Attendee:
    address: AddressLike
    response: str = "accepted"
    type: str = "required"

    def json(self, when: datetime) -> dict[str, Any]:
        if self.response not in RESPONSES:
            raise ValueError(f"attendee response must be one of {RESPONSES}, not {self.response!r}")
        time = "0001-01-01T00:00:00Z" if self.response in ("none", "notResponded") else stamp(when)
        return {"type": self.type, "status": {"response": self.response, "time": time},
                **recipient(self.address)}


@dataclass
class Calendar:
    """One mailbox's primary calendar: events (singles and series masters) as tracked items,
    plus what a view needs that is not in an event's JSON."""

    events: Collection
    #: series id -> occurrence day -> change number of its cancellation
    cancelled: dict[str, dict[date, int]] = field(default_factory=dict)
    #: the last JSON of each deleted event (a deleted series' occurrences are reported)
    last: dict[str, dict[str, Any]] = field(default_factory=dict)


def new_ical_uid() -> str:
    return _GOID + "00000000" + secrets.token_hex(24).upper()


def event_json(owner: str, *, subject: str, start: datetime, end: datetime,
               organizer: AddressLike, attendees: Iterable[Attendee], now: datetime,
               ical_uid: str | None = None, recurrence: Mapping[str, Any] | None = None,
               is_cancelled: bool = False, online: bool = False, body: str = "",
               event_id: str | None = None) -> dict[str, Any]:
    """A single event or series master in Graph's shape, as stored in ``owner``'s calendar."""
    eid = event_id or "AAMkAD" + base64.urlsafe_b64encode(secrets.token_bytes(42)).decode()
    key = change_key()
    org = recipient(organizer)
    people = [a.json(now) for a in attendees]
    is_organizer = org["emailAddress"]["address"].lower() == owner.lower()
    mine = next((a["status"] for a in people
                 if a["emailAddress"]["address"].lower() == owner.lower()), None)
    status = ({"response": "organizer", "time": "0001-01-01T00:00:00Z"} if is_organizer
              else mine or {"response": "none", "time": "0001-01-01T00:00:00Z"})
    if recurrence is not None:
        _check_recurrence(recurrence)
    return {
        "@odata.etag": etag(key), "id": eid, "createdDateTime": stamp(now),
        "lastModifiedDateTime": stamp(now), "changeKey": key, "categories": [],
        "transactionId": None, "originalStartTimeZone": "UTC", "originalEndTimeZone": "UTC",
        "iCalUId": ical_uid or new_ical_uid(), "reminderMinutesBeforeStart": 15,
        "isReminderOn": True, "hasAttachments": False, "subject": subject,
        "bodyPreview": body[:255], "importance": "normal", "sensitivity": "normal",
        "isAllDay": False, "isCancelled": is_cancelled, "isOrganizer": is_organizer,
        "responseRequested": True, "seriesMasterId": None, "showAs": "busy",
        "type": "seriesMaster" if recurrence else "singleInstance",
        "webLink": f"https://outlook.office365.com/owa/?itemid={eid}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None, "isOnlineMeeting": online,
        "onlineMeetingProvider": "teamsForBusiness" if online else "unknown",
        "allowNewTimeProposals": True, "isDraft": False, "hideAttendees": False,
        "responseStatus": status, "body": {"contentType": "html", "content": body},
        "start": local_time(start), "end": local_time(end),
        "location": {"displayName": "", "locationType": "default", "uniqueIdType": "unknown",
                     "address": {}, "coordinates": {}},
        "locations": [], "recurrence": dict(recurrence) if recurrence else None,
        "attendees": people, "organizer": org,
        "onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/emulator"}
        if online else None,
    }


def touched(data: Mapping[str, Any], changes: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    key = change_key()
    return {**data, **changes, "changeKey": key, "@odata.etag": etag(key),
            "lastModifiedDateTime": stamp(now)}


def with_response(data: Mapping[str, Any], owner: str, address: str, response: str,
                  now: datetime) -> dict[str, Any]:
    """``data`` with one attendee's response changed (and the owner's responseStatus)."""
    if response not in RESPONSES:
        raise ValueError(f"response must be one of {RESPONSES}, not {response!r}")
    people, found = [], False
    for person in data["attendees"]:
        if person["emailAddress"]["address"].lower() == address.lower():
            person = {**person, "status": {"response": response, "time": stamp(now)}}
            found = True
        people.append(person)
    if not found:
        raise KeyError(f"{address} is not an attendee")
    changes: dict[str, Any] = {"attendees": people}
    if address.lower() == owner.lower() and not data["isOrganizer"]:
        changes["responseStatus"] = {"response": response, "time": stamp(now)}
    return touched(data, changes, now)


# --- the view -------------------------------------------------------------------------------
@dataclass
class Instance:
    """One entry of a calendar view: an event or occurrence, or the removal of one."""

    id: str
    seq: int
    data: dict[str, Any] | None


def view(calendar: Calendar, start: datetime, end: datetime,
         removals: bool) -> list[Instance]:
    """Every entry of the view over ``[start, end)``, in change order (then id)."""
    out: list[Instance] = []
    for item in calendar.events.items.values():
        data = item.data if item.live else calendar.last.get(item.id)
        if data is None:
            continue
        if data["recurrence"] is None:
            if not item.live:
                out.append(Instance(item.id, item.seq, None))
            elif _overlaps(data, start, end):
                out.append(Instance(item.id, item.seq, data))
            continue
        cancelled = calendar.cancelled.get(item.id, {})
        for occurrence in occurrences(data, start, end):
            day = _day(occurrence)
            if not item.live:
                out.append(Instance(occurrence["id"], item.seq, None))
            elif day in cancelled:
                out.append(Instance(occurrence["id"], max(item.seq, cancelled[day]), None))
            else:
                out.append(Instance(occurrence["id"], item.seq, occurrence))
    if not removals:
        out = [i for i in out if i.data is not None]
    out.sort(key=lambda i: (i.seq, i.id))
    return out


def occurrences(master: Mapping[str, Any], start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """The occurrences of a series master that overlap ``[start, end)``."""
    first = _time(master["start"])
    length = _time(master["end"]) - first
    for day in _days(master["recurrence"], first.date(), end.date()):
        begins = datetime.combine(day, first.timetz())
        if begins < end and begins + length > start:
            yield _occurrence(master, day, begins, length)


def _occurrence(master: Mapping[str, Any], day: date, begins: datetime,
                length: timedelta) -> dict[str, Any]:
    digest = hashlib.sha256(f"{master['id']}/{day.isoformat()}".encode()).digest()
    oid = "AAMkAD" + base64.urlsafe_b64encode(digest + digest[:10]).decode()
    uid = master["iCalUId"]
    return {**master, "id": oid, "type": "occurrence", "seriesMasterId": master["id"],
            "recurrence": None, "start": local_time(begins), "end": local_time(begins + length),
            "iCalUId": uid[:32] + f"{day.year:04X}{day.month:02X}{day.day:02X}" + uid[40:]}


def _days(recurrence: Mapping[str, Any], first: date, last: date) -> Iterator[date]:
    pattern, rng = recurrence["pattern"], recurrence["range"]
    interval = int(pattern.get("interval", 1))
    begin = date.fromisoformat(rng.get("startDate") or first.isoformat())
    until = date.fromisoformat(rng["endDate"]) if rng["type"] == "endDate" else None
    count = int(rng["numberOfOccurrences"]) if rng["type"] == "numbered" else None
    weekdays = {_WEEKDAYS.index(d.lower()) for d in pattern.get("daysOfWeek", [])}
    week_start = begin - timedelta(days=(begin.weekday() + 1) % 7)  # weeks start on Sunday
    day, seen = begin, 0
    while day <= last and (until is None or day <= until) and (count is None or seen < count):
        if pattern["type"] == "daily":
            hit = (day - begin).days % interval == 0
        else:
            hit = day.weekday() in weekdays and ((day - week_start).days // 7) % interval == 0
        if hit:
            seen += 1
            yield day
        day += timedelta(days=1)


def _check_recurrence(recurrence: Mapping[str, Any]) -> None:
    kind = recurrence.get("pattern", {}).get("type")
    if kind not in ("daily", "weekly"):
        raise ValueError(f"the emulator expands daily and weekly patterns, not {kind!r}")
    if kind == "weekly" and not recurrence["pattern"].get("daysOfWeek"):
        raise ValueError("a weekly pattern needs daysOfWeek")
    if recurrence.get("range", {}).get("type") not in ("endDate", "numbered", "noEnd"):
        raise ValueError("range type must be endDate, numbered or noEnd")


def _time(value: Mapping[str, str]) -> datetime:
    return datetime.fromisoformat(value["dateTime"][:19]).replace(tzinfo=timezone.utc)


def _day(event: Mapping[str, Any]) -> date:
    return _time(event["start"]).date()


def _overlaps(event: Mapping[str, Any], start: datetime, end: datetime) -> bool:
    return _time(event["start"]) < end and _time(event["end"]) > start


def find(calendar: Calendar, event_id: str) -> dict[str, Any]:
    item = calendar.events.items.get(event_id)
    if item is None or item.data is None:
        raise item_not_found()
    return item.data
