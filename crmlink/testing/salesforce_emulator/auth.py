"""Login endpoints: SOAP ``login`` and OAuth 2.0 ``/services/oauth2/token``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from .errors import Response, json_response

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SOAP_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:sf="urn:fault.partner.soap.sforce.com" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
    "<faultcode>sf:{code}</faultcode><faultstring>{code}: {msg}</faultstring><detail>"
    '<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
    "<sf:exceptionMessage>{msg}</sf:exceptionMessage></sf:LoginFault></detail>"
    "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
)
SOAP_OK = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body><loginResponse><result>"
    "<metadataServerUrl>{base}/services/Soap/m/{ver}/{org}</metadataServerUrl>"
    "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
    "<serverUrl>{base}/services/Soap/u/{ver}/{org}</serverUrl><sessionId>{sid}</sessionId>"
    "<userId>{uid}</userId><userInfo><accessibilityMode>false</accessibilityMode>"
    "<currencySymbol>$</currencySymbol><orgAttachmentFileSizeLimit>5242880"
    "</orgAttachmentFileSizeLimit><orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
    "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments><orgHasPersonAccounts>false"
    "</orgHasPersonAccounts><organizationId>{org}</organizationId><organizationMultiCurrency>"
    "false</organizationMultiCurrency><organizationName>crmlink Emulated Org"
    "</organizationName><profileId>{profile}</profileId><roleId xsi:nil=\"true\"/>"
    "<sessionSecondsValid>7200</sessionSecondsValid><userDefaultCurrencyIsoCode "
    'xsi:nil="true"/><userEmail>{email}</userEmail><userFullName>{name}</userFullName>'
    "<userId>{uid}</userId><userLanguage>en_US</userLanguage><userLocale>en_US</userLocale>"
    "<userName>{user}</userName><userTimeZone>America/Los_Angeles</userTimeZone>"
    "<userType>Standard</userType><userUiSkin>Theme3</userUiSkin></userInfo></result>"
    "</loginResponse></soapenv:Body></soapenv:Envelope>"
)
BAD_LOGIN = "Invalid username, password, security token; or user locked out."


@dataclass
class UserCredentials:
    """A user that can log in: SOAP wants ``password + security_token``."""

    username: str
    password: str
    security_token: str
    user_id: str

    @property
    def password_and_token(self) -> str:
        return self.password + self.security_token


@dataclass
class ConnectedApp:
    """An OAuth client. ``run_as`` is the client-credentials user; ``jwt_public_key`` (PEM
    public key or certificate) enables RS256 signature checks for the JWT bearer flow."""

    consumer_key: str
    consumer_secret: str
    run_as: str | None = None
    jwt_public_key: str | None = None


def soap_fault(code: str, message: str, status: int = 500) -> Response:
    body = SOAP_FAULT.format(code=code, msg=escape(message))
    return Response(status, body.encode(), "text/xml;charset=UTF-8")


def soap_login(emu: SalesforceEmulator, body: bytes, version: str) -> Response:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return soap_fault("INVALID_REQUEST", "Unable to parse the SOAP request body")
    values = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
    user = emu.users.get(values.get("username", ""))
    password = values.get("password", "")
    org = values.get("organizationId")
    ok = user is not None and (
        password == user.password_and_token
        or (org is not None and org[:15] == emu.org_id[:15] and password == user.password))
    if user is None or not ok:
        return soap_fault("INVALID_LOGIN", BAD_LOGIN)
    record = emu.store.get("User", user.user_id) or {}
    sid = emu.new_session(user.username)
    xml = SOAP_OK.format(base=emu.instance_url, ver=version, org=emu.org_id, sid=sid,
                         uid=user.user_id, user=escape(user.username),
                         email=escape(str(record.get("Email") or user.username)),
                         name=escape(str(record.get("Name") or user.username)),
                         profile=record.get("ProfileId") or "")
    return Response(200, xml.encode(), "text/xml;charset=UTF-8")


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def token(emu: SalesforceEmulator, body: bytes, headers: dict[str, str]) -> Response:
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    grant = form.get("grant_type", "")
    handler = {"password": _password, "client_credentials": _client_credentials,
               JWT_GRANT: _jwt_bearer, "refresh_token": _refresh}.get(grant)
    if handler is None:
        return oauth_error("unsupported_grant_type", "grant type not supported")
    return handler(emu, form, headers)


def _client(emu: SalesforceEmulator, key: str | None,
            secret: str | None) -> tuple[ConnectedApp | None, Response | None]:
    app = emu.connected_apps.get(key or "")
    if app is None:
        return None, oauth_error("invalid_client_id", "client identifier invalid")
    if secret is not None and secret != app.consumer_secret:
        return None, oauth_error("invalid_client", "invalid client credentials")
    return app, None


def _password(emu: SalesforceEmulator, form: dict[str, str], headers: dict[str, str]) -> Response:
    app, err = _client(emu, form.get("client_id"), form.get("client_secret", ""))
    if err or app is None:
        return err or oauth_error("invalid_client_id", "client identifier invalid")
    user = emu.users.get(form.get("username", ""))
    if user is None or form.get("password") != user.password_and_token:
        return oauth_error("invalid_grant", "authentication failure")
    return _issue(emu, user.username)


def _client_credentials(emu: SalesforceEmulator, form: dict[str, str],
                        headers: dict[str, str]) -> Response:
    key, secret = form.get("client_id"), form.get("client_secret")
    auth = headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            key, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return oauth_error("invalid_client", "invalid client credentials")
    app, err = _client(emu, key, secret or "")
    if err or app is None:
        return err or oauth_error("invalid_client_id", "client identifier invalid")
    if not app.run_as or app.run_as not in emu.users:
        return oauth_error("invalid_grant", "no client credentials user enabled")
    return _issue(emu, app.run_as, scope="api")


def _b64json(part: str) -> dict[str, Any]:
    data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    loaded = json.loads(data)
    return loaded if isinstance(loaded, dict) else {}


def _jwt_bearer(emu: SalesforceEmulator, form: dict[str, str],
                headers: dict[str, str]) -> Response:
    assertion = form.get("assertion", "")
    parts = assertion.split(".")
    try:
        header, claims = _b64json(parts[0]), _b64json(parts[1])
    except (IndexError, ValueError, binascii.Error):
        return oauth_error("invalid_grant", "invalid assertion")
    app = emu.connected_apps.get(str(claims.get("iss", "")))
    if app is None:
        return oauth_error("invalid_client_id", "client identifier invalid")
    user = emu.users.get(str(claims.get("sub", "")))
    expired = float(claims.get("exp", 0) or 0) < time.time()
    if user is None or expired or header.get("alg") != "RS256":
        return oauth_error("invalid_grant", "invalid assertion")
    if app.jwt_public_key and not _verify_rs256(app.jwt_public_key, parts):
        return oauth_error("invalid_grant", "invalid assertion")
    return _issue(emu, user.username, scope="api")


def _verify_rs256(pem: str, parts: list[str]) -> bool:
    """Check the RS256 signature when ``cryptography`` is installed (claims-only otherwise)."""
    try:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
    except ImportError:  # pragma: no cover - cryptography ships with PyJWT[crypto]
        return True
    data = pem.encode()
    if b"CERTIFICATE" in data:
        key: Any = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    try:
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                   hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _refresh(emu: SalesforceEmulator, form: dict[str, str], headers: dict[str, str]) -> Response:
    app, err = _client(emu, form.get("client_id"), form.get("client_secret"))
    if err or app is None:
        return err or oauth_error("invalid_client_id", "client identifier invalid")
    owner = emu.refresh_tokens.get(form.get("refresh_token", ""))
    if owner is None or owner[1] != app.consumer_key:
        return oauth_error("invalid_grant", "expired access/refresh token")
    return _issue(emu, owner[0], scope="api refresh_token")


def _issue(emu: SalesforceEmulator, username: str, scope: str | None = None) -> Response:
    user = emu.users[username]
    sid = emu.new_session(username)
    issued = str(int(time.time() * 1000))
    signature = base64.b64encode(hmac.new(emu.org_id.encode(), (user.user_id + issued).encode(),
                                          hashlib.sha256).digest()).decode()
    payload: dict[str, Any] = {
        "access_token": sid, "instance_url": emu.instance_url,
        "id": f"https://login.salesforce.com/id/{emu.org_id}/{user.user_id}",
        "token_type": "Bearer", "issued_at": issued, "signature": signature,
    }
    if scope:
        payload["scope"] = scope
    return json_response(200, payload)
