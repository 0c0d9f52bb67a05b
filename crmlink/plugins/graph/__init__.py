"""Microsoft 365 mail and calendars through Microsoft Graph (docs/connectors/graph.md).

App-only sign-in (client credentials, through msal), then the messages of each named
mailbox's folders and the meetings of its calendar, read with Graph's delta queries so
every run after the first reads only what changed. Headers only: no body is requested.
Messages and meetings become interactions through the core's identity resolver and
activity mapper, linked to the CRM sources already in the store.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

# Without msal the plugin must not load (``crmlink plugins`` and ``crmlink sync graph`` then
# say how to install it); it is imported only when the first request is made.
if importlib.util.find_spec("msal") is None:
    raise ModuleNotFoundError("No module named 'msal'", name="msal")

from crmlink import (
    ActivityMapper,
    Check,
    ConfigError,
    Connector,
    CrmlinkError,
    Setting,
    Stream,
    hookimpl,
    normalize_address,
)

# the client module imports msal and requests only when it signs in; the streams and the
# doctor are imported when a Graph sync or doctor runs
from .client import DEFAULT_AUTHORITY, DEFAULT_BASE_URL, GraphClient, classify_error

#: Inbox first: a reply of ours is then read after the customer's message it answers.
DEFAULT_FOLDERS = ("inbox", "sentitems")


class GraphConnector(Connector):
    """Mailboxes and calendars of a Microsoft 365 tenant, app-only."""

    name = "graph"
    description = ("Microsoft 365 mail and calendars through Microsoft Graph: the headers of the "
                   "messages in the named mailboxes' Inbox and Sent Items and the meetings in their "
                   "calendars, incrementally. App-only sign-in with an app registration's client "
                   "secret (Mail.ReadBasic.All and Calendars.Read, with admin consent).")
    settings = (
        Setting("tenant_id", "Directory (tenant) ID of the Microsoft 365 organization, or its "
                "domain (contoso.onmicrosoft.com).", required=True),
        Setting("client_id", "Application (client) ID of the app registration.", required=True),
        Setting("client_secret", "A client secret of the app registration (its Value).",
                secret=True, required=True),
        Setting("mailbox", "Address of a mailbox to read (user or shared); repeat the option for "
                "more.", required=True, multiple=True),
        Setting("folder", "Mail folder to read, a well-known name (inbox, sentitems, archive...) or "
                "a folder id; repeat for more [default: inbox and sentitems].", multiple=True,
                default=DEFAULT_FOLDERS),
        Setting("internal_domain", "A mail domain of our own besides the mailboxes' domains and "
                "[identity] internal_domains; repeat for more.", multiple=True),
        Setting("base_url", "Microsoft Graph's URL up to the version (national clouds, proxies, the "
                "emulator).", default=DEFAULT_BASE_URL),
        Setting("authority_url", "The sign-in host (national clouds, the emulator); the tenant id "
                "is added to it.", default=DEFAULT_AUTHORITY),
        Setting("timeout", "Seconds to wait for each request.", default=30.0, type=float),
        Setting("page_size", "Items per page Graph is asked for (odata.maxpagesize).", default=500,
                type=int),
        Setting("api_budget", "Most Graph requests this run may make; then it stops cleanly and "
                "the next run resumes.", type=int),
    )
    #: A message or meeting Graph sends that cannot be read is skipped and counted.
    on_error = "skip"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.mailboxes = _mailboxes(self.config.get("mailbox"))
        self.folders = _strings(self.config.get("folder")) or list(DEFAULT_FOLDERS)
        if int(self.config.get("page_size") or 0) < 1:
            raise ConfigError("graph: --page-size must be at least 1")
        self._client: GraphClient | None = None

    @property
    def client(self) -> GraphClient:
        if self._client is None:
            c = self.config
            budget = c.get("api_budget")
            self._client = GraphClient(
                tenant_id=str(c["tenant_id"]), client_id=str(c["client_id"]),
                client_secret=str(c["client_secret"]), base_url=str(c["base_url"]),
                authority_url=str(c["authority_url"]), timeout=float(c["timeout"]),
                budget=int(budget) if budget is not None else None)
        return self._client

    def streams(self) -> Iterator[Stream]:
        """Messages, then meetings, each with the unknown people its items named (one
        mapper, so a run yields each interaction once)."""
        from .streams import EventsStream, MessagesStream

        ours = {m.split("@", 1)[1] for m in self.mailboxes}
        domains = [*ours, *_strings(self.config.get("internal_domain"))]
        mapper = ActivityMapper.for_run(self.context, domains, "mail and meetings")
        settings = mapper.resolver.settings
        common: dict[str, Any] = {"page_size": int(self.config["page_size"]),
                                  "notice": self.context.notice, "progress": self.context.progress}
        yield MessagesStream(self.client, mapper, self.mailboxes, self.folders,
                             subjects=settings.store_subjects, **common)
        yield EventsStream(self.client, mapper, self.mailboxes, now=self.context.now,
                           history=timedelta(days=settings.history_days), **common)

    def classify_error(self, exc: BaseException) -> CrmlinkError | None:
        return classify_error(exc)

    def diagnose(self) -> Iterable[Check]:
        """Sign in, then read one message and one event of each mailbox."""
        from .doctor import diagnose

        return diagnose(self.client, self.mailboxes)

    def secrets(self) -> list[str]:
        """The client secret and the access token of this run."""
        found = super().secrets()
        token = self._client.access_token if self._client is not None else None
        return [*found, token] if token and token not in found else found


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    items: Iterable[Any] = [value] if isinstance(value, str) else value
    return [str(v).strip() for v in items if str(v).strip()]


def _mailboxes(value: Any) -> list[str]:
    found: list[str] = []
    for text in _strings(value):
        address = normalize_address(text)
        if address is None:
            raise ConfigError(f"graph: --mailbox {text!r} is not an email address; give the "
                              "mailbox's primary SMTP address (ann@contoso.com)")
        if address not in found:
            found.append(address)
    if not found:
        raise ConfigError("graph: --mailbox is required (or set GRAPH_MAILBOX)")
    return found


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    register(GraphConnector)


__all__ = ["GraphConnector"]
