"""One IMAP connection through IMAPClient: TLS (implicit, STARTTLS or none), LOGIN or
XOAUTH2, finding the Inbox and Sent folders, header-only FETCH, the FETCH budget, and
every failure turned into a crmlink error for the host's retry policy.

Nothing here retries. A dropped connection, a ``BYE`` from the server or a timeout is a
:class:`~crmlink.RetriableError`: the host runs the stream again from its last saved
position, on a new connection.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmlink import (
    MAIL_HEADERS,
    AuthError,
    BudgetExhausted,
    CrmlinkError,
    FatalError,
    RetriableError,
)

if TYPE_CHECKING:  # imported when the first connection is made
    from imapclient import IMAPClient

#: What each message's FETCH asks for: the header fields crmlink reads (never the body;
#: PEEK leaves the \Seen flag alone) and the arrival time, the fallback for a bad Date.
HEADER_FIELDS = "BODY.PEEK[HEADER.FIELDS ({})]".format(" ".join(f.upper() for f in MAIL_HEADERS))
FETCH_ITEMS = (HEADER_FIELDS, "INTERNALDATE")
DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "plain": 143}
#: Where a mailbox's Sent folder is found when the server marks none \Sent (RFC 6154).
SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "[Gmail]/Sent Mail",
              "INBOX.Sent", "INBOX/Sent", "Gesendet", "Gesendete Elemente", "Envoyés",
              "Éléments envoyés", "Enviados", "Inviata", "Verzonden")
SENT_FLAG = b"\\Sent"


class UnknownFolder(Exception):
    """A folder named with --folder is not on the server."""


@dataclass(frozen=True)
class Folder:
    """A selected folder: its name, UIDVALIDITY and message count."""

    name: str
    uidvalidity: int
    exists: int


@dataclass(frozen=True)
class Fetched:
    """One message's header block and INTERNALDATE (``None`` when the server sent none)."""

    uid: int
    headers: bytes
    arrived: datetime | None


