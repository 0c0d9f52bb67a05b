"""Request processing independent of HTTP: faults, auth, rate limits, scopes, dispatch, log."""

from __future__ import annotations

import json
import traceback
from typing import Any
from urllib.parse import parse_qs

from crmlink.testing.emulation import EmulatorEngine, LoggedRequest, PathFault, Reply

from . import router
from .errors import (
    ApiError,
    correlation_id,
    error_body,
    expired,
    html_page,
    missing_scopes,
    not_found,
    rate_limit_body,
    status_error,
    validation,
)
from .limits import DAILY, SECONDLY, TEN_SECONDLY, RateLimiter
from .wire import Context, Request

JsonBody = dict[str, Any] | str | None
_FAULT_POLICY = {"rate_limit": TEN_SECONDLY, "daily_limit": DAILY, "secondly_limit": SECONDLY}
_GROUPS = {TEN_SECONDLY: "publicapi:private-app-api-calls-ten-secondly",
           DAILY: "publicapi:private-app-api-calls-daily", SECONDLY: "publicapi:crm-search-secondly"}


class Engine(EmulatorEngine):
    def __init__(self, ctx: Context, limiter: RateLimiter) -> None:
        super().__init__()
        self.ctx = ctx
        self.limiter = limiter
        self.max_url_length = 8192

    def now(self) -> float:
        return self.ctx.store.clock.time()

    def encode(self, body: JsonBody) -> tuple[bytes, str]:
        if body is None:
            return b"", "application/json;charset=utf-8"
        if isinstance(body, str):
            return body.encode("utf-8"), "text/html"
        return json.dumps(body, separators=(",", ":")).encode("utf-8"), "application/json;charset=utf-8"

    def process(self, req: Request, fault: PathFault | None) -> Reply:
        try:
            if fault is not None and fault.kind == "expired":
                raise expired(0)
            if fault is not None and fault.kind in ("rate_limit", "daily_limit",
                                                    "secondly_limit", "error"):
                return self._fault_reply(fault, req.path)
            return self._dispatch(req)
        except ApiError as exc:
            return Reply(exc.status, exc.body, exc.headers)
        except Exception as exc:  # a bug in the emulator: say so loudly
            traceback.print_exc()
            return Reply(500, error_body(f"emulator error: {exc!r}", "INTERNAL_ERROR"))

    def _dispatch(self, req: Request) -> Reply:
        found = router.match(req.method, req.path)
        if found is None:
            raise not_found(f"No route for {req.method} {req.path}")
        if found is False:
            raise ApiError(405, error_body(f"Method {req.method} not allowed", "ERROR"))
        assert not isinstance(found, bool)
        route, params = found
        headers: dict[str, str] = {}
        if route.auth:
            principal = self.ctx.auth.authenticate(req.headers.get("authorization"))
            verdict = self.limiter.check(principal.bucket, oauth=principal.oauth,
                                         search=route.search)
            headers = dict(verdict.headers)
            if verdict.policy is not None:
                if self.limiter.limits.retry_after and verdict.retry_after is not None:
                    headers["Retry-After"] = str(verdict.retry_after)
                group = f"{_GROUPS[verdict.policy]}:{self.ctx.options.portal_id}"
                return Reply(429, rate_limit_body(verdict.policy, group), headers)
            required = route.scopes(params)
            if any(s not in principal.scopes for s in required):
                err = missing_scopes(required)
                return Reply(err.status, err.body, headers)
        try:
            result = route.handler(self.ctx, req, *params.values())
        except ApiError as exc:  # 4xx answers still carry the rate-limit headers
            return Reply(exc.status, exc.body, {**headers, **exc.headers})
        status, body = result if isinstance(result, tuple) else (200, result)
        return Reply(status, body, headers)

    def _fault_reply(self, fault: PathFault, path: str) -> Reply:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = _number(fault.retry_after)
        policy = _FAULT_POLICY.get(fault.kind)
        if policy is None:
            err = status_error(fault.status)
            return Reply(err.status, err.body, {**headers, **err.headers})
        if not router.is_search_path(path):
            lim = self.limiter.limits
            headers.update({"X-HubSpot-RateLimit-Interval-Milliseconds": str(lim.interval_ms),
                            "X-HubSpot-RateLimit-Max": str(lim.burst),
                            "X-HubSpot-RateLimit-Remaining":
                                "0" if policy == TEN_SECONDLY else str(lim.burst),
                            "X-HubSpot-RateLimit-Daily": str(lim.daily),
                            "X-HubSpot-RateLimit-Daily-Remaining":
                                "0" if policy == DAILY else str(lim.daily)})
        group = f"{_GROUPS[policy]}:{self.ctx.options.portal_id}"
        return Reply(429, rate_limit_body(policy, group), headers)

    def uri_too_long(self) -> Reply:
        return Reply(414, html_page(414))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_body(raw: bytes, content_type: str) -> Any:
    """JSON or form body -> Python; raises ApiError(400) for malformed JSON."""
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if "x-www-form-urlencoded" in content_type:
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    try:
        return json.loads(text)
    except ValueError:
        raise validation("Invalid input JSON on line 1", context={"body": [text[:200]]}) from None


def new_correlation_id() -> str:
    return correlation_id()


__all__ = ["Engine", "JsonBody", "LoggedRequest", "Reply", "new_correlation_id", "parse_body"]
