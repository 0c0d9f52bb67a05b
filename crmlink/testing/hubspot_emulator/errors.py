"""HubSpot error bodies and the exception the request handlers raise."""

from __future__ import annotations

import uuid
from typing import Any

from crmlink.testing.emulation import EmulatorError

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. Read more about "
    "required scopes here: https://developers.hubspot.com/scopes."
)


def correlation_id() -> str:
    return str(uuid.uuid4())


class ApiError(EmulatorError):
    """Raised by handlers; the server turns it into an HTTP error response."""


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message,
                            "correlationId": correlation_id(), "category": category}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def validation(message: str, **extra: Any) -> ApiError:
    return ApiError(400, error_body(message, "VALIDATION_ERROR", **extra))


def not_found(message: str = "resource not found", **extra: Any) -> ApiError:
    return ApiError(404, error_body(message, "OBJECT_NOT_FOUND", **extra))


def unauthorized() -> ApiError:
    return ApiError(401, error_body(AUTH_MESSAGE, "INVALID_AUTHENTICATION"))


def expired(seconds_ago: int) -> ApiError:
    text = f"The OAuth token used to make this call expired {_ago(seconds_ago)} ago."
    return ApiError(401, error_body(text, "EXPIRED_AUTHENTICATION"))


def _ago(seconds: int) -> str:
    if seconds >= 3600:
        return f"{seconds // 3600} hour(s)"
    if seconds >= 60:
        return f"{seconds // 60} minute(s)"
    return f"{max(seconds, 1)} second(s)"


def missing_scopes(required: list[str]) -> ApiError:
    return ApiError(403, error_body(
        SCOPES_MESSAGE, "MISSING_SCOPES",
        errors=[{"message": "One or more of the following scopes are required.",
                 "context": {"requiredGranularScopes": required}}],
        links={"scopes": "https://developers.hubspot.com/scopes"}))


RATE_LIMIT_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "DAILY": "You have reached your daily limit.",
    "SECONDLY": "You have reached your secondly limit.",
}


def rate_limit_body(policy: str, group: str) -> dict[str, Any]:
    return {"status": "error", "message": RATE_LIMIT_MESSAGES[policy], "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(), "policyName": policy, "groupName": group}


SERVER_MESSAGES = {
    500: "internal error",
    501: "Not Implemented",
    503: "Service Unavailable",
    423: "Resource locked; retry after 2 seconds",
    477: "Migration in progress",
}
HTML_STATUSES = {502: "Bad Gateway", 504: "Gateway Timeout", 524: "A Timeout Occurred",
                 414: "Request-URI Too Large"}


def html_page(status: int) -> str:
    title = f"{status} {HTML_STATUSES.get(status, 'Error')}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")


def status_error(status: int) -> ApiError:
    """A generic error for an injected status code (5xx, 423, 477, 401, 404...)."""
    if status in HTML_STATUSES:
        return ApiError(status, html_page(status))
    if status == 401:
        return unauthorized()
    if status == 404:
        return not_found()
    category = "INTERNAL_ERROR" if status >= 500 else "ERROR"
    message = SERVER_MESSAGES.get(status, f"HTTP {status}")
    return ApiError(status, error_body(message, category))
