"""API syncs against the bundled emulators on 127.0.0.1, with a delay per request.

For each CRM: the requests the full sync made against the fewest its page and batch sizes
allow for the emulator's records (the formulas of docs/connectors/), and its wall time
against the floor: for HubSpot, whose emulator enforces the burst limit (100 requests per
rolling 10 s), the time the minimum requests need under that limit; for Salesforce
(no burst limit) the delay times the minimum requests.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from crmlink.cli import cli

HUBSPOT_LINKS = {"companies": 0, "contacts": 1, "deals": 2,
                 **dict.fromkeys(("calls", "meetings", "emails", "notes", "tasks"), 3)}
SF_PAGE, SF_RELATION_CHUNK = 2000, 200


def _sync(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        code = cli.main(argv, standalone_mode=False) or 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return time.perf_counter() - start, code


def hubspot(contacts: int, delay: float, db: str) -> dict[str, Any]:
    from crmlink.testing.hubspot_emulator import HubSpotEmulator
    from crmlink.testing.hubspot_emulator.seed import seed

    with HubSpotEmulator(delay=delay) as emu:  # the burst limit is enforced
        seed(emu, contacts)
        emu.reset_log()
        seconds, code = _sync(["sync", "hubspot", "--base-url", emu.url, "--access-token", emu.token,
                               "--db", db, "-q"])
        requests = emu.requests
        minimum = _hubspot_minimum(emu)
        limits = emu.rate_limits
        records = sum(len(emu.objects(kind, archived=False)) for kind in HUBSPOT_LINKS)
    floor = max(minimum * delay, (minimum - 1) // limits.burst * limits.interval_ms / 1000 + delay)
    return _figures("hubspot", records, requests, minimum, seconds, floor, code,
                    lambda r: r.status)


def _hubspot_minimum(emu: Any) -> int:
    """Property schemas and pipelines, owner pages, then per object type its list pages
    (100 a page), association batches (1000 ids each) and the archived listing."""
    total = len(HUBSPOT_LINKS) + 1
    owners = Counter(bool(o.get("archived")) for o in emu.owners())
    total += max(1, math.ceil(owners[False] / 500)) + max(1, math.ceil(owners[True] / 500))
    for kind, links in HUBSPOT_LINKS.items():
        live = len(emu.objects(kind, archived=False))
        archived = len(emu.objects(kind, archived=True))
        total += max(1, math.ceil(live / 100)) + links * math.ceil(live / 1000)
        total += max(1, math.ceil(archived / 100))
    return total


def salesforce(contacts: int, delay: float, db: str) -> dict[str, Any]:
    from crmlink.testing.salesforce_emulator import Fault, SalesforceEmulator

    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with SalesforceEmulator(tls=True, start_time=start, tick=1.0) as emu:
        os.environ["REQUESTS_CA_BUNDLE"] = emu.ca_path or ""
        records = _seed_salesforce(emu, contacts)
        emu.add_fault(Fault.slow(delay, times=None))
        emu.reset_log()
        seconds, code = _sync(["sync", "salesforce", "--instance-url", emu.instance_url,
                               "--session-id", emu.session_id, "--db", db, "-q"])
        requests = list(emu.requests)
        minimum = _salesforce_minimum(emu, requests)
    return _figures("salesforce", records, requests, minimum, seconds, minimum * delay, code,
                    lambda r: r.status)


def _seed_salesforce(emu: Any, contacts: int) -> int:
    day = (emu.now - timedelta(days=5)).date().isoformat()
    owner = emu.add_user("rep@acme.test", "pw", "", Title="Account Manager", IsActive=True).user_id
    accounts = [emu.insert("Account", {"Name": f"Account {i}"}) for i in range(max(1, contacts // 10))]
    people = [emu.insert("Contact", {"LastName": f"Contact {i}", "AccountId": accounts[i % len(accounts)],
                                     "Title": "CTO" if i % 7 == 0 else "Engineer"})
              for i in range(contacts)]
    for i, who in enumerate(people):
        emu.insert("Task", {"Subject": f"Call {i}", "WhoId": who, "WhatId": accounts[i % len(accounts)],
                            "OwnerId": owner, "ActivityDate": day, "Status": "Completed",
                            "Priority": "Normal", "TaskSubtype": "Call"})
    return len(accounts) + 2 * len(people)


def _salesforce_minimum(emu: Any, requests: list[Any]) -> int:
    """For each object the connector reads (it describes each once): one describe and its
    query pages (2000 rows each), plus for tasks and events one relation query per 200
    live rows of each page."""
    described = {r.path.split("/sobjects/")[1].split("/")[0] for r in requests
                 if r.path.endswith("/describe") and "/sobjects/" in r.path}
    total = 0
    for obj in described:
        rows = emu.records(obj, include_deleted=obj != "OpportunityStage")
        total += 1 + max(1, math.ceil(len(rows) / SF_PAGE))
        if obj in ("Task", "Event"):
            for start in range(0, len(rows), SF_PAGE):
                live = [r for r in rows[start:start + SF_PAGE] if not r.get("IsDeleted")]
                total += math.ceil(len(live) / SF_RELATION_CHUNK)
    return total


def _figures(crm: str, records: int, requests: list[Any], minimum: int, seconds: float,
             floor: float, code: int, status: Callable[[Any], int]) -> dict[str, Any]:
    return {"crm": crm, "records": records, "requests": len(requests), "min_requests": minimum,
            "request_ratio": round(len(requests) / minimum, 3), "seconds": seconds,
            "floor_seconds": floor, "floor_ratio": round(seconds / floor, 3),
            "throttled": sum(1 for r in requests if status(r) == 429), "errors": int(code != 0)}


def run(crm: str, contacts: int, delay: float, db: str) -> dict[str, Any]:
    return {"hubspot": hubspot, "salesforce": salesforce}[crm](contacts, delay, db)
