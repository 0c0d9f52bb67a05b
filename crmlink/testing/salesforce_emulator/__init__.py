"""A Salesforce REST API emulator for tests: real response shapes, real error bodies.

    from crmlink.testing.salesforce_emulator import SalesforceEmulator, Fault

    with SalesforceEmulator(tls=False) as emu:
        emu.insert("Account", {"Name": "Acme"})
        sf = Salesforce(instance_url=emu.instance_url, session_id=emu.session_id,
                        session=rewrite_session(emu))

See docs/emulators-salesforce.md.
"""

from __future__ import annotations

from .adapter import RewriteAdapter, rewrite_session
from .auth import ConnectedApp, UserCredentials
from .emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    SalesforceEmulator,
)
from .errors import ApiError
from .faults import Fault
from .seed import SeedError
from .server import RequestRecord

__all__ = [
    "DEFAULT_CONSUMER_KEY",
    "DEFAULT_CONSUMER_SECRET",
    "DEFAULT_PASSWORD",
    "DEFAULT_TOKEN",
    "DEFAULT_USERNAME",
    "ApiError",
    "ConnectedApp",
    "Fault",
    "RequestRecord",
    "RewriteAdapter",
    "SalesforceEmulator",
    "SeedError",
    "UserCredentials",
    "rewrite_session",
]
