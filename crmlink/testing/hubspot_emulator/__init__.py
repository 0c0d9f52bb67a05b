"""A HubSpot CRM API emulator for tests, driven by the real hubspot-api-client.

    from crmlink.testing.hubspot_emulator import HubSpotEmulator, Fault
    with HubSpotEmulator() as emu:
        emu.add("contacts", {"email": "ada@example.com"})
        client = HubSpot(access_token=emu.token, host=emu.url)

See docs/emulators-hubspot.md.
"""

from __future__ import annotations

from .clock import Clock
from .emulator import HubSpotEmulator
from .engine import LoggedRequest
from .limits import Fault, RateLimits

__all__ = ["Clock", "Fault", "HubSpotEmulator", "LoggedRequest", "RateLimits"]
