"""Deterministic generated data: owners, companies, contacts, deals with stage history and
competitors (the custom multi-select deal property ``competitors``), engagements, support
tickets and labelled associations."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from .pipelines import DEFAULT_DEAL_STAGES

if TYPE_CHECKING:
    from .emulator import HubSpotEmulator

DAY_MS = 86_400_000
FIRST = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances",
         "Edsger", "Radia", "John", "Sophie", "Tim", "Hedy", "Guido")
LAST = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie",
        "Allen", "Dijkstra", "Perlman", "Backus", "Wilson", "Berners-Lee", "Lamarr", "Rossum")
WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne",
         "Soylent", "Vandelay", "Wonka", "Aperture", "Massive", "Dynamic", "Pied Piper")
ROLES = ("DECISION_MAKER", "CHAMPION", "INFLUENCER", "BUDGET_HOLDER", "END_USER", "BLOCKER")
LABELS = ("Decision maker", "Champion", "Economic buyer", "Technical evaluator")
TITLES = ("CEO", "CTO", "VP Sales", "Head of IT", "Procurement Manager", "Engineer", "CFO")
#: The custom deal property the seed records competitors in (a multi-select, as portals
#: usually have it), and its option values (labels: "Rival Inc", "Newco" ...).
COMPETITOR_PROPERTY = "competitors"
COMPETITORS = ("rival_inc", "newco", "acme_corp", "globex")
TICKET_SUBJECTS = ("Login fails", "Invoice wrong", "Export is slow", "Feature: SSO", "Outage",
                   "How do I add users?")


def seed(emu: HubSpotEmulator, size: int, *, seed: int = 42) -> dict[str, list[str]]:
    """Fill ``emu`` with about ``size`` contacts and proportional other objects."""
    rng = random.Random(seed)
    now = emu.clock.now_ms()
    start = now - 365 * DAY_MS
    owners = _owners(emu)
    companies = _companies(emu, rng, max(1, size // 5), owners, start)
    contacts = _contacts(emu, rng, size, owners, companies, start)
    if COMPETITOR_PROPERTY not in emu.property_names("deals"):
        emu.add_property("deals", COMPETITOR_PROPERTY, "enumeration", list(COMPETITORS),
                         label="Competitors", field_type="checkbox")
    # competitors and tickets draw from their own generators, so the rest stays as it was
    rivals = random.Random(seed + 1)
    deals = _deals(emu, rng, max(1, size // 3), owners, companies, contacts, start, now, rivals)
    out = {"owners": owners, "companies": companies, "contacts": contacts, "deals": deals}
    for kind in ("calls", "meetings", "emails", "notes", "tasks"):
        out[kind] = _engagements(emu, rng, kind, max(1, size // 5), owners, contacts, deals,
                                 start, now)
    out["tickets"] = _tickets(emu, random.Random(seed + 2), max(1, size // 10), owners, contacts,
                              start, now)
    return out


def _owners(emu: HubSpotEmulator) -> list[str]:
    team = [{"id": "1001", "name": "Sales", "primary": True}]
    ids = [emu.add_owner(f"{f.lower()}@example.com", f, last, teams=team)
           for f, last in zip(FIRST[:5], LAST[:5], strict=True)]
    ids.append(emu.add_owner("former@example.com", "Former", "Rep", archived=True))
    return ids[:5]


def _at(rng: random.Random, start: int, end: int) -> int:
    return rng.randint(start, max(start, end))


def _companies(emu: HubSpotEmulator, rng: random.Random, n: int, owners: list[str],
               start: int) -> list[str]:
    ids = []
    for i in range(n):
        name = f"{rng.choice(WORDS)} {rng.choice(('Corp', 'Labs', 'GmbH', 'Inc', 'Ltd'))} {i}"
        domain = name.lower().replace(" ", "") + ".example"
        ids.append(emu.add("companies", {
            "name": name, "domain": domain, "hubspot_owner_id": rng.choice(owners),
            "industry": rng.choice(("COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "RETAIL")),
            "numberofemployees": rng.choice((12, 80, 450, 2300, 12000)),
            "city": rng.choice(("Berlin", "Boston", "Shenzhen", "Paris")),
        }, at=_at(rng, start, start + 60 * DAY_MS)))
    return ids


def _contacts(emu: HubSpotEmulator, rng: random.Random, n: int, owners: list[str],
              companies: list[str], start: int) -> list[str]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        rows.append({
            "email": f"{first.lower()}.{last.lower()}{i}@example.com", "firstname": first,
            "lastname": last, "jobtitle": rng.choice(TITLES),
            "hubspot_owner_id": rng.choice(owners),
            "lifecyclestage": rng.choice(("lead", "salesqualifiedlead", "opportunity",
                                          "customer")),
            "hs_buying_role": rng.choice(ROLES),
            "createdate": _at(rng, start, start + 300 * DAY_MS),
        })
    ids = emu.add_many("contacts", rows)
    for cid in ids:
        company = rng.choice(companies)
        emu.associate("contacts", cid, "companies", company, label="Primary")
        emu.update("contacts", cid, {"associatedcompanyid": company},
                   at=emu.get("contacts", cid)["properties"]["createdate"])
    return ids


def _deals(emu: HubSpotEmulator, rng: random.Random, n: int, owners: list[str],
           companies: list[str], contacts: list[str], start: int, now: int,
           rivals: random.Random) -> list[str]:
    stages = [s[0] for s in DEFAULT_DEAL_STAGES]
    ids = []
    for i in range(n):
        created = _at(rng, start, now - 30 * DAY_MS)
        deal = emu.add("deals", {
            "dealname": f"Deal {i}", "amount": rng.choice((5000, 12500, 48000, 250000)),
            "dealstage": stages[0], "pipeline": "default", "dealtype": "newbusiness",
            "hubspot_owner_id": rng.choice(owners),
            "closedate": created + rng.randint(30, 120) * DAY_MS,
            **_competitors(rivals),
        }, at=created)
        when = created
        for stage in _stage_path(rng, stages):
            when = min(now, when + rng.randint(1, 20) * DAY_MS)
            emu.update("deals", deal, {"dealstage": stage}, at=when)
        emu.associate("deals", deal, "companies", rng.choice(companies), label="Primary")
        for contact in rng.sample(contacts, k=min(len(contacts), rng.randint(1, 3))):
            emu.associate("deals", deal, "contacts", contact, label=rng.choice(LABELS))
        ids.append(deal)
    return ids


def _competitors(rivals: random.Random) -> dict[str, str]:
    """No competitor on about half the deals, one or two on the others."""
    chosen = rivals.sample(COMPETITORS, k=rivals.choice((0, 0, 1, 1, 2)))
    return {COMPETITOR_PROPERTY: ";".join(chosen)} if chosen else {}


def _stage_path(rng: random.Random, stages: list[str]) -> list[str]:
    """Stages a deal moves through after the first: still open, won, or lost."""
    open_stages = stages[1:5]
    outcome = rng.choice(("open", "open", "won", "lost"))
    if outcome == "won":
        return [*open_stages, "closedwon"]
    path = open_stages[: rng.randint(0, len(open_stages))]
    return [*path, "closedlost"] if outcome == "lost" else path


ENGAGEMENT_PROPS = {
    "calls": lambda r, i: {"hs_call_title": f"Call {i}", "hs_call_direction": "OUTBOUND",
                           "hs_call_duration": r.randint(1, 60) * 60_000,
                           "hs_call_status": "COMPLETED"},
    "meetings": lambda r, i: {"hs_meeting_title": f"Meeting {i}", "hs_meeting_outcome":
                              r.choice(("SCHEDULED", "COMPLETED", "NO_SHOW"))},
    "emails": lambda r, i: {"hs_email_subject": f"Re: proposal {i}", "hs_email_status": "SENT",
                            "hs_email_direction": r.choice(("EMAIL", "INCOMING_EMAIL"))},
    "notes": lambda r, i: {"hs_note_body": f"<p>Note {i}</p>"},
    "tasks": lambda r, i: {"hs_task_subject": f"Follow up {i}", "hs_task_status":
                           r.choice(("NOT_STARTED", "COMPLETED")), "hs_task_type": "TODO"},
}


def _engagements(emu: HubSpotEmulator, rng: random.Random, kind: str, n: int,
                 owners: list[str], contacts: list[str], deals: list[str], start: int,
                 now: int) -> list[str]:
    ids = []
    for i in range(n):
        when = _at(rng, start, now)
        props = {**ENGAGEMENT_PROPS[kind](rng, i), "hubspot_owner_id": rng.choice(owners),
                 "hs_timestamp": when}
        eid = emu.add(kind, props, at=when)
        emu.associate(kind, eid, "contacts", rng.choice(contacts))
        if rng.random() < 0.5:
            emu.associate(kind, eid, "deals", rng.choice(deals))
        ids.append(eid)
    return ids


def _tickets(emu: HubSpotEmulator, rng: random.Random, n: int, owners: list[str],
             contacts: list[str], start: int, now: int) -> list[str]:
    """Tickets of the default Support Pipeline on the contacts' companies; about half are
    closed some days after they were opened."""
    ids = []
    for i in range(n):
        opened = _at(rng, start, now - DAY_MS)
        contact = rng.choice(contacts)
        ticket = emu.add("tickets", {
            "subject": f"{rng.choice(TICKET_SUBJECTS)} ({i})", "hs_pipeline": "0",
            "hs_pipeline_stage": rng.choice(("1", "2", "3")),
            "hs_ticket_priority": rng.choice(("LOW", "MEDIUM", "MEDIUM", "HIGH", "URGENT")),
            "hs_ticket_category": rng.choice(("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST",
                                              "GENERAL_INQUIRY")),
            "source_type": rng.choice(("EMAIL", "PHONE", "FORM", "CHAT")),
            "hubspot_owner_id": rng.choice(owners), "createdate": opened,
        }, at=opened)
        emu.associate("tickets", ticket, "contacts", contact)
        company = emu.get("contacts", contact)["properties"].get("associatedcompanyid")
        if company:
            emu.associate("tickets", ticket, "companies", company, label="Primary")
        if rng.random() < 0.5:
            emu.update("tickets", ticket, {"hs_pipeline_stage": "4"},
                       at=min(now, opened + rng.randint(1, 20) * DAY_MS))
        ids.append(ticket)
    return ids
