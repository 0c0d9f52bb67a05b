"""The HTTP layer: a stdlib ThreadingHTTPServer in front of the Engine."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .engine import Engine, LoggedRequest, Reply, encode, new_correlation_id, parse_body
from .errors import ApiError
from .wire import Request


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], engine: Engine) -> None:
        self.engine = engine
        super().__init__(address, _Handler)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket],
                     client_address: tuple[str, int]) -> None:
        """A client that went away (killed, timed out) is normal here; anything else is not."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudflare"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after a minute
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the
        # client's delayed ACK would add ~40 ms to every response.
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

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        engine = self.server.engine
        self._started = started = time.monotonic()
        arrived = engine.ctx.store.clock.time()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        raw = self._read_body()
        entry = LoggedRequest(self.command, parts.path, query, 0, arrived,
                              headers={k.lower(): v for k, v in self.headers.items()})
        engine.record(entry)  # logged on arrival; status/duration are filled in when done
        try:
            self._serve(engine, parts.path, query, raw, entry)
        finally:
            if not entry.status:  # no answer sent (dropped, timed out): _send did not time it
                entry.duration = time.monotonic() - started

    def _serve(self, engine: Engine, path: str, query: dict[str, list[str]], raw: bytes,
               entry: LoggedRequest) -> None:
        if engine.stopping.is_set():
            self.close_connection = True
            return
        if len(self.path) > engine.max_url_length:
            entry.fault = "uri_too_long"
            self._send(engine.uri_too_long(), entry)
            return
        fault = engine.fault_for(self.command, path)
        entry.fault = fault.kind if fault else None
        if fault is not None and fault.kind in ("drop", "timeout"):
            engine.sleep(fault.seconds if fault.kind == "timeout" else 0.0)
            self._abort()
            return
        if fault is not None and fault.kind == "delay":
            engine.sleep(fault.seconds)
        engine.sleep(engine.delay)
        try:
            body = parse_body(raw, self.headers.get("Content-Type", ""))
            entry.body = body
        except ApiError as exc:
            self._send(Reply(exc.status, exc.body), entry)
            return
        req = Request(self.command, path, query, body,
                      f"http://{self.headers.get('Host', '127.0.0.1')}",
                      {k.lower(): v for k, v in self.headers.items()})
        reply = engine.process(req, fault)
        self._send(reply, entry, truncate=fault is not None and fault.kind == "truncate")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: Reply, entry: LoggedRequest, truncate: bool = False) -> None:
        payload, content_type = encode(reply.body)
        # Status and duration are logged before the client can see the answer, so a test
        # reading the log right after its call returns finds them filled in.
        entry.status, entry.duration = reply.status, time.monotonic() - self._started
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-HubSpot-Correlation-Id", new_correlation_id())
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status == 414 or truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2] if truncate else payload)
        self.wfile.flush()

    def _abort(self) -> None:
        """Close the socket without answering (dropped connection / timeout)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class ServerThread:
    """Runs an EmulatorHTTPServer in a background thread."""

    def __init__(self, engine: Engine, host: str, port: int) -> None:
        self._engine = engine
        self._httpd = EmulatorHTTPServer((host, port), engine)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="hubspot-emulator", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._engine.stopping.clear()
        self._thread.start()

    def stop(self) -> None:
        self._engine.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
