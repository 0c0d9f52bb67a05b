"""The Salesforce emulator, exercised with the REAL simple-salesforce client (no mocks).

simple-salesforce forces https. Plain-http tests use the test-only
``rewrite_session(emu)`` adapter (https://127.0.0.1:PORT -> http://..., and
https://*.salesforce.com login hosts -> the emulator); the TLS test uses a trustme CA
through REQUESTS_CA_BUNDLE, with no adapter at all.

Seed data: tests/data/realdata/ (CC0, Salesforce trailheadapps repositories; see its README).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crmlink.testing.salesforce_emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    Fault,
    SalesforceEmulator,
    rewrite_session,
)

REALDATA = Path(__file__).resolve().parents[1] / "data" / "realdata"
APEX = REALDATA / "sf_apex_recipes"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def emu():
    with SalesforceEmulator(start_time=T0) as emulator:
        yield emulator
        assert emulator.errors == [], emulator.errors[-1] if emulator.errors else ""


@pytest.fixture
def sf(emu):
    return Salesforce(instance_url=emu.instance_url, session_id=emu.session_id,
                      session=rewrite_session(emu))


def soap_login(emu, **kw):
    return Salesforce(username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD,
                      security_token=DEFAULT_TOKEN, session=rewrite_session(emu, **kw))


def names(result):
    return [r["Name"] for r in result["records"]]


# ---- login flows ----------------------------------------------------------------------------
def test_soap_login_with_password_and_token(emu):
    sf = soap_login(emu)
    assert sf.session_id in emu.valid_session_ids
    assert sf.sf_instance == emu.instance_url.split("://")[1]
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1
    assert [(r.method, r.path) for r in emu.requests][0] == ("POST", "/services/Soap/u/59.0")


def test_soap_login_rejects_bad_password(emu):
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=DEFAULT_USERNAME, password="wrong", security_token=DEFAULT_TOKEN,
                   session=rewrite_session(emu))
    assert info.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in info.value.auth_message
    assert emu.requests[-1].status == 500


def test_oauth_password_flow(emu):
    sf = Salesforce(username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD + DEFAULT_TOKEN,
                    consumer_key=DEFAULT_CONSUMER_KEY, consumer_secret=DEFAULT_CONSUMER_SECRET,
                    session=rewrite_session(emu))
    assert sf.session_id in emu.valid_session_ids
    assert sf.query("SELECT COUNT() FROM OpportunityStage")["totalSize"] == 10


def test_oauth_password_flow_failure_has_real_error_json(emu):
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=DEFAULT_USERNAME, password="nope", consumer_key=DEFAULT_CONSUMER_KEY,
                   consumer_secret=DEFAULT_CONSUMER_SECRET, session=rewrite_session(emu))
    assert (info.value.code, info.value.auth_message) == ("invalid_grant", "authentication failure")
    raw = requests.post(emu.instance_url + "/services/oauth2/token",
                        data={"grant_type": "password", "client_id": "unknown"})
    assert raw.status_code == 400
    assert raw.json() == {"error": "invalid_client_id", "error_description": "client identifier invalid"}


def test_client_credentials_flow_uses_basic_auth(emu):
    sf = Salesforce(consumer_key=DEFAULT_CONSUMER_KEY, consumer_secret=DEFAULT_CONSUMER_SECRET,
                    domain="mycompany.my", session=rewrite_session(emu))
    assert sf.session_id in emu.valid_session_ids
    token_call = [r for r in emu.requests if r.path == "/services/oauth2/token"][0]
    assert token_call.headers["authorization"].startswith("Basic ")
    assert sf.query("SELECT Username FROM User")["records"][0]["Username"] == DEFAULT_USERNAME


def test_jwt_bearer_flow_verifies_rs256(emu):
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    from cryptography.hazmat.primitives import serialization

    def keypair():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return private, public.decode()

    private, public = keypair()
    emu.add_connected_app("jwt-app", "unused-secret", jwt_public_key=public)
    sf = Salesforce(username=DEFAULT_USERNAME, consumer_key="jwt-app", privatekey=private,
                    session=rewrite_session(emu))
    assert sf.session_id in emu.valid_session_ids
    other_private, _ = keypair()
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=DEFAULT_USERNAME, consumer_key="jwt-app", privatekey=other_private,
                   session=rewrite_session(emu))
    assert (info.value.code, info.value.auth_message) == ("invalid_grant", "invalid assertion")


def test_refresh_token_grant_and_unsupported_grant(emu):
    token = emu.issue_refresh_token()
    url = emu.instance_url + "/services/oauth2/token"
    ok = requests.post(url, data={"grant_type": "refresh_token", "refresh_token": token,
                                  "client_id": DEFAULT_CONSUMER_KEY})
    assert ok.status_code == 200 and ok.json()["instance_url"] == emu.instance_url
    sf = Salesforce(instance_url=ok.json()["instance_url"], session_id=ok.json()["access_token"],
                    session=rewrite_session(emu))
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1
    bad = requests.post(url, data={"grant_type": "refresh_token", "refresh_token": "x",
                                   "client_id": DEFAULT_CONSUMER_KEY})
    assert bad.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
    other = requests.post(url, data={"grant_type": "authorization_code"})
    assert other.json()["error"] == "unsupported_grant_type"


def test_direct_session_and_invalid_session_body(emu, sf):
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1
    bad = Salesforce(instance_url=emu.instance_url, session_id="00Dxx!bogus",
                     session=rewrite_session(emu))
    with pytest.raises(SalesforceExpiredSession) as info:
        bad.query("SELECT Id FROM User")
    assert info.value.content == [{"message": "Session expired or invalid",
                                   "errorCode": "INVALID_SESSION_ID"}]


# ---- query / queryAll -------------------------------------------------------------------------
def test_query_all_iter_pages_with_batch_size(emu, sf):
    for i in range(450):
        emu.insert("Account", {"Name": f"Acct {i:03d}"})
    emu.reset_log()
    opts = {"Sforce-Query-Options": "batchSize=200"}
    got = list(sf.query_all_iter("SELECT Id, Name FROM Account ORDER BY Name DESC", headers=opts))
    assert [r["Name"] for r in got] == [f"Acct {i:03d}" for i in reversed(range(450))]
    assert [r.path.rsplit("/", 1)[-1].split("-")[-1] for r in emu.requests][1:] == ["200", "400"]
    first = sf.query("SELECT Id FROM Account", headers=opts)
    assert (first["totalSize"], first["done"], len(first["records"])) == (450, False, 200)
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w+-200", first["nextRecordsUrl"])
    small = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=5"})
    assert len(small["records"]) == 200  # clamped to the documented minimum
    assert len(sf.query("SELECT Id FROM Account")["records"]) == 450  # default 2000
    by_id = sf.query_more(first["nextRecordsUrl"].rsplit("/", 1)[-1], headers=opts)
    assert len(by_id["records"]) == 200 and by_id["nextRecordsUrl"].endswith("-400")


def test_query_all_pages_and_cursor_limit(emu, sf):
    ids = [emu.insert("Lead", {"LastName": f"L{i}", "Company": "Co"}) for i in range(250)]
    emu.delete("Lead", ids[0])
    opts = {"Sforce-Query-Options": "batchSize=200"}
    first = sf.query("SELECT Id FROM Lead", include_deleted=True, headers=opts)
    assert first["totalSize"] == 250 and "/queryAll/01g" in first["nextRecordsUrl"]
    # a user has at most 10 open cursors; the oldest is released (INVALID_QUERY_LOCATOR)
    for _ in range(10):
        sf.query("SELECT Id FROM Lead", headers=opts)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_returns_soft_deleted_and_query_does_not(emu, sf):
    keep = emu.insert("Account", {"Name": "Keep"})
    soft = emu.insert("Account", {"Name": "Soft"})
    hard = emu.insert("Account", {"Name": "Hard"})
    emu.delete("Account", soft)
    emu.hard_delete("Account", hard)
    assert [r["Id"] for r in sf.query_all("SELECT Id FROM Account")["records"]] == [keep]
    rows = sf.query_all("SELECT Id, IsDeleted FROM Account ORDER BY Name", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in rows["records"]] == [(keep, False), (soft, True)]
    assert any("/queryAll/" in r.path for r in emu.requests)
    truth = {r["Id"]: r["IsDeleted"] for r in emu.records("Account")}
    assert truth == {keep: False, soft: True}


def test_account_delete_cascades_and_undelete_restores(emu, sf):
    acct = emu.insert("Account", {"Name": "Parent"})
    con = emu.insert("Contact", {"LastName": "Child", "AccountId": acct})
    opp = emu.insert("Opportunity", {"Name": "O", "AccountId": acct, "StageName": "Prospecting",
                                     "CloseDate": "2024-06-30"})
    emu.insert("OpportunityContactRole", {"OpportunityId": opp, "ContactId": con})
    emu.advance(5)
    sf.Account.delete(acct)
    gone = sf.query_all("SELECT Id, SystemModstamp FROM Contact WHERE IsDeleted = true",
                        include_deleted=True)["records"]
    assert [g["Id"] for g in gone] == [con]
    assert gone[0]["SystemModstamp"] == "2024-01-01T00:00:05.000+0000"
    for obj in ("Contact", "Opportunity", "OpportunityContactRole", "OpportunityHistory"):
        assert sf.query(f"SELECT COUNT() FROM {obj}")["totalSize"] == 0, obj
    emu.undelete("Account", acct)
    assert sf.query("SELECT COUNT() FROM OpportunityContactRole")["totalSize"] == 1


def test_system_modstamp_window_and_order(emu, sf):
    ids = []
    for i in range(6):
        emu.now = T0 + timedelta(hours=i)
        ids.append(emu.insert("Contact", {"LastName": f"C{i}"}))
    emu.now = T0 + timedelta(hours=10)
    emu.update("Contact", ids[0], {"Title": "CEO"})  # bumps SystemModstamp past the window
    q = ("SELECT Id, LastName, SystemModstamp FROM Contact WHERE SystemModstamp >= {lo} "
         "AND SystemModstamp < {hi} ORDER BY SystemModstamp ASC, Id ASC")
    got = sf.query_all(q.format(lo="2024-01-01T01:00:00Z", hi="2024-01-01T04:00:00.000+0000"))
    assert [r["LastName"] for r in got["records"]] == ["C1", "C2", "C3"]
    assert got["records"][0]["SystemModstamp"] == "2024-01-01T01:00:00.000+0000"
    late = sf.query_all(q.format(lo="2024-01-01T11:00:00+01:00", hi="2025-01-01T00:00:00Z"))
    assert [r["Id"] for r in late["records"]] == [ids[0]]
    desc = sf.query("SELECT LastName FROM Contact ORDER BY SystemModstamp DESC LIMIT 2")
    assert [r["LastName"] for r in desc["records"]] == ["C0", "C5"]


@pytest.fixture
def small_org(emu):
    parent = emu.insert("Account", {"Name": "Globex", "Industry": "Energy"})
    acme = emu.insert("Account", {"Name": "Acme", "Industry": "Technology", "AnnualRevenue": 5e6,
                                  "ParentId": parent, "Type": "Customer - Direct"})
    emu.insert("Account", {"Name": "Initech", "Industry": None, "AnnualRevenue": 1e5})
    emu.insert("Contact", {"FirstName": "Ada", "LastName": "Lovelace", "AccountId": acme,
                           "Email": "ada@acme.test", "Birthdate": "1815-12-10"})
    emu.insert("Contact", {"FirstName": "Bob", "LastName": "O'Brien", "AccountId": parent,
                           "DoNotCall": True})
    emu.insert("Contact", {"LastName": "Orphan"})
    return emu


@pytest.mark.parametrize(("soql", "expected"), [
    ("SELECT Name FROM Account WHERE Industry = 'technology'", ["Acme"]),
    ("SELECT Name FROM Account WHERE Industry != 'Energy' ORDER BY Name", ["Acme", "Initech"]),
    ("SELECT Name FROM Account WHERE Industry = null", ["Initech"]),
    ("SELECT Name FROM Account WHERE AnnualRevenue > 100000", ["Acme"]),
    ("SELECT Name FROM Account WHERE AnnualRevenue <= 100000.0", ["Initech"]),
    ("SELECT Name FROM Account WHERE Name IN ('Acme', 'Globex') ORDER BY Name DESC",
     ["Globex", "Acme"]),
    ("SELECT Name FROM Account WHERE Name NOT IN ('Acme') ORDER BY Name", ["Globex", "Initech"]),
    ("SELECT Name FROM Account WHERE Name LIKE 'ac%' OR (Industry = 'Energy' AND Name LIKE '_lobex')"
     " ORDER BY Name", ["Acme", "Globex"]),
    ("SELECT Name FROM Account WHERE NOT Name LIKE '%e%'", []),
    ("SELECT Name FROM Account WHERE Parent.Name = 'Globex'", ["Acme"]),
    ("SELECT Name FROM Contact WHERE Account.Industry = 'Technology'", ["Ada Lovelace"]),
    ("SELECT Name FROM Contact WHERE DoNotCall = true", ["Bob O'Brien"]),
    ("SELECT Name FROM Contact WHERE LastName = 'O\\'Brien'", ["Bob O'Brien"]),
    ("SELECT Name FROM Contact WHERE Birthdate < 1900-01-01", ["Ada Lovelace"]),
    ("SELECT Name FROM Contact WHERE AccountId = null", ["Orphan"]),
    ("SELECT Name FROM Contact ORDER BY Account.Name NULLS LAST, Name LIMIT 2",
     ["Ada Lovelace", "Bob O'Brien"]),
    ("SELECT Name FROM Contact ORDER BY FirstName ASC", ["Orphan", "Ada Lovelace", "Bob O'Brien"]),
])
def test_soql_where_subset(small_org, sf, soql, expected):
    assert names(sf.query(soql)) == expected


def test_soql_relationship_shapes_and_count(small_org, sf):
    rec = sf.query("SELECT Id, Name, Account.Name, Account.Parent.Name FROM Contact "
                   "WHERE Email = 'ada@acme.test'")["records"][0]
    assert rec["Account"]["Name"] == "Acme"
    assert rec["Account"]["attributes"]["type"] == "Account"
    assert rec["Account"]["Parent"]["Name"] == "Globex"
    orphan = sf.query("SELECT Account.Name FROM Contact WHERE LastName = 'Orphan'")["records"][0]
    assert orphan["Account"] is None
    count = sf.query("SELECT COUNT() FROM Contact WHERE AccountId != null")
    assert count == {"totalSize": 2, "done": True, "records": []}


@pytest.mark.parametrize(("soql", "code", "snippet"), [
    ("SELECT Id, Foo FROM Account", "INVALID_FIELD", "No such column 'Foo' on entity 'Account'"),
    ("SELECT Id FROM Contact WHERE Account.Bar = 'x'", "INVALID_FIELD",
     "No such column 'Bar' on entity 'Account'"),
    ("SELECT Id FROM Widget", "INVALID_TYPE", "sObject type 'Widget' is not supported"),
    ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected end of query"),
    ("SELECT Id FROM Account LIMIT 5 OFFSET 5", "MALFORMED_QUERY", "OFFSET is not supported"),
    ("SELECT Id FROM Account WHERE CreatedDate > '2024-01-01'", "INVALID_FIELD",
     "must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD", "must be of type string"),
])
def test_soql_errors_use_salesforce_codes(sf, soql, code, snippet):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.status == 400
    assert info.value.content[0]["errorCode"] == code
    assert snippet in info.value.content[0]["message"]


def test_invalid_field_message_has_row_and_column(sf):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id, Foo FROM Account")
    assert info.value.content[0]["message"].startswith(
        "\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\n")


# ---- describe, limits, field-level security ---------------------------------------------------
def test_describe_global_object_and_limits(emu, sf):
    emu.add_field("Account", "Tier__c", "picklist", values=["Gold", "Silver"])
    names_ = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "OpportunityStage", "Task", "Event",
            "TaskRelation", "EventRelation", "Lead", "Contract", "Order", "User"} <= names_
    desc = sf.Account.describe()
    fields = {f["name"]: f for f in desc["fields"]}
    assert desc["keyPrefix"] == "001"
    assert fields["ParentId"]["referenceTo"] == ["Account"]
    assert fields["ParentId"]["relationshipName"] == "Parent"
    assert fields["Tier__c"]["custom"] is True
    assert [p["value"] for p in fields["Tier__c"]["picklistValues"]] == ["Gold", "Silver"]
    assert fields["SystemModstamp"]["updateable"] is False
    assert {"Name", "Industry", "AnnualRevenue", "OwnerId", "Type", "Website"} <= set(fields)
    stage = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}["StageName"]
    assert "Closed Won" in [p["value"] for p in stage["picklistValues"]]
    emu.api_limit = (100, 5000)
    assert sf.limits()["DailyApiRequests"] == {"Max": 5000, "Remaining": 4899}


def test_hidden_field_is_missing_from_describe_and_soql(emu, sf):
    emu.add_field("Account", "Tier__c", "string")
    emu.insert("Account", {"Name": "Acme", "Tier__c": "Gold"})
    assert sf.query("SELECT Tier__c FROM Account")["records"][0]["Tier__c"] == "Gold"
    emu.hide_field("Account", "Tier__c")
    assert "Tier__c" not in {f["name"] for f in sf.Account.describe()["fields"]}
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id, Tier__c FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Tier__c' on entity 'Account'" in info.value.content[0]["message"]


def test_hidden_field_per_user(emu):
    emu.add_field("Account", "Tier__c", "string")
    emu.add_user("auditor@x.test", "pw", "tok")
    emu.hide_field("Account", "Tier__c", username="auditor@x.test")
    admin = Salesforce(instance_url=emu.instance_url, session_id=emu.session_id,
                       session=rewrite_session(emu))
    auditor = Salesforce(instance_url=emu.instance_url,
                         session_id=emu.new_session("auditor@x.test"), session=rewrite_session(emu))
    admin.query("SELECT Tier__c FROM Account")
    with pytest.raises(SalesforceMalformedRequest):
        auditor.query("SELECT Tier__c FROM Account")


def test_standard_objects_and_derived_fields(emu, sf):
    stages = sf.query("SELECT MasterLabel, DefaultProbability, IsClosed, IsWon, ForecastCategory "
                      "FROM OpportunityStage WHERE IsActive = true ORDER BY SortOrder")["records"]
    assert [s["MasterLabel"] for s in stages][-2:] == ["Closed Won", "Closed Lost"]
    assert (stages[8]["IsWon"], stages[8]["DefaultProbability"]) == (True, 100.0)
    acct = emu.insert("Account", {"Name": "Acme"})
    con = emu.insert("Contact", {"LastName": "Ng", "AccountId": acct})
    opp = emu.insert("Opportunity", {"Name": "Deal", "AccountId": acct, "StageName": "Prospecting",
                                     "Amount": 1000, "CloseDate": "2024-03-31"})
    emu.insert("OpportunityContactRole", {"OpportunityId": opp, "ContactId": con,
                                          "Role": "Decision Maker", "IsPrimary": True})
    emu.advance(60)
    emu.update("Opportunity", opp, {"StageName": "Closed Won"})
    row = sf.query(f"SELECT IsClosed, IsWon, Probability, ForecastCategory FROM Opportunity "
                   f"WHERE Id = '{opp}'")["records"][0]
    assert (row["IsClosed"], row["IsWon"], row["Probability"], row["ForecastCategory"]) == \
        (True, True, 100.0, "Closed")
    hist = sf.query("SELECT StageName, CreatedDate FROM OpportunityHistory "
                    "ORDER BY CreatedDate")["records"]
    assert [h["StageName"] for h in hist] == ["Prospecting", "Closed Won"]
    task = emu.insert("Task", {"Subject": "Call", "WhoId": con, "WhatId": opp,
                               "Status": "Completed", "TaskSubtype": "Call"})
    t = sf.query("SELECT Who.Name, Who.Type, What.Name, AccountId, IsClosed FROM Task")["records"][0]
    assert (t["Who"]["Name"], t["Who"]["Type"], t["What"]["Name"]) == ("Ng", "Contact", "Deal")
    assert t["Who"]["attributes"]["type"] == "Name"
    assert (t["AccountId"], t["IsClosed"]) == (acct, True)
    rel = sf.query(f"SELECT RelationId, IsWhat FROM TaskRelation WHERE TaskId = '{task}' "
                   "ORDER BY IsWhat")["records"]
    assert [(r["RelationId"], r["IsWhat"]) for r in rel] == [(con, False), (opp, True)]
    emu.insert("Event", {"Subject": "Lunch", "WhoId": con, "StartDateTime": "2024-02-01T12:00:00Z",
                         "DurationInMinutes": 90})
    ev = sf.query("SELECT ActivityDateTime, ActivityDate, EndDateTime FROM Event")["records"][0]
    assert ev["EndDateTime"] == "2024-02-01T13:30:00.000+0000" and ev["ActivityDate"] == "2024-02-01"


def test_sobject_crud_and_replication_endpoints(emu, sf):
    created = sf.Account.create({"Name": "Via REST", "Industry": "Banking"})
    assert created["success"] and created["id"].startswith("001") and len(created["id"]) == 18
    sf.Account.update(created["id"], {"Website": "https://example.test"})
    assert sf.Account.get(created["id"])["Website"] == "https://example.test"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.update(created["id"], {"SystemModstamp": "2024-01-01T00:00:00Z"})
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Opportunity.create({"Name": "No stage"})
    assert info.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    sf.Account.delete(created["id"])
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(created["id"])
    window = (T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert sf.Account.deleted(*window)["deletedRecords"][0]["id"] == created["id"]
    assert sf.Account.updated(*window)["ids"] == []


# ---- Bulk API 2.0 ------------------------------------------------------------------------------
def test_bulk2_query_pages_through_locators(emu, sf):
    emu.seed_plan(APEX)
    gone = emu.records("Contact")[0]["Id"]
    emu.delete("Contact", gone)
    emu.reset_log()
    pages = list(sf.bulk2.Contact.query("SELECT Id, LastName, Account.Name FROM Contact",
                                        max_records=60, wait=0))
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert [len(list(csv.DictReader(io.StringIO(p)))) for p in pages] == [60, 60, 29]
    assert len({r["Id"] for r in rows}) == 149 and gone not in {r["Id"] for r in rows}
    assert set(rows[0]) == {"Id", "LastName", "Account.Name"}
    result_calls = [r for r in emu.requests if r.path.endswith("/results")]
    assert [c.query.get("maxRecords") for c in result_calls] == ["60", "60", "60"]
    everything = list(sf.bulk2.Contact.query_all("SELECT Id FROM Contact", wait=0))
    assert sum(len(p.strip().splitlines()) - 1 for p in everything) == 150


def test_bulk2_results_headers(emu, sf):
    emu.insert("Account", {"Name": "A"})
    job = sf.restful("jobs/query", method="POST",
                     data=json.dumps({"operation": "query", "query": "SELECT Name FROM Account"}))
    assert job["state"] == "UploadComplete"
    assert sf.restful(f"jobs/query/{job['id']}")["state"] == "JobComplete"
    url = f"{emu.instance_url}/services/data/v59.0/jobs/query/{job['id']}/results"
    resp = requests.get(url, headers={"Authorization": f"Bearer {emu.session_id}"})
    assert resp.headers["Sforce-NumberOfRecords"] == "1"
    assert resp.headers["Sforce-Locator"] == "null"
    assert resp.text == '"Name"\n"A"\n'


# ---- sObject Collections ----------------------------------------------------------------------
def test_collection_update_results_and_all_or_none(emu, sf):
    a = emu.insert("Account", {"Name": "A"})
    b = emu.insert("Account", {"Name": "B"})
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "id": a, "Industry": "Banking"},
        {"attributes": {"type": "Account"}, "id": b, "NoSuchField__c": 1}]}
    res = sf.restful("composite/sobjects", method="PATCH", data=json.dumps(body))
    assert res[0] == {"id": a, "success": True, "errors": []}
    assert res[1]["success"] is False and res[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    body["allOrNone"] = True
    body["records"][0]["Industry"] = "Retail"
    res = sf.restful("composite/sobjects", method="PATCH", data=json.dumps(body))
    assert res[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert emu.get("Account", a)["Industry"] == "Banking"


def test_collection_create_validates_required_fields(emu, sf):
    body = {"allOrNone": True, "records": [
        {"attributes": {"type": "Contact"}, "LastName": "Ok"},
        {"attributes": {"type": "Contact"}, "FirstName": "NoLastName"}]}
    res = sf.restful("composite/sobjects", method="POST", data=json.dumps(body))
    assert res[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert res[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert emu.records("Contact") == []
    body["allOrNone"] = False
    res = sf.restful("composite/sobjects", method="POST", data=json.dumps(body))
    assert res[0]["success"] and res[0]["id"].startswith("003") and not res[1]["success"]


# ---- faults -----------------------------------------------------------------------------------
def test_401_mid_pagination_with_direct_session_raises_expired(emu, sf):
    for i in range(500):
        emu.insert("Account", {"Name": f"A{i}"})
    emu.faults.add(Fault(status=401, error_code="INVALID_SESSION_ID", path_contains="/query/01g"))
    seen = []
    with pytest.raises(SalesforceExpiredSession):
        for rec in sf.query_all_iter("SELECT Id FROM Account",
                                     headers={"Sforce-Query-Options": "batchSize=200"}):
            seen.append(rec)
    assert len(seen) == 200


def test_401_with_soap_login_relogs_in_and_resumes(emu):
    for i in range(500):
        emu.insert("Account", {"Name": f"A{i}"})
    sf = soap_login(emu)
    emu.faults.add(Fault.expired_session(after=1, path_contains="/query/"))
    got = sf.query_all("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"})
    assert got["totalSize"] == 500
    assert [r.path for r in emu.requests].count("/services/Soap/u/59.0") == 2


def test_expire_sessions(emu, sf):
    relogging = soap_login(emu)
    emu.expire_sessions()
    assert emu.valid_session_ids == set()
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User")
    assert relogging.query("SELECT Id FROM User")["totalSize"] == 1


def test_request_limit_exceeded_fault_and_api_limit(emu, sf):
    emu.faults.add(Fault(status=403, error_code="REQUEST_LIMIT_EXCEEDED"))
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM User")
    assert info.value.content == [{"message": "TotalRequests Limit exceeded.",
                                   "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    emu.api_limit = (4998, 5000)
    sf.query("SELECT Id FROM User")
    assert sf.api_usage["api-usage"].used == 4999 and sf.api_usage["api-usage"].total == 5000
    sf.query("SELECT Id FROM User")
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM User")
    assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    raw = requests.get(emu.instance_url + "/services/data/v59.0/limits",
                       headers={"Authorization": f"Bearer {emu.session_id}"})
    assert raw.status_code == 403 and raw.headers["Sforce-Limit-Info"] == "api-usage=5000/5000"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_raise_general_error(emu, sf, status):
    emu.faults.add(Fault(status=status, path_contains="/query"))
    with pytest.raises(SalesforceGeneralError) as info:
        sf.query("SELECT Id FROM User")
    assert info.value.status == status
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1  # times=1: next call is fine


def test_delay_fault_slows_but_serves(emu, sf):
    emu.faults.add(Fault.slow(0.3, path_contains="/query"))
    started = time.monotonic()
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1
    assert time.monotonic() - started >= 0.3


def test_timeout_fault_gives_read_timeout(emu, sf):
    emu.faults.add(Fault(kind="timeout", seconds=2.0, path_contains="/query"))
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.query("SELECT Id FROM User", timeout=0.3)
    slow_session = rewrite_session(emu, timeout=0.3)
    emu.faults.add(Fault.timeout(2.0))
    sf2 = Salesforce(instance_url=emu.instance_url, session_id=emu.session_id, session=slow_session)
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf2.query("SELECT Id FROM User")


def test_dropped_connection_gives_connection_error(emu, sf):
    emu.faults.add(Fault.drop(path_contains="/query"))
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT Id FROM User")
    assert emu.requests[-1].fault == "drop"


def test_truncated_bodies(emu, sf):
    emu.faults.add(Fault.truncate(keep_length=True, path_contains="/query"))
    with pytest.raises((requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ConnectionError)):
        sf.query("SELECT Id, Name FROM User")
    emu.faults.add(Fault.truncate(keep_length=False, path_contains="/query"))
    with pytest.raises(ValueError):  # requests.JSONDecodeError
        sf.query("SELECT Id, Name FROM User")
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1


def test_request_log_and_limit_header_on_every_rest_response(emu, sf):
    emu.reset_log()
    sf.query("SELECT Id FROM User")
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Nope FROM User")
    sf.Account.describe()
    log = emu.requests
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", "/services/data/v59.0/query/", 200),
        ("GET", "/services/data/v59.0/query/", 400),
        ("GET", "/services/data/v59.0/sobjects/Account/describe", 200)]
    assert log[0].query == {"q": "SELECT Id FROM User"} and log[0].soql == "SELECT Id FROM User"
    assert log[0].timestamp <= log[1].timestamp
    bad = requests.get(emu.instance_url + "/services/data/v59.0/query?q=SELECT+X+FROM+Y",
                       headers={"Authorization": f"Bearer {emu.session_id}"})
    assert re.fullmatch(r"api-usage=\d+/15000", bad.headers["Sforce-Limit-Info"])


# ---- seeding from real sample data (CC0) ------------------------------------------------------
def test_seed_apex_recipes_following_data_plan(emu, sf):
    plan = json.loads((APEX / "data-plan.json").read_text())
    for step in plan:
        for name in step["files"]:
            emu.seed_tree_json(APEX / name)
    count = {o: sf.query(f"SELECT COUNT() FROM {o}")["totalSize"]
             for o in ("Account", "Contact", "Opportunity")}
    assert count == {"Account": 50, "Contact": 150, "Opportunity": 50}
    stages = sf.query_all("SELECT StageName, IsWon FROM Opportunity WHERE StageName IN "
                          "('Closed/Won', 'Assigned dynamically')")["records"]
    assert sorted({s["StageName"] for s in stages}) == ["Assigned dynamically", "Closed/Won"]
    assert sum(s["StageName"] == "Closed/Won" for s in stages) == 3
    assert sum(s["StageName"] == "Assigned dynamically" for s in stages) == 8
    assert not any(s["IsWon"] for s in stages)  # not real stages in the emulated org
    first = sf.query("SELECT FirstName, Account.Name FROM Contact WHERE Email = "
                     "'lsinisbury0@dropbox.com'")["records"][0]
    assert first["Account"]["Name"]  # @AccountRef10 was resolved across files
    zoo = sf.query("SELECT AnnualRevenue, NumberOfEmployees, Fax FROM Account WHERE "
                   "Name = 'Zoonoodle 37'")["records"][0]
    assert (zoo["AnnualRevenue"], zoo["NumberOfEmployees"]) == (5117586.0, 28549)


def test_seed_every_realdata_set(emu):
    expected = {"sf_lwc_recipes": {"Account": 10, "Contact": 6, "Opportunity": 20},
                "sf_easy_spaces_lwc": {"Account": 12, "Contact": 12, "_missing_files": 3},
                "sf_ebikes_lwc": {"Account": 3, "_missing_files": 2},
                "sf_coral_cloud": {"Contact": 156, "Case": 2, "_missing_files": 2}}
    for name, counts in expected.items():
        assert emu.seed_plan(REALDATA / name) == counts, name
    assert len(emu.seed_tree_json(REALDATA / "sf_easy_spaces_lwc" / "Leads.json")) == 11  # not in Plan2
    assert emu.store.obj("Contact").field("Picture__c").custom
    case = emu.records("Case")[0]
    assert case["ContactId"].startswith("003")


# ---- TLS and running by hand -------------------------------------------------------------------
def test_tls_mode_with_requests_ca_bundle(monkeypatch):
    pytest.importorskip("trustme")
    with SalesforceEmulator(tls=True) as emu:
        assert emu.instance_url.startswith("https://127.0.0.1:")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
        sf = Salesforce(instance_url=emu.instance_url, session_id=emu.session_id)
        assert sf.query("SELECT Id FROM User")["totalSize"] == 1
        assert soap_login(emu).query("SELECT Id FROM User")["totalSize"] == 1


def test_main_prints_credentials():
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "crmlink.testing.salesforce_emulator", "--port", "0",
           "--seed", str(APEX)]
    with subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        try:
            lines = []
            for line in proc.stdout:  # type: ignore[union-attr]
                lines.append(line)
                if line.startswith("Ctrl-C"):
                    break
            info = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
            resp = requests.get(info["instance_url"] + "/services/data/v59.0/query",
                                params={"q": "SELECT COUNT() FROM Account"},
                                headers={"Authorization": f"Bearer {info['session_id']}"},
                                timeout=5)
            assert resp.json()["totalSize"] == 50
            assert info["username"] == DEFAULT_USERNAME
        finally:
            proc.terminate()
            proc.wait(timeout=5)
