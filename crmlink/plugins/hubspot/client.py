"""A thin, rate-limited wrapper over hubspot-api-client.

Every call goes through :meth:`HubSpotApi.call`, which waits for the client-side limiters,
passes a timeout, decodes the JSON body itself (the generated models are slow and strict)
and turns the client's exceptions into crmlink errors. API objects are built once: each
``client.crm.<x>.<y>_api`` access builds a new connection pool.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from urllib3.util.retry import Retry

from crmlink import (
    AuthError,
    BudgetExhausted,
    ConnectorError,
    CrmlinkError,
    FatalError,
    RetriableError,
)

#: Default wait after a 429 that carries no Retry-After (HubSpot's window is 10 s).
DEFAULT_RETRY_AFTER = 10.0
#: Longest URL we build; HubSpot answers 414 at about 8 KB.
MAX_URL = 7000


class WindowLimiter:
    """At most ``limit`` requests in any ``window`` seconds, measured from each request's end.

    Counting from the moment a response arrived (not when it was sent) guarantees the
    server, which counts arrivals, never sees more than ``limit`` in its rolling window.
    """

    def __init__(self, limit: int, window: float, margin: float = 0.05) -> None:
        self.limit, self.window, self.margin = max(1, int(limit)), window, margin
        self._done: deque[float] = deque()
        self._inflight = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._done and self._done[0] + self.window + self.margin <= now:
                    self._done.popleft()
                if len(self._done) + self._inflight < self.limit:
                    self._inflight += 1
                    return
                wait = (self._done[0] + self.window + self.margin - now) if self._done else 0.01
            time.sleep(max(wait, 0.001))

    def release(self) -> None:
        with self._lock:
            self._inflight -= 1
            self._done.append(time.monotonic())


class HubSpotApi:
    """The calls the connector makes, with limits, timeouts and error classification."""

    def __init__(self, *, access_token: str | None, base_url: str, timeout: float,
                 rate_limit: int = 100, search_per_second: int = 5, daily_budget: int | None = None,
                 client_id: str | None = None, client_secret: str | None = None,
                 refresh_token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.burst = WindowLimiter(rate_limit, 10.0)
        self.search = WindowLimiter(search_per_second, 1.0)
        self.daily_budget = daily_budget
        self.requests = 0
        self._oauth = (client_id, client_secret, refresh_token)
        self._token = access_token
        self._client: Any = None
        self._apis: dict[str, Any] = {}
        #: the response headers of the last call (rate-limit headers, for crmlink doctor)
        self.last_headers: dict[str, str] = {}

    @property
    def access_token(self) -> str | None:
        """The token requests are made with (given, or renewed through OAuth): a secret."""
        return self._token

    # --- client and API objects -----------------------------------------------------------
    def _make_client(self) -> Any:
        from hubspot import HubSpot

        if not self._token:
            self._token = self._refresh()
        # No silent retries: the host retries, and a 429 must reach us to be classified.
        retry = Retry(total=0, connect=0, read=0, status=0, redirect=2, raise_on_status=False,
                      respect_retry_after_header=False, status_forcelist=())
        return HubSpot(access_token=self._token, host=self.base_url, retry=retry)

    def api(self, name: str) -> Any:
        """A cached API object: ``objects.basic``, ``objects.search``, ``objects.batch``,
        ``associations``, ``owners``, ``pipelines``, ``properties``, ``properties.groups``,
        ``properties.batch``."""
        found = self._apis.get(name)
        if found is None:
            if self._client is None:
                self._client = self._make_client()
            crm = self._client.crm
            found = {
                "objects.basic": lambda: crm.objects.basic_api,
                "objects.search": lambda: crm.objects.search_api,
                "objects.batch": lambda: crm.objects.batch_api,
                "associations": lambda: crm.associations.v4.batch_api,
                "owners": lambda: crm.owners.owners_api,
                "pipelines": lambda: crm.pipelines.pipelines_api,
                "properties": lambda: crm.properties.core_api,
                "properties.groups": lambda: crm.properties.groups_api,
                "properties.batch": lambda: crm.properties.batch_api,
            }[name]()
            self._apis[name] = found
        return found

    def _refresh(self) -> str:
        client_id, client_secret, refresh_token = self._oauth
        if not (client_id and client_secret and refresh_token):
            raise AuthError("hubspot: give --access-token (a private-app token, or set "
                            "HUBSPOT_ACCESS_TOKEN) or --client-id, --client-secret and --refresh-token")
        from hubspot import HubSpot

        tokens = HubSpot(host=self.base_url).oauth.tokens_api
        self._count()
        try:
            with _limited(self.burst):
                answer = tokens.create(grant_type="refresh_token", client_id=client_id,
                                       client_secret=client_secret, refresh_token=refresh_token,
                                       _request_timeout=self.timeout)
        except Exception as exc:
            if getattr(exc, "status", None) in (400, 401):
                raise AuthError("the HubSpot OAuth refresh token or client credentials were "
                                "refused; authorise the app again to get a new refresh token") from None
            raise (classify(exc) or exc) from exc
        return str(answer.access_token)

    # --- calls -----------------------------------------------------------------------------
    def call(self, api: str, method: str, *args: Any, search: bool = False, **kwargs: Any) -> Any:
        """Call ``api.method`` and return the decoded JSON body."""
        self._count()
        limiter = self.search if search else self.burst
        target: Callable[..., Any] = getattr(self.api(api), method)
        with _limited(limiter):
            try:
                response = target(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
            except Exception as exc:
                if getattr(exc, "status", None) == 401 and self._oauth[2] and self._can_refresh(exc):
                    self._token, self._client, self._apis = self._refresh(), None, {}
                    response = getattr(self.api(api), method)(
                        *args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
                else:
                    raise
            data = response.data
            self.last_headers = dict(response.headers or {})
        return json.loads(data) if data else {}

    def _can_refresh(self, exc: BaseException) -> bool:
        return "EXPIRED" in str(getattr(exc, "body", "") or "")

    def _count(self) -> None:
        if self.daily_budget is not None and self.requests >= int(self.daily_budget):
            raise BudgetExhausted(
                f"hubspot: this run used its budget of {self.daily_budget} API requests "
                "(--daily-budget); what was read is saved and the next run resumes from there")
        self.requests += 1


class _limited:
    def __init__(self, limiter: WindowLimiter) -> None:
        self.limiter = limiter

    def __enter__(self) -> None:
        self.limiter.acquire()

    def __exit__(self, *exc: object) -> None:
        self.limiter.release()


def _body(exc: BaseException) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _header(exc: BaseException, name: str) -> str | None:
    headers = getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    return str(value) if value is not None else None


def lacks_scope(exc: BaseException) -> bool:
    """True for HubSpot's 403 ``MISSING_SCOPES``: the token may not read this object type."""
    return getattr(exc, "status", None) == 403 and _body(exc).get("category") == "MISSING_SCOPES"


