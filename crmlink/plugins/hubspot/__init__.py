"""The HubSpot connector, through hubspot-api-client (docs/connectors/hubspot.md).

Owners, deal pipelines and stages, companies, contacts, deals (with stage history, contact
roles and, from a deal property named in config, competitors), calls, meetings, emails,
notes and tasks, and tickets (support cases), mapped to canonical records.
The first run lists everything; later runs search for what changed since the saved cursor.
A client-side limiter keeps a sync under HubSpot's rate limits; errors are classified for
the host's retry policy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

# Without hubspot-api-client the plugin must not load (``crmlink plugins`` and ``crmlink
# sync hubspot`` then say how to install it) rather than fail in the middle of a sync; it is
# looked for here, and imported only where a request is made (importing it takes ~0.1 s).
# This plugin's own modules (the client, streams, mapping, doctor and push target) are
# imported when a HubSpot sync, doctor or push runs, not by every command.
if importlib.util.find_spec("hubspot") is None:
    raise ModuleNotFoundError("No module named 'hubspot'", name="hubspot")

from crmlink import (
    Check,
    ConfigError,
    Connector,
    CrmlinkError,
    PushTarget,
    Setting,
    Stream,
    hookimpl,
)

if TYPE_CHECKING:
    from crmlink.plugins.hubspot.client import HubSpotApi


class HubSpotConnector(Connector):
    """HubSpot CRM through a private-app token or OAuth."""

    name = "hubspot"
    description = ("HubSpot CRM: owners, companies, contacts, deals with stage history, contact "
                   "roles and competitors, engagements and tickets. Uses a private-app token or OAuth.")
    settings = (
        Setting("access_token", "A private-app access token (pat-...).", secret=True,
                envvar="HUBSPOT_ACCESS_TOKEN"),
        Setting("base_url", "The API base URL (for proxies and tests).", default="https://api.hubapi.com"),
        Setting("client_id", "OAuth app client id (with --client-secret and --refresh-token)."),
        Setting("client_secret", "OAuth app client secret.", secret=True),
        Setting("refresh_token", "OAuth refresh token.", secret=True),
        Setting("timeout", "Seconds to wait for each request.", default=30.0, type=float),
        Setting("page_size", "Records per list request (at most 100).", default=100, type=int),
        Setting("rate_limit", "Requests per 10 seconds the portal allows (100; 190 on Professional "
                "and Enterprise; 250 with the capacity pack).", default=100, type=int),
        Setting("search_rate", "Search requests per second (HubSpot allows 5).", default=5, type=int),
        Setting("daily_budget", "Stop cleanly after this many API requests in one run; the next "
                "run resumes.", type=int),
        Setting("tier_property", "A company property holding the account tier (S, A, B, C)."),
        Setting("competitor_property", "A deal property naming the deal's competitors (a multi-select's "
                "values separated by ';'): each value becomes a competitor record."),
    )

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        c = self.config
        if not c.get("access_token") and not (c.get("client_id") and c.get("client_secret")
                                              and c.get("refresh_token")):
            raise ConfigError("hubspot: --access-token is required (or set HUBSPOT_ACCESS_TOKEN, or "
                              "store it with 'crmlink login SOURCE'), or give --client-id, "
                              "--client-secret and --refresh-token for OAuth")
        self._api: HubSpotApi | None = None

    @property
    def api(self) -> HubSpotApi:
        if self._api is None:
            from crmlink.plugins.hubspot.client import HubSpotApi

            c = self.config
            self._api = HubSpotApi(
                access_token=c.get("access_token"), base_url=c.get("base_url") or "https://api.hubapi.com",
                timeout=float(c.get("timeout") or 30.0), rate_limit=int(c.get("rate_limit") or 100),
                search_per_second=int(c.get("search_rate") or 5),
                daily_budget=c.get("daily_budget"), client_id=c.get("client_id"),
                client_secret=c.get("client_secret"), refresh_token=c.get("refresh_token"))
        return self._api

    def streams(self) -> Iterator[Stream]:
        from crmlink.plugins.hubspot.streams import Session, build

        context = self.context
        session = Session(self.api, self.config, context.notice,
                          lambda entity: context.records(entity, context.source))
        if self.config.get("competitor_property"):
            session.competitor_property()  # a wrong name stops the run before anything is read
        yield from build(session)

    def classify_error(self, exc: BaseException) -> CrmlinkError | None:
        from crmlink.plugins.hubspot.client import classify

        return classify(exc)

    def diagnose(self) -> Iterable[Check]:
        """Probe each object type, the pipelines and property schemas; read the daily limit."""
        from crmlink.plugins.hubspot.doctor import diagnose

        return diagnose(self.api, self.config)

    def secrets(self) -> list[str]:
        """The secret settings and an access token renewed through OAuth during the run."""
        found = super().secrets()
        token = self._api.access_token if self._api is not None else None
        return [*found, token] if token and token not in found else found


@hookimpl
def register_connectors(register: Any) -> None:
    register(HubSpotConnector)


@hookimpl
def register_push_targets(register: Callable[[type[PushTarget]], None]) -> None:
    """The HubSpot push target (:mod:`.push`, imported when a push asks for targets)."""
    from crmlink.plugins.hubspot.push import register_push_targets as register_target

    register_target(register)


__all__ = ["HubSpotConnector", "register_push_targets"]
