"""A small local HTTP server for testing connectors of JSON APIs offline.

Write the API as a function from :class:`ApiRequest` to :class:`ApiResponse` and run it::

    def pipedrive(request):
        if request.headers.get("x-api-token") != "t0k3n":
            return ApiResponse(401, {"success": False, "error": "unauthorized"})
        return ApiResponse(200, {"success": True, "data": ORGANIZATIONS[request.path]})

    with LocalApi(pipedrive) as api:
        connector = PipedriveConnector({"base_url": api.url, "api_token": "t0k3n"})
        ...
        assert api.requests[0].query["limit"] == "500"

The server speaks real HTTP on 127.0.0.1 (any free port) from a background thread, so
the connector's own HTTP client is what is tested. The ``local_api`` pytest fixture
starts one for a test and stops it afterwards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class ApiRequest:
    """One request the server received. ``query`` keeps the last value of a repeated key."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass
class ApiResponse:
    """What to answer: a status, a body (encoded as JSON unless it is ``bytes``) and headers."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return b"" if self.body is None else json.dumps(self.body).encode("utf-8")


Handler = Callable[[ApiRequest], ApiResponse]


class LocalApi:
    """``handler`` served on ``http://127.0.0.1:PORT`` (``url``) while in a ``with`` block.
    Every request is kept in ``requests``, in order. An exception in ``handler`` is
    answered with a 500 whose body is its message, and kept in ``errors``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[ApiRequest] = []
        self.errors: list[BaseException] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> LocalApi:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def answer(self, request: ApiRequest) -> ApiResponse:
        self.requests.append(request)
        try:
            return self.handler(request)
        except Exception as exc:  # the test sees it in errors and as a 500
            self.errors.append(exc)
            return ApiResponse(500, {"error": f"{type(exc).__name__}: {exc}"})


def _handler_class(api: LocalApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = ApiRequest(self.command, parts.path, dict(parse_qsl(parts.query)),
                                 {k.lower(): v for k, v in self.headers.items()},
                                 self.rfile.read(length) if length else b"")
            response = api.answer(request)
            body = response.encoded()
            self.send_response(response.status)
            headers = {"Content-Type": "application/json", **response.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read requests
            pass

    return Handler


__all__ = ["ApiRequest", "ApiResponse", "LocalApi"]
