"""Properties of the Salesforce and HubSpot mappers (hypothesis).

Well-formed native records map to canonical records that keep their values; any native
record at all, however malformed, maps to a record or raises the typed InvalidRecord,
never another exception (which would stop a sync as an internal error).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlink import InvalidRecord, Record
from crmlink.plugins.hubspot import mapping as hs
from crmlink.plugins.salesforce import mapping as sf

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONFIG = {"tier_field": "Tier__c", "stance_field": "Stance__c", "method_field": "Method__c",
          "team_role_field": "Team_Role__c"}
stamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                      timezones=st.just(timezone.utc))
ids = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=15, max_size=18)
names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(str.strip)
text = st.one_of(st.none(), st.text(max_size=30), stamps.map(lambda d: d.isoformat()),
               st.sampled_from(["", "true", "NaN", "1e999", "-0", "2026-02-30", "12abc"]))
numbers = st.one_of(st.none(), st.integers(-10**15, 10**15), st.floats(allow_nan=False, allow_infinity=False),
                    st.floats(), st.integers().map(str), st.floats().map(str))
#: the types Salesforce sends per field (REST JSON) with any value, malformed text included
NUMERIC = {"AnnualRevenue", "Probability", "Amount", "SortOrder", "DefaultProbability",
           "CallDurationInSeconds", "DurationInMinutes", "TotalAmount"}


def sf_value(name: str) -> st.SearchStrategy[Any]:
    if name.startswith("Is"):
        return st.one_of(st.none(), st.booleans(), st.sampled_from(["true", "false"]))
    return numbers if name in NUMERIC else text

def total(call: Any, *args: Any) -> Record | None:
    """Call a mapper; InvalidRecord is the one acceptable failure (returned as None)."""
    try:
        found = call(*args)
    except InvalidRecord:
        return None
    assert isinstance(found, (Record, InvalidRecord)), type(found)
    return found if isinstance(found, Record) else None


@SETTINGS
@given(obj=st.sampled_from(sorted(sf.MAPPERS)), data=st.data())
def test_salesforce_any_row_maps_or_raises_invalid_record(obj: str, data: st.DataObject) -> None:
    fields = [*sf.SYSTEM, *sf.FIELDS[obj], *sf.custom_fields(obj, CONFIG), "Unmapped__c"]
    row = {name: data.draw(sf_value(name), label=name) for name in fields}
    total(sf.MAPPERS[obj], row, CONFIG)


@SETTINGS
@given(rid=ids, name=names, revenue=st.decimals(0, 10**12, places=2), stamp=stamps, deleted=st.booleans(),
       tier=st.sampled_from(["S", "A", "B", "C"]), site=st.sampled_from(["acme.com", "https://www.acme.com/x"]))
def test_salesforce_account_round_trips(rid: str, name: str, revenue: Decimal, stamp: datetime,
                                        deleted: bool, tier: str, site: str) -> None:
    row = {"Id": rid, "IsDeleted": deleted, "SystemModstamp": stamp.isoformat(), "Name": name,
           "AnnualRevenue": float(revenue), "Website": site, "Tier__c": tier, "Rating": "Hot"}
    account = sf.account(row, CONFIG)
    assert (account.remote_id, account.name, account.deleted, account.tier) == (rid, name.strip(), deleted, tier)
    assert account.modified_at == stamp and account.domain == "acme.com"
    assert account.annual_revenue == Decimal(str(float(revenue)))
    assert account.extra == {"Rating": "Hot"}


@SETTINGS
@given(rid=ids, probability=st.integers(0, 100), amount=st.decimals(0, 10**9, places=2), closed=st.booleans())
def test_salesforce_opportunity_round_trips(rid: str, probability: int, amount: Decimal, closed: bool) -> None:
    row = {"Id": rid, "IsDeleted": False, "SystemModstamp": "2026-01-02T03:04:05.000+0000",
           "AccountId": "001A", "Name": "Deal", "StageName": "Prospecting", "IsClosed": closed,
           "IsWon": False, "Probability": probability, "Amount": str(amount), "CloseDate": "2026-03-31"}
    opp = sf.opportunity(row, CONFIG)
    assert opp.remote_id == rid and opp.stage_label == "Prospecting" and opp.is_closed == closed
    assert opp.amount == amount


def _hs_object(data: st.DataObject, object_type: str) -> dict[str, Any]:
    props = {name: data.draw(text, label=name)  # HubSpot sends every property as a string
             for name in (*hs.PROPERTIES[object_type], "custom_prop")}
    return {"id": data.draw(st.one_of(ids, st.integers(1, 10**12).map(str))), "properties": props,
            "archived": data.draw(st.booleans()), "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": data.draw(st.one_of(st.none(), stamps.map(lambda d: d.isoformat())))}


PIPELINES = hs.Pipelines.from_json({"results": [{"id": "default", "label": "Sales", "stages": [
    {"id": "appointmentscheduled", "label": "Appointment Scheduled", "displayOrder": 0,
     "metadata": {"probability": "0.2", "isClosed": "false"}},
    {"id": "closedwon", "label": "Closed Won", "displayOrder": 1,
     "metadata": {"probability": "1.0", "isClosed": "true"}}]}]})


@SETTINGS
@given(object_type=st.sampled_from(["companies", "contacts", "deals", *hs.ENGAGEMENTS]), data=st.data())
def test_hubspot_any_object_maps_or_raises_invalid_record(object_type: str, data: st.DataObject) -> None:
    obj = _hs_object(data, object_type)
    if object_type == "companies":
        total(hs.account, obj, data.draw(st.one_of(st.none(), ids)), "hs_ideal_customer_profile")
    elif object_type == "contacts":
        total(hs.contact, obj, data.draw(st.one_of(st.none(), ids)))
    elif object_type == "deals":
        total(hs.opportunity, obj, None, PIPELINES)
        for change in hs.stage_changes(obj, PIPELINES):
            assert isinstance(change, Record)
    else:
        links = {"contacts": data.draw(st.lists(ids, max_size=3)), "companies": [], "deals": []}
        total(hs.interaction, obj, object_type, links)


@SETTINGS
@given(cid=st.integers(1, 10**12).map(str), first=names, email=st.emails(), company=ids, title=names)
def test_hubspot_contact_round_trips(cid: str, first: str, email: str, company: str, title: str) -> None:
    obj = {"id": cid, "archived": False, "updatedAt": "2026-01-02T03:04:05.678Z",
           "properties": {"firstname": first, "email": email, "jobtitle": title, "shoe_size": "44"}}
    contact = hs.contact(obj, company)
    assert (contact.remote_id, contact.email, contact.title, contact.account_id) == (cid, email, title.strip(), company)
    assert contact.name is not None and first.strip() in contact.name
    assert contact.extra.get("shoe_size") == "44" and not contact.deleted
