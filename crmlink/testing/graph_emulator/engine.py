"""Request processing independent of HTTP: faults, auth, the mailbox limit, dispatch, log."""

from __future__ import annotations

import json
import traceback
import uuid
from typing import Any

from crmlink.testing.emulation import EmulatorEngine, LoggedRequest, PathFault, Reply

from . import router
from .api import Api
from .auth import bearer
from .errors import (
    GraphError,
    bad_request,
    graph_error,
    inner_error,
    status_error,
    sync_state_not_found,
    throttled,
    token_expired,
)
from .faults import Limiter
from .wire import Request

JSON_TYPE = ("application/json;odata.metadata=minimal;odata.streaming=true;"
             "IEEE754Compatible=false;charset=utf-8")


class Engine(EmulatorEngine):
    def __init__(self, api: Api, limiter: Limiter) -> None:
        super().__init__()
        self.api = api
        self.limiter = limiter
        self.errors: list[str] = []

    def now(self) -> float:
        return self.api.auth.clock.time()

    def encode(self, body: dict[str, Any] | str | None) -> tuple[bytes, str]:
        if body is None:
            return b"", JSON_TYPE
        if isinstance(body, str):
            return body.encode("utf-8"), "text/html"
        return json.dumps(body, separators=(",", ":")).encode("utf-8"), JSON_TYPE

    def process(self, req: Request, fault: PathFault | None) -> Reply:
        request_id = str(uuid.uuid4())
        client_id = req.headers.get("client-request-id") or request_id
        try:
            reply = self._fault(req, fault) if fault is not None else None
            if reply is None:
                reply = self._dispatch(req)
        except GraphError as exc:
            reply = Reply(exc.status, exc.body, dict(exc.headers))
        except Exception as exc:  # a bug in the emulator: say so loudly
            self.errors.append(traceback.format_exc())
            reply = Reply(500, {"error": {"code": "generalException",
                                          "message": f"emulator error: {exc!r}"}})
        error = reply.body.get("error") if isinstance(reply.body, dict) else None
        if isinstance(error, dict):
            error["innerError"] = inner_error(request_id, client_id)
        reply.headers.update({"request-id": request_id, "client-request-id": client_id,
                              "x-ms-ags-diagnostic": json.dumps(
                                  {"ServerInfo": {"DataCenter": "Emulator", "Slice": "E",
                                                  "Ring": "0", "ScaleUnit": "000",
                                                  "RoleInstance": "EMU0"}})})
        return reply

    def _fault(self, req: Request, fault: PathFault) -> Reply | None:
        if fault.kind == "throttle":
            raise throttled(fault.retry_after)
        if fault.kind == "error":
            raise status_error(fault.status, fault.retry_after)
        if fault.kind == "expire_token":
            token = bearer(req.headers.get("authorization"))
            if token:
                self.api.auth.expire(token)
            raise token_expired()
        if fault.kind == "stale_delta":
            raise sync_state_not_found()
        return None  # delay, truncate: answer normally

    def _dispatch(self, req: Request) -> Reply:
        found = router.match(req.method, req.path)
        if found is None:
            if req.path.lower().startswith("/v1.0/"):
                raise bad_request(f"Resource not found for the segment "
                                  f"'{req.path.rstrip('/').rsplit('/', 1)[-1]}'.")
            raise graph_error(404, "NotFound", f"No resource at {req.path}.")
        if found is False:
            raise graph_error(405, "Request_BadRequest",
                              f"The HTTP method '{req.method}' is not allowed for this resource.")
        assert not isinstance(found, bool)
        route, captured = found
        handler = getattr(self.api, route.handler)
        if not route.auth:
            result: Reply = handler(req, **captured)
            return result
        grant = self.api.auth.authenticate(req.headers.get("authorization"))
        mailbox = router.mailbox_of(captured)
        if mailbox is not None:
            box = self.api.directory.find(mailbox)
            wait = self.limiter.check(grant.client_id, box.id if box else mailbox,
                                      self.api.auth.clock.time())
            if wait is not None:
                raise throttled(wait)
        result = handler(req, grant, **captured)
        return result


__all__ = ["Engine", "LoggedRequest"]
