"""Microsoft Graph over HTTP: an app-only token from msal, GET with paging preferences, the
API budget, and every failure turned into a crmlink error for the host's retry policy.

Nothing here retries, except one thing the host cannot do: when Graph says the access
token expired (401), the cached token is dropped and the request is sent once more with a
new one. Throttling (429 with Retry-After), 5xx answers and broken connections become
:class:`~crmlink.RetriableError` and the sync engine retries them like every connector's.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crmlink import AuthError, BudgetExhausted, CrmlinkError, FatalError, RetriableError

if TYPE_CHECKING:  # msal and requests are imported when the first request is made
    import msal
    import requests

#: The identity platform's own host: msal knows it and may check other authorities with it.
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
SCOPE = "https://graph.microsoft.com/.default"
#: What the app registration needs (application permissions, with admin consent).
PERMISSIONS = "Mail.ReadBasic.All and Calendars.Read"

#: AADSTS codes of the token endpoint, and what the user should do about them.
TOKEN_ERRORS = {
    7000215: "the client secret is wrong: pass the secret's Value (not its Secret ID) from "
             "Certificates & secrets of the app registration",
    7000222: "the client secret has expired: create a new one under Certificates & secrets",
    7000218: "no client secret was sent: give --client-secret or GRAPH_CLIENT_SECRET",
    700016: "no app with this client id is registered in the tenant: check --client-id and "
            "--tenant-id (the app's Application (client) ID and Directory (tenant) ID)",
    90002: "the tenant does not exist: check --tenant-id",
    900023: "the tenant id is malformed: give the Directory (tenant) ID GUID or a domain",
    7000112: "the app registration is disabled",
    1002012: "the scope was refused",
}


class SyncReset(Exception):
    """Graph no longer knows a delta or skip token (410, ``syncStateNotFound``,
    ``resyncRequired``): that folder or calendar must be read again from the start."""


@dataclass
class GraphError(Exception):
    """A Graph error answer, before it is classified."""

    status: int
    code: str
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class GraphClient:
    """GET requests to Graph with an app-only token for one tenant and app."""

    def __init__(self, *, tenant_id: str, client_id: str, client_secret: str,
                 base_url: str = DEFAULT_BASE_URL, authority_url: str = DEFAULT_AUTHORITY,
                 timeout: float = 30.0, budget: int | None = None) -> None:
        self.tenant_id, self.client_id = tenant_id, client_id
        self._secret = client_secret
        self.base_url = base_url.rstrip("/")
        self.authority_url = authority_url.rstrip("/")
        self.timeout = timeout
        self.budget = budget
        self.requests_made = 0
        self._http: requests.Session | None = None
        self._app: msal.ConfidentialClientApplication | None = None
        self._token: str | None = None

    # --- tokens ---------------------------------------------------------------------------
    @property
    def access_token(self) -> str | None:
        """The token requests are sent with (a secret, to be redacted)."""
        return self._token

    def _msal(self) -> msal.ConfidentialClientApplication:
        import msal.exceptions

        if self._app is None:
            authority = f"{self.authority_url}/{self.tenant_id}"
            # msal checks an unfamiliar authority with login.microsoftonline.com ("instance
            # discovery"); a sovereign cloud or the emulator is named on purpose, so that
            # check is off for any authority but the public cloud's.
            known = urlsplit(self.authority_url).hostname == urlsplit(DEFAULT_AUTHORITY).hostname
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id, client_credential=self._secret, authority=authority,
                    instance_discovery=None if known else False, timeout=self.timeout)
            except ValueError as exc:
                raise _authority_error(str(exc), self.authority_url, self.tenant_id) from None
            except msal.exceptions.MsalServiceError as exc:
                raise _unavailable(str(exc)) from None
        return self._app

    def token(self, renew: bool = False) -> str:
        """An app-only access token, from msal's cache unless ``renew``.

        After a failure the msal application is made again on the next call: msal keeps
        a failed answer of the token endpoint for a few seconds, and the host's retry
        policy, not that cache, decides when to ask again."""
        import msal.exceptions
        import requests

        app = self._msal()
        if renew:
            app.remove_tokens_for_client()
        try:
            result = app.acquire_token_for_client([SCOPE])
        except msal.exceptions.MsalServiceError as exc:
            self._app = None
            raise _unavailable(str(exc)) from None
        except requests.RequestException:
            self._app = None
            raise
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            self._app = None
            raise token_error(result if isinstance(result, dict) else {})
        self._token = str(token)
        return self._token

    # --- requests -------------------------------------------------------------------------
    def get(self, url: str, page_size: int | None = None) -> dict[str, Any]:
        """One GET of an absolute URL (a link Graph gave) or of a path under the base URL;
        the JSON answer, or a crmlink error (:class:`SyncReset` for a dead state token)."""
        target = url if url.startswith(("http://", "https://")) else self.base_url + url
        headers = {"client-request-id": str(uuid.uuid4())}
        if page_size:
            headers["Prefer"] = f"odata.maxpagesize={page_size}"
        response = self._send(target, headers, self.token())
        if response.status_code == 401:  # expired while we used it: once more, new token
            response = self._send(target, headers, self.token(renew=True))
        if response.status_code >= 400:
            raise classify_response(response) from _graph_error(response)
        try:
            body = response.json()
        except ValueError:
            raise RetriableError("Microsoft Graph's answer was not complete JSON (cut off); "
                                 "will retry") from None
        if not isinstance(body, dict):
            raise RetriableError("Microsoft Graph answered something other than a JSON object; "
                                 "will retry")
        return body

    def find(self, url: str) -> dict[str, Any] | None:
        """Like :meth:`get` for one item; ``None`` when Graph says it does not exist."""
        try:
            return self.get(url)
        except FatalError as exc:
            if isinstance(exc.__cause__, GraphError) and exc.__cause__.status == 404:
                return None
            raise

    def _send(self, url: str, headers: dict[str, str], token: str) -> requests.Response:
        if self.budget is not None and self.requests_made >= self.budget:
            raise BudgetExhausted(
                f"graph: the API budget of {self.budget} requests for this run is used up; what "
                "was synced so far is kept and the next run resumes from there")
        self.requests_made += 1
        if self._http is None:
            import requests

            self._http = requests.Session()
        return self._http.get(url, headers={**headers, "Authorization": f"Bearer {token}"},
                              timeout=self.timeout)

    def owns(self, link: str) -> bool:
        """Whether a saved link points under this client's base URL (a link saved for
        another endpoint is never followed, so the token goes nowhere else)."""
        return link.startswith(self.base_url + "/")


def classify_response(response: requests.Response) -> Exception:
    """A crmlink error (or :class:`SyncReset`) for a Graph error answer. Messages name the
    code and what to do; they never hold a token."""
    error = _graph_error(response)
    if error.status == 410 or error.code.lower() in ("syncstatenotfound", "resyncrequired"):
        return SyncReset(str(error))
    if error.status == 429:
        said = f"; it asked to wait {error.retry_after:g}s" if error.retry_after is not None else ""
        # without a Retry-After the policy's exponential backoff is what Graph recommends
        return RetriableError(f"Microsoft Graph is throttling requests ({error.code or 'HTTP 429'})"
                              f"{said}", retry_after=error.retry_after)
    if error.status >= 500 or error.status == 408:
        return RetriableError(f"Microsoft Graph failed temporarily ({error}); will retry",
                              retry_after=error.retry_after)
    if error.status == 401:
        return AuthError(f"Microsoft Graph rejected a token it had just issued ({error.code}); "
                         "check that the tenant id is the app's Directory (tenant) ID")
    if error.status == 403:
        return FatalError(f"Microsoft Graph refused access ({error.code}): the app registration "
                          f"needs the application permissions {PERMISSIONS}, with admin consent "
                          "(API permissions > Grant admin consent)")
    if error.code == "ErrorInvalidUser":
        return FatalError(f"{error.message} (ErrorInvalidUser): check --mailbox; it must be a "
                          "user or shared mailbox of this tenant")
    if error.code == "MailboxNotEnabledForRESTAPI":
        return FatalError(f"{error.message} ({error.code}): the mailbox is not in Exchange Online "
                          "or has no licence; leave it out of --mailbox")
    return FatalError(f"Microsoft Graph rejected a request ({error})")


def _graph_error(response: requests.Response) -> GraphError:
    code, message = "", ""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        error = response.json().get("error") or {}
        code, message = str(error.get("code") or ""), str(error.get("message") or "")
    after: float | None = None
    with contextlib.suppress(TypeError, ValueError):
        after = float(response.headers.get("Retry-After") or "")
    return GraphError(response.status_code, code or f"HTTP {response.status_code}",
                      message or response.reason or "", after)


def token_error(result: dict[str, Any]) -> CrmlinkError:
    """The error for a failed token request (msal's parsed answer of the token endpoint)."""
    if not isinstance(result.get("error"), str):  # not the identity platform's own answer
        return RetriableError("Microsoft Entra ID could not issue a token now; will retry")
    codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
    error = str(result.get("error") or "unknown_error")
    advice = next((TOKEN_ERRORS[c] for c in codes if c in TOKEN_ERRORS), None)
    named = f"AADSTS{codes[0]}" if codes else error
    if advice:
        return AuthError(f"Microsoft Entra ID refused the app's sign-in ({named}): {advice}")
    if error in ("temporarily_unavailable", "server_error") or "throttl" in error:
        return RetriableError(f"Microsoft Entra ID could not issue a token now ({named}); will retry")
    description = str(result.get("error_description") or "").split(" Trace ID:")[0]
    return AuthError(f"Microsoft Entra ID refused the app's sign-in ({named}: {description})")


def _unavailable(text: str) -> CrmlinkError:
    """msal's error for an HTTP failure of the sign-in host (``HTTP Error: 503``)."""
    found = re.search(r"HTTP (?:Error|status): (\d+)", text)
    status = int(found.group(1)) if found else 0
    if status == 429 or status >= 500:
        return RetriableError(f"Microsoft Entra ID could not issue a token now (HTTP {status}); "
                              "will retry")
    return AuthError(f"Microsoft Entra ID refused the app's sign-in (HTTP {status or '?'})")


def _authority_error(text: str, authority_url: str, tenant_id: str) -> CrmlinkError:
    found = re.search(r"HTTP status: (\d+)", text)
    if found and (found.group(1) == "429" or found.group(1).startswith("5")):
        return _unavailable(text)
    if "https" in text and not authority_url.startswith("https://"):
        return FatalError(f"--authority-url {authority_url} must be an https URL (msal signs in "
                          "only over https)")
    return AuthError(f"Microsoft Entra ID does not know the tenant {tenant_id!r} at "
                     f"{authority_url}: check --tenant-id (the Directory (tenant) ID) and "
                     "--authority-url")


def classify_error(exc: BaseException) -> CrmlinkError | None:
    """Exceptions of requests (and msal's transport) as crmlink errors; ``None`` otherwise."""
    import requests

    if isinstance(exc, CrmlinkError):
        return exc
    if isinstance(exc, requests.exceptions.SSLError):
        return FatalError(f"the TLS certificate of Microsoft Graph or the sign-in host could not "
                          f"be verified ({type(exc).__name__}); check REQUESTS_CA_BUNDLE")
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        return RetriableError(f"Microsoft Graph did not answer ({type(exc).__name__}); will retry")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return RetriableError("Microsoft Graph's answer was cut off; will retry")
    if isinstance(exc, SyncReset):
        return FatalError(f"Microsoft Graph refused a fresh delta request ({exc})")
    return None
