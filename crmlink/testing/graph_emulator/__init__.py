"""A Microsoft Graph emulator (mail, calendar and the client-credentials token endpoint)
for tests, driven by the real msal and requests.

    from crmlink.testing.graph_emulator import GraphEmulator, Fault
    with GraphEmulator() as emu:
        ann = emu.add_mailbox("ann@contoso.test")
        emu.add_message(ann, "sentitems", sender=ann, to=["bob@fabrikam.test"])

See docs/emulators-graph.md.
"""

from __future__ import annotations

from .auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, READ_ROLES
from .calendar import Attendee
from .emulator import GraphEmulator
from .engine import LoggedRequest
from .faults import Fault, Limits
from .mail import Mailbox

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_TENANT_ID", "READ_ROLES",
           "Attendee", "Fault", "GraphEmulator", "Limits", "LoggedRequest", "Mailbox"]
