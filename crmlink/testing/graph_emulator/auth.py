"""App registrations, the client-credentials token endpoint and bearer-token checks.

Tokens look like the identity platform's (three base64url parts; the payload carries
``tid``, ``appid``, ``roles`` and ``exp``) but are only known to this emulator: the
signature is random and nothing outside the emulator can validate them.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crmlink.testing.hubspot_emulator.clock import Clock

from .errors import aadsts, access_denied, token_expired, token_invalid, token_missing

DEFAULT_TENANT_ID = "5e7f20ac-0000-4000-8000-00000000a1b2"
DEFAULT_CLIENT_ID = "3c1a5e2b-0000-4000-8000-00000000c1d0"
DEFAULT_CLIENT_SECRET = "emu~Graph.Secret_0000000000000000000000"
#: The application permissions the connector needs (granted with admin consent).
READ_ROLES = ("Mail.ReadBasic.All", "Calendars.Read")
GRAPH_RESOURCE = "https://graph.microsoft.com"
#: Roles that satisfy each kind of resource (any one of them is enough).
MAIL_ROLES = frozenset({"Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"})
CALENDAR_ROLES = frozenset({"Calendars.Read", "Calendars.ReadBasic", "Calendars.ReadWrite"})
USER_ROLES = frozenset({"User.Read.All", "User.ReadBasic.All", "Directory.Read.All"})


@dataclass
class App:
    """An app registration with a client secret and its consented application permissions."""

    client_id: str
    secret: str
    roles: set[str] = field(default_factory=lambda: set(READ_ROLES))


@dataclass
class Grant:
    client_id: str
    roles: frozenset[str]
    expires: float  # emulator-clock epoch seconds


class Auth:
    """Issues and checks tokens for one tenant."""

    def __init__(self, clock: Clock, tenant_id: str = DEFAULT_TENANT_ID) -> None:
        self.clock = clock
        self.tenant_id = tenant_id
        self.tenant_names = {tenant_id.lower(), "emulator.onmicrosoft.com"}
        self.apps: dict[str, App] = {DEFAULT_CLIENT_ID: App(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)}
        self.token_ttl = 3599
        self.issued = 0
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def knows_tenant(self, tenant: str) -> bool:
        return tenant.lower() in self.tenant_names

    # --- the token endpoint ---------------------------------------------------------------
    def token(self, tenant: str, form: Mapping[str, str]) -> dict[str, Any]:
        """``POST /{tenant}/oauth2/v2.0/token`` with the client_credentials grant."""
        if not self.knows_tenant(tenant):
            raise aadsts(90002, tenant=tenant)
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise aadsts(900144, parameter="grant_type")
        if grant_type != "client_credentials":
            raise aadsts(70003, grant_type=grant_type)
        client_id = form.get("client_id", "")
        if not client_id:
            raise aadsts(900144, parameter="client_id")
        app = self.apps.get(client_id)
        if app is None:
            raise aadsts(700016, client_id=client_id, tenant=self.tenant_id)
        secret = form.get("client_secret")
        if not secret:
            raise aadsts(7000218)
        if not secrets.compare_digest(secret, app.secret):
            raise aadsts(7000215, client_id=client_id)
        scope = form.get("scope", "")
        scopes = scope.split()
        if not scopes:
            raise aadsts(900144, parameter="scope")
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise aadsts(1002012, scope=scope)
        return self._issue(app)

    def _issue(self, app: App) -> dict[str, Any]:
        now = self.clock.time()
        expires = now + self.token_ttl
        payload = {"aud": GRAPH_RESOURCE, "iss": f"https://sts.windows.net/{self.tenant_id}/",
                   "iat": int(now), "nbf": int(now), "exp": int(expires), "appid": app.client_id,
                   "idtyp": "app", "roles": sorted(app.roles), "tid": self.tenant_id, "ver": "1.0"}
        token = ".".join((_b64({"typ": "JWT", "alg": "RS256", "kid": "emulator"}), _b64(payload),
                          secrets.token_urlsafe(64)))
        with self._lock:
            self._grants[token] = Grant(app.client_id, frozenset(app.roles), expires)
            self.issued += 1
        return {"token_type": "Bearer", "expires_in": self.token_ttl,
                "ext_expires_in": self.token_ttl, "access_token": token}

    # --- bearer checks --------------------------------------------------------------------
    def authenticate(self, header: str | None) -> Grant:
        """The grant behind an ``Authorization: Bearer`` header, or the 401 Graph answers."""
        scheme, _, value = (header or "").partition(" ")
        token = value.strip()
        if scheme.lower() != "bearer" or not token:
            raise token_missing()
        with self._lock:
            grant = self._grants.get(token)
        if grant is None:
            raise token_invalid()
        if self.clock.time() >= grant.expires:
            raise token_expired()
        return grant

    @staticmethod
    def require(grant: Grant, roles: Iterable[str]) -> None:
        if not grant.roles & frozenset(roles):
            raise access_denied()

    def expire(self, token: str | None = None) -> None:
        """Expire one issued token now, or every issued token when ``token`` is None."""
        now = self.clock.time()
        with self._lock:
            for key, grant in self._grants.items():
                if token is None or key == token:
                    grant.expires = now

    def tokens(self) -> list[str]:
        with self._lock:
            return list(self._grants)


def bearer(header: str | None) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _b64(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def openid_configuration(base_url: str, tenant: str) -> dict[str, Any]:
    """``GET /{tenant}/v2.0/.well-known/openid-configuration``: what msal reads to find the
    token endpoint when it is pointed at this authority."""
    root = f"{base_url}/{tenant}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                  "client_secret_basic"],
        "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base_url}/{tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base_url}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "roles"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    }
