"""The ``messages`` stream: each folder's messages above the last UID read, headers only.

The state keeps, per folder, its UIDVALIDITY and the highest UID whose records are
stored. The host saves it after every stored batch (``resumable``), so a retry (a new
connection) or the next run carries on from there. A folder whose UIDVALIDITY changed
(the server renumbered it) is read again from its first message; what was stored
before is recognised by its Message-ID and counted once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from crmlink import (
    ActivityMapper,
    Correspondent,
    Interaction,
    InvalidRecord,
    MalformedMessage,
    Record,
    Stream,
    parse_headers,
)

from .client import Fetched, Folder, ImapSession, unique

Notice = Callable[[str], None]


class MessagesStream(Stream):
    """Messages of each folder in turn (the Inbox before the Sent folder, so our replies
    are read after what they answer). Besides interactions, it yields the unknown people
    (:class:`~crmlink.Correspondent`) of each FETCH's messages right after them, so they
    are stored with the position that covers them."""

    name = "messages"
    entity = Interaction
    companions: ClassVar[tuple[type[Record], ...]] = (Correspondent,)
    resumable: ClassVar[bool] = True

    def __init__(self, session: Callable[[], ImapSession], mapper: ActivityMapper,
                 folders: list[str] | None, *, fetch_size: int, notice: Notice,
                 progress: Notice) -> None:
        """``folders``: the folders to read, or ``None`` for the Inbox and the Sent folder."""
        self.session, self.mapper, self.folders = session, mapper, folders
        self.fetch_size = fetch_size
        self.notice, self.progress = notice, progress
        self.read = 0
        self.malformed = 0
        #: folder -> {"uidvalidity": int, "uid": highest UID whose records are stored}
        self._parts: dict[str, dict[str, int]] = {}

    def checkpoint(self, last: Record, state: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"folders": copy.deepcopy(self._parts)}

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return {"folders": copy.deepcopy(self._parts)}

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        saved = (state or {}).get("folders")
        self._parts = copy.deepcopy(dict(saved)) if isinstance(saved, Mapping) else {}
        self.mapper.rewind()  # a retry yields again what the failed batch held
        with self.session() as imap:
            for name in self._folder_names(imap):
                yield from self._folder(imap, imap.select(name))
        self.notice(f"imap: {self.read:,} messages read, {self.malformed:,} malformed; of the "
                    f"others: {self.mapper.summary()}")

    def _folder_names(self, imap: ImapSession) -> list[str]:
        if self.folders:
            return self.folders
        sent = imap.sent_folder()
        if sent is None:
            self.notice(f"imap: {imap.where} marks no folder as Sent and has none with a usual "
                        "name; reading the Inbox only (name the Sent folder with --folder)")
        return unique(["INBOX", sent or ""])

    def _folder(self, imap: ImapSession, folder: Folder) -> Iterator[Record | InvalidRecord]:
        entry = self._parts.get(folder.name) or {}
        last = int(entry.get("uid", 0))
        if entry and entry.get("uidvalidity") != folder.uidvalidity:
            self.notice(f"imap: the UIDVALIDITY of {folder.name} changed (the server renumbered "
                        "its messages); reading it again from the start (messages already "
                        "stored are recognised and counted once)")
            last = 0
        self._parts[folder.name] = {"uidvalidity": folder.uidvalidity, "uid": last}
        uids = imap.uids_after(folder, last)
        for start in range(0, len(uids), self.fetch_size):
            chunk = uids[start:start + self.fetch_size]
            for item in imap.fetch(chunk):
                yield from self._message(folder.name, item)
            yield from self.mapper.correspondents()
            self._parts[folder.name] = {"uidvalidity": folder.uidvalidity, "uid": chunk[-1]}
            self.progress(f"imap: {folder.name}, {self.read:,} messages read")

    def _message(self, folder: str, item: Fetched) -> Iterator[Record | InvalidRecord]:
        self.read += 1
        try:
            message = parse_headers(item.headers, fallback_date=item.arrived)
        except MalformedMessage as exc:
            self.malformed += 1
            yield InvalidRecord("message", exc.message_id, exc.field, exc.reason).at(
                f"{folder}: UID {item.uid}")
            return
        yield from self.mapper.message(message)
