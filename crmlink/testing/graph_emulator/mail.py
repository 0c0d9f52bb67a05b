"""Mailboxes, their well-known folders and messages, in Graph's message shape."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .delta import Collection, Item
from .errors import invalid_user, item_not_found
from .shapes import (
    AddressLike,
    Selector,
    change_key,
    etag,
    item_id,
    recipient,
    recipients,
    stamp,
)

#: Well-known folder names Graph accepts in place of a folder id, and their display names.
WELL_KNOWN = {"inbox": "Inbox", "sentitems": "Sent Items", "drafts": "Drafts",
              "deleteditems": "Deleted Items", "archive": "Archive", "junkemail": "Junk Email"}

MESSAGE_DEFAULT = (
    "createdDateTime", "lastModifiedDateTime", "changeKey", "categories", "receivedDateTime",
    "sentDateTime", "hasAttachments", "internetMessageId", "subject", "bodyPreview", "importance",
    "parentFolderId", "conversationId", "conversationIndex", "isDeliveryReceiptRequested",
    "isReadReceiptRequested", "isRead", "isDraft", "webLink", "inferenceClassification", "body",
    "sender", "from", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "flag",
)
#: Only returned when asked for by ``$select``.
MESSAGE_OPTIONAL = ("internetMessageHeaders", "uniqueBody")
MESSAGES = Selector("Message", MESSAGE_DEFAULT, MESSAGE_OPTIONAL)


@dataclass
class Folder:
    id: str
    name: str
    well_known: str | None
    messages: Collection

    def json(self) -> dict[str, Any]:
        live = sum(1 for _ in self.messages.live())
        return {"id": self.id, "displayName": self.name, "parentFolderId": None,
                "childFolderCount": 0, "unreadItemCount": 0, "totalItemCount": live,
                "sizeInBytes": 0, "isHidden": False}


@dataclass
class Mailbox:
    """A user with a mailbox: folders of messages and a calendar (see calendar.py)."""

    id: str
    address: str
    display_name: str
    folders: dict[str, Folder] = field(default_factory=dict)

    def user_json(self) -> dict[str, Any]:
        return {"id": self.id, "displayName": self.display_name, "mail": self.address,
                "userPrincipalName": self.address, "businessPhones": [], "givenName": None,
                "jobTitle": None, "mobilePhone": None, "officeLocation": None,
                "preferredLanguage": "en-US", "surname": None}

    def folder(self, ref: str) -> Folder:
        """A folder by id or well-known name (case-insensitive), or Graph's 404."""
        found = self.folders.get(ref)
        if found is not None:
            return found
        for candidate in self.folders.values():
            if candidate.well_known == ref.lower():
                return candidate
        raise item_not_found()

    def find_message(self, message_id: str) -> tuple[Folder, Item]:
        for folder in self.folders.values():
            item = folder.messages.items.get(message_id)
            if item is not None and item.live:
                return folder, item
        raise item_not_found()


class Directory:
    """Every mailbox of the tenant, found by id or address (case-insensitive)."""

    def __init__(self) -> None:
        self.mailboxes: dict[str, Mailbox] = {}

    def add(self, address: str, display_name: str | None = None) -> Mailbox:
        if self.find(address) is not None:
            raise ValueError(f"mailbox {address} exists already")
        box = Mailbox(str(uuid.uuid4()), address, display_name or address.split("@")[0])
        for key, name in WELL_KNOWN.items():
            fid = "AAMkAD" + base64.urlsafe_b64encode(
                hashlib.sha256(f"{box.id}/{key}".encode()).digest()[:33]).decode()
            box.folders[fid] = Folder(fid, name, key, Collection(f"{box.id}/{key}"))
        self.mailboxes[box.id] = box
        return box

    def find(self, ref: str) -> Mailbox | None:
        found = self.mailboxes.get(ref)
        if found is not None:
            return found
        lowered = ref.lower()
        return next((m for m in self.mailboxes.values() if m.address.lower() == lowered), None)

    def get(self, ref: str) -> Mailbox:
        found = self.find(ref)
        if found is None:
            raise invalid_user(ref)
        return found


@dataclass
class NewMessage:
    """What a test gives to create a message; the emulator fills in the rest."""

    sender: AddressLike
    to: Iterable[AddressLike] = ()
    cc: Iterable[AddressLike] = ()
    bcc: Iterable[AddressLike] = ()
    subject: str = ""
    sent: datetime | None = None
    received: datetime | None = None
    internet_message_id: str | None = None
    conversation_id: str | None = None
    headers: Iterable[tuple[str, str]] = ()
    body: str = ""
    has_attachments: bool = False
    is_read: bool = False
    is_draft: bool = False
    from_: AddressLike | None = None


def message_json(folder: Folder, msg: NewMessage, now: datetime,
                 mid: str) -> dict[str, Any]:
    """A message in Graph's shape (every default property and the optional headers)."""
    sent = msg.sent or now
    received = msg.received or sent
    key = change_key()
    internet_id = msg.internet_message_id or f"<{uuid.uuid4().hex}@emulator.outlook.test>"
    sender = recipient(msg.sender)
    to, cc = recipients(msg.to), recipients(msg.cc)
    headers = [{"name": n, "value": v} for n, v in msg.headers]
    if not msg.is_draft:
        standard = [("Message-ID", internet_id), ("Date", sent.strftime("%a, %d %b %Y %H:%M:%S +0000")),
                    ("From", _header_address(sender)), ("Subject", msg.subject),
                    ("To", ", ".join(_header_address(r) for r in to)), ("MIME-Version", "1.0")]
        if cc:
            standard.append(("Cc", ", ".join(_header_address(r) for r in cc)))
        given = {h["name"].lower() for h in headers}
        headers = [{"name": n, "value": v} for n, v in standard if n.lower() not in given] + headers
    return {
        "@odata.etag": etag(key), "id": mid, "createdDateTime": stamp(now),
        "lastModifiedDateTime": stamp(now), "changeKey": key, "categories": [],
        "receivedDateTime": stamp(received), "sentDateTime": stamp(sent),
        "hasAttachments": msg.has_attachments, "internetMessageId": internet_id,
        "subject": msg.subject, "bodyPreview": msg.body[:255], "importance": "normal",
        "parentFolderId": folder.id,
        "conversationId": msg.conversation_id or item_id("AAQkAD"),
        "conversationIndex": base64.b64encode(uuid.uuid4().bytes).decode(),
        "isDeliveryReceiptRequested": False, "isReadReceiptRequested": False,
        "isRead": msg.is_read, "isDraft": msg.is_draft,
        "webLink": f"https://outlook.office365.com/owa/?ItemID={mid}&exvsurl=1&viewmodel=ReadMessageItem",
        "inferenceClassification": "focused",
        "body": {"contentType": "text", "content": msg.body},
        "sender": sender, "from": recipient(msg.from_) if msg.from_ else sender,
        "toRecipients": to, "ccRecipients": cc, "bccRecipients": recipients(msg.bcc),
        "replyTo": [], "flag": {"flagStatus": "notFlagged"},
        "internetMessageHeaders": headers, "uniqueBody": {"contentType": "text", "content": msg.body},
    }


def touched(data: Mapping[str, Any], changes: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """``data`` with ``changes`` applied and a new change key and modification time."""
    key = change_key()
    return {**data, **changes, "changeKey": key, "@odata.etag": etag(key),
            "lastModifiedDateTime": stamp(now)}


def _header_address(value: Mapping[str, Any]) -> str:
    inner = value["emailAddress"]
    name, address = inner["name"], inner["address"]
    return address if name == address else f'"{name}" <{address}>'
