"""The Salesforce connector, through simple-salesforce (docs/connectors/salesforce.md).

simple-salesforce (with zeep) and requests take about a fifth of a second to import, so
this module imports them, and the modules that use them, only when a Salesforce sync,
doctor or push runs: every other command (a CSV sync, an audit, ``--help``) loads the
connector's name and settings without them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

# Without simple-salesforce the plugin must not load (``crmlink plugins`` and ``crmlink sync
# salesforce`` then say how to install it) rather than fail in the middle of a sync.
if importlib.util.find_spec("simple_salesforce") is None:
    raise ModuleNotFoundError("No module named 'simple_salesforce'", name="simple_salesforce")

from crmlink import (
    AuthError,
    BudgetExhausted,
    Check,
    Connector,
    CrmlinkError,
    FatalError,
    PushTarget,
    RetriableError,
    Setting,
    Stream,
    hookimpl,
)

if TYPE_CHECKING:
    from simple_salesforce.exceptions import SalesforceError

    from .client import Client

__all__ = ["SalesforceConnector", "classify_error", "register_connectors", "register_push_targets"]


class SalesforceConnector(Connector):
    name = "salesforce"
    description = ("Sync accounts, contacts, users, activities, opportunities, contact roles, "
                   "stage history, stages, leads, contracts and orders from Salesforce. Log in through the "
                   "Salesforce CLI (--target-org ALIAS); username, password and security token; OAuth "
                   "JWT bearer (--private-key-file); OAuth client credentials; or a session id with "
                   "--instance-url.")
    settings = (
        Setting("target_org", "Alias or username of an org the Salesforce CLI (sf) is logged in to: "
                "crmlink uses and renews that CLI session (sf org display --target-org ALIAS)."),
        Setting("instance_url", "Org URL, e.g. https://acme.my.salesforce.com (required with --session-id)."),
        Setting("username", "Salesforce username (password and JWT flows)."),
        Setting("password", "Salesforce password.", secret=True),
        Setting("security_token", "Security token appended to the password (Settings > Reset My Security Token).", secret=True),
        Setting("domain", "Login domain: login (production), test (sandbox) or a My Domain such as acme.my.", default="login"),
        Setting("session_id", "An existing session id / access token (use with --instance-url).", secret=True),
        Setting("consumer_key", "Connected app consumer key (OAuth flows)."),
        Setting("consumer_secret", "Connected app consumer secret (OAuth password or client-credentials flow).", secret=True),
        Setting("private_key_file", "PEM private key of the connected app's certificate (OAuth JWT bearer flow)."),
        Setting("timeout", "Seconds to wait for each HTTP request.", default=30.0, type=float),
        Setting("api_budget", "Most API requests this run may make; then it stops cleanly and the next run resumes.", type=int),
        Setting("bulk_threshold", "Use Bulk API 2.0 for an object when more records than this match.", default=50_000, type=int),
        Setting("tier_field", "API name of an Account field holding the tier (S/A/B/C)."),
        Setting("stance_field", "API name of a Contact field holding the stance (-2..3 or a name)."),
        Setting("method_field", "API name of a Task/Event field holding the engagement method."),
        Setting("team_role_field", "API name of a User field holding the team role (AR/SR/FR)."),
        Setting("reconcile", "Also list every object's ids (SELECT Id, 2000 a page) and mark stored records "
                "whose ids are gone as deleted: catches hard deletes.", is_flag=True, type=bool),
        Setting("login_url", "Login host instead of https://<domain>.salesforce.com (proxies, tests)."),
        Setting("page_size", "Records per query page (200-2000).", default=2000, type=int),
    )

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.run_start = datetime.now(timezone.utc).replace(microsecond=0)
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from .client import Client

            self._client = Client(self.config)
        return self._client

    def streams(self) -> Iterable[Stream]:
        from .streams import STREAMS

        for cls in STREAMS:
            yield cls(self.client, self.config, self.run_start)

    def diagnose(self) -> Iterable[Check]:
        """Log in, describe the objects the sync reads, and read the org's API limits."""
        from .doctor import diagnose

        return diagnose(self.client, self.config)

    def secrets(self) -> list[str]:
        """The secret settings and the session the run logged in with (a login flow's or
        the Salesforce CLI's token is a secret too)."""
        found = super().secrets()
        session = self._client.session_id if self._client is not None else None
        return [*found, session] if session else found

    def classify_error(self, exc: BaseException) -> CrmlinkError | None:
        found = classify_error(exc, direct=bool(self.config.get("session_id")),
                               cli=bool(self.config.get("target_org")))
        after = self._client.adapter.retry_after if self._client is not None else None
        if isinstance(found, RetriableError) and after and found.retry_after is None:
            with contextlib.suppress(ValueError):
                found.retry_after = float(after)
        return found


