"""Borrowing the Salesforce CLI's login (``--target-org ALIAS``).

An admin who ran ``sf org login web --alias prod`` already holds a session: the CLI keeps
the org's refresh token and renews the access token whenever it is asked for it. crmlink
asks ``sf org display --target-org ALIAS --json`` for the instance URL and the token; recent
CLI releases redact the token there (``[REDACTED] Use 'sf org auth show-access-token' ...``),
and then ``sf org auth show-access-token --target-org ALIAS --json`` gives it. Both commands renew the session first, so asking again after
INVALID_SESSION_ID is how an expired session is renewed.

The token is never printed or logged: the CLI's output is parsed here and only its error
``name`` and ``message`` can reach a message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from crmlink import AuthError, ConfigError

#: Seconds one ``sf`` command may take (it starts Node.js and may renew the session).
TIMEOUT = 120.0
INSTALL = ("install the Salesforce CLI (https://developer.salesforce.com/tools/salesforcecli) "
           "and log in with 'sf org login web --alias ALIAS'")


def cli_session(target_org: str) -> tuple[str, str]:
    """(access token, instance URL) of the org the CLI knows as ``target_org``."""
    shown = _sf(target_org, "org", "display")
    instance_url = str(shown.get("instanceUrl") or "")
    token = str(shown.get("accessToken") or "")
    if not _is_token(token):
        token = str(_sf(target_org, "org", "auth", "show-access-token").get("accessToken") or "")
    if not instance_url or not _is_token(token):
        raise AuthError(f"salesforce: the Salesforce CLI gave no session for {target_org!r}; log in "
                        f"again with 'sf org login web --alias {target_org}'")
    return token, instance_url


def _is_token(value: str) -> bool:
    """An access token, not the CLI's redaction notice (which has spaces)."""
    return bool(value) and not value.startswith("[") and " " not in value


def _sf(target_org: str, *command: str) -> dict[str, Any]:
    """Run ``sf <command> --target-org ALIAS --json``; its ``result`` object."""
    program = shutil.which("sf")
    if program is None:
        raise ConfigError(f"salesforce: --target-org needs the Salesforce CLI ('sf' is not on PATH); {INSTALL}")
    shown = "sf " + " ".join(command)
    try:
        done = subprocess.run([program, *command, "--target-org", target_org, "--json"],
                              capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "SF_DISABLE_AUTOUPDATE": "true"})
    except subprocess.TimeoutExpired:
        raise AuthError(f"salesforce: '{shown}' did not finish within {TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise ConfigError(f"salesforce: cannot run the Salesforce CLI at {program}: {exc.strerror}") from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise AuthError(f"salesforce: '{shown}' answered with no JSON (exit {done.returncode}); run "
                        f"'{shown} --target-org {target_org}' to see why")
    if done.returncode != 0 or answer.get("status", 0) != 0:
        raise _refusal(target_org, shown, answer)
    result = answer.get("result")
    return result if isinstance(result, dict) else {}


def _refusal(target_org: str, shown: str, answer: dict[str, Any]) -> Exception:
    """The CLI's error as one sentence: an unknown alias is a usage error (2), anything
    else (a revoked or expired login) a refusal (4)."""
    name = str(answer.get("name") or "error")
    message = " ".join(str(answer.get("message") or "").split())[:300].rstrip(".")
    if "NotFound" in name or "NoOrg" in name or "NoAuthInfo" in name:
        return ConfigError(f"salesforce: the Salesforce CLI knows no org {target_org!r} ({name}: {message}); "
                           f"list its logins with 'sf org list' or log in with "
                           f"'sf org login web --alias {target_org}'")
    return AuthError(f"salesforce: '{shown}' failed for {target_org!r} ({name}: {message}); log in "
                     f"again with 'sf org login web --alias {target_org}'")


__all__ = ["cli_session"]
