"""One message's header block to a :class:`~crmlink.MailMessage`, or a clear reason why not.

Only the header block is parsed (``email`` with ``policy.default``): bodies and
attachments are never read. RFC 2047 encoded words are decoded by the policy; raw UTF-8
in headers (RFC 6532) is valid. A header crmlink uses whose bytes are not UTF-8, a
missing or unreadable Date, a From that holds no address, or a header block the parser
had to give up on makes the message malformed (:class:`MalformedMessage`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from email import errors, policy
from email.headerregistry import Address as HeaderAddress
from email.parser import BytesHeaderParser
from typing import Any

from crmlink import Address, MailMessage

#: The headers a message is mapped from; no other is looked at.
USED = ("from", "to", "cc", "date", "message-id", "in-reply-to", "references", "subject",
        "list-id", "list-unsubscribe", "precedence")
_PARSER = BytesHeaderParser(policy=policy.default)


class MalformedMessage(ValueError):
    """Why a message cannot be read: the header concerned and the reason."""

    def __init__(self, field: str, reason: str, message_id: str | None = None) -> None:
        super().__init__(reason)
        self.field, self.reason, self.message_id = field, reason, message_id


def header_block(lines: Any, limit: int = 1_000_000) -> bytes:
    """The header block from a binary file positioned at a message's start (up to the
    first empty line; at most ``limit`` bytes, so a broken message cannot eat memory)."""
    block = bytearray()
    for line in lines:
        if line in (b"\n", b"\r\n"):
            break
        block += line
        if len(block) > limit:
            raise MalformedMessage("headers", f"the header block is longer than {limit:,} bytes; "
                                   "this is not a mail message")
    return bytes(block)


def parse(data: bytes) -> MailMessage:
    """The message of a header block (see the module docstring for what is malformed)."""
    message = _PARSER.parsebytes(data + b"\n")
    message_id = _text(message, "message-id")
    if any(isinstance(d, errors.MissingHeaderBodySeparatorDefect) for d in message.defects):
        raise MalformedMessage("headers", "a header line has no colon, so the headers end early; "
                               "the message is damaged", message_id)
    for name, raw in message.raw_items():
        if name.lower() in USED:
            _check_utf8(name, raw, message_id)
    senders = _addresses(message, "from")
    if not senders:
        raise MalformedMessage("from", f"the From header {_text(message, 'from')!r} holds no address", message_id)
    return MailMessage(
        message_id=message_id, date=_date(message, message_id), sender=senders[0],
        to=tuple(_addresses(message, "to")), cc=tuple(_addresses(message, "cc")),
        in_reply_to=_text(message, "in-reply-to"),
        references=tuple((_text(message, "references") or "").split()),
        subject=_text(message, "subject"), list_id=_text(message, "list-id"),
        list_unsubscribe=_text(message, "list-unsubscribe"), precedence=_text(message, "precedence"))


def _check_utf8(name: str, raw: str, message_id: str | None) -> None:
    data = raw.encode("ascii", "surrogateescape")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(name.lower(), (
            f"the {name} header has bytes that are not UTF-8 (byte {exc.start + 1} of its value: "
            f"0x{data[exc.start]:02x}); headers must be ASCII, RFC 2047 encoded words or UTF-8"),
            message_id) from None


def _text(message: Any, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _utf8(text: str) -> str:
    """A parsed value's raw UTF-8 bytes (kept as surrogates by the parser) as text."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _addresses(message: Any, name: str) -> list[Address]:
    found: list[Address] = []
    for header in message.get_all(name) or ():
        for item in getattr(header, "addresses", ()):
            if not isinstance(item, HeaderAddress) or not item.domain:
                continue
            parsed = Address.parse(_utf8(item.addr_spec), _utf8(item.display_name))
            if parsed is not None:
                found.append(parsed)
    return found


def _date(message: Any, message_id: str | None) -> datetime:
    header = message.get("date")
    if header is None:
        raise MalformedMessage("date", "the message has no Date header", message_id)
    moment = getattr(header, "datetime", None)
    if moment is None:
        raise MalformedMessage("date", f"the Date header {str(header)!r} is not a date "
                               "(RFC 5322: 'Mon, 2 Mar 2026 09:00:00 +0100')", message_id)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
