"""A stand-in for the Salesforce CLI (``sf``) for tests: an executable on PATH that answers
``sf org display`` and ``sf org auth show-access-token`` with ``--target-org ALIAS --json``
the way the real CLI does, renewing the org's session with its refresh token against the
Salesforce emulator's OAuth endpoint before it answers (as the real CLI's ``refreshAuth``).

Its state is a JSON file beside it: the orgs it is logged in to, whether ``org display``
redacts the token (recent CLI releases do), and a log of the commands it ran.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from crmlink.testing.salesforce_emulator import SalesforceEmulator

CLIENT_ID = "PlatformCLI"  # the connected app the real CLI logs in with

SCRIPT = '''#!{python}
import json, ssl, sys, urllib.error, urllib.parse, urllib.request
STATE = {state!r}
state = json.load(open(STATE))
args = sys.argv[1:]
with open(state["log"], "a") as log:
    log.write(" ".join(args) + "\\n")

def fail(name, message, code=1):
    print(json.dumps({{"status": code, "name": name, "message": message, "exitCode": code,
                      "commandName": "OrgDisplayCommand", "warnings": [], "stack": name + ": " + message}}))
    sys.exit(code)

alias = args[args.index("--target-org") + 1] if "--target-org" in args else None
command = [a for a in args if not a.startswith("-")][: (3 if args[:2] == ["org", "auth"] else 2)]
if state.get("broken"):
    print("Error: Cannot find module '@salesforce/core'", file=sys.stderr)
    sys.exit(1)
org = state["orgs"].get(alias)
if org is None:
    fail("NamedOrgNotFoundError", f"No authorization information found for {{alias}}.")
form = urllib.parse.urlencode({{"grant_type": "refresh_token", "client_id": "{client}",
                               "refresh_token": org["refreshToken"]}}).encode()
context = ssl.create_default_context(cafile=state["ca"])
try:
    answer = json.load(urllib.request.urlopen(org["instanceUrl"] + "/services/oauth2/token", form,
                                              context=context))
except urllib.error.HTTPError as exc:
    body = json.load(exc)
    fail("RefreshTokenAuthError", "Error authenticating with the refresh token due to: "
         + body.get("error_description", ""))
token = answer["access_token"]
if command == ["org", "display"]:
    shown = token if not state.get("redact") else "[REDACTED] Use 'sf org auth show-access-token' to view"
    result = {{"id": "00DXX0000000001", "apiVersion": "59.0", "accessToken": shown,
              "instanceUrl": org["instanceUrl"], "username": org["username"], "clientId": "{client}",
              "connectedStatus": "Connected", "alias": alias}}
elif command == ["org", "auth", "show-access-token"]:
    result = {{"accessToken": token}}
else:
    fail("CommandNotFound", "command " + " ".join(command) + " not found", 127)
print(json.dumps({{"status": 0, "result": result, "warnings": []}}))
'''


class StandIn:
    """The stand-in ``sf`` in ``folder`` (put ``folder`` first on PATH)."""

    def __init__(self, folder: Path, emu: SalesforceEmulator) -> None:
        self.folder, self.emu = folder, emu
        folder.mkdir(parents=True, exist_ok=True)
        self.state_path, self.log_path = folder / "sf-state.json", folder / "sf-calls.log"
        if CLIENT_ID not in emu.connected_apps:
            emu.add_connected_app(CLIENT_ID, "not-used-by-the-cli")
        self.state: dict[str, Any] = {"orgs": {}, "redact": True, "ca": emu.ca_path,
                                      "log": str(self.log_path)}
        self.save()
        script = folder / "sf"
        script.write_text(SCRIPT.format(python=sys.executable, state=str(self.state_path),
                                        client=CLIENT_ID))
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def login(self, alias: str) -> str:
        """Log the CLI in to the emulator's org as ``alias``; returns its refresh token."""
        refresh = self.emu.issue_refresh_token(consumer_key=CLIENT_ID)
        self.state["orgs"][alias] = {"instanceUrl": self.emu.instance_url, "refreshToken": refresh,
                                     "username": "admin@example.com"}
        self.save()
        return refresh

    def save(self) -> None:
        self.state_path.write_text(json.dumps(self.state))

    def calls(self) -> list[str]:
        return self.log_path.read_text().splitlines() if self.log_path.exists() else []

    @property
    def path(self) -> str:
        return str(self.folder) + os.pathsep + os.environ.get("PATH", "")
