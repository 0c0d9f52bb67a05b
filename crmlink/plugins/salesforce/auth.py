"""Salesforce logins: SOAP username-password, OAuth (password, JWT bearer, client credentials),
the Salesforce CLI's session (``target_org``, see :mod:`.sfcli`) and a direct session id.

crmlink logs in itself (with simple-salesforce's ``soap_login``/``token_login`` helpers) so
that the login host is configurable (``login_url``: proxies, sandboxes, My Domain, tests);
simple-salesforce's own constructor hard-codes ``https://{domain}.salesforce.com``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from xml.sax.saxutils import escape

import requests
from simple_salesforce.login import soap_login, token_login

from crmlink import ConfigError

from .sfcli import cli_session

API_VERSION = "59.0"


@dataclass(frozen=True)
class Session:
    """A logged-in session: the bearer token and the instance host (``host[:port]``)."""

    session_id: str
    instance: str


def login_base(config: Mapping[str, Any]) -> str:
    """The login host as ``https://...`` without a trailing slash."""
    if config.get("login_url"):
        return str(config["login_url"]).rstrip("/")
    domain = str(config.get("domain") or "login").strip().rstrip("/")
    if "://" in domain:
        return domain
    if domain.endswith(".salesforce.com"):
        return f"https://{domain}"
    return f"https://{domain}.salesforce.com"


def instance_host(url: str) -> str:
    """``https://acme.my.salesforce.com/`` -> ``acme.my.salesforce.com`` (port kept)."""
    text = url.strip()
    parsed = urlparse(text if "://" in text else "https://" + text)
    if not parsed.hostname:
        raise ConfigError(f"salesforce: --instance-url {url!r} is not a URL such as https://acme.my.salesforce.com")
    return parsed.hostname + (f":{parsed.port}" if parsed.port not in (None, 443) else "")


def flow_of(config: Mapping[str, Any]) -> str:
    """Which login flow the settings ask for (``direct``, ``sf_cli``, ``jwt``,
    ``oauth_password``, ``soap``, ``client_credentials``), in that order of precedence."""
    c = config
    if c.get("session_id"):
        if not c.get("instance_url"):
            raise ConfigError("salesforce: --session-id needs --instance-url (or set SALESFORCE_INSTANCE_URL)")
        return "direct"
    if c.get("target_org"):
        return "sf_cli"
    if c.get("private_key_file"):
        if not (c.get("consumer_key") and c.get("username")):
            raise ConfigError("salesforce: the JWT bearer flow (--private-key-file) needs --consumer-key and --username")
        return "jwt"
    if c.get("username") and c.get("password"):
        if c.get("consumer_key") and c.get("consumer_secret"):
            return "oauth_password"
        return "soap"
    if c.get("consumer_key") and c.get("consumer_secret"):
        return "client_credentials"
    raise ConfigError(
        "salesforce: no credentials; give --target-org ALIAS (an org the Salesforce CLI is logged "
        "in to), or --username, --password and --security-token, or --consumer-key with "
        "--private-key-file (JWT) or --consumer-secret (client credentials), or --session-id "
        "with --instance-url")


def login(config: Mapping[str, Any], session: requests.Session) -> Session:
    """Log in with the flow the settings name; raises simple-salesforce's exceptions."""
    flow = flow_of(config)
    if flow == "direct":
        return Session(str(config["session_id"]), instance_host(str(config["instance_url"])))
    if flow == "sf_cli":
        token, instance_url = cli_session(str(config["target_org"]))
        return Session(token, instance_host(instance_url))
    base = login_base(config)
    token_url = f"{base}/services/oauth2/token"
    key = str(config.get("consumer_key") or "")
    if flow == "soap":
        sid, instance = soap_login(f"{base}/services/Soap/u/{API_VERSION}", _soap_body(config),
                                   {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"},
                                   None, session)
    elif flow == "oauth_password":
        data = {"grant_type": "password", "client_id": key,
                "client_secret": config["consumer_secret"], "username": config["username"],
                "password": str(config["password"]) + str(config.get("security_token") or "")}
        sid, instance = token_login(token_url, data, _domain_label(base), key, None, None, session)
    elif flow == "jwt":
        data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": _jwt_assertion(config, base)}
        sid, instance = token_login(token_url, data, _domain_label(base), key, None, None, session)
    else:  # client_credentials
        data = {"grant_type": "client_credentials"}
        auth = requests.auth._basic_auth_str(key, str(config["consumer_secret"]))
        sid, instance = token_login(token_url, data, _domain_label(base), key,
                                    {"Authorization": auth}, None, session)
    return Session(str(sid), instance_host(str(instance)))


def _domain_label(base: str) -> str:
    host = urlparse(base).hostname or "login"
    return host.removesuffix(".salesforce.com")


def _soap_body(config: Mapping[str, Any]) -> str:
    username = escape(str(config["username"]))
    password = escape(str(config["password"]) + str(config.get("security_token") or ""))
    return f"""<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
    <env:Header><urn:CallOptions><urn:client>crmlink</urn:client></urn:CallOptions></env:Header>
    <env:Body>
        <n1:login xmlns:n1="urn:partner.soap.sforce.com">
            <n1:username>{username}</n1:username>
            <n1:password>{password}</n1:password>
        </n1:login>
    </env:Body>
</env:Envelope>"""


def _jwt_assertion(config: Mapping[str, Any], base: str) -> str:
    import jwt  # PyJWT, a dependency of simple-salesforce

    path = Path(str(config["private_key_file"])).expanduser()
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"salesforce: cannot read --private-key-file {str(path)!r}: {exc.strerror}") from None
    aud = base if "salesforce.com" in base else "https://login.salesforce.com"
    claims = {"iss": config["consumer_key"], "sub": config["username"], "aud": aud,
              "exp": int(time.time()) + 180}
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"salesforce: --private-key-file {str(path)!r} is not an RSA private key in PEM: {exc}") from None
