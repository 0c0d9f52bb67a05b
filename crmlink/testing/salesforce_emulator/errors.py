"""Responses and the Salesforce-shaped errors the emulator returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json;charset=UTF-8"

DEFAULT_MESSAGES: dict[str, str] = {
    "INVALID_SESSION_ID": "Session expired or invalid",
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
    "NOT_FOUND": "The requested resource does not exist",
    "UNKNOWN_EXCEPTION": "An unexpected error occurred. Please include this ErrorId if you "
    "contact support: 1924117421-100377 (-1316839591)",
    "SERVER_UNAVAILABLE": "Server temporarily unavailable. Please try again later.",
    "METHOD_NOT_ALLOWED": "HTTP Method not allowed for this resource",
    "MALFORMED_QUERY": "malformed query",
    "JSON_PARSER_ERROR": "Unexpected end-of-input",
}

STATUS_CODES: dict[int, str] = {
    400: "MALFORMED_QUERY", 401: "INVALID_SESSION_ID", 403: "REQUEST_LIMIT_EXCEEDED",
    404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 500: "UNKNOWN_EXCEPTION",
    503: "SERVER_UNAVAILABLE",
}


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Raised by handlers; rendered as ``[{"message": ..., "errorCode": ...}]``."""

    def __init__(self, status: int, error_code: str, message: str | None = None,
                 fields: list[str] | None = None) -> None:
        self.status = status
        self.error_code = error_code
        self.message = message if message is not None else DEFAULT_MESSAGES.get(error_code, "")
        self.fields = fields
        super().__init__(f"{status} {error_code}: {self.message}")

    def response(self) -> Response:
        return error_response(self.status, self.error_code, self.message, self.fields)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(status, body, JSON_TYPE, dict(headers or {}))


def error_response(status: int, error_code: str | None = None, message: str | None = None,
                   fields: list[str] | None = None) -> Response:
    code = error_code or STATUS_CODES.get(status, "UNKNOWN_EXCEPTION")
    entry: dict[str, Any] = {
        "message": message if message is not None else DEFAULT_MESSAGES.get(code, ""),
        "errorCode": code,
    }
    if fields is not None:
        entry["fields"] = fields
    return json_response(status, [entry])


def gateway_html(status: int) -> Response:
    """What an edge proxy returns for 502/504: HTML, not JSON."""
    reason = {502: "Bad Gateway", 504: "Gateway Timeout"}.get(status, "Error")
    html = f"<html><head><title>{status} {reason}</title></head><body><center><h1>{status} " \
           f"{reason}</h1></center></body></html>"
    return Response(status, html.encode(), "text/html")
