"""Salesforce for sales and HubSpot for marketing, audited as one portfolio: both synced from
their emulators through the real client libraries (simple-salesforce, hubspot-api-client).

Salesforce holds ten of HubSpot's companies (the same domain, written as a website), some of
their people (the same address in another case) and our people (the same emails), with
calls of its own. The oracle is the same store rewritten by hand into one source, with
the pairs the test created joined: the merged audit must score every account as that one
source does. One Salesforce contact has a HubSpot person's address under another name: a
conflict, reported and left apart (and apart in the oracle too)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core import model
from crmlink.core.store import Store
from crmlink.testing.hubspot_emulator import HubSpotEmulator
from crmlink.testing.hubspot_emulator.seed import seed
from crmlink.testing.salesforce_emulator import SalesforceEmulator

SHARED = 10
#: reference fields and the kind of record they name
REFERENCES = {"account_id": "account", "parent_id": "account", "owner_id": "user", "contact_id": "contact",
              "reports_to_id": "contact", "opportunity_id": "deal", "stage_id": "stage"}
LISTS = {"user_ids": "user", "contact_ids": "contact"}


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return result


@pytest.fixture(scope="module")
def crms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("crms")
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    with HubSpotEmulator() as hs, SalesforceEmulator(tls=True, start_time=start, tick=1.0) as sf:
        mp = pytest.MonkeyPatch()
        mp.setenv("REQUESTS_CA_BUNDLE", sf.ca_path)
        ids = seed(hs, 200)
        pairs = {"account": {}, "contact": {}, "user": {}}
        emails = {str(o["id"]): o["email"] for o in hs.owners()}
        for owner in ids["owners"]:
            pairs["user"][str(owner)] = sf.add_user(emails[str(owner)], "pw", Title="Account Manager").user_id
        sf_users = list(pairs["user"].values())
        for i, company in enumerate(ids["companies"][:SHARED]):
            props = hs.get("companies", company)["properties"]
            account = sf.insert("Account", {"Name": f"{props['name']} Inc", "Website": f"https://www.{props['domain']}/",
                                            "OwnerId": sf_users[i % len(sf_users)]})
            pairs["account"][str(company)] = account
        sf.insert("Account", {"Name": "Only In Salesforce", "Website": "https://sf-only.example"})
        day = (sf.now - timedelta(days=3)).date().isoformat()
        conflict = None
        for n, contact in enumerate(ids["contacts"]):
            props = hs.get("contacts", contact)["properties"]
            account = pairs["account"].get(str(props.get("associatedcompanyid")))
            if account is None or n % 2:
                continue
            if conflict is None:  # the same address, another person: never merged
                conflict = sf.insert("Contact", {"AccountId": account, "FirstName": "Someone", "LastName": "Else",
                                                 "Email": props["email"].upper()})
                continue
            person = sf.insert("Contact", {"AccountId": account, "FirstName": props["firstname"],
                                           "LastName": props["lastname"], "Email": props["email"].upper(),
                                           "Title": props.get("jobtitle")})
            pairs["contact"][str(contact)] = person
            for k in range(2):
                sf.insert("Task", {"Subject": f"Call {n}-{k}", "WhoId": person, "WhatId": account,
                                   "OwnerId": sf_users[(n + k) % len(sf_users)],
                                   "ActivityDate": day, "Status": "Completed", "Priority": "Normal",
                                   "TaskSubtype": "Call", "CallType": "Inbound" if k else "Outbound"})
        db = f"sqlite:///{tmp / 'store.db'}"
        assert invoke("sync", "hubspot", "--base-url", hs.url, "--access-token", hs.token, "--db", db,
                      "-q").exit_code == 0
        assert invoke("sync", "salesforce", "--instance-url", sf.instance_url, "--session-id", sf.session_id,
                      "--db", db, "-q").exit_code == 0
        mp.undo()
        yield {"db": db, "tmp": tmp, "pairs": pairs, "conflict": conflict}


def oracle(db: str, target: str, pairs: Mapping[str, Mapping[str, str]]) -> None:
    """The store's two sources rewritten into one source "all": HubSpot's records of a
    pair the test made become the Salesforce record (its empty fields filled from
    HubSpot's), every other HubSpot id becomes hs-ID."""
    store, out = Store(db), Store(target)
    joined = {kind: {hs: sf for hs, sf in found.items()} for kind, found in pairs.items()}

    def key(kind: str, rid: str | None) -> str | None:
        if rid is None:
            return None
        return joined.get(kind, {}).get(rid) or f"hs-{rid}"

    sf_records = {(e, r.remote_id): r for e in model.ENTITIES for r in store.records(e, source="salesforce",
                                                                                       include_deleted=True)}
    records: list[model.Record] = []
    for entity in model.ENTITIES:
        kind = {"opportunity": "deal"}.get(entity, entity)
        for record in store.records(entity, source="hubspot", include_deleted=True):
            twin = joined.get(kind, {}).get(record.remote_id)
            if twin is not None:
                merged = copy.copy(sf_records.pop((entity, twin)))
                for name, value in record.to_dict().items():
                    if name not in ("remote_id", "source", "extra", "raw") and getattr(merged, name) is None:
                        setattr(merged, name, _rewrite(name, value, key))
                records.append(merged)
                continue
            moved = copy.copy(record)
            moved.remote_id = key(kind, record.remote_id) or record.remote_id
            for name in REFERENCES.keys() | LISTS.keys():
                if hasattr(moved, name):
                    setattr(moved, name, _rewrite(name, getattr(record, name), key))
            records.append(moved)
    records.extend(sf_records.values())
    for record in records:
        record.source = "all"
    with out.transaction() as conn:
        for entity in model.ENTITIES:
            batch = [r for r in records if r.entity == entity]
            if batch:
                out.upsert(conn, batch)


def _rewrite(name: str, value: Any, key: Any) -> Any:
    if name in REFERENCES:
        return key(REFERENCES[name], value)
    if name in LISTS and value:
        return tuple(key(LISTS[name], v) for v in value)
    return value


def audit(db: str, config: Path) -> dict[str, Any]:
    return json.loads(invoke("audit", "--db", db, "--format", "json", "--config", str(config)).stdout)


def test_salesforce_and_hubspot_audit_as_one_portfolio(crms: dict[str, Any]) -> None:
    pairs, tmp = crms["pairs"], crms["tmp"]
    assert len(pairs["account"]) == SHARED and pairs["contact"] and pairs["user"]
    config = tmp / "crmlink.toml"
    config.write_text('[identity.match]\nsource_order = ["salesforce", "hubspot"]\n', encoding="utf-8")
    merged = audit(crms["db"], config)
    target = f"sqlite:///{tmp / 'oracle.db'}"
    oracle(crms["db"], target, pairs)
    one = audit(target, config)

    summary = merged["merge"]
    assert summary["sources"] == ["salesforce", "hubspot"]
    assert (summary["accounts_joined"], summary["contacts_joined"], summary["users_joined"]) == (
        SHARED, len(pairs["contact"]), len(pairs["user"]))
    assert [(c["kind"], c["entity"]) for c in summary["conflicts"]] == [("names_differ", "contact")]
    assert f"salesforce:contact:{crms['conflict']}" in summary["conflicts"][0]["records"]

    expected = {a["remote_id"].removeprefix("hs-"): a for a in one["accounts"]}
    got = {a["remote_id"]: a for a in merged["accounts"]}
    assert set(got) == set(expected)
    for rid, account in expected.items():
        assert got[rid]["scores"] == account["scores"], rid
        assert got[rid]["coverage"] == account["coverage"], rid
        assert sorted(f["code"] for f in got[rid]["findings"]) == sorted(f["code"] for f in account["findings"]), rid
    for hs_company, sf_account in pairs["account"].items():
        entry = got[sf_account]
        assert [(m["source"], m["remote_id"], m["rule"]) for m in entry["merged_from"]] == [
            ("salesforce", sf_account, "domain"), ("hubspot", hs_company, "domain")]
    scored = [a for a in expected.values() if a["remote_id"] in pairs["account"].values() and a["scores"].get("key")]
    assert scored, "the shared accounts have relationship evidence from both CRMs"
