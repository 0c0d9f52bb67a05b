"""The HTTP(S) layer: the shared emulator server (:mod:`crmlink.testing.emulation`) in
front of the Engine, answering as Microsoft's front door does."""

from __future__ import annotations

import ssl
from urllib.parse import parse_qs

from crmlink.testing.emulation import (
    EmulatorHandler,
    EmulatorHTTPServer,
    LoggedRequest,
    PathFault,
    Reply,
    ServerThread,
)
from crmlink.testing.emulation import tls_context as _tls_context

from .engine import Engine
from .wire import Request


class _Handler(EmulatorHandler):
    server_version = "Microsoft-IIS/10.0"

    def answer(self, path: str, query: dict[str, list[str]], raw: bytes, entry: LoggedRequest,
               fault: PathFault | None) -> Reply:
        engine: Engine = self.server.engine
        form = ({k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
                if "form-urlencoded" in entry.headers.get("content-type", "") else {})
        req = Request(self.command, path, query, entry.headers, form, self.server.base_url)
        return engine.process(req, fault)


def server_thread(engine: Engine, host: str, port: int, context: ssl.SSLContext | None) -> ServerThread:
    """The emulator's server on ``host:port`` (0: any free port), not yet started."""
    return ServerThread(EmulatorHTTPServer((host, port), _Handler, engine, context), "graph-emulator")


def tls_context(directory: str) -> tuple[ssl.SSLContext, str]:
    """A server context with a certificate from a fresh test CA; returns the context and
    the path of the CA's PEM file (give it to clients as REQUESTS_CA_BUNDLE)."""
    return _tls_context(directory, "crmlink Graph emulator CA")
