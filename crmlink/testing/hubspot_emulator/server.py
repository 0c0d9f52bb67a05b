"""The HTTP layer: the shared emulator server (:mod:`crmlink.testing.emulation`) in front
of the Engine, answering as HubSpot's edge does."""

from __future__ import annotations

from crmlink.testing.emulation import (
    EmulatorHandler,
    EmulatorHTTPServer,
    LoggedRequest,
    PathFault,
    Reply,
    ServerThread,
)

from .engine import Engine, new_correlation_id, parse_body
from .errors import ApiError
from .wire import Request


class _Handler(EmulatorHandler):
    server_version = "cloudflare"

    def refuse(self, entry: LoggedRequest) -> Reply | None:
        engine: Engine = self.server.engine
        if len(self.path) > engine.max_url_length:
            entry.fault = "uri_too_long"
            return engine.uri_too_long()
        return None

    def answer(self, path: str, query: dict[str, list[str]], raw: bytes, entry: LoggedRequest,
               fault: PathFault | None) -> Reply:
        engine: Engine = self.server.engine
        try:
            body = parse_body(raw, self.headers.get("Content-Type", ""))
            entry.body = body
        except ApiError as exc:
            return Reply(exc.status, exc.body)
        req = Request(self.command, path, query, body, f"http://{self.headers.get('Host', '127.0.0.1')}",
                      dict(entry.headers))
        return engine.process(req, fault)

    def extra_headers(self, reply: Reply) -> dict[str, str]:
        return {"X-HubSpot-Correlation-Id": new_correlation_id()}


def server_thread(engine: Engine, host: str, port: int) -> ServerThread:
    """The emulator's server on ``host:port`` (0: any free port), not yet started."""
    return ServerThread(EmulatorHTTPServer((host, port), _Handler, engine), "hubspot-emulator")
