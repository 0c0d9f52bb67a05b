"""Contract tests: the REAL hubspot-api-client against the HubSpot emulator (no mocks).

Every client is built with ``client_side_validation=True`` so the generated models check the
emulator's response shapes (required fields, enums) as they deserialise them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

pytest.importorskip("hubspot")

import urllib3  # noqa: E402
from hubspot import HubSpot  # noqa: E402
from hubspot.crm.contacts import (  # noqa: E402
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
)
from hubspot.crm.contacts.exceptions import (  # noqa: E402
    ApiException,
    ServiceException,
    UnauthorizedException,
)
from hubspot.crm.deals.exceptions import ForbiddenException  # noqa: E402
from urllib3.util.retry import Retry  # noqa: E402

from crmlink.testing.hubspot_emulator import Fault, HubSpotEmulator, RateLimits  # noqa: E402

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    """Rate limits enforced as on a real Free/Starter portal."""
    with HubSpotEmulator() as e:
        yield e


@pytest.fixture
def fast() -> Iterator[HubSpotEmulator]:
    """Rate limits off, for tests that fire many searches."""
    with HubSpotEmulator(rate_limits=RateLimits(enabled=False)) as e:
        yield e


def client(emu: HubSpotEmulator, token: str | None = None, **kw: Any) -> HubSpot:
    return HubSpot(access_token=token or emu.token, host=emu.url, client_side_validation=True,
                   **kw)


def no_retry(emu: HubSpotEmulator) -> HubSpot:
    return client(emu, retry=Retry(total=0, raise_on_status=False))


def raw_get(emu: HubSpotEmulator, path: str) -> tuple[int, dict[str, Any], Any]:
    req = urllib.request.Request(emu.url + path,
                                 headers={"Authorization": f"Bearer {emu.token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def search(api: Any, **kw: Any) -> Any:
    return api.do_search(public_object_search_request=PublicObjectSearchRequest(**kw))


def f(prop: str, op: str, value: Any = None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"propertyName": prop, "operator": op, **kw}
    if value is not None:
        out["value"] = value
    return out


# --- list paging -------------------------------------------------------------------------
def test_list_pages_across_pages_and_last_page_has_no_paging(emu: HubSpotEmulator) -> None:
    ids = emu.add_many("contacts", [{"email": f"p{i}@x.io"} for i in range(25)])
    api = client(emu).crm.contacts.basic_api
    seen, after, pages = [], None, 0
    while True:
        page = api.get_page(limit=10, after=after)
        seen += [r.id for r in page.results]
        pages += 1
        if page.paging is None:
            break
        assert page.paging.next.link.startswith(emu.url + "/crm/v3/objects/contacts?")
        after = page.paging.next.after
    assert (pages, seen) == (3, ids)
    status, _, body = raw_get(emu, f"/crm/v3/objects/contacts?limit=10&after={after}")
    assert status == 200 and len(body["results"]) == 5 and "paging" not in body
    assert [c.id for c in client(emu).crm.contacts.get_all()] == ids


def test_list_limit_is_clamped_to_100_and_default_is_10(emu: HubSpotEmulator) -> None:
    emu.add_many("companies", [{"name": f"Co {i}"} for i in range(130)])
    api = client(emu).crm.companies.basic_api
    assert len(api.get_page(limit=500).results) == 100
    assert len(api.get_page().results) == 10


def test_object_shape_dates_and_ids(emu: HubSpotEmulator) -> None:
    emu.clock.set(T0)
    cid = emu.add("contacts", {"email": "ada@x.io", "firstname": "Ada"})
    _, _, body = raw_get(emu, "/crm/v3/objects/contacts")
    obj = body["results"][0]
    assert obj["id"] == cid and isinstance(obj["id"], str)
    assert obj["createdAt"] == obj["updatedAt"] == "2024-03-01T09:00:00.000Z"
    assert obj["archived"] is False
    assert obj["properties"] == {"createdate": "2024-03-01T09:00:00.000Z", "email": "ada@x.io",
                                 "firstname": "Ada", "hs_object_id": cid, "lastmodifieddate":
                                 "2024-03-01T09:00:00.000Z", "lastname": None}
    deal = client(emu).crm.deals.basic_api.get_by_id(emu.add("deals", {"dealname": "D"}))
    assert deal.properties["hs_lastmodifieddate"] and "lastmodifieddate" not in deal.properties


def test_properties_selection_unknown_ignored_missing_null(emu: HubSpotEmulator) -> None:
    emu.add("contacts", {"email": "a@x.io", "hs_buying_role": "DECISION_MAKER"})
    page = client(emu).crm.contacts.basic_api.get_page(
        properties=["email", "jobtitle", "hs_buying_role", "no_such_property"])
    props = page.results[0].properties
    assert props["email"] == "a@x.io" and props["jobtitle"] is None
    assert props["hs_buying_role"] == "DECISION_MAKER" and "no_such_property" not in props
    assert {"hs_object_id", "createdate", "lastmodifieddate"} <= set(props)
    _, _, body = raw_get(emu, "/crm/v3/objects/contacts?properties=email,jobtitle")
    assert set(body["results"][0]["properties"]) >= {"email", "jobtitle"}


def test_too_many_properties_give_414(emu: HubSpotEmulator) -> None:
    for i in range(3):
        emu.add_property("contacts", f"custom_field_number_{i}", "string")
    api = client(emu).crm.contacts.basic_api
    many = [f"custom_property_with_a_long_name_{i:04d}" for i in range(300)]
    with pytest.raises(ApiException) as exc:
        api.get_page(properties=many)
    assert exc.value.status == 414
    assert "Too Large" in exc.value.body
    api.get_page(properties=many[:100])  # ~4 KB: fine


def test_archived_objects_only_with_archived_true(emu: HubSpotEmulator) -> None:
    keep, gone = emu.add_many("contacts", [{"email": "k@x.io"}, {"email": "g@x.io"}])
    emu.archive("contacts", gone)
    api = client(emu).crm.contacts.basic_api
    assert [r.id for r in api.get_page().results] == [keep]
    archived = api.get_page(archived=True).results
    assert [r.id for r in archived] == [gone] and archived[0].archived
    assert archived[0].archived_at is not None
    assert [o["id"] for o in emu.objects("contacts", archived=True)] == [gone]
    assert len(emu.objects("contacts")) == 2


def test_engagements_via_dedicated_and_generic_apis(emu: HubSpotEmulator) -> None:
    call = emu.add("calls", {"hs_call_title": "Intro", "hs_call_duration": 60000})
    meeting = emu.add("meetings", {"hs_meeting_title": "Demo", "hs_meeting_start_time": T0})
    hub = client(emu)
    calls = hub.crm.objects.calls.basic_api.get_page(properties=["hs_call_title"]).results
    assert calls[0].id == call and calls[0].properties["hs_call_title"] == "Intro"
    got = hub.crm.objects.basic_api.get_page("meetings", properties=["hs_timestamp"]).results
    assert got[0].id == meeting
    assert got[0].properties["hs_timestamp"] == "2024-03-01T09:00:00.000Z"


# --- batch read --------------------------------------------------------------------------
def test_batch_read_by_id_and_id_property_with_207_for_missing(emu: HubSpotEmulator) -> None:
    a, b = emu.add_many("contacts", [{"email": "a@x.io"}, {"email": "b@x.io"}])
    api = client(emu).crm.contacts.batch_api
    res = api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": b}, {"id": a}], properties=["email"], properties_with_history=[]))
    assert res.status == "COMPLETE" and [r.id for r in res.results] == [b, a]
    res = api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": "B@x.io"}, {"id": "nobody@x.io"}], properties=["email"],
        properties_with_history=[], id_property="email"))
    assert [r.id for r in res.results] == [b]
    assert res.num_errors == 1 and res.errors[0].category == "OBJECT_NOT_FOUND"
    assert res.errors[0].context == {"ids": ["nobody@x.io"]}
    with pytest.raises(ApiException) as exc:
        api.read(BatchReadInputSimplePublicObjectId(
            inputs=[{"id": str(i)} for i in range(101)], properties=[],
            properties_with_history=[]))
    assert exc.value.status == 400 and json.loads(exc.value.body)["category"] == "VALIDATION_ERROR"


# --- search ------------------------------------------------------------------------------
@pytest.fixture
def people(fast: HubSpotEmulator) -> dict[str, str]:
    fast.add_property("contacts", "score", "number")
    rows = [
        ("ada@acme.io", "Ada", 10, "lead", "DECISION_MAKER", 0),
        ("grace@acme.io", "Grace", 20, "customer", "CHAMPION;INFLUENCER", 1),
        ("alan@initech.io", "Alan", 30, "customer", None, 2),
        ("linus@initech.io", None, None, "opportunity", "END_USER", 3),
    ]
    ids = {}
    for email, first, score, stage, role, day in rows:
        props = {"email": email, "firstname": first, "score": score, "lifecyclestage": stage,
                 "hs_buying_role": role}
        ids[email.split("@")[0]] = fast.add(
            "contacts", {k: v for k, v in props.items() if v is not None},
            at=T0 + timedelta(days=day))
    return ids


def names(page: Any, ids: dict[str, str]) -> list[str]:
    back = {v: k for k, v in ids.items()}
    return [back[r.id] for r in page.results]


def test_search_operator_families(fast: HubSpotEmulator, people: dict[str, str]) -> None:
    api = client(fast).crm.contacts.search_api
    day1 = str(int((T0 + timedelta(days=1)).timestamp() * 1000))
    day2 = str(int((T0 + timedelta(days=2)).timestamp() * 1000))
    cases = [
        ([f("email", "EQ", "ADA@acme.io")], ["ada"]),
        ([f("lifecyclestage", "NEQ", "customer")], ["ada", "linus"]),
        ([f("score", "LT", "20")], ["ada"]),
        ([f("score", "LTE", "20")], ["ada", "grace"]),
        ([f("score", "GT", "20")], ["alan"]),
        ([f("score", "GTE", "20")], ["grace", "alan"]),
        ([f("createdate", "BETWEEN", day1, highValue=day2)], ["grace", "alan"]),
        ([f("createdate", "GTE", day2)], ["alan", "linus"]),
        ([f("lifecyclestage", "IN", values=["lead", "opportunity"])], ["ada", "linus"]),
        ([f("lifecyclestage", "NOT_IN", values=["customer"])], ["ada", "linus"]),
        ([f("hs_buying_role", "IN", values=["INFLUENCER"])], ["grace"]),
        ([f("firstname", "HAS_PROPERTY")], ["ada", "grace", "alan"]),
        ([f("score", "NOT_HAS_PROPERTY")], ["linus"]),
        ([f("email", "CONTAINS_TOKEN", "*initech*")], ["alan", "linus"]),
        ([f("lifecyclestage", "EQ", "customer"), f("score", "GT", "25")], ["alan"]),
    ]
    for filters, expected in cases:
        page = search(api, filter_groups=[{"filters": filters}], limit=10)
        assert names(page, people) == expected, filters
        assert page.total == len(expected) and page.paging is None
    either = search(api, filter_groups=[{"filters": [f("firstname", "EQ", "Ada")]},
                                        {"filters": [f("score", "EQ", "30")]}])
    assert names(either, people) == ["ada", "alan"]


def test_search_sorts_properties_paging_and_query(fast: HubSpotEmulator,
                                                  people: dict[str, str]) -> None:
    api = client(fast).crm.contacts.search_api
    desc = search(api, sorts=[{"propertyName": "score", "direction": "DESCENDING"}],
                  properties=["score"], limit=2)
    assert names(desc, people) == ["alan", "grace"] and desc.total == 4
    assert desc.results[0].properties["score"] == "30"
    assert {"hs_object_id", "createdate", "lastmodifieddate"} <= set(desc.results[0].properties)
    assert desc.paging.next.after == "2"
    rest = search(api, sorts=[{"propertyName": "score", "direction": "DESCENDING"}], limit=2,
                  after=desc.paging.next.after)
    assert names(rest, people) == ["ada", "linus"] and rest.paging is None  # nulls last
    asc = search(api, sorts=[{"propertyName": "createdate", "direction": "ASCENDING"}])
    assert names(asc, people) == ["ada", "grace", "alan", "linus"]
    assert names(search(api, query="initech"), people) == ["alan", "linus"]


def test_search_validation_errors(fast: HubSpotEmulator) -> None:
    api = client(fast).crm.contacts.search_api
    group = {"filters": [f("email", "HAS_PROPERTY")]}
    bad = [
        {"filter_groups": [group] * 6},
        {"filter_groups": [{"filters": [f("email", "HAS_PROPERTY")] * 7}]},
        {"limit": 201},
        {"after": "abc"},
        {"filter_groups": [{"filters": [f("email", "LIKE", "x")]}]},
    ]
    for kw in bad:
        with pytest.raises(ApiException) as exc:
            search(api, **kw)
        assert exc.value.status == 400, kw
        body = json.loads(exc.value.body)
        assert body["category"] == "VALIDATION_ERROR" and body["correlationId"]


def test_search_10k_cap(fast: HubSpotEmulator) -> None:
    fast.add_many("contacts", [{"email": f"u{i}@bulk.io"} for i in range(10_050)])
    api = client(fast).crm.contacts.search_api
    page = search(api, limit=200, after="9800")
    assert page.total == 10_050 and len(page.results) == 200
    assert page.paging.next.after == "10000"  # HubSpot offers a cursor it will then refuse
    for after, limit in (("10000", 200), ("9900", 200), ("10000", 1)):
        with pytest.raises(ApiException) as exc:
            search(api, limit=limit, after=after)
        assert exc.value.status == 400
        assert json.loads(exc.value.body)["category"] == "VALIDATION_ERROR"
    window = search(api, limit=200, sorts=[{"propertyName": "hs_object_id",
                                           "direction": "ASCENDING"}],
                    filter_groups=[{"filters": [f("hs_object_id", "GT", page.results[-1].id)]}])
    assert window.total == 50  # the id-window workaround gets past the cap


def test_search_lag_hides_fresh_objects(fast: HubSpotEmulator) -> None:
    fast.clock.set(T0)
    fast.search_lag = 2.0
    fast.add("contacts", {"email": "new@x.io"})
    api = client(fast).crm.contacts.search_api
    assert search(api).total == 0
    fast.advance(3)
    assert search(api).total == 1


# --- associations ------------------------------------------------------------------------
def test_associations_v4_batch_read_with_labels(emu: HubSpotEmulator) -> None:
    company = emu.add("companies", {"name": "Acme"})
    deal = emu.add("deals", {"dealname": "Big", "dealstage": "qualifiedtobuy"})
    c1, c2, c3 = emu.add_many("contacts", [{"email": f"{n}@acme.io"} for n in "abc"])
    emu.associate("deals", deal, "contacts", c1, label="Decision maker")
    emu.associate("deals", deal, "contacts", c2)
    emu.associate("deals", deal, "contacts", c3, label="Champion")
    emu.associate("contacts", c1, "companies", company, label="Primary")
    v4 = client(emu).crm.associations.v4
    res = v4.batch_api.get_page("deals", "contacts",
                                batch_input_public_fetch_associations_batch_request={
                                    "inputs": [{"id": deal}]})
    assert res.status == "COMPLETE" and res.results[0]._from.id == deal
    to = {t.to_object_id: {(a.category, a.type_id, a.label) for a in t.association_types}
          for t in res.results[0].to}
    label_id = next(a[1] for a in to[c1] if a[2] == "Decision maker")
    assert to[c1] == {("HUBSPOT_DEFINED", 3, None), ("USER_DEFINED", label_id, "Decision maker")}
    assert to[c2] == {("HUBSPOT_DEFINED", 3, None)}
    back = v4.batch_api.get_page("contacts", "deals",
                                 batch_input_public_fetch_associations_batch_request={
                                     "inputs": [{"id": c1}, {"id": "999999"}]})
    assert {a.label for a in back.results[0].to[0].association_types} == {None, "Decision maker"}
    assert back.num_errors == 1 and back.errors[0].category == "OBJECT_NOT_FOUND"
    primary = v4.batch_api.get_page("contacts", "companies",
                                    batch_input_public_fetch_associations_batch_request={
                                        "inputs": [{"id": c1}]}).results[0].to[0]
    assert {(a.type_id, a.label) for a in primary.association_types} == {(1, "Primary"),
                                                                         (279, None)}
    labels = v4.schema.definitions_api.get_all("deals", "contacts").results
    assert {a.label for a in labels} >= {None, "Decision maker", "Champion"}


def test_association_to_lists_are_paged(emu: HubSpotEmulator) -> None:
    emu.options.association_page_size = 2
    company = emu.add("companies", {"name": "Acme"})
    contacts = emu.add_many("contacts", [{"email": f"{n}@acme.io"} for n in "abcde"])
    for c in contacts:
        emu.associate("companies", company, "contacts", c)
    batch = client(emu).crm.associations.v4.batch_api
    seen, after = [], None
    while True:
        res = batch.get_page("companies", "contacts",
                             batch_input_public_fetch_associations_batch_request={
                                 "inputs": [{"id": company, "after": after}]}).results[0]
        seen += [t.to_object_id for t in res.to]
        if res.paging is None:
            break
        after = res.paging.next.after
    assert seen == contacts


def test_v3_list_inlines_associations(emu: HubSpotEmulator) -> None:
    company = emu.add("companies", {"name": "Acme"})
    contact = emu.add("contacts", {"email": "a@acme.io"})
    emu.associate("contacts", contact, "companies", company, label="Primary")
    page = client(emu).crm.contacts.basic_api.get_page(associations=["companies", "deals"])
    assoc = page.results[0].associations
    assert set(assoc) == {"companies"}
    assert {(r.id, r.type) for r in assoc["companies"].results} == {
        (company, "contact_to_company"), (company, "contact_to_company_unlabeled")}


# --- owners, pipelines, properties -------------------------------------------------------
def test_owners_paging_email_and_archived(emu: HubSpotEmulator) -> None:
    team = [{"id": "7", "name": "EMEA", "primary": True}]
    active = [emu.add_owner(f"rep{i}@x.io", "Rep", str(i), teams=team) for i in range(3)]
    gone = emu.add_owner("gone@x.io", "Gone", "Rep")
    emu.archive_owner(gone)
    api = client(emu).crm.owners.owners_api
    first = api.get_page(limit=2)
    assert [o.id for o in first.results] == active[:2] and first.paging.next.after
    second = api.get_page(limit=2, after=first.paging.next.after)
    assert [o.id for o in second.results] == active[2:] and second.paging is None
    assert second.results[0].teams[0].name == "EMEA" and second.results[0].type == "PERSON"
    assert [o.id for o in api.get_page(archived=True).results] == [gone]
    assert [o.email for o in api.get_page(email="rep1@x.io").results] == ["rep1@x.io"]
    assert [o.id for o in client(emu).crm.owners.get_all()] == active


def test_pipelines_with_labels_and_custom_stages(emu: HubSpotEmulator) -> None:
    pid = emu.add_pipeline("deals", "Enterprise", stages=[
        {"label": "Discovery", "probability": 0.1},
        {"label": "Won", "probability": 1.0, "is_closed": True}])
    api = client(emu).crm.pipelines.pipelines_api
    default, enterprise = api.get_all("deals").results
    assert (default.id, default.label) == ("default", "Sales Pipeline")
    stages = [(s.id, s.label, s.display_order, s.metadata) for s in default.stages]
    assert stages[0] == ("appointmentscheduled", "Appointment Scheduled", 0,
                         {"isClosed": "false", "probability": "0.2"})
    assert [s[0] for s in stages] == ["appointmentscheduled", "qualifiedtobuy",
                                      "presentationscheduled", "decisionmakerboughtin",
                                      "contractsent", "closedwon", "closedlost"]
    assert stages[5][3] == {"isClosed": "true", "probability": "1.0"}
    assert stages[6][3] == {"isClosed": "true", "probability": "0.0"}
    assert enterprise.id == pid and pid.isdigit()
    assert [s.label for s in enterprise.stages] == ["Discovery", "Won"]
    assert all(s.id.isdigit() for s in enterprise.stages)
    assert api.get_by_id("deals", pid).label == "Enterprise"


def test_deal_stage_changes_record_entry_dates(emu: HubSpotEmulator) -> None:
    deal = emu.add("deals", {"dealname": "D", "amount": 1200.5, "dealstage":
                             "appointmentscheduled"}, at=T0)
    emu.update("deals", deal, {"dealstage": "contractsent"}, at=T0 + timedelta(days=3))
    emu.update("deals", deal, {"dealstage": "closedwon"}, at=T0 + timedelta(days=9))
    with pytest.raises(ValueError):
        emu.update("deals", deal, {"dealstage": "no-such-stage"})
    props = ["dealstage", "amount", "hs_is_closed_won", "hs_date_entered_contractsent",
             "hs_date_entered_closedwon", "hs_date_exited_contractsent"]
    got = client(emu).crm.deals.basic_api.get_by_id(deal, properties=props,
                                                   properties_with_history=["dealstage"])
    assert got.properties["dealstage"] == "closedwon" and got.properties["amount"] == "1200.5"
    assert got.properties["hs_is_closed_won"] == "true"
    assert got.properties["hs_date_entered_contractsent"] == "2024-03-04T09:00:00.000Z"
    assert got.properties["hs_date_exited_contractsent"] == "2024-03-10T09:00:00.000Z"
    assert [h.value for h in got.properties_with_history["dealstage"]] == [
        "closedwon", "contractsent", "appointmentscheduled"]


def test_properties_schema(emu: HubSpotEmulator) -> None:
    emu.add_property("contacts", "tier", "enumeration", ["gold", "silver"], label="Tier")
    api = client(emu).crm.properties.core_api
    contacts = {p.name: p for p in api.get_all("contacts").results}
    role = contacts["hs_buying_role"]
    assert (role.type, role.field_type, role.hubspot_defined) == ("enumeration", "checkbox", True)
    assert "DECISION_MAKER" in [o.value for o in role.options]
    tier = contacts["tier"]
    assert (tier.label, tier.hubspot_defined) == ("Tier", None)
    assert [(o.label, o.value) for o in tier.options] == [("Gold", "gold"), ("Silver", "silver")]
    stage = api.get_by_name("deals", "dealstage")
    assert ("Closed Won", "closedwon") in [(o.label, o.value) for o in stage.options]
    with pytest.raises(ValueError):
        emu.add("contacts", {"tier": "bronze"})


# --- auth --------------------------------------------------------------------------------
def test_oauth_refresh_and_expiry(emu: HubSpotEmulator) -> None:
    emu.clock.set(T0)
    emu.add("contacts", {"email": "a@x.io"})
    oauth = HubSpot(host=emu.url).oauth.tokens_api
    token = oauth.create(grant_type="refresh_token", client_id=emu.client_id,
                         client_secret=emu.client_secret, refresh_token=emu.refresh_token)
    assert token.expires_in == 1800 and token.refresh_token == emu.refresh_token
    api = client(emu, token=token.access_token).crm.contacts.basic_api
    _, status, headers = api.get_page_with_http_info()
    assert status == 200 and headers["X-HubSpot-RateLimit-Max"] == "110"
    assert "X-HubSpot-RateLimit-Daily" not in headers
    emu.advance(1801)
    with pytest.raises(UnauthorizedException) as exc:
        api.get_page()
    assert json.loads(exc.value.body)["category"] == "EXPIRED_AUTHENTICATION"
    from hubspot.oauth.exceptions import ApiException as OAuthError
    with pytest.raises(OAuthError) as bad:
        oauth.create(grant_type="refresh_token", client_id=emu.client_id,
                     client_secret=emu.client_secret, refresh_token="nope")
    assert bad.value.status == 400 and json.loads(bad.value.body)["status"] == "BAD_REFRESH_TOKEN"


def test_401_body_for_invalid_token(emu: HubSpotEmulator) -> None:
    with pytest.raises(UnauthorizedException) as exc:
        client(emu, token="pat-na1-wrong").crm.contacts.basic_api.get_page()
    body = json.loads(exc.value.body)
    assert exc.value.status == 401 and body["status"] == "error"
    assert body["message"].startswith("Authentication credentials not found.")
    assert body["category"] == "INVALID_AUTHENTICATION" and body["correlationId"]


def test_403_missing_scopes(emu: HubSpotEmulator) -> None:
    token = emu.add_token("pat-na1-contacts-only", scopes=["crm.objects.contacts.read"])
    hub = client(emu, token=token)
    hub.crm.contacts.basic_api.get_page()
    with pytest.raises(ForbiddenException) as exc:
        hub.crm.deals.basic_api.get_page()
    assert exc.value.status == 403
    body = json.loads(exc.value.body)
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.deals.read"]


# --- faults ------------------------------------------------------------------------------
def test_fault_429_ten_secondly_without_retry_after(emu: HubSpotEmulator) -> None:
    emu.add_fault(Fault.rate_limit(times=1))
    api = client(emu).crm.contacts.basic_api
    with pytest.raises(ApiException) as exc:
        api.get_page()
    assert exc.value.status == 429 and "Retry-After" not in exc.value.headers
    body = json.loads(exc.value.body)
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert exc.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    api.get_page()


def test_fault_429_with_retry_after_is_retried_by_urllib3(emu: HubSpotEmulator) -> None:
    emu.add_fault(Fault.rate_limit(retry_after=0, times=1))
    client(emu).crm.contacts.basic_api.get_page()  # default urllib3 Retry honours Retry-After
    assert [r.status for r in emu.requests] == [429, 200]


def test_fault_daily_limit(emu: HubSpotEmulator) -> None:
    emu.add_fault(Fault.daily_limit(path="/crm/v3/objects/deals"))
    hub = client(emu)
    hub.crm.contacts.basic_api.get_page()
    with pytest.raises(Exception) as exc:  # each hubspot sub-package has its own ApiException
        hub.crm.deals.basic_api.get_page()
    assert exc.value.status == 429 and json.loads(exc.value.body)["policyName"] == "DAILY"
    assert exc.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_fault_server_errors(emu: HubSpotEmulator, status: int) -> None:
    emu.add_fault(Fault.error(status))
    with pytest.raises(ServiceException) as exc:
        no_retry(emu).crm.contacts.basic_api.get_page()
    assert exc.value.status == status


def test_research_retry_config_absorbs_transient_errors_on_post(emu: HubSpotEmulator) -> None:
    emu.add_fault(Fault.error(503, times=1, path="/crm/v3/objects/contacts/search"))
    emu.add_fault(Fault.rate_limit(times=1, path="/crm/v3/objects/contacts/search"))
    retry = Retry(total=5, status_forcelist=[429, 502, 503, 504], allowed_methods=None,
                  backoff_factor=0, respect_retry_after_header=True, raise_on_status=False)
    assert search(client(emu, retry=retry).crm.contacts.search_api).total == 0
    assert [r.status for r in emu.requests] == [503, 429, 200]


def test_fault_after_n_and_times_k(emu: HubSpotEmulator) -> None:
    emu.add_fault(Fault.error(503, after=2, times=2, method="GET"))
    api = no_retry(emu).crm.contacts.basic_api
    outcomes = []
    for _ in range(5):
        try:
            api.get_page()
            outcomes.append(200)
        except ServiceException as exc:
            outcomes.append(exc.status)
    assert outcomes == [200, 200, 503, 503, 200]
    assert [r.fault for r in emu.requests] == [None, None, "error", "error", None]


def test_fault_delay_and_global_delay(emu: HubSpotEmulator) -> None:
    api = client(emu).crm.contacts.basic_api
    emu.add_fault(Fault.delay(0.2, times=1))
    started = time.monotonic()
    api.get_page()
    assert time.monotonic() - started >= 0.2
    emu.delay = 0.05
    api.get_page()
    assert emu.requests[-1].duration >= 0.05


def test_fault_timeout(emu: HubSpotEmulator) -> None:
    emu.add_fault(Fault.timeout(seconds=2, times=1))
    with pytest.raises(urllib3.exceptions.HTTPError):
        no_retry(emu).crm.contacts.basic_api.get_page(_request_timeout=0.2)
    emu.add_fault(Fault.timeout(seconds=2, times=1))
    client(emu).crm.contacts.basic_api.get_page(_request_timeout=0.2)  # urllib3 retried GET
    assert [r.fault for r in emu.requests][-2:] == ["timeout", None]


def test_fault_dropped_connection(emu: HubSpotEmulator) -> None:
    emu.add_fault(Fault.drop(times=1))
    with pytest.raises(urllib3.exceptions.HTTPError):
        no_retry(emu).crm.contacts.basic_api.get_page()
    assert emu.requests[-1].status == 0 and emu.requests[-1].fault == "drop"


def test_fault_truncated_body(emu: HubSpotEmulator) -> None:
    emu.add_many("contacts", [{"email": f"t{i}@x.io"} for i in range(20)])
    emu.add_fault(Fault.truncate(times=1))
    with pytest.raises(urllib3.exceptions.HTTPError):
        no_retry(emu).crm.contacts.basic_api.get_page(limit=20)
    assert len(client(emu).crm.contacts.basic_api.get_page(limit=20).results) == 20


# --- rate limits -------------------------------------------------------------------------
def test_burst_limit_headers_count_down_then_429(emu: HubSpotEmulator) -> None:
    emu.clock.set(T0)  # frozen: the 10 s window cannot roll over during the test
    api = client(emu).crm.contacts.basic_api
    remaining = []
    for _ in range(100):
        _, status, headers = api.get_page_with_http_info()
        remaining.append(int(headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == list(range(99, -1, -1))
    assert headers["X-HubSpot-RateLimit-Max"] == "100"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert headers["X-HubSpot-RateLimit-Daily"] == "250000"
    assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(250_000 - 100)
    with pytest.raises(ApiException) as exc:
        api.get_page()
    assert exc.value.status == 429 and exc.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    body = json.loads(exc.value.body)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    emu.advance(10)
    _, _, headers = api.get_page_with_http_info()
    assert headers["X-HubSpot-RateLimit-Remaining"] == "99"


def test_configurable_burst_retry_after_and_switch_off() -> None:
    limits = RateLimits(burst=190, retry_after=True)
    with HubSpotEmulator(rate_limits=limits) as emu:
        emu.clock.set(T0)
        api = client(emu).crm.contacts.basic_api
        _, _, headers = api.get_page_with_http_info()
        assert headers["X-HubSpot-RateLimit-Max"] == "190"
        limits.burst = 2
        api.get_page()
        with pytest.raises(ApiException) as exc:
            no_retry(emu).crm.contacts.basic_api.get_page()
        assert exc.value.headers["Retry-After"] == "10"
        limits.enabled = False
        for _ in range(5):
            api.get_page()


def test_search_limit_5_per_second_and_no_rate_headers(emu: HubSpotEmulator) -> None:
    emu.clock.set(T0)
    api = client(emu).crm.contacts.search_api
    for _ in range(5):
        _, _, headers = api.do_search_with_http_info(
            public_object_search_request=PublicObjectSearchRequest())
        assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in headers)
    with pytest.raises(ApiException) as exc:
        search(api)
    assert exc.value.status == 429 and json.loads(exc.value.body)["policyName"] == "SECONDLY"
    emu.advance(1.5)
    search(api)


def test_daily_limit() -> None:
    with HubSpotEmulator(rate_limits=RateLimits(daily=3)) as emu:
        api = client(emu).crm.contacts.basic_api
        left = [api.get_page_with_http_info()[2]["X-HubSpot-RateLimit-Daily-Remaining"]
                for _ in range(3)]
        assert left == ["2", "1", "0"]
        with pytest.raises(ApiException) as exc:
            api.get_page()
        assert json.loads(exc.value.body)["policyName"] == "DAILY"


# --- request log and manual start --------------------------------------------------------
def test_request_log(emu: HubSpotEmulator) -> None:
    emu.clock.set(T0)
    hub = client(emu)
    hub.crm.contacts.basic_api.get_page(limit=5, properties=["email", "firstname"])
    search(hub.crm.contacts.search_api, limit=3)
    with pytest.raises(UnauthorizedException):
        client(emu, token="bad").crm.contacts.basic_api.get_page()
    first, second, third = emu.requests
    assert (first.method, first.path, first.status) == ("GET", "/crm/v3/objects/contacts", 200)
    assert first.query["properties"] == ["email", "firstname"] and first.query["limit"] == ["5"]
    assert first.time == T0.timestamp()
    assert (second.method, second.path, second.body["limit"]) == (
        "POST", "/crm/v3/objects/contacts/search", 3)
    assert third.status == 401
    emu.reset_log()
    assert emu.requests == []


def test_run_by_hand_prints_url_and_token() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmlink.testing.hubspot_emulator", "--port", "0",
         "--seed-size", "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        url = lines[0].split()[-1]
        token = lines[1].split()[-1]
        assert url.startswith("http://127.0.0.1:") and "contacts=30" in lines[3]
        hub = HubSpot(access_token=token, host=url)
        assert len(hub.crm.contacts.basic_api.get_page(limit=100).results) == 30
        deals = hub.crm.deals.basic_api.get_page(limit=100, associations=["contacts"]).results
        assert deals and all(d.associations for d in deals)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
