"""HubSpot tickets (support cases) and a competitor deal property, from the HubSpot emulator
through the real hubspot-api-client: read incrementally like every object, the tickets
scope optional, the competitor property checked, and both turned into the review's signals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmlink import Account, Competitor, Opportunity, SupportCase
from crmlink.cli import cli
from crmlink.core.store import Store
from crmlink.testing.hubspot_emulator import HubSpotEmulator, RateLimits

DAY = timedelta(days=1)
READ_SCOPES = ("crm.objects.owners.read", "crm.objects.companies.read", "crm.objects.contacts.read",
               "crm.objects.deals.read", "crm.schemas.companies.read", "crm.schemas.contacts.read",
               "crm.schemas.deals.read")


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(rate_limits=RateLimits(burst=5000, search_per_second=500)) as emulator:
        emulator.add_property("deals", "rivals", "enumeration", ["rival_inc", "newco", "acme_corp"],
                              label="Competitors", field_type="checkbox")
        yield emulator


def sync(emu: HubSpotEmulator, *extra: str, token: str | None = None, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["sync", "hubspot", "--base-url", emu.url, "--access-token",
                                      token or emu.token, *extra])
    assert result.exit_code == code, result.output
    return result


def counts(result: Result) -> dict[str, list[int]]:
    rows = re.findall(r"^\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", result.stdout, re.M)
    return {name: [int(n) for n in nums] for name, *nums in rows}


def seed(emu: HubSpotEmulator) -> dict[str, str]:
    """One customer with two deals (one won against Rival Inc, one open against Newco) and
    four tickets: an urgent open one, a closed question, a billing issue, and one on a
    contact without a company."""
    long_ago = emu.now - 200 * DAY
    acme = emu.add("companies", {"name": "Acme Mining"}, at=long_ago)
    ng = emu.add("contacts", {"lastname": "Ng", "jobtitle": "CIO"}, at=long_ago)
    loner = emu.add("contacts", {"lastname": "Solo"}, at=long_ago)
    emu.associate("contacts", ng, "companies", acme, label="Primary")
    won = emu.add("deals", {"dealname": "Won", "dealstage": "closedwon", "closedate": emu.now - 5 * DAY,
                            "rivals": "rival_inc"}, at=emu.now - 60 * DAY)
    open_ = emu.add("deals", {"dealname": "Open", "dealstage": "qualifiedtobuy", "rivals": "newco;acme_corp"},
                    at=emu.now - 20 * DAY)
    for deal in (won, open_):
        emu.associate("deals", deal, "companies", acme, label="Primary")
    outage = emu.add("tickets", {"subject": "Outage", "hs_ticket_priority": "URGENT", "hs_pipeline_stage": "1",
                                 "hs_ticket_category": "PRODUCT_ISSUE"}, at=emu.now - 10 * DAY)
    howto = emu.add("tickets", {"subject": "How to", "hs_ticket_priority": "LOW",
                                "hs_ticket_category": "GENERAL_INQUIRY"}, at=emu.now - 40 * DAY)
    emu.update("tickets", howto, {"hs_pipeline_stage": "4"}, at=emu.now - 38 * DAY)
    invoice = emu.add("tickets", {"subject": "Invoice wrong", "hs_ticket_priority": "HIGH",
                                  "hs_ticket_category": "BILLING_ISSUE"}, at=emu.now - 3 * DAY)
    stray = emu.add("tickets", {"subject": "Who am I"}, at=emu.now - 3 * DAY)
    for ticket in (outage, howto, invoice):
        emu.associate("tickets", ticket, "companies", acme, label="Primary")
        emu.associate("tickets", ticket, "contacts", ng)
    emu.associate("tickets", stray, "contacts", loner)
    return {"acme": acme, "ng": ng, "won": won, "open": open_, "outage": outage, "howto": howto,
            "invoice": invoice, "stray": stray}


def cases() -> dict[str, SupportCase]:
    return {c.remote_id: c for c in Store().records_of(SupportCase)}


def test_tickets_are_read_in_full_then_incrementally(emu: HubSpotEmulator) -> None:
    ids = seed(emu)
    first = counts(sync(emu))
    assert first["support_cases"][:2] == [4, 4]
    found = cases()
    outage, howto, invoice, stray = (found[ids[k]] for k in ("outage", "howto", "invoice", "stray"))
    assert (outage.account_id, outage.contact_id, outage.subject, outage.status, outage.priority) == (
        ids["acme"], ids["ng"], "Outage", "New", "URGENT")
    assert outage.escalated is True and outage.is_closed is False and outage.closed_at is None
    assert outage.type == "problem" and outage.opened_at is not None
    assert abs(outage.opened_at - (emu.now - 10 * DAY)) < timedelta(seconds=5)
    assert howto.is_closed is True and howto.status == "Closed" and howto.type == "question"
    assert howto.closed_at is not None and abs(howto.closed_at - (emu.now - 38 * DAY)) < timedelta(seconds=5)
    assert howto.escalated is False and howto.raw == {"pipeline_label": "Support Pipeline"}
    assert invoice.type == "billing_issue" and invoice.priority == "HIGH" and not invoice.escalated
    assert stray.account_id is None and stray.contact_id is not None

    emu.update("tickets", ids["outage"], {"hs_pipeline_stage": "4"})
    emu.archive("tickets", ids["invoice"])
    new = emu.add("tickets", {"subject": "Slow export", "hs_ticket_priority": "URGENT"})
    emu.associate("tickets", new, "companies", ids["acme"])
    emu.reset_log()
    second = counts(sync(emu))
    searches = [r for r in emu.requests if r.path == "/crm/v3/objects/tickets/search"]
    assert len(searches) == 1
    lower = searches[0].body["filterGroups"][0]["filters"][0]
    assert (lower["propertyName"], lower["operator"]) == ("hs_lastmodifieddate", "GTE")
    assert not [r for r in emu.requests if r.path == "/crm/v3/objects/tickets" and r.query.get("archived") != ["True"]]
    assert second["support_cases"][0] <= 4 and second["support_cases"][3] == 1  # changes, archived, ties
    found = cases()
    assert ids["invoice"] not in found  # archived in HubSpot: stored deleted
    assert found[ids["outage"]].is_closed is True and found[ids["outage"]].closed_at is not None
    assert found[new].account_id == ids["acme"] and found[new].escalated is True and not found[new].is_closed
    deleted = {c.remote_id: c for c in Store().records("support_case", include_deleted=True)}
    assert deleted[ids["invoice"]].deleted

    emu.update("tickets", ids["outage"], {"hs_pipeline_stage": "3"})  # reopened
    sync(emu)
    reopened = cases()[ids["outage"]]
    assert reopened.is_closed is False and reopened.closed_at is None and reopened.status == "Waiting on us"


def test_a_token_without_the_tickets_scope_skips_them_with_one_warning(emu: HubSpotEmulator) -> None:
    ids = seed(emu)
    limited = emu.add_token("pat-na1-no-tickets-0001", scopes=READ_SCOPES)
    result = sync(emu, token=limited)
    warnings = [line for line in result.stderr.splitlines() if "tickets" in line]
    assert len(warnings) == 1 and "'tickets' scope" in warnings[0] and "Private Apps" in warnings[0]
    assert limited not in result.output
    got = counts(result)
    assert got["support_cases"][0] == 0 and got["deals"][0] >= 2
    assert not cases() and Store().count("opportunity") == 2
    later = counts(sync(emu))  # the scope granted: every ticket is read, not only recent changes
    assert later["support_cases"][0] == 4 and set(cases()) == {ids[k] for k in ("outage", "howto", "invoice", "stray")}


def competitors() -> dict[str, Competitor]:
    return {c.remote_id: c for c in Store().records_of(Competitor)}


def test_the_competitor_property_makes_competitor_records(emu: HubSpotEmulator) -> None:
    ids = seed(emu)
    sync(emu)  # the setting absent: nothing read as competitors, nothing changes
    assert competitors() == {}
    deals = {d.remote_id: d for d in Store().records_of(Opportunity)}
    assert deals[ids["open"]].extra.get("rivals") == "newco;acme_corp"  # a custom property, as any other

    result = sync(emu, "--competitor-property", "rivals")
    assert "reading every deal again" in result.stderr  # deals were read before without the setting
    found = competitors()
    assert {(c.opportunity_id, c.name) for c in found.values()} == {
        (ids["won"], "Rival Inc"), (ids["open"], "Newco"), (ids["open"], "Acme Corp")}
    assert f"{ids['open']}:newco" in found

    emu.update("deals", ids["open"], {"rivals": "acme_corp"})  # Newco dropped out
    emu.reset_log()
    sync(emu, "--competitor-property", "rivals")
    assert any(r.path == "/crm/v3/objects/deals/search" for r in emu.requests)  # incremental again
    assert {c.name for c in competitors().values() if c.opportunity_id == ids["open"]} == {"Acme Corp"}
    emu.archive("deals", ids["won"])
    sync(emu, "--competitor-property", "rivals")
    assert {c.name for c in competitors().values()} == {"Acme Corp"}
    gone = {c.remote_id: c for c in Store().records("competitor", include_deleted=True)}
    assert gone[f"{ids['open']}:newco"].deleted and gone[f"{ids['won']}:rival_inc"].deleted


def test_a_competitor_property_deals_do_not_have_is_a_clear_usage_error(emu: HubSpotEmulator) -> None:
    seed(emu)
    result = sync(emu, "--competitor-property", "Competitors", code=2)
    message = " ".join(result.output.split())
    assert "competitor_property" in message and "'Competitors'" in message
    assert "did you mean 'rivals'?" in message  # the property's label was given, not its name
    assert "Settings > Properties > Deal properties" in message
    assert emu.token not in result.output
    assert Store().count("account") == 0  # stopped before anything was read
    typo = sync(emu, "--competitor-property", "rivls", code=2)
    assert "did you mean 'rivals'?" in typo.output


def write_config(path: Path, emu: HubSpotEmulator) -> Path:
    path.write_text(f'[sources.portal]\nconnector = "hubspot"\nbase_url = "{emu.url}"\n'
                    f'access_token = "{emu.token}"\ncompetitor_property = "rivals"\n\n'
                    '[signals]\ncomplaint_types = ["complaint", "billing_issue"]\n')
    return path


def test_review_shows_competitor_and_satisfaction_signals_of_a_hubspot_store(emu: HubSpotEmulator,
                                                                             tmp_path: Path) -> None:
    ids = seed(emu)
    config = write_config(tmp_path / "crmlink.toml", emu)
    synced = CliRunner().invoke(cli, ["sync", "portal", "--config", str(config), "-q"])
    assert synced.exit_code == 0, synced.output
    assert {a.remote_id for a in Store().records_of(Account)} == {ids["acme"]}
    day = emu.now.date()
    result = CliRunner().invoke(cli, ["review", "--config", str(config), "--period",
                                      f"{day - 30 * DAY}..{day}", "--as-of", day.isoformat(),
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    signals: dict[str, Any] = json.loads(result.stdout)["signals"]
    [gid] = [g for g in signals if g.endswith(":" + ids["acme"])]
    kinds = {s["kind"]: s for s in signals[gid]}
    rivals = kinds["competitor"]["evidence"]
    assert set(rivals["competitors"]) == {"Rival Inc", "Newco", "Acme Corp"}
    assert rivals["competitors"]["Rival Inc"]["won_against"] == [ids["won"]]
    assert rivals["competitors"]["Newco"]["deals"] == [ids["open"]]
    assert sorted(rivals["new"]) == ["Acme Corp", "Newco"]  # the open deal was created in the period
    assert kinds["competitor"]["value"] == pytest.approx(0.25 - 2 * 0.5)
    mood = kinds["satisfaction"]["evidence"]
    assert mood["open_escalations"] == [ids["outage"]]  # URGENT and open at the period's end
    assert mood["complaints"] == [ids["invoice"]] and mood["complaints_before"] == []
    assert mood["opened"] == 2  # the question was opened before the period; the stray has no company
    assert kinds["satisfaction"]["value"] < 0


def test_doctor_names_the_optional_tickets_scope(emu: HubSpotEmulator, tmp_path: Path) -> None:
    limited = emu.add_token("pat-na1-no-tickets-0002", scopes=READ_SCOPES)
    config = tmp_path / "crmlink.toml"
    config.write_text(f'[sources.portal]\nconnector = "hubspot"\nbase_url = "{emu.url}"\n'
                      f'access_token = "{limited}"\ncompetitor_property = "nope"\n')
    result = CliRunner().invoke(cli, ["doctor", "--config", str(config), "--json"])
    found = {(c["topic"], c["status"]): c for s in json.loads(result.stdout)["sources"] for c in s["checks"]}
    tickets = found[("read", "warn")]
    assert "tickets" in tickets["detail"] and "tickets" in tickets["fix"]
    assert "competitor_property" in found[("settings", "fail")]["detail"]
    assert result.exit_code == 4
