"""What the Graph and HubSpot emulators share: the HTTP server in front of an emulator's
engine, the request log, fault rules matched by method and path, TLS from a throwaway
CA, and the controls each emulator gives its tests.

An emulator is three parts. Its engine (an :class:`EmulatorEngine`) answers one parsed
request with a :class:`Reply`; its handler (an :class:`EmulatorHandler`) turns the
request it read off the socket into that call, in the order every request goes
through: logged on arrival, refused while stopping, matched against the fault rules,
delayed, answered; its facade (an :class:`EmulatorControls`) is what tests hold.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

F = TypeVar("F", bound="PathFault")
E = TypeVar("E", bound="EmulatorControls")


@dataclass
class Reply:
    """An emulator's answer: the status, a JSON body (``str``: an HTML page) and headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class EmulatorError(Exception):
    """Raised by an emulator's handlers; the server answers ``status`` with ``body``
    (JSON, or ``str``: an HTML page) and ``headers``."""

    def __init__(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class LoggedRequest:
    """One request an emulator received, logged on arrival."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int  #: 0: no answer (yet): in flight, dropped or timed out
    time: float  #: the emulator's clock, epoch seconds, at arrival
    duration: float = 0.0
    body: Any = None  #: the parsed body, where the emulator keeps it
    fault: str | None = None  #: the kind of the fault rule that fired for it
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class PathFault:
    """A fault rule. ``path`` is a prefix of the request path, or an fnmatch pattern when
    it holds ``*?[``; ``method`` an HTTP verb. The rule skips the first ``after`` requests
    it matches, then fires ``times`` times (``None``: for ever).

    The transport faults are the same for every emulator (``delay``, ``timeout``,
    ``drop``, ``truncate``, and ``error`` for a status); an emulator's subclass adds the
    kinds of its API to :attr:`KINDS` and the constructors that make them."""

    kind: str
    status: int = 0
    seconds: float = 0.0
    retry_after: float | None = None
    path: str | None = None
    method: str | None = None
    after: int = 0
    times: int | None = None
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    KINDS: ClassVar[tuple[str, ...]] = ("error", "delay", "timeout", "drop", "truncate")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {self.KINDS}")

    @classmethod
    def delay(cls: type[F], seconds: float, **kw: Any) -> F:
        """Answer normally, ``seconds`` late."""
        return cls("delay", seconds=seconds, **kw)

    @classmethod
    def timeout(cls: type[F], seconds: float = 10.0, **kw: Any) -> F:
        """Sleep ``seconds`` (past the client's read timeout), then close without answering."""
        return cls("timeout", seconds=seconds, **kw)

    @classmethod
    def drop(cls: type[F], **kw: Any) -> F:
        """Close the connection without answering."""
        return cls("drop", **kw)

    @classmethod
    def truncate(cls: type[F], **kw: Any) -> F:
        """Announce the full Content-Length, send half the body, close."""
        return cls("truncate", **kw)

    def matches(self, method: str, path: str, query: str = "") -> bool:
        """Whether the rule applies to a request (``query``: its raw query string)."""
        if self.method and self.method.upper() != method.upper():
            return False
        if not self.path:
            return True
        if any(c in self.path for c in "*?["):
            return fnmatch.fnmatchcase(path, self.path)
        return path.startswith(self.path)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultRules:
    """An emulator's fault rules, consulted in order: every rule that matches a request
    counts it, and the first one due fires."""

    def __init__(self) -> None:
        self.rules: list[PathFault] = []
        self._lock = threading.Lock()

    def pick(self, method: str, path: str, query: str = "") -> PathFault | None:
        chosen: PathFault | None = None
        with self._lock:
            for fault in self.rules:
                if not fault.matches(method, path, query):
                    continue
                fault.seen += 1
                if chosen is None and fault.seen > fault.after and not fault.exhausted:
                    fault.fired += 1
                    chosen = fault
        return chosen


class EmulatorEngine:
    """The state every engine keeps beside its API: the fault rules, a delay added to
    every request, the request log, and the event that says the server is stopping
    (sleeps end early on it, so a test's ``stop()`` never waits for a timeout fault)."""

    def __init__(self) -> None:
        self.faults = FaultRules()
        self.delay = 0.0
        self.stopping = threading.Event()
        self._log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()

    def record(self, entry: LoggedRequest) -> None:
        with self._log_lock:
            self._log.append(entry)

    def log(self) -> list[LoggedRequest]:
        with self._log_lock:
            return list(self._log)

    def reset_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stopping.wait(seconds)

    def now(self) -> float:
        """The emulator's clock, epoch seconds (what the log stamps arrivals with)."""
        raise NotImplementedError

    def encode(self, body: Any) -> tuple[bytes, str]:
        """A reply's body as bytes, and its content type."""
        raise NotImplementedError


def server_side_tls(context: ssl.SSLContext | None, request: Any) -> Any:
    """``request``'s socket wrapped in TLS with ``context`` (as it is without one), or
    ``None`` when the handshake fails or stalls past 10 s: that client is dropped."""
    if context is None:
        return request
    try:
        request.settimeout(10)
        wrapped = context.wrap_socket(request, server_side=True)
        wrapped.settimeout(None)
    except (ssl.SSLError, OSError):
        return None
    return wrapped


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP(S) server on one engine; ``context`` wraps each connection in TLS."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[EmulatorHandler], engine: Any,
                 context: ssl.SSLContext | None = None) -> None:
        self.engine = engine
        self.context = context
        self.base_url = ""  #: the URL it serves at, once started
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request = server_side_tls(self.context, request)
        if request is not None:
            super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is normal here; anything else is not."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


class EmulatorHandler(BaseHTTPRequestHandler):
    """One connection's requests, each taken through the steps every emulator shares;
    a subclass answers in :meth:`answer` and may refuse early in :meth:`refuse`."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after a minute
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the
        # client's delayed ACK would add ~40 ms to every response.
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

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    # -- what a subclass decides ---------------------------------------------------------

    def refuse(self, entry: LoggedRequest) -> Reply | None:
        """An answer given before the fault rules are consulted (e.g. a URL too long)."""
        return None

    def answer(self, path: str, query: dict[str, list[str]], raw: bytes, entry: LoggedRequest,
               fault: PathFault | None) -> Reply:
        """The engine's answer to the request; ``fault`` is the rule that fired, if any
        (the transport kinds are already applied)."""
        raise NotImplementedError

    def extra_headers(self, reply: Reply) -> dict[str, str]:
        """Headers the API sends on every answer besides the reply's own."""
        return {}

    # -- the steps -----------------------------------------------------------------------

    def _handle(self) -> None:
        engine: EmulatorEngine = self.server.engine
        self._started = started = time.monotonic()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        raw = self._read_body()
        entry = LoggedRequest(self.command, parts.path, query, 0, engine.now(),
                              headers={k.lower(): v for k, v in self.headers.items()})
        engine.record(entry)  # logged on arrival; status and duration when answered
        try:
            self._serve(engine, parts.path, parts.query, query, raw, entry)
        finally:
            if not entry.status:  # no answer sent (dropped, timed out): _send did not time it
                entry.duration = time.monotonic() - started

    def _serve(self, engine: EmulatorEngine, path: str, raw_query: str, query: dict[str, list[str]],
               raw: bytes, entry: LoggedRequest) -> None:
        if engine.stopping.is_set():
            self.close_connection = True
            return
        refused = self.refuse(entry)
        if refused is not None:
            self._send(refused, entry, close=True)
            return
        fault = engine.faults.pick(self.command, path, raw_query)
        entry.fault = fault.kind if fault else None
        if fault is not None and fault.kind in ("drop", "timeout"):
            engine.sleep(fault.seconds if fault.kind == "timeout" else 0.0)
            self._abort()
            return
        engine.sleep((fault.seconds if fault is not None and fault.kind == "delay" else 0.0) + engine.delay)
        reply = self.answer(path, query, raw, entry, fault)
        self._send(reply, entry, truncate=fault is not None and fault.kind == "truncate")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: Reply, entry: LoggedRequest, *, close: bool = False, truncate: bool = False) -> None:
        payload, content_type = self.server.engine.encode(reply.body)
        # Status and duration are logged before the client can see the answer, so a test
        # reading the log right after its call returns finds them filled in.
        entry.status, entry.duration = reply.status, time.monotonic() - self._started
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in {**self.extra_headers(reply), **reply.headers}.items():
            self.send_header(name, value)
        if close or truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2] if truncate else payload)
        self.wfile.flush()

    def _abort(self) -> None:
        """Close the socket without answering (a dropped connection, a timeout)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class ServerThread:
    """Runs an emulator's server in a background thread."""

    def __init__(self, httpd: EmulatorHTTPServer, name: str) -> None:
        self.httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self, base_url: str = "") -> None:
        self.httpd.base_url = base_url
        self.httpd.engine.stopping.clear()
        self._thread.start()

    def stop(self) -> None:
        self.httpd.engine.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def serve_until_interrupted(emulator: EmulatorControls) -> None:
    """Block until Ctrl-C, then stop ``emulator`` (for running one by hand)."""
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


