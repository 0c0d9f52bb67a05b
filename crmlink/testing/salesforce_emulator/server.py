"""HTTP(S) transport: request parsing, routing to the login/REST handlers, fault application."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from crmlink.testing.emulation import server_side_tls
from crmlink.testing.emulation import tls_context as _tls_context

from . import auth, metadata, rest
from .errors import ApiError, Response, error_response, gateway_html, json_response
from .faults import Fault

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

_SOAP = re.compile(r"/services/Soap/u/(\d+\.\d+)(?:/.*)?$")
_METADATA = re.compile(r"/services/Soap/m/(\d+\.\d+)(?:/.*)?$")
_DATA = re.compile(r"^/services/data/v(\d+\.\d+)(?:/(.*))?$")


@dataclass
class RequestRecord:
    """One served request, as seen by the emulator."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    timestamp: float
    fault: str | None = None
    duration: float = 0.0
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def soql(self) -> str | None:
        return self.query.get("q")


def route(emu: SalesforceEmulator, method: str, path: str, params: dict[str, str],
          headers: dict[str, str], body: bytes) -> Response:
    """Dispatch one request (no faults applied here)."""
    soap = _SOAP.search(path)
    if soap and method == "POST":
        return auth.soap_login(emu, body, soap.group(1))
    if _METADATA.search(path) and method == "POST":
        return metadata.soap(emu, body)
    if path.rstrip("/") == "/services/oauth2/userinfo":
        return userinfo(emu, headers)
    if path.rstrip("/") == "/services/oauth2/token" and method == "POST":
        return auth.token(emu, body, headers)
    if path.rstrip("/") == "/services/oauth2/revoke":
        token = parse_qs(body.decode()).get("token", [params.get("token", "")])[0]
        emu.sessions.pop(token, None)
        emu.refresh_tokens.pop(token, None)
        return Response(200, b"", "text/plain")
    if path.rstrip("/") == "/services/data":
        return json_response(200, [{"label": "Spring '24", "url": f"/services/data/v{v}",
                                    "version": v} for v in ("58.0", "59.0", "60.0")])
    data = _DATA.match(path)
    if data:
        return rest_call(emu, method, data.group(1), (data.group(2) or "").split("/"), params,
                         headers, body)
    return error_response(404, "NOT_FOUND")


def userinfo(emu: SalesforceEmulator, headers: dict[str, str]) -> Response:
    """OpenID Connect userinfo of the session's user (the fields crmlink reads)."""
    username = emu.sessions.get(session_of(headers))
    if username is None:
        return Response(401, b"Bad_OAuth_Token", "text/plain")
    user = emu.users[username]
    return json_response(200, {"user_id": user.user_id, "organization_id": emu.org_id,
                               "preferred_username": username, "active": True})


def session_of(headers: dict[str, str]) -> str:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") else ""


def rest_call(emu: SalesforceEmulator, method: str, version: str, segments: list[str],
              params: dict[str, str], headers: dict[str, str], body: bytes) -> Response:
    username = emu.sessions.get(session_of(headers))
    if username is None:
        return error_response(401, "INVALID_SESSION_ID")
    if not emu.consume_api_call():
        return error_response(403, "REQUEST_LIMIT_EXCEEDED")
    ctx = rest.Ctx(emu, method, version, segments, params, headers, body, username)
    try:
        return rest.dispatch(ctx)
    except ApiError as err:
        return err.response()


def fault_response(fault: Fault, path: str) -> Response:
    status = fault.status or 500
    if "/oauth2/" in path:
        resp = auth.oauth_error(fault.error_code or "invalid_grant",
                                fault.message or "authentication failure", status)
    elif "/Soap/" in path:
        resp = auth.soap_fault(fault.error_code or "INVALID_LOGIN",
                               fault.message or auth.BAD_LOGIN, status)
    elif status in (502, 504) and not fault.error_code:
        resp = gateway_html(status)
    else:
        resp = error_response(status, fault.error_code, fault.message)
    resp.headers.update(fault.headers)
    return resp


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SFDC"
    sys_version = ""
    timeout = 60
    server: EmulatorHTTPServer
    #: BaseHTTPRequestHandler's own buffer of header lines (send_header creates it);
    #: :meth:`send` appends the body to it so headers and body go out in one write.
    _headers_buffer: list[bytes]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def do_GET(self) -> None:
        self.handle_any()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_GET

    def handle_any(self) -> None:
        emu, started = self.server.emu, time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        delay, fault = emu.faults.pick(self.command, self.path)
        if delay:
            emu.sleep(delay)
        record = RequestRecord(self.command, split.path, params, 0, started, headers=headers)
        if fault is not None and fault.kind in ("drop", "timeout"):
            if fault.kind == "timeout":
                emu.sleep(fault.seconds)
            record.fault = fault.kind
            emu.log_request(record)
            self.drop()
            return
        resp = self.respond(emu, split.path, params, headers, body, fault)
        record.status, record.fault = resp.status, fault.kind if fault else None
        record.duration = time.time() - started
        emu.log_request(record)
        self.send(resp, truncate=fault if fault and fault.kind == "truncate" else None)

    def respond(self, emu: SalesforceEmulator, path: str, params: dict[str, str],
                headers: dict[str, str], body: bytes, fault: Fault | None) -> Response:
        if fault is not None and fault.kind == "status":
            resp = fault_response(fault, path)
        else:
            try:
                resp = route(emu, self.command, path, params, headers, body)
            except Exception:  # noqa: BLE001 - any bug becomes a Salesforce-style 500
                emu.errors.append(traceback.format_exc())
                resp = error_response(500, "UNKNOWN_EXCEPTION")
        if path.startswith("/services/data/"):
            used, total = emu.api_limit
            resp.headers.setdefault("Sforce-Limit-Info", f"api-usage={used}/{total}")
        return resp

    def send(self, resp: Response, truncate: Fault | None = None) -> None:
        body = resp.body
        length = len(body)
        if truncate is not None:
            body = body[: len(body) // 2]
            length = length if truncate.keep_length else len(body)
            self.close_connection = True
        self.send_response(resp.status)
        if resp.status != 204:
            self.send_header("Content-Type", resp.content_type)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        if truncate is not None:
            self.send_header("Connection", "close")
        # headers and body in one write: two small writes meet the peer's delayed ACK (40 ms)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()
        self.wfile.flush()
        if truncate is not None:
            self.drop()

    def drop(self) -> None:
        """Close the connection without (the rest of) a response."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emu: SalesforceEmulator,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.emu = emu
        self.ssl_context = ssl_context
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request = server_side_tls(self.ssl_context, request)
        if request is None:
            return
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.conn_lock:
            self.connections.add(request)
        try:
            super().finish_request(request, client_address)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
            pass
        finally:
            with self.conn_lock:
                self.connections.discard(request)
            if self.ssl_context is not None:
                _close(request)

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def make_server(emu: SalesforceEmulator, host: str, port: int,
                ssl_context: ssl.SSLContext | None) -> EmulatorHTTPServer:
    return EmulatorHTTPServer((host, port), emu, ssl_context)


def tls_context(directory: str) -> tuple[ssl.SSLContext, str]:
    """A server SSLContext with a fresh trustme CA; returns (context, CA PEM path)."""
    return _tls_context(directory, "crmlink emulator CA")
