"""The two streams: messages (each mailbox's folders through message delta) and events
(each mailbox's calendar view through event delta).

Both are incremental: the state keeps, per folder or calendar, the ``@odata.deltaLink``
of the last finished round, or the link of the page in progress. The host checkpoints
after every stored batch (``resumable``), so a retried or interrupted run carries on
from the page it was reading, and a link Graph no longer knows (410 ``syncStateNotFound``)
starts that folder or calendar again from scratch.

A calendar view is a fixed window. Meetings count once they have started, so the window
reaches ``LOOKAHEAD`` days ahead and the ones still to come are kept in the state
(``pending``: id and start) and read again once they have begun. The window is renewed
(a fresh round) when less than ``RENEW`` days of it remain.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import quote

from crmlink import (
    ActivityMapper,
    CalendarEvent,
    Correspondent,
    Interaction,
    InvalidRecord,
    Record,
    Stream,
)

from . import convert
from .client import GraphClient, SyncReset

LOOKAHEAD = timedelta(days=30)
RENEW = timedelta(days=15)
Notice = Callable[[str], None]


class DeltaStream(Stream):
    """What both streams share: state per part (folder or calendar), resumable paging.

    Besides interactions, a stream yields the unknown people (:class:`~crmlink.Correspondent`)
    each page's items named, right after that page: they are stored with the page and its
    saved position, so a run that fails later, or goes on from a saved position next
    time, never loses them."""

    entity = Interaction
    companions: ClassVar[tuple[type[Record], ...]] = (Correspondent,)
    resumable: ClassVar[bool] = True
    key: ClassVar[str] = ""  # the state's table of parts

    def __init__(self, client: GraphClient, mapper: ActivityMapper, mailboxes: list[str], *,
                 page_size: int, notice: Notice, progress: Notice) -> None:
        self.client, self.mapper, self.mailboxes = client, mapper, mailboxes
        self.page_size = page_size
        self.notice, self.progress = notice, progress
        self.read = 0
        self.removed = 0
        #: part -> its state; the entry of the part being read names the page in progress
        self._parts: dict[str, dict[str, Any]] = {}

    def checkpoint(self, last: Record, state: Mapping[str, Any] | None) -> dict[str, Any]:
        """Where the record just stored came from: the host calls this right after
        ``last`` was yielded, so the page in progress is ``last``'s."""
        return {self.key: copy.deepcopy(self._parts)}

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return {self.key: copy.deepcopy(self._parts)}

    def _start(self, state: Mapping[str, Any] | None) -> None:
        saved = (state or {}).get(self.key)
        self._parts = copy.deepcopy(dict(saved)) if isinstance(saved, Mapping) else {}
        self.mapper.rewind()  # a retry yields again what the failed batch held

    def _saved_link(self, part: str) -> str | None:
        """The link to go on from (page in progress, else last deltaLink), if usable."""
        entry = self._parts.get(part) or {}
        link = entry.get("next") or entry.get("delta")
        return link if isinstance(link, str) and self.client.owns(link) else None

    def _pages(self, part: str, first: str, fresh: str,
               begin: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
        """The pages of one round from ``first``; the entry of ``part`` names each page
        while its items are handled. A dead token restarts from ``fresh`` (once)."""
        link, restarted = first, first == fresh
        while True:
            self._parts[part] = {**self._parts.get(part, {}), "next": link}
            self._parts[part].pop("delta", None)
            try:
                page = self.client.get(link, self.page_size)
            except SyncReset:
                if restarted:
                    raise
                self.notice(f"{self.name}: Microsoft Graph no longer knows the saved position "
                            f"for {part}; reading it again from the start")
                if begin is not None:
                    begin()
                link, restarted = fresh, True
                continue
            yield page
            following = page.get("@odata.nextLink")
            if isinstance(following, str) and following:
                link = following
                continue
            self._parts[part] = {**self._parts[part], "delta": page.get("@odata.deltaLink")}
            self._parts[part].pop("next", None)
            return

    def _invalid(self, item: Mapping[str, Any], exc: convert.BadItem, where: str) -> InvalidRecord:
        error = InvalidRecord("interaction", str(item.get("id") or "?"), exc.field, str(exc))
        return error.at(where)

    def _status(self, part: str) -> None:
        self.progress(f"{self.name}: {part}, {self.read:,} read")


class MessagesStream(DeltaStream):
    """Messages of each mailbox's folders (Inbox before Sent Items, so a reply of ours
    is read after the customer's message it answers)."""

    name = "messages"
    key = "folders"

    def __init__(self, client: GraphClient, mapper: ActivityMapper, mailboxes: list[str],
                 folders: list[str], *, subjects: bool, **kw: Any) -> None:
        super().__init__(client, mapper, mailboxes, **kw)
        self.folders = folders
        fields = [*convert.MESSAGE_FIELDS, *(["subject"] if subjects else [])]
        self.select = ",".join(fields)

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        self._start(state)
        for mailbox in self.mailboxes:
            for folder in self.folders:
                part = f"{mailbox}/{folder}"
                fresh = (f"{self.client.base_url}/users/{quote(mailbox, safe='@')}/mailFolders/"
                         f"{quote(folder)}/messages/delta?$select={self.select}")
                for page in self._pages(part, self._saved_link(part) or fresh, fresh):
                    for item in page.get("value") or []:
                        yield from self._item(item, part)
                    yield from self.mapper.correspondents()
                    self._status(part)

    def _item(self, item: Mapping[str, Any], part: str) -> Iterator[Record | InvalidRecord]:
        if "@removed" in item:
            self.removed += 1  # what was read once stays: the exchange took place
            return
        self.read += 1
        try:
            found = convert.message(item)
        except convert.BadItem as exc:
            yield self._invalid(item, exc, part)
            return
        if found is not None:
            yield from self.mapper.message(found)


class EventsStream(DeltaStream):
    """Meetings of each mailbox's calendar, from ``history`` before the run to now."""

    name = "events"
    key = "calendars"

    def __init__(self, client: GraphClient, mapper: ActivityMapper, mailboxes: list[str], *,
                 now: datetime, history: timedelta, **kw: Any) -> None:
        super().__init__(client, mapper, mailboxes, **kw)
        self.now = now.astimezone(timezone.utc)
        self.history = history
        self._mailboxes = frozenset(mailboxes)

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        self._start(state)
        for mailbox in self.mailboxes:
            yield from self._calendar(mailbox)
        self.notice(f"messages and meetings: {self.mapper.summary()}")

    def _calendar(self, mailbox: str) -> Iterator[Record | InvalidRecord]:
        entry = self._parts.get(mailbox) or {}
        link = self._saved_link(mailbox)
        end = _time(entry.get("end"))
        if link is None or end is None or end - self.now < RENEW:
            self._window(mailbox)
            link = None
        fresh_link = self._fresh(mailbox)
        pending: dict[str, str] = self._parts[mailbox].setdefault("pending", {})
        for page in self._pages(mailbox, link or fresh_link, fresh_link,
                                begin=lambda: pending.clear()):
            for item in page.get("value") or []:
                yield from self._event(item, mailbox, pending)
            yield from self.mapper.correspondents()
            self._status(mailbox)
        yield from self._matured(mailbox, pending)
        yield from self.mapper.correspondents()

    def _window(self, mailbox: str) -> None:
        start = (self.now - self.history).replace(microsecond=0)
        end = (self.now + LOOKAHEAD).replace(microsecond=0)
        self._parts[mailbox] = {"start": start.isoformat(), "end": end.isoformat(), "pending": {}}

    def _fresh(self, mailbox: str) -> str:
        entry = self._parts[mailbox]
        window = (f"startDateTime={quote(_z(entry['start']))}&endDateTime={quote(_z(entry['end']))}")
        return f"{self.client.base_url}/users/{quote(mailbox, safe='@')}/calendarView/delta?{window}"

    def _event(self, item: Mapping[str, Any], mailbox: str,
               pending: dict[str, str]) -> Iterator[Record | InvalidRecord]:
        item_id = str(item.get("id") or "")
        if "@removed" in item:
            self.removed += 1
            pending.pop(item_id, None)
            return
        self.read += 1
        try:
            found = convert.event(item, mailbox)
        except convert.BadItem as exc:
            yield self._invalid(item, exc, mailbox)
            return
        if found is None or self._copy_of_anothers(item, found):
            return
        if found.start > self.now and not found.cancelled:
            pending[item_id] = found.start.isoformat()  # counts once it has begun
        else:
            pending.pop(item_id, None)
        yield from self.mapper.event(found)

    def _copy_of_anothers(self, item: Mapping[str, Any], found: CalendarEvent) -> bool:
        """An attendee's copy of a meeting whose organizer's mailbox is read too: the
        organizer's copy holds every attendee's answer, so it is the one that counts."""
        organizer = found.organizer.address if found.organizer else None
        return not item.get("isOrganizer") and organizer in self._mailboxes

    def _matured(self, mailbox: str, pending: dict[str, str]) -> Iterator[Record | InvalidRecord]:
        """Meetings that were still to come at an earlier run and have begun since."""
        for item_id, start in sorted(pending.items(), key=lambda kv: kv[1]):
            if (_time(start) or self.now) > self.now:
                continue
            item = self.client.find(f"/users/{quote(mailbox, safe='@')}/events/{quote(item_id)}")
            if item is not None:  # else deleted since
                yield from self._event(item, mailbox, pending)
            pending.pop(item_id, None)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _z(iso: str) -> str:
    parsed = _time(iso)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else iso
