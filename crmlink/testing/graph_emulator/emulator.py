"""``GraphEmulator``: the public facade over the tenant's state, the engine and the server."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from crmlink.testing.emulation import EmulatorControls, ServerThread
from crmlink.testing.hubspot_emulator.clock import Clock

from . import calendar
from .api import Api
from .auth import DEFAULT_CLIENT_ID, DEFAULT_TENANT_ID, READ_ROLES, App, Auth
from .calendar import Attendee, Calendar
from .delta import Collection, Sequence
from .engine import Engine
from .faults import Limiter, Limits
from .mail import Directory, Mailbox, NewMessage, message_json, touched
from .server import server_thread, tls_context
from .shapes import AddressLike, item_id, recipient

#: What ``add_event`` and ``add_meeting`` take for attendees: an address (accepted), or
#: ``(address, response)`` / ``(address, response, type)``, or an :class:`Attendee`.
AttendeeLike = AddressLike | tuple[str, str] | tuple[str, str, str] | Attendee


class GraphEmulator(EmulatorControls):
    """Microsoft Graph (mail and calendar) and the identity platform's token endpoint for
    one tenant, on 127.0.0.1.

    >>> with GraphEmulator() as emu:
    ...     box = emu.add_mailbox("ann@contoso.test")
    ...     emu.add_message(box, "sentitems", sender=box, to=["bob@fabrikam.test"])

    ``tls=True`` (the default) serves https with a certificate from a fresh test CA
    (``emu.ca_path``): msal only talks to an https authority.
    """

    clock: Clock
    _engine: Engine

    def __init__(self, *, tls: bool = True, host: str = "127.0.0.1", port: int = 0,
                 tenant_id: str = DEFAULT_TENANT_ID, clock: Clock | None = None,
                 limits: Limits | None = None) -> None:
        self.clock = clock or Clock()
        self.seq = Sequence()
        self.auth = Auth(self.clock, tenant_id)
        self.directory = Directory()
        self.calendars: dict[str, Calendar] = {}
        self.limits = limits or Limits()
        self._limiter = Limiter(self.limits)
        self._engine = Engine(Api(self.auth, self.directory, self.calendars, self.seq), self._limiter)
        self.lock = threading.RLock()
        self.tls, self._host, self._port = tls, host, port
        self._server: ServerThread | None = None
        self._tmpdir: str | None = None
        self.ca_path: str | None = None
        self.url = ""

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> str:
        """Start serving; returns the root URL (``https://127.0.0.1:PORT``)."""
        if self._server is None:
            context = None
            if self.tls:
                self._tmpdir = tempfile.mkdtemp(prefix="graph-emulator-")
                context, self.ca_path = tls_context(self._tmpdir)
            self._server = server_thread(self._engine, self._host, self._port, context)
            scheme = "https" if self.tls else "http"
            self.url = f"{scheme}://{self._host}:{self._server.port}"
            self._server.start(self.url)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def base_url(self) -> str:
        """The Graph API root, ``<url>/v1.0``."""
        return f"{self.url}/v1.0"

    @property
    def authority(self) -> str:
        """The authority URL for msal: ``<url>/<tenant id>``."""
        return f"{self.url}/{self.tenant_id}"

    # --- tenant and apps ------------------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        return self.auth.tenant_id

    @property
    def client_id(self) -> str:
        return DEFAULT_CLIENT_ID

    @property
    def client_secret(self) -> str:
        return self.auth.apps[DEFAULT_CLIENT_ID].secret

    def add_app(self, client_id: str, secret: str, roles: Iterable[str] = READ_ROLES) -> App:
        """Register an app with a secret and the application permissions an admin consented to."""
        app = App(client_id, secret, set(roles))
        self.auth.apps[client_id] = app
        return app

    def set_roles(self, roles: Iterable[str], client_id: str = DEFAULT_CLIENT_ID) -> None:
        """Change an app's consented permissions (tokens issued later carry them)."""
        self.auth.apps[client_id].roles = set(roles)

    @property
    def token_ttl(self) -> int:
        return self.auth.token_ttl

    @token_ttl.setter
    def token_ttl(self, seconds: int) -> None:
        self.auth.token_ttl = seconds

    def issue_token(self, client_id: str = DEFAULT_CLIENT_ID) -> str:
        """A valid access token for an app, without going through the token endpoint."""
        app = self.auth.apps[client_id]
        token: str = self.auth.token(self.tenant_id, {
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": app.secret,
            "scope": "https://graph.microsoft.com/.default"})["access_token"]
        return token

    def expire_tokens(self, token: str | None = None) -> None:
        """Expire one issued token, or all of them."""
        self.auth.expire(token)

    @property
    def tokens_issued(self) -> int:
        return self.auth.issued

    # --- mailboxes and messages -----------------------------------------------------------
    def add_mailbox(self, address: str, display_name: str | None = None) -> Mailbox:
        with self.lock:
            box = self.directory.add(address, display_name)
            self.calendars[box.id] = Calendar(Collection(f"{box.id}/calendar"))
            return box

    def mailbox(self, ref: str | Mailbox) -> Mailbox:
        return ref if isinstance(ref, Mailbox) else self.directory.get(ref)

    def add_message(self, mailbox: str | Mailbox, folder: str = "inbox", *,
                    sender: AddressLike | Mailbox, to: Iterable[AddressLike | Mailbox] = (),
                    cc: Iterable[AddressLike | Mailbox] = (), **fields: Any) -> str:
        """Put a message in a folder (a well-known name or a folder id); returns its id.

        ``fields``: ``subject``, ``sent``, ``received`` (datetimes), ``internet_message_id``,
        ``conversation_id``, ``headers`` (``[(name, value)]``), ``bcc``, ``body``,
        ``has_attachments``, ``is_read``, ``is_draft``, ``from_``. Standard headers
        (Message-ID, Date, From, To, Cc, Subject) are added unless given.
        """
        with self.lock:
            box = self.mailbox(mailbox)
            target = box.folder(folder)
            spec = NewMessage(sender=_address(sender), to=[_address(a) for a in to],
                              cc=[_address(a) for a in cc], **fields)
            mid = item_id()
            target.messages.put(mid, self.seq.next(), message_json(target, spec, self.now, mid))
            return mid

    def add_messages(self, mailbox: str | Mailbox, folder: str,
                     rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Many ``add_message`` calls under one lock (100,000 take a few seconds)."""
        with self.lock:
            return [self.add_message(mailbox, folder, **row) for row in rows]

    def update_message(self, mailbox: str | Mailbox, message_id: str, **changes: Any) -> None:
        """Change Graph properties (``isRead=True``, ``subject=...``): a change in delta."""
        with self.lock:
            folder, item = self.mailbox(mailbox).find_message(message_id)
            assert item.data is not None
            folder.messages.put(message_id, self.seq.next(), touched(item.data, changes, self.now))

    def delete_message(self, mailbox: str | Mailbox, message_id: str) -> None:
        """Delete for good: the next delta round reports ``@removed``."""
        with self.lock:
            folder, _ = self.mailbox(mailbox).find_message(message_id)
            folder.messages.put(message_id, self.seq.next(), None)

    def messages(self, mailbox: str | Mailbox, folder: str | None = None) -> list[dict[str, Any]]:
        """Ground truth: the live messages of a mailbox (or of one folder), every property."""
        with self.lock:
            box = self.mailbox(mailbox)
            folders = [box.folder(folder)] if folder else list(box.folders.values())
            return [dict(i.data) for f in folders for i in f.messages.live() if i.data is not None]

    def folder_id(self, mailbox: str | Mailbox, well_known: str) -> str:
        return self.mailbox(mailbox).folder(well_known).id

    # --- calendar -------------------------------------------------------------------------
    def add_event(self, mailbox: str | Mailbox, *, subject: str, start: datetime, end: datetime,
                  organizer: AddressLike | Mailbox, attendees: Iterable[AttendeeLike] = (),
                  **fields: Any) -> str:
        """An event in the mailbox's calendar; returns its id.

        ``fields``: ``ical_uid`` (share one between copies of the same meeting),
        ``recurrence`` (Graph's ``{"pattern": {...}, "range": {...}}``, daily or weekly),
        ``is_cancelled``, ``online``, ``body``.
        """
        with self.lock:
            box = self.mailbox(mailbox)
            data = calendar.event_json(box.address, subject=subject, start=_utc(start),
                                       end=_utc(end), organizer=_address(organizer),
                                       attendees=[_attendee(a) for a in attendees], now=self.now,
                                       **fields)
            self.calendars[box.id].events.put(data["id"], self.seq.next(), data)
            return str(data["id"])

    def add_meeting(self, organizer: str | Mailbox, *, attendees: Iterable[AttendeeLike],
                    subject: str, start: datetime, end: datetime,
                    **fields: Any) -> dict[str, str]:
        """One meeting in the calendars of its organizer and of every attendee with a
        mailbox in this tenant, sharing one iCalUId; returns ``{address: event id}``."""
        with self.lock:
            org = self.mailbox(organizer)
            people = [_attendee(a) for a in attendees]
            uid = fields.pop("ical_uid", None) or calendar.new_ical_uid()
            ids = {org.address: self.add_event(org, subject=subject, start=start, end=end,
                                               organizer=org, attendees=people, ical_uid=uid,
                                               **fields)}
            for person in people:
                address = recipient(person.address)["emailAddress"]["address"]
                if self.directory.find(address) is not None:
                    ids[address] = self.add_event(address, subject=subject, start=start, end=end,
                                                  organizer=org, attendees=people, ical_uid=uid,
                                                  **fields)
            return ids

    def update_event(self, mailbox: str | Mailbox, event_id: str, **changes: Any) -> None:
        """Change Graph properties of an event or series (``isCancelled=True``...)."""
        with self.lock:
            cal = self.calendars[self.mailbox(mailbox).id]
            data = calendar.find(cal, event_id)
            cal.events.put(event_id, self.seq.next(), calendar.touched(data, changes, self.now))

    def respond(self, mailbox: str | Mailbox, event_id: str, attendee: str, response: str) -> None:
        """Set an attendee's response (accepted, declined, tentativelyAccepted...)."""
        with self.lock:
            box = self.mailbox(mailbox)
            cal = self.calendars[box.id]
            data = calendar.with_response(calendar.find(cal, event_id), box.address, attendee,
                                          response, self.now)
            cal.events.put(event_id, self.seq.next(), data)

    def cancel_occurrence(self, mailbox: str | Mailbox, series_id: str, day: Any) -> None:
        """Remove one occurrence (by its date) from a recurring series."""
        with self.lock:
            cal = self.calendars[self.mailbox(mailbox).id]
            calendar.find(cal, series_id)
            when = day if not isinstance(day, datetime) else day.date()
            cal.cancelled.setdefault(series_id, {})[when] = self.seq.next()

    def delete_event(self, mailbox: str | Mailbox, event_id: str) -> None:
        with self.lock:
            cal = self.calendars[self.mailbox(mailbox).id]
            cal.last[event_id] = calendar.find(cal, event_id)
            cal.events.put(event_id, self.seq.next(), None)

    def events(self, mailbox: str | Mailbox, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Ground truth: the calendar view over ``[start, end)`` (occurrences expanded)."""
        with self.lock:
            cal = self.calendars[self.mailbox(mailbox).id]
            return [dict(i.data) for i in calendar.view(cal, _utc(start), _utc(end), False)
                    if i.data is not None]

    def event(self, mailbox: str | Mailbox, event_id: str) -> dict[str, Any]:
        with self.lock:
            return dict(calendar.find(self.calendars[self.mailbox(mailbox).id], event_id))

    # --- delta state ----------------------------------------------------------------------
    def invalidate_delta_tokens(self, mailbox: str | Mailbox | None = None) -> None:
        """Every delta and skip token issued so far (for one mailbox, or all) now answers
        410 syncStateNotFound, as when Exchange drops a sync state from its cache."""
        with self.lock:
            boxes = [self.mailbox(mailbox)] if mailbox else list(self.directory.mailboxes.values())
            for box in boxes:
                for folder in box.folders.values():
                    folder.messages.invalidate()
                self.calendars[box.id].events.invalidate()

    # --- limits and errors (time, faults, delay and the log: EmulatorControls) ------------
    def reset_limits(self) -> None:
        self._limiter.reset()

    @property
    def errors(self) -> list[str]:
        """Tracebacks of emulator bugs (answered as 500 generalException)."""
        return self._engine.errors


def _address(value: AddressLike | Mailbox) -> AddressLike:
    if isinstance(value, Mailbox):
        return (value.display_name, value.address)
    return value


def _attendee(value: AttendeeLike) -> Attendee:
    if isinstance(value, Attendee):
        return value
    if isinstance(value, Mailbox):
        return Attendee(_address(value))
    if isinstance(value, tuple) and len(value) == 3:
        return Attendee(value[0], value[1], value[2])
    if isinstance(value, tuple) and "@" in value[0]:  # (address, response), not (name, address)
        return Attendee(value[0], value[1])
    return Attendee(value)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
