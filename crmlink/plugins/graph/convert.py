"""Graph's message and event JSON as the core's :class:`~crmlink.MailMessage` and
:class:`~crmlink.CalendarEvent`: only the translation of Graph's shapes. Which records an
item makes (directions, accounts, unknown people, mass mailings) is decided by the core's
:class:`~crmlink.ActivityMapper`, for every mail and calendar source alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmlink import Address, Attendee, CalendarEvent, MailMessage

#: What a sync asks for per message: headers only, never the body. ``subject`` is added
#: only when the config keeps subjects.
MESSAGE_FIELDS = ("internetMessageId", "sentDateTime", "receivedDateTime", "from", "sender",
                  "toRecipients", "ccRecipients", "bccRecipients", "isDraft",
                  "internetMessageHeaders")
#: Graph's attendee responses as RFC 5545 participation status.
PARTSTAT = {"accepted": "ACCEPTED", "organizer": "ACCEPTED", "declined": "DECLINED",
            "tentativelyAccepted": "TENTATIVE", "none": "NEEDS-ACTION",
            "notResponded": "NEEDS-ACTION"}


class BadItem(ValueError):
    """An item Graph sent that cannot be read: ``field`` names the property."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def message(item: Mapping[str, Any]) -> MailMessage | None:
    """A message's headers; ``None`` for a draft (never sent, so no interaction)."""
    if item.get("isDraft"):
        return None
    headers = _headers(item.get("internetMessageHeaders"))
    sender = _address(item.get("from") or item.get("sender"))
    stamp = item.get("sentDateTime") or item.get("receivedDateTime")
    return MailMessage(
        message_id=item.get("internetMessageId") or headers.get("message-id"),
        date=_instant(stamp, "sentDateTime"),
        sender=sender,
        to=_addresses(item.get("toRecipients")),
        # Bcc is listed only on our own sent copy; those people did receive the message
        cc=_addresses([*(item.get("ccRecipients") or []), *(item.get("bccRecipients") or [])]),
        in_reply_to=headers.get("in-reply-to"),
        references=tuple((headers.get("references") or "").split()),
        subject=item.get("subject"),
        list_id=headers.get("list-id"),
        list_unsubscribe=headers.get("list-unsubscribe"),
        precedence=headers.get("precedence"),
    )


def event(item: Mapping[str, Any], owner: str) -> CalendarEvent | None:
    """An event or occurrence of ``owner``'s calendar; ``None`` for a series master (the
    calendar view lists its occurrences instead)."""
    if item.get("type") == "seriesMaster":
        return None
    uid = item.get("iCalUId") or item.get("id")
    if not uid:
        raise BadItem("iCalUId", "the event has neither an iCalUId nor an id")
    organizer = _address(item.get("organizer"))
    own = _own_response(item, owner, organizer)
    people: list[Attendee] = []
    for attendee in item.get("attendees") or []:
        address = _address(attendee)
        if address is None:
            continue
        response = ((attendee.get("status") or {}).get("response") or "none")
        if own is not None and address.address == own[0]:
            response = own[1]
        people.append(Attendee(address, PARTSTAT.get(response, "NEEDS-ACTION")))
    return CalendarEvent(
        uid=str(uid), start=_event_time(item.get("start"), "start"),
        end=_event_time(item.get("end"), "end") if item.get("end") else None,
        organizer=organizer, attendees=tuple(people),
        status="CANCELLED" if item.get("isCancelled") else "CONFIRMED",
        summary=item.get("subject"))


def event_start(item: Mapping[str, Any]) -> datetime:
    return _event_time(item.get("start"), "start")


def _own_response(item: Mapping[str, Any], owner: str,
                  organizer: Address | None) -> tuple[str, str] | None:
    """The mailbox owner's own answer (``responseStatus``), which their copy knows best."""
    mine = Address.parse(owner)
    status = (item.get("responseStatus") or {}).get("response")
    if mine is None or not status or status == "none" or (organizer and organizer.address == mine.address):
        return None
    return mine.address, str(status)


def _headers(values: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """Header name (lower case) -> value; the first of repeated headers wins."""
    found: dict[str, str] = {}
    for header in values or []:
        name = str(header.get("name") or "").strip().lower()
        if name and name not in found:
            found[name] = str(header.get("value") or "")
    return found


def _address(value: Mapping[str, Any] | None) -> Address | None:
    inner = (value or {}).get("emailAddress") or {}
    return Address.parse(inner.get("address"), inner.get("name"))


def _addresses(values: Iterable[Mapping[str, Any]] | None) -> tuple[Address, ...]:
    return tuple(a for a in (_address(v) for v in values or []) if a is not None)


def _instant(text: Any, field: str) -> datetime:
    if not isinstance(text, str) or not text:
        raise BadItem(field, "the message has no sent or received time")
    value = text.strip()
    if value[-1:] in "Zz":
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadItem(field, f"{text!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _event_time(value: Any, field: str) -> datetime:
    """``{"dateTime": "2024-03-04T09:00:00.0000000", "timeZone": "UTC"}`` as an aware time.
    Graph answers in UTC unless asked otherwise; an IANA zone name is honoured too."""
    if not isinstance(value, Mapping) or not value.get("dateTime"):
        raise BadItem(field, f"the event has no {field} time")
    text = str(value["dateTime"])
    try:
        local = datetime.fromisoformat(text[:26] if "." in text else text)
    except ValueError:
        raise BadItem(field, f"{text!r} is not an ISO 8601 date-time") from None
    zone = str(value.get("timeZone") or "UTC")
    if zone.upper() in ("UTC", "Z", "GMT"):
        return local.replace(tzinfo=timezone.utc)
    try:
        return local.replace(tzinfo=ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise BadItem(f"{field}.timeZone", f"unknown time zone {zone!r}") from None
