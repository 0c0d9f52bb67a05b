"""One message's header block to a :class:`~crmlink.MailMessage`, or a clear reason why not:
the parser every mail connector shares (files, IMAP, a plugin's), public as
:func:`crmlink.parse_headers` and :class:`crmlink.MalformedMessage`.

Only the header block is parsed (``email`` with ``policy.default``): bodies and
attachments are never read. RFC 2047 encoded words are decoded by the policy; raw UTF-8
in headers (RFC 6532) is valid. A header crmlink uses whose bytes are not UTF-8, a
missing or unreadable Date, a From that holds no address, or a header block the parser
had to give up on makes the message malformed (:class:`MalformedMessage`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from email import errors, policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime

from crmlink.core.activity import Address, MailMessage

#: The headers a message is mapped from; no other is looked at.
MAIL_HEADERS = ("from", "to", "cc", "bcc", "date", "message-id", "in-reply-to", "references", "subject",
        "list-id", "list-unsubscribe", "precedence")
_PARSER = BytesHeaderParser(policy=policy.default)


class MalformedMessage(ValueError):
    """Why a message cannot be read: the header concerned and the reason."""

    def __init__(self, field: str, reason: str, message_id: str | None = None) -> None:
        super().__init__(reason)
        self.field, self.reason, self.message_id = field, reason, message_id


def parse_headers(data: bytes, fallback_date: datetime | None = None) -> MailMessage:
    """The message of a header block (see the module docstring for what is malformed).

    ``fallback_date`` (an IMAP server's INTERNALDATE, when the message arrived) stands in
    for a Date header that is missing or not a date; without it such a message is
    malformed. Bcc recipients (listed only on the sender's own copy) count as Cc: they
    received the message.

    The block is split by ``email``'s parser (``policy.default``); the few headers used are
    then read from their raw values with ``email.utils`` and ``email.header``, which is
    several times faster than the policy's header objects and reads the same values."""
    message = _PARSER.parsebytes(data + b"\n")
    items = list(message.raw_items())
    named = next((" ".join(raw.split()) for name, raw in items if name.lower() == "message-id"), None)
    headers: dict[str, list[str]] = {}
    for name, raw in items:
        key = name.lower()
        if key in MAIL_HEADERS:
            headers.setdefault(key, []).append(_checked(name, raw, named))
    message_id = _first(headers, "message-id")
    if any(isinstance(d, errors.MissingHeaderBodySeparatorDefect) for d in message.defects):
        raise MalformedMessage("headers", "a header line has no colon, so the headers end early; "
                               "the message is damaged", message_id)
    senders = _addresses(headers.get("from", ()))
    if not senders:
        raise MalformedMessage("from", f"the From header {_first(headers, 'from')!r} holds no address", message_id)
    return MailMessage(
        message_id=message_id, date=_date(headers, message_id, fallback_date), sender=senders[0],
        to=tuple(_addresses(headers.get("to", ()))),
        cc=tuple(_addresses([*headers.get("cc", ()), *headers.get("bcc", ())])),
        in_reply_to=_first(headers, "in-reply-to"),
        references=tuple((_first(headers, "references") or "").split()),
        subject=_decoded(_first(headers, "subject")), list_id=_first(headers, "list-id"),
        list_unsubscribe=_first(headers, "list-unsubscribe"), precedence=_first(headers, "precedence"))


def _checked(name: str, raw: str, message_id: str | None) -> str:
    """The raw value as text, unfolded: raw UTF-8 (RFC 6532) decoded, other bytes an error."""
    data = raw.encode("ascii", "surrogateescape")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(name.lower(), (
            f"the {name} header has bytes that are not UTF-8 (byte {exc.start + 1} of its value: "
            f"0x{data[exc.start]:02x}); headers must be ASCII, RFC 2047 encoded words or UTF-8"),
            message_id) from None
    return " ".join(text.split())


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] or None if values else None


def _decoded(value: str | None) -> str | None:
    """RFC 2047 encoded words decoded; the value as it is when they cannot be."""
    if not value or "=?" not in value:
        return value or None
    try:
        return str(make_header(decode_header(value))) or None
    except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return value


def _addresses(values: Iterable[str]) -> list[Address]:
    found: list[Address] = []
    for name, address in getaddresses(list(values)):
        parsed = Address.parse(address, _decoded(name))
        if parsed is not None:
            found.append(parsed)
    return found


def _date(headers: dict[str, list[str]], message_id: str | None,
          fallback: datetime | None = None) -> datetime:
    value = _first(headers, "date")
    if value is None and fallback is not None:
        moment = fallback
    elif value is None:
        raise MalformedMessage("date", "the message has no Date header", message_id)
    else:
        moment = _parsed_date(value, message_id, fallback)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _parsed_date(value: str, message_id: str | None, fallback: datetime | None) -> datetime:
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        if fallback is not None:
            return fallback
        raise MalformedMessage("date", f"the Date header {value!r} is not a date "
                               "(RFC 5322: 'Mon, 2 Mar 2026 09:00:00 +0100')", message_id) from None


__all__ = ["MAIL_HEADERS", "MalformedMessage", "parse_headers"]
