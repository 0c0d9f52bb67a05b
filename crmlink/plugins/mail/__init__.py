"""The mail connector: ``crmlink sync mail PATH`` reads mbox files, folders of ``.eml``
files and Maildirs and links the messages to the CRM sources in the store
(docs/connectors/mail.md).

An ordinary plugin on the public API: the headers become :class:`crmlink.MailMessage`
and :class:`crmlink.ActivityMapper` decides what they are. A run is one transaction; a
malformed message is skipped and counted by default (``--on-error fail`` stops the run
and stores nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from crmlink import (
    ActivityMapper,
    ConfigError,
    Connector,
    Correspondent,
    Interaction,
    InvalidRecord,
    MalformedMessage,
    Record,
    Setting,
    Stream,
    SyncContext,
    hookimpl,
    parse_headers,
)

#: Seconds between progress lines.
PROGRESS_EVERY = 0.5
#: Messages between two yields of the unknown people they named (kept in the mapper's
#: spool meanwhile).
PEOPLE_EVERY = 500


class MessagesStream(Stream):
    """Every message under the path, as interactions (a message read twice once), each
    few hundred followed by the unknown people (:class:`crmlink.Correspondent`) they
    named: those are stored in the same stream as the messages that name them, so no
    run can store the one without the other."""

    name = "messages"
    entity = Interaction
    companions: ClassVar[tuple[type[Record], ...]] = (Correspondent,)

    def __init__(self, path: Path, mapper: ActivityMapper, context: SyncContext) -> None:
        self.path, self.mapper, self.context = path, mapper, context

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        from crmlink.plugins.mail.mailboxes import messages  # the email package, when a sync reads

        read, malformed, shown = 0, 0, time.monotonic()
        for item in messages(self.path):
            read += 1
            if time.monotonic() - shown > PROGRESS_EVERY:
                shown = time.monotonic()
                self.context.progress(f"mail: {read:,} messages read from {self.path}")
            try:
                if item.error is not None:
                    raise item.error
                message = parse_headers(item.headers)
            except MalformedMessage as exc:
                malformed += 1
                yield InvalidRecord("message", exc.message_id, exc.field, exc.reason).at(item.location)
                continue
            yield from self.mapper.message(message)
            if read % PEOPLE_EVERY == 0:
                yield from self.mapper.correspondents()
        yield from self.mapper.correspondents()
        self.context.notice(f"mail: {read:,} messages read, {malformed:,} malformed; of the others: "
                            f"{self.mapper.summary()}")


class MailConnector(Connector):
    """Message headers from mbox, .eml and Maildir, linked to the CRM sources in the store."""

    name = "mail"
    description = ("Mailboxes (mbox files, folders of .eml files, Maildir with its subfolders): "
                   "message headers linked to the CRM sources in the store (docs/connectors/mail.md).")
    settings = (
        Setting("path", "An mbox file, an .eml file, a Maildir, or a folder holding any of them.",
                required=True, argument=True),
        Setting("internal_domain", "One of our mail domains (repeat for more); added to [identity] "
                "internal_domains and our users' domains.", multiple=True),
    )
    atomic = True
    on_error = "skip"

    def streams(self) -> Iterator[Stream]:
        path = Path(self.config["path"])
        if not path.exists():
            raise ConfigError(f"{path} does not exist; give an mbox file, an .eml file, a Maildir "
                              "or a folder holding them")
        mapper = ActivityMapper.for_run(self.context, self.config["internal_domain"], "mail")
        yield MessagesStream(path, mapper, self.context)


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    register(MailConnector)


__all__ = ["MailConnector", "MessagesStream"]
