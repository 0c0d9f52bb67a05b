"""Private-app tokens, the OAuth token endpoint, expiry and scopes."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .errors import ApiError, correlation_id, expired, unauthorized

DEFAULT_TOKEN = "pat-na1-00000000-0000-4000-8000-000000000001"
DEFAULT_CLIENT_ID = "00000000-0000-4000-8000-00000000c1d0"
DEFAULT_CLIENT_SECRET = "00000000-0000-4000-8000-0000000005ec"
DEFAULT_REFRESH_TOKEN = "na1-0000-0000-0000-0000-000000000001"
ALL_SCOPES = frozenset({
    "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.deals.read",
    "crm.objects.owners.read", "crm.schemas.contacts.read", "crm.schemas.companies.read",
    "crm.schemas.deals.read", "sales-email-read", "oauth", "tickets",
    # what crmlink push writes with
    "crm.objects.companies.write", "crm.objects.deals.write", "crm.schemas.companies.write",
    "crm.schemas.deals.write",
})


@dataclass
class Principal:
    token: str
    oauth: bool
    bucket: str
    scopes: frozenset[str]


class Auth:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.access_tokens: set[str] = {DEFAULT_TOKEN}
        self.scopes: dict[str, set[str]] = {}
        self.oauth_apps: dict[str, str] = {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        self.refresh_tokens: dict[str, str] = {DEFAULT_REFRESH_TOKEN: DEFAULT_CLIENT_ID}
        self.auth_codes: dict[str, str] = {}
        self.token_ttl = 1800
        self._issued: dict[str, tuple[int, str]] = {}

    def granted(self, key: str) -> frozenset[str]:
        scopes = self.scopes.get(key)
        return ALL_SCOPES if scopes is None else frozenset(scopes)

    def authenticate(self, header: str | None) -> Principal:
        token = _bearer(header)
        if token is None:
            raise unauthorized()
        if token in self.access_tokens:
            return Principal(token, False, "private-app", self.granted(token))
        with self._lock:
            issued = self._issued.get(token)
        if issued is None:
            raise unauthorized()
        expiry, refresh = issued
        now = self._clock.now_ms()
        if now >= expiry:
            raise expired((now - expiry) // 1000)
        client = self.refresh_tokens.get(refresh, "oauth")
        return Principal(token, True, f"oauth:{client}", self.granted(refresh))

    def expire(self, token: str) -> None:
        """Make an OAuth access token expire now (or revoke a private-app token)."""
        self.access_tokens.discard(token)
        with self._lock:
            if token in self._issued:
                self._issued[token] = (self._clock.now_ms(), self._issued[token][1])

    def grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /oauth/v1/token`` (refresh_token and authorization_code grants)."""
        grant_type = form.get("grant_type")
        if grant_type not in ("refresh_token", "authorization_code"):
            raise _oauth_error("BAD_GRANT_TYPE", "missing or unknown grant type")
        client_id = form.get("client_id", "")
        if client_id not in self.oauth_apps:
            raise _oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.oauth_apps[client_id]:
            raise _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if grant_type == "authorization_code":
            refresh = self._redeem_code(form.get("code", ""), client_id)
        else:
            refresh = form.get("refresh_token", "")
            if self.refresh_tokens.get(refresh) != client_id:
                raise _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        access = "CO" + secrets.token_urlsafe(48)
        with self._lock:
            self._issued[access] = (self._clock.now_ms() + self.token_ttl * 1000, refresh)
        return {"token_type": "bearer", "refresh_token": refresh, "access_token": access,
                "expires_in": self.token_ttl}

    def _redeem_code(self, code: str, client_id: str) -> str:
        if self.auth_codes.get(code) != client_id:
            raise _oauth_error("BAD_AUTH_CODE", "missing or unknown auth code")
        del self.auth_codes[code]
        refresh = "na1-" + secrets.token_hex(16)
        self.refresh_tokens[refresh] = client_id
        return refresh

    def token_info(self, token: str, portal_id: int) -> dict[str, Any]:
        """``GET /oauth/v1/access-tokens/{token}``."""
        with self._lock:
            issued = self._issued.get(token)
        if issued is None:
            raise ApiError(404, {"status": "error", "message": "Token not found",
                                 "correlationId": correlation_id()})
        expiry, refresh = issued
        return {"token": token, "user": "emulator@example.com", "hub_domain": "emulator.test",
                "scopes": sorted(self.granted(refresh)), "hub_id": portal_id,
                "app_id": 1, "expires_in": max(0, (expiry - self._clock.now_ms()) // 1000),
                "user_id": 1, "token_type": "access"}


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _oauth_error(status: str, message: str) -> ApiError:
    return ApiError(400, {"status": status, "message": message,
                          "correlationId": correlation_id()})