def _code_and_message(exc: SalesforceError) -> tuple[str, str]:
    content = getattr(exc, "content", None)
    if isinstance(content, (bytes, str)):
        with contextlib.suppress(ValueError):
            content = json.loads(content)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode") or ""), str(content[0].get("message") or "")
    if isinstance(content, dict):
        return str(content.get("errorCode") or content.get("error") or ""), str(content.get("message") or "")
    return "", ""


def classify_error(exc: BaseException, *, direct: bool = False, cli: bool = False) -> CrmlinkError | None:
    """The one place that turns simple-salesforce/requests exceptions into crmlink errors.

    ``direct`` says the session came from ``--session-id`` (it cannot be renewed) and
    ``cli`` that it came from the Salesforce CLI. Messages carry the error code and what
    to do, never credentials or session ids.
    """
    if isinstance(exc, CrmlinkError):
        return exc
    import requests
    from simple_salesforce.exceptions import (
        SalesforceAuthenticationFailed,
        SalesforceError,
        SalesforceExpiredSession,
        SalesforceOperationError,
    )

    if isinstance(exc, SalesforceAuthenticationFailed):
        code = str(getattr(exc, "code", "") or "")
        if code in ("invalid_client_id", "invalid_client"):
            return AuthError(f"Salesforce rejected the connected app ({code}); check --consumer-key and --consumer-secret")
        if code == "invalid_grant" and getattr(exc, "auth_message", "") != "authentication failure":
            return AuthError(f"Salesforce refused the login ({code}: {getattr(exc, 'auth_message', '')}); "
                             "check the connected app's policies and that the user is pre-authorized")
        return AuthError("Salesforce rejected the username, password or security token; reset the token "
                         "under Settings > Reset My Security Token")
    if isinstance(exc, SalesforceExpiredSession):
        if direct:
            return AuthError("Salesforce says the session id is expired or invalid (INVALID_SESSION_ID); "
                             "get a new session id or use a login flow, which renews itself")
        if cli:
            return AuthError("Salesforce rejected the session the Salesforce CLI renewed (INVALID_SESSION_ID); "
                             "log in again with 'sf org login web' and check the user's IP restrictions")
        return AuthError("Salesforce rejected the session again right after a new login (INVALID_SESSION_ID); "
                         "check the user's session settings and IP restrictions")
    if isinstance(exc, SalesforceOperationError):
        return RetriableError(f"a Salesforce Bulk API 2.0 job failed: {exc}")
    if isinstance(exc, SalesforceError):
        return _classify_status(exc)
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        return RetriableError(f"no answer from Salesforce ({type(exc).__name__}); will retry")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return RetriableError("Salesforce's response was cut off; will retry")
    if isinstance(exc, requests.JSONDecodeError):
        return RetriableError("Salesforce's response was not complete JSON (truncated); will retry")
    return None


def _classify_status(exc: SalesforceError) -> CrmlinkError:
    status = int(getattr(exc, "status", 0) or 0)
    code, message = _code_and_message(exc)
    where = f"{code}: {message}" if code else f"HTTP {status}"
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "TotalRequests" in message or "total" in message.lower():
            return BudgetExhausted("Salesforce's daily API request limit is used up (REQUEST_LIMIT_EXCEEDED); "
                                   "what was synced is kept; run again after the limit resets or ask for more")
        return RetriableError(f"Salesforce is throttling ({where}); will retry")
    if code == "API_DISABLED_FOR_ORG" or code == "API_CURRENTLY_DISABLED":
        return FatalError(f"the Salesforce API is not enabled for this org or user ({code}); it needs an edition "
                          "with API access and the 'API Enabled' permission on the user's profile")
    if code in ("INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY", "INSUFFICIENT_PRIVILEGES"):
        return FatalError(f"the Salesforce user may not read this ({code}: {message}); give it 'View All "
                          "Data' or read access to the objects crmlink syncs")
    if code == "INVALID_QUERY_LOCATOR" or code == "QUERY_TIMEOUT" or status == 429 or status >= 500:
        return RetriableError(f"Salesforce failed temporarily ({where}); will retry")
    if status == 403:
        return FatalError(f"Salesforce refused the request ({where})")
    return FatalError(f"Salesforce rejected a request ({where})")


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    register(SalesforceConnector)


@hookimpl
def register_push_targets(register: Callable[[type[PushTarget]], None]) -> None:
    """The Salesforce push target (:mod:`.push`, imported when a push asks for targets)."""
    from .push import register_push_targets as register_target

    register_target(register)