def classify(exc: BaseException) -> CrmlinkError | None:
    """Turn a hubspot-api-client or urllib3 exception into a crmlink error (never with the token)."""
    if isinstance(exc, CrmlinkError):
        return exc
    status = getattr(exc, "status", None)
    if status is not None and hasattr(exc, "reason"):
        return _classify_status(int(status or 0), exc)
    import urllib3.exceptions as u3

    if isinstance(exc, (u3.HTTPError, ConnectionError, TimeoutError, OSError)):
        name = type(getattr(exc, "reason", None) or exc).__name__
        return RetriableError(f"HubSpot could not be reached or did not answer in time ({name}); "
                              "will retry")
    return None


def _classify_status(status: int, exc: BaseException) -> CrmlinkError:
    body = _body(exc)
    category = str(body.get("category") or "")
    if status == 0:
        return RetriableError("the connection to HubSpot failed (TLS or network); will retry")
    if status == 429:
        policy = str(body.get("policyName") or "")
        if policy.upper() == "DAILY":
            return BudgetExhausted("HubSpot's daily API limit for this portal is used up; what was "
                                   "read is saved, and the next run (after midnight in the portal's "
                                   "time zone) resumes from there")
        after = _header(exc, "Retry-After")
        try:
            retry_after = float(after) if after is not None else None
        except ValueError:
            retry_after = None
        guess = 1.0 if policy.upper() == "SECONDLY" else DEFAULT_RETRY_AFTER
        said = f"; HubSpot asked to wait {retry_after:g}s" if retry_after is not None else ""
        return RetriableError(f"HubSpot rate limit reached ({policy or 'HTTP 429'}){said}",
                              retry_after=retry_after, suggested_wait=guess)
    if status == 401:
        if "EXPIRED" in category:
            return AuthError("the HubSpot token expired: if it is a private-app token it was "
                             "rotated, so pass the current one (Settings > Integrations > Private "
                             "Apps) with --access-token; for OAuth give --client-id, --client-secret "
                             "and --refresh-token so crmlink renews it")
        return AuthError("the HubSpot token is invalid or expired; create a new private-app token "
                         "(Settings > Integrations > Private Apps) and pass it with --access-token "
                         "or HUBSPOT_ACCESS_TOKEN")
    if status == 403:
        if category == "MISSING_SCOPES":
            scopes: list[str] = []
            for error in body.get("errors") or []:
                context = error.get("context") or {}
                for key in ("requiredGranularScopes", "requiredScopes"):
                    scopes.extend(str(s) for s in context.get(key) or [])
            named = ", ".join(dict.fromkeys(scopes)) or "see HubSpot's message"
            return FatalError(f"the HubSpot token lacks scopes this sync needs: {named}; add them "
                              "to the private app (or OAuth app) and try again")
        return FatalError(f"HubSpot refused the request (403 {category or 'FORBIDDEN'}); check the "
                          "app's permissions")
    if status == 414:
        return FatalError("HubSpot refused a request URL as too long (414); lower the number of "
                          "requested properties")
    if status >= 500 or status in (408, 423):
        return RetriableError(f"HubSpot answered {status} (temporary server error); will retry")
    message = str(body.get("message") or getattr(exc, "reason", "") or "")[:300]
    return ConnectorError(f"HubSpot answered {status} {category}: {message}".rstrip(": "))


__all__ = ["HubSpotApi", "WindowLimiter", "classify", "lacks_scope", "MAX_URL"]
