"""Any mail server through IMAP (docs/connectors/imap.md): ``crmlink sync imap``.

Logs in with a password (LOGIN) or an OAuth2 access token (XOAUTH2: Gmail, Microsoft
365), reads the Inbox and the Sent folder (found by its SPECIAL-USE attribute) or the
folders named, header fields only, and after the first run only the messages above the
last UID read in each folder. Messages become interactions through the core's
:class:`~crmlink.ActivityMapper`, linked to the CRM sources already in the store.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

# Without IMAPClient the plugin must not load (``crmlink plugins`` and ``crmlink sync imap``
# then say how to install it); it is imported when the first connection is made, and this
# plugin's own modules when an IMAP sync or doctor runs.
if importlib.util.find_spec("imapclient") is None:
    raise ModuleNotFoundError("No module named 'imapclient'", name="imapclient")

from crmlink import (
    ActivityMapper,
    Check,
    ConfigError,
    Connector,
    CrmlinkError,
    Setting,
    Stream,
    hookimpl,
)

if TYPE_CHECKING:
    from .client import ImapSession

SECURITY_FLAGS = ("ssl", "starttls", "plain")


class ImapConnector(Connector):
    """The Inbox and Sent folder (or the folders named) of one mailbox, over IMAP."""

    name = "imap"
    description = ("Any mail server over IMAP (Gmail and Microsoft 365 included): the header "
                   "fields of the messages in the Inbox and the Sent folder, incrementally by "
                   "UIDVALIDITY and UID, linked to the CRM sources in the store. Password or "
                   "OAuth2 (XOAUTH2) login (docs/connectors/imap.md).")
    settings = (
        Setting("host", "The IMAP server (imap.gmail.com, outlook.office365.com ...).", required=True),
        Setting("port", "Its port [default: 993 with --ssl, 143 with --starttls or --plain].", type=int),
        Setting("ssl", "TLS from the first byte (port 993) [the default].", is_flag=True),
        Setting("starttls", "Connect in clear, then upgrade with STARTTLS (port 143).", is_flag=True),
        Setting("plain", "No TLS at all: the password crosses the network readable; only on a "
                "trusted network or to a local server.", is_flag=True),
        Setting("username", "The login name (usually the mailbox's address).", required=True),
        Setting("password", "The password, or an app password (Gmail, Microsoft 365 with MFA).",
                secret=True),
        Setting("oauth2_token", "An OAuth2 access token for XOAUTH2 (instead of a password).",
                secret=True),
        Setting("folder", "A folder to read (repeat for more) [default: INBOX and the folder "
                "the server marks \\Sent].", multiple=True),
        Setting("internal_domain", "One of our mail domains besides the username's domain, "
                "[identity] internal_domains and our users' domains; repeat for more.",
                multiple=True),
        Setting("ca_file", "A PEM file of the CA certificates to trust (a server with a private CA)."),
        Setting("timeout", "Seconds to wait for the server at each step.", default=60.0, type=float),
        Setting("fetch_size", "Messages per FETCH command.", default=500, type=int),
        Setting("api_budget", "Most FETCH commands this run may send; then it stops cleanly and "
                "the next run resumes.", type=int),
    )
    #: a message that cannot be read is skipped and counted
    on_error = "skip"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        c = self.config
        chosen = [flag for flag in SECURITY_FLAGS if c.get(flag)]
        if len(chosen) > 1:
            raise ConfigError(f"imap: give one of --ssl, --starttls and --plain, not "
                              f"{' and '.join('--' + f for f in chosen)}")
        self.security = chosen[0] if chosen else "ssl"
        if bool(c.get("password")) == bool(c.get("oauth2_token")):
            raise ConfigError("imap: give --password (or IMAP_PASSWORD) or --oauth2-token (or "
                              "IMAP_OAUTH2_TOKEN), one of the two" if not c.get("password") else
                              "imap: give --password or --oauth2-token, not both")
        if int(c.get("fetch_size") or 0) < 1:
            raise ConfigError("imap: --fetch-size must be at least 1")
        from .client import unique

        self.folders = unique(_strings(c.get("folder"))) or None

    def session(self) -> ImapSession:
        """A new connection (not yet open) with this source's settings."""
        from .client import ImapSession

        c = self.config
        budget = c.get("api_budget")
        return ImapSession(host=str(c["host"]), port=c.get("port"), security=self.security,
                           username=str(c["username"]), password=c.get("password"),
                           oauth2_token=c.get("oauth2_token"), ca_file=c.get("ca_file"),
                           timeout=float(c["timeout"]),
                           budget=int(budget) if budget is not None else None)

    def streams(self) -> Iterator[Stream]:
        from .streams import MessagesStream

        own = str(self.config["username"]).rpartition("@")[2]
        domains = [*([own] if own else []), *_strings(self.config.get("internal_domain"))]
        mapper = ActivityMapper.for_run(self.context, domains, "mail")
        shared = self.session()  # one budget across the retries of the run

        def connect() -> ImapSession:
            return shared

        if self.security == "plain":
            self.context.notice(f"imap: --plain: the login to {self.config['host']} is sent "
                                "without encryption")
        yield MessagesStream(connect, mapper, self.folders, fetch_size=int(self.config["fetch_size"]),
                             notice=self.context.notice, progress=self.context.progress)

    def classify_error(self, exc: BaseException) -> CrmlinkError | None:
        from .client import classify_error

        c = self.config
        port = c.get("port") or {"ssl": 993}.get(self.security, 143)
        return classify_error(exc, f"the IMAP server {c['host']}:{port}", str(c["username"]))

    def diagnose(self) -> Iterable[Check]:
        """Log in, list the folders, and select the ones a sync would read."""
        from .doctor import diagnose

        return diagnose(self.session(), self.folders, self.classify_error)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    items: Iterable[Any] = [value] if isinstance(value, str) else value
    return [str(v).strip() for v in items if str(v).strip()]


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    register(ImapConnector)


__all__ = ["ImapConnector"]