def tls_context(directory: str, organization: str) -> tuple[ssl.SSLContext, str]:
    """A server context with a certificate for 127.0.0.1 and localhost from a fresh trustme
    CA named ``organization``; returns the context and the path of the CA's PEM file,
    written in ``directory`` (give it to clients as ``REQUESTS_CA_BUNDLE``)."""
    import trustme  # only needed when TLS is asked for

    ca = trustme.CA(organization_name=organization)
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = os.path.join(directory, "ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    return context, ca_path


class _Clock(Protocol):
    def now(self) -> datetime: ...

    def advance(self, seconds: float) -> None: ...


class EmulatorControls:
    """What a test does with any emulator besides its API's data: start and stop it (or
    use it as a context manager), inject faults, slow every request, read the request
    log, and move its clock."""

    clock: _Clock
    _engine: EmulatorEngine

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: E) -> E:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @property
    def faults(self) -> list[PathFault]:
        """The fault rules, in the order they are consulted."""
        return self._engine.faults.rules

    def add_fault(self, fault: F) -> F:
        self._engine.faults.rules.append(fault)
        return fault

    def clear_faults(self) -> None:
        self._engine.faults.rules.clear()

    @property
    def delay(self) -> float:
        """Seconds added to every request."""
        return self._engine.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._engine.delay = seconds

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received since the start or the last :meth:`reset_log`."""
        return self._engine.log()

    def reset_log(self) -> None:
        self._engine.reset_log()

