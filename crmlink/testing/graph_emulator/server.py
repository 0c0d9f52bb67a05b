"""The HTTP(S) layer: a stdlib ThreadingHTTPServer in front of the Engine."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .engine import Engine, LoggedRequest, encode
from .wire import Reply, Request


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], engine: Engine,
                 context: ssl.SSLContext | None) -> None:
        self.engine = engine
        self.context = context
        self.base_url = ""
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is not None:
            try:
                request.settimeout(10)
                request = self.context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is normal here; anything else is not."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 60
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        return

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        engine = self.server.engine
        started = time.monotonic()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = LoggedRequest(self.command, parts.path, query, 0,
                              engine.api.auth.clock.time(), headers=headers)
        engine.record(entry)
        try:
            if engine.stopping.is_set():
                self.close_connection = True
                return
            fault = engine.faults.pick(self.command, parts.path, parts.query)
            entry.fault = fault.kind if fault else None
            if fault is not None and fault.kind in ("drop", "timeout"):
                engine.sleep(fault.seconds if fault.kind == "timeout" else 0.0)
                self._abort()
                return
            engine.sleep((fault.seconds if fault and fault.kind == "delay" else 0.0) + engine.delay)
            form = ({k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
                    if "form-urlencoded" in headers.get("content-type", "") else {})
            req = Request(self.command, parts.path, query, headers, form, self.server.base_url)
            reply = engine.process(req, fault)
            self._send(reply, entry, started, truncate=fault is not None and fault.kind == "truncate")
        finally:
            if not entry.status:
                entry.duration = time.monotonic() - started

    def _send(self, reply: Reply, entry: LoggedRequest, started: float, truncate: bool) -> None:
        payload, content_type = encode(reply.body)
        entry.status, entry.duration = reply.status, time.monotonic() - started
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2] if truncate else payload)
        self.wfile.flush()

    def _abort(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class ServerThread:
    """Runs the server in a background thread."""

    def __init__(self, engine: Engine, host: str, port: int,
                 context: ssl.SSLContext | None) -> None:
        self._engine = engine
        self.httpd = EmulatorHTTPServer((host, port), engine, context)
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="graph-emulator", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self, base_url: str) -> None:
        self.httpd.base_url = base_url
        self._engine.stopping.clear()
        self._thread.start()

    def stop(self) -> None:
        self._engine.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def tls_context(directory: str) -> tuple[ssl.SSLContext, str]:
    """A server context with a certificate from a fresh trustme CA; returns the context and
    the path of the CA's PEM file (give it to clients as REQUESTS_CA_BUNDLE)."""
    import trustme  # only needed when TLS is asked for

    ca = trustme.CA(organization_name="crmlink Graph emulator CA")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = os.path.join(directory, "ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    return context, ca_path