class ImapSession:
    """A logged-in connection to one mailbox (use as a context manager)."""

    def __init__(self, *, host: str, port: int | None, security: str, username: str,
                 password: str | None, oauth2_token: str | None, ca_file: str | None,
                 timeout: float, budget: int | None = None) -> None:
        self.host, self.security, self.username = host, security, username
        self.port = port or DEFAULT_PORTS[security]
        self._password, self._token = password, oauth2_token
        self.ca_file, self.timeout, self.budget = ca_file, timeout, budget
        self.fetches = 0
        self._client: IMAPClient | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> ImapSession:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect, secure the connection as asked, and log in."""
        from imapclient import IMAPClient

        context = ssl.create_default_context(cafile=self.ca_file)
        client = IMAPClient(self.host, self.port, ssl=self.security == "ssl", ssl_context=context,
                            timeout=self.timeout)
        client.normalise_times = False  # INTERNALDATE with its zone, not in local time
        self._client = client
        if self.security == "starttls":
            client.starttls(context)
        if self._token:
            client.oauth2_login(self.username, self._token)
        else:
            client.login(self.username, self._password or "")

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            with contextlib.suppress(OSError):
                client.shutdown()

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise RuntimeError("not connected")
        return self._client

    def capabilities(self) -> tuple[bytes, ...]:
        return tuple(self.client.capabilities())

    def folders(self) -> list[tuple[tuple[bytes, ...], str]]:
        """(attributes, name) of every folder."""
        return [(tuple(flags), str(name)) for flags, _, name in self.client.list_folders()]

    def sent_folder(self) -> str | None:
        """The folder the server marks \\Sent (SPECIAL-USE, or XLIST on older Gmail), else
        the first folder with a usual Sent name."""
        listed = self.folders()
        for flags, name in listed:
            if SENT_FLAG in flags:
                return name
        if b"XLIST" in self.capabilities():
            for flags, _, name in self.client.xlist_folders():
                if SENT_FLAG in flags:
                    return str(name)
        names = {name.casefold(): name for _, name in listed}
        return next((names[n.casefold()] for n in SENT_NAMES if n.casefold() in names), None)

    def select(self, name: str) -> Folder:
        """Select a folder read-only; :class:`UnknownFolder` when the server has none by
        that name."""
        try:
            answer = self.client.select_folder(name, readonly=True)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise UnknownFolder(name) from exc
        return Folder(name, int(answer.get(b"UIDVALIDITY", 0)), int(answer.get(b"EXISTS", 0)))

    def uids_after(self, folder: Folder, last: int) -> list[int]:
        """UIDs above ``last`` in the selected folder, ascending."""
        if folder.exists == 0:
            return []
        found = self.client.search(["UID", f"{last + 1}:*"])
        return sorted(uid for uid in found if uid > last)

    def fetch(self, uids: Sequence[int]) -> list[Fetched]:
        """The header blocks of ``uids`` (one FETCH command; counted against the budget)."""
        if self.budget is not None and self.fetches >= self.budget:
            raise BudgetExhausted(
                f"imap: the budget of {self.budget} FETCH commands for this run is used up; what "
                "was synced so far is kept and the next run resumes from there")
        self.fetches += 1
        answer = self.client.fetch(list(uids), list(FETCH_ITEMS))
        return [_fetched(uid, answer[uid]) for uid in sorted(answer) if uid in set(uids)]


def _fetched(uid: int, items: dict[bytes, Any]) -> Fetched:
    block = next((v for k, v in items.items() if k.startswith(b"BODY[")), b"") or b""
    arrived = items.get(b"INTERNALDATE")
    return Fetched(uid, bytes(block), arrived if isinstance(arrived, datetime) else None)


def classify_error(exc: BaseException, where: str = "the IMAP server",
                   username: str = "") -> CrmlinkError | None:
    """IMAPClient's, ssl's and socket's exceptions as crmlink errors; ``None`` otherwise."""
    from imapclient.exceptions import LoginError

    if isinstance(exc, CrmlinkError):
        return exc
    if isinstance(exc, LoginError):
        said = _server_text(exc)
        return AuthError(f"{where} refused the login of {username or 'the user'} ({said}): check "
                         "--username and --password (Gmail and Microsoft 365 want an app password "
                         "or an OAuth2 token: --oauth2-token)")
    if isinstance(exc, UnknownFolder):
        return FatalError(f"{where} has no folder {exc.args[0]!r}: check --folder ('crmlink doctor' "
                          "lists the folders)")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return FatalError(f"the TLS certificate of {where} could not be verified "
                          f"({getattr(exc, 'verify_message', None) or exc}); give its CA with --ca-file, or check --host")
    if isinstance(exc, ssl.SSLError):
        return FatalError(f"the TLS handshake with {where} failed ({getattr(exc, 'reason', None) or exc}); port 993 "
                          "speaks TLS from the start (--ssl), port 143 upgrades with --starttls")
    if isinstance(exc, socket.gaierror):
        return FatalError(f"{where}: the host name is unknown ({exc.strerror}); check --host")
    if isinstance(exc, ConnectionRefusedError):
        return FatalError(f"nothing answers at {where} (connection refused); check --host and --port")
    if isinstance(exc, (imaplib.IMAP4.abort, ConnectionError, TimeoutError, EOFError)):
        return RetriableError(f"the connection to {where} broke ({_server_text(exc)}); will retry")
    if isinstance(exc, OSError):
        return RetriableError(f"the connection to {where} failed ({exc.strerror or exc}); will retry")
    if isinstance(exc, imaplib.IMAP4.error):
        text = _server_text(exc)
        if "STARTTLS" in text.upper() or "capability" in type(exc).__name__.lower():
            return FatalError(f"{where} cannot upgrade the connection to TLS ({text}); use --ssl "
                              "(port 993), or --plain only on a trusted network")
        return FatalError(f"{where} refused a command ({text})")
    return None


def _server_text(exc: BaseException) -> str:
    text = " ".join(str(a.decode("utf-8", "replace") if isinstance(a, bytes) else a)
                    for a in exc.args) or type(exc).__name__
    return text.strip()[:200]


def unique(names: Iterable[str]) -> list[str]:
    found: list[str] = []
    for name in names:
        if name and name not in found:
            found.append(name)
    return found
