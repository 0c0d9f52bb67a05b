"""Graph's error bodies (``{"error": {"code", "message", "innerError"}}``), the Microsoft
identity platform's token errors (``AADSTS...``) and the exception handlers raise."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from crmlink.testing.emulation import EmulatorError


class GraphError(EmulatorError):
    """Raised by a handler; the server answers ``status`` with ``body`` and ``headers``."""


def new_id() -> str:
    return str(uuid.uuid4())


def inner_error(request_id: str | None = None, client_request_id: str | None = None) -> dict[str, str]:
    rid = request_id or new_id()
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": rid, "client-request-id": client_request_id or rid}


def graph_error(status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> GraphError:
    """A Graph API error. ``innerError`` is filled in when the response is sent."""
    return GraphError(status, {"error": {"code": code, "message": message}}, headers)


# --- the errors the API answers -----------------------------------------------------------
def token_missing() -> GraphError:
    return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")


def token_invalid() -> GraphError:
    return graph_error(401, "InvalidAuthenticationToken",
                       "IDX14100: JWT is not well formed, there are no dots (.).")


def token_expired() -> GraphError:
    return graph_error(401, "InvalidAuthenticationToken",
                       "Lifetime validation failed, the token is expired.")


def access_denied() -> GraphError:
    """An app without the application permission (or admin consent) for the resource."""
    return graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def invalid_user(user: str) -> GraphError:
    return graph_error(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")


def item_not_found() -> GraphError:
    return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def no_route(method: str, path: str) -> GraphError:
    return graph_error(400, "BadRequest",
                       f"Resource not found for the segment '{path.rsplit('/', 1)[-1]}'.")


def bad_property(name: str, entity: str) -> GraphError:
    return graph_error(400, "RequestBroker--ParseUri",
                       f"Could not find a property named '{name}' on type "
                       f"'Microsoft.OutlookServices.{entity}'.")


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return graph_error(400, code, message)


def sync_state_not_found() -> GraphError:
    return graph_error(410, "syncStateNotFound",
                       "The sync state generation is not found. A full resynchronization is "
                       "required: restart from the initial delta request.")


def throttled(retry_after: float | None,
              message: str = "Application is over its MailboxConcurrency limit.") -> GraphError:
    headers = {"Retry-After": _number(retry_after)} if retry_after is not None else {}
    return graph_error(429, "ApplicationThrottled", message, headers)


SERVER_ERRORS = {
    500: ("generalException", "An unspecified error has occurred."),
    501: ("notSupported", "The requested feature isn't implemented."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable for maintenance or is "
                                 "overloaded. Try again later."),
    504: ("UnknownError", "The server, while acting as a gateway, did not get a response in time."),
}
HTML_STATUSES = {502: "Bad Gateway"}


def status_error(status: int, retry_after: float | None = None) -> GraphError:
    """An injected status: 5xx (502 as an HTML page, as gateways send), 401, 403, 404..."""
    headers = {"Retry-After": _number(retry_after)} if retry_after is not None else {}
    if status in HTML_STATUSES:
        title = f"{status} {HTML_STATUSES[status]}"
        page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return GraphError(status, page, headers)
    if status == 401:
        return token_expired()
    if status == 403:
        return access_denied()
    if status == 404:
        return item_not_found()
    if status == 429:
        return throttled(retry_after)
    code, message = SERVER_ERRORS.get(status, ("UnknownError", f"HTTP {status}"))
    return graph_error(status, code, message, headers)


# --- the token endpoint's errors (Microsoft identity platform) -----------------------------
AADSTS = {
    7000215: ("invalid_client", 401,
              "Invalid client secret provided. Ensure the secret being sent in the request is "
              "the client secret value, not the client secret ID, for a secret added to app "
              "'{client_id}'."),
    7000218: ("invalid_client", 401, "The request body must contain the following parameter: "
                                     "'client_assertion' or 'client_secret'."),
    700016: ("unauthorized_client", 400,
             "Application with identifier '{client_id}' was not found in the directory "
             "'{tenant}'. This can happen if the application has not been installed by the "
             "administrator of the tenant or consented to by any user in the tenant. You may "
             "have sent your authentication request to the wrong tenant."),
    90002: ("invalid_request", 400, "Tenant '{tenant}' not found. Check to make sure you have the "
                                    "correct tenant ID and are signing into the correct cloud."),
    1002012: ("invalid_scope", 400,
              "The provided value for scope {scope} is not valid. Client credential flows must "
              "have a scope value with /.default suffixed to the resource identifier "
              "(application ID URI)."),
    70003: ("unsupported_grant_type", 400,
            "The app requested an unsupported grant type '{grant_type}'."),
    900144: ("invalid_request", 400,
             "The request body must contain the following parameter: '{parameter}'."),
}


def aadsts(number: int, **values: str) -> GraphError:
    """The identity platform's JSON error for ``AADSTS<number>``, with its HTTP status."""
    error, status, template = AADSTS[number]
    now = datetime.now(timezone.utc)
    trace, correlation = new_id(), new_id()
    text = template.format(**values)
    description = (f"AADSTS{number}: {text} Trace ID: {trace} Correlation ID: {correlation} "
                   f"Timestamp: {now:%Y-%m-%d %H:%M:%S}Z")
    return GraphError(status, {
        "error": error, "error_description": description, "error_codes": [number],
        "timestamp": f"{now:%Y-%m-%d %H:%M:%S}Z", "trace_id": trace, "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={number}"})


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)
