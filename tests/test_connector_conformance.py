"""The built-in CRM connectors pass the conformance kit third parties test theirs with
(crmlink.testing.conformance), each against its emulator through its real client library:
declarations, canonical records, unique keys, sorted streams, checkpoints, deletions and
the incremental second run."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import ClassVar

from crmlink.plugins.hubspot import HubSpotConnector
from crmlink.plugins.salesforce import SalesforceConnector
from crmlink.testing.conformance import ConnectorContract, SuiteConfig
from crmlink.testing.hubspot_emulator import HubSpotEmulator
from crmlink.testing.hubspot_emulator.seed import seed as seed_portal
from crmlink.testing.salesforce_emulator import SalesforceEmulator

APEX = Path(__file__).parent / "data" / "realdata" / "sf_apex_recipes"
#: HubSpot's streams whose second run searches by modification time (resumable, not
#: sorted: the kit checks them by name)
OBJECT_STREAMS = ("companies", "contacts", "deals", "support_cases", "calls", "meetings", "emails", "notes",
                  "tasks")


class TestHubSpotConformance(ConnectorContract):
    """A generated portal with one archived contact and one archived company."""

    connector = HubSpotConnector
    _emu: ClassVar[HubSpotEmulator]

    @classmethod
    def setup_class(cls) -> None:
        emu = cls._emu = HubSpotEmulator()
        emu.start()
        ids = seed_portal(emu, 120)
        emu.advance(-2 * 3600)  # archived before the margin the connector allows for clock skew
        emu.archive("contacts", ids["contacts"][-1])
        emu.archive("companies", ids["companies"][-1])
        emu.advance(2 * 3600)
        cls.suite = SuiteConfig(expected_deleted={"contacts": {ids["contacts"][-1]},
                                                  "companies": {ids["companies"][-1]}},
                                ignore_empty_streams=True, incremental_streams=OBJECT_STREAMS)
        cls.config = {"base_url": emu.url, "access_token": emu.token}

    @classmethod
    def teardown_class(cls) -> None:
        cls._emu.stop()


class TestSalesforceConformance(ConnectorContract):
    """The apex-recipes org (real sample data) with one deleted contact, over TLS."""

    connector = SalesforceConnector
    _emu: ClassVar[SalesforceEmulator]
    _bundle: ClassVar[str | None]

    @classmethod
    def setup_class(cls) -> None:
        start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
        emu = cls._emu = SalesforceEmulator(tls=True, start_time=start, tick=1.0)
        emu.start()
        cls._bundle = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = emu.ca_path or ""
        emu.seed_plan(APEX)
        gone = emu.records("Contact")[-1]["Id"]
        emu.delete("Contact", gone)
        cls.suite = SuiteConfig(expected_deleted={"contacts": {gone}}, ignore_empty_streams=True,
                                # a Connected App's public client id, and the path of the JWT key
                                not_secret=("consumer_key", "private_key_file"))
        cls.config = {"instance_url": emu.instance_url, "session_id": emu.session_id}

    @classmethod
    def teardown_class(cls) -> None:
        cls._emu.stop()
        if cls._bundle is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = cls._bundle
