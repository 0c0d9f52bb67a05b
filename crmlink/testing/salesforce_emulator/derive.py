"""Defaults and derived (read-only) fields that real Salesforce computes on save."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .schema import ObjectDef

if TYPE_CHECKING:
    from .store import Store

DEFAULTS: dict[str, dict[str, Any]] = {
    "Lead": {"Status": "Open - Not Contacted", "IsConverted": False},
    "Task": {"Status": "Not Started", "Priority": "Normal", "TaskSubtype": "Task",
             "IsClosed": False, "IsArchived": False, "IsHighPriority": False},
    "Event": {"IsAllDayEvent": False, "ShowAs": "Busy", "EventSubtype": "Event",
              "IsArchived": False},
    "Opportunity": {"IsClosed": False, "IsWon": False, "HasOpportunityLineItem": False,
                    "ForecastCategory": "Pipeline", "ForecastCategoryName": "Pipeline"},
    "OpportunityContactRole": {"IsPrimary": False},
    "User": {"IsActive": True, "UserType": "Standard", "TimeZoneSidKey": "America/Los_Angeles"},
    "Contract": {"Status": "Draft"},
    "Order": {"Status": "Draft", "TotalAmount": 0.0},
    "Campaign": {"IsActive": False},
    "Case": {"Status": "New", "IsClosed": False},
    "OpportunityStage": {"IsActive": True},
    "EventRelation": {"IsParent": False, "IsInvitee": True, "Status": "New"},
}
PERSON_OBJECTS = {"Contact", "Lead", "User"}
# Deleting a parent soft-deletes these children (and undelete restores them).
ACTIVITIES = [("Task", "WhatId"), ("Event", "WhatId")]
CASCADE: dict[str, list[tuple[str, str]]] = {
    "Account": [("Contact", "AccountId"), ("Opportunity", "AccountId"), ("Case", "AccountId"),
                *ACTIVITIES],
    "Opportunity": [("OpportunityContactRole", "OpportunityId"),
                    ("OpportunityHistory", "OpportunityId"), ("OpportunityCompetitor", "OpportunityId"),
                    *ACTIVITIES],
    "Contact": [("OpportunityContactRole", "ContactId"), ("Task", "WhoId"), ("Event", "WhoId")],
    "Lead": [("Task", "WhoId"), ("Event", "WhoId")],
    "Task": [("TaskRelation", "TaskId")],
    "Event": [("EventRelation", "EventId")],
}
STATUS_CODES = {"Draft": "Draft", "In Approval Process": "InApproval", "Activated": "Activated"}


def defaults(store: Store, od: ObjectDef, rec: dict[str, Any], number: bool = True) -> None:
    """Fill defaults before the caller's values are applied."""
    for key, value in DEFAULTS.get(od.name, {}).items():
        rec[key] = value
    for fdef in od.fields.values():
        if fdef.type == "boolean" and rec.get(fdef.name) is None:
            rec[fdef.name] = False
    if "OwnerId" in od.fields:
        rec["OwnerId"] = store.default_user_id or None
    if number and od.name in ("Contract", "Order", "Case"):
        number_field = {"Contract": "ContractNumber", "Order": "OrderNumber",
                        "Case": "CaseNumber"}[od.name]
        rec[number_field] = f"{store.next_number(od.name) + 100:08d}"


def require(od: ObjectDef, rec: dict[str, Any]) -> None:
    """REST creates must supply non-nillable createable fields (REQUIRED_FIELD_MISSING)."""
    missing = [f.name for f in od.fields.values()
               if not f.nillable and f.createable and f.type != "boolean"
               and f.name != "OwnerId" and rec.get(f.name) in (None, "")]
    if missing:
        raise ApiError(400, "REQUIRED_FIELD_MISSING",
                       f"Required fields are missing: [{', '.join(missing)}]", missing)


def after_write(store: Store, od: ObjectDef, rec: dict[str, Any],
                before: dict[str, Any] | None, changed: set[str]) -> None:
    if od.name in PERSON_OBJECTS:
        parts = [rec.get("FirstName"), rec.get("LastName")]
        rec["Name"] = " ".join(p for p in parts if p) or None
    handler = _HANDLERS.get(od.name)
    if handler:
        handler(store, rec, before, changed)


def _opportunity(store: Store, rec: dict[str, Any], before: dict[str, Any] | None,
                 changed: set[str]) -> None:
    stage = _stage(store, rec.get("StageName"))
    if stage is not None:
        rec["IsClosed"], rec["IsWon"] = stage["IsClosed"], stage["IsWon"]
        rec["ForecastCategory"] = stage["ForecastCategory"]
        if "ForecastCategoryName" not in changed:
            rec["ForecastCategoryName"] = stage["ForecastCategoryName"]
        if "Probability" not in changed and (before is None or "StageName" in changed):
            rec["Probability"] = float(stage["DefaultProbability"])
    if rec.get("Amount") is not None and rec.get("Probability") is not None:
        rec["ExpectedRevenue"] = round(rec["Amount"] * rec["Probability"] / 100.0, 2)
    close = rec.get("CloseDate")
    if isinstance(close, date):
        rec["FiscalYear"], rec["FiscalQuarter"] = close.year, (close.month - 1) // 3 + 1
    tracked = ("StageName", "Amount", "CloseDate", "Probability")
    if before is None or any(rec.get(f) != before.get(f) for f in tracked):
        _history(store, rec, before)


def _history(store: Store, rec: dict[str, Any], before: dict[str, Any] | None) -> None:
    if not rec.get("StageName"):
        return
    store.insert("OpportunityHistory", {
        "OpportunityId": rec["Id"], "StageName": rec["StageName"], "Amount": rec.get("Amount"),
        "ExpectedRevenue": rec.get("ExpectedRevenue"), "CloseDate": rec.get("CloseDate"),
        "Probability": rec.get("Probability"), "ForecastCategory": rec.get("ForecastCategory"),
        "PrevAmount": before.get("Amount") if before else None,
        "PrevCloseDate": before.get("CloseDate") if before else None,
        "CreatedDate": rec["LastModifiedDate"], "SystemModstamp": rec["LastModifiedDate"],
        "LastModifiedDate": rec["LastModifiedDate"], "CreatedById": rec["LastModifiedById"],
        "LastModifiedById": rec["LastModifiedById"],
    })


def _stage(store: Store, name: Any) -> dict[str, Any] | None:
    if not isinstance(name, str):
        return None
    for row in store.data.get("OpportunityStage", {}).values():
        if name.lower() in (str(row.get("ApiName")).lower(), str(row.get("MasterLabel")).lower()):
            return row
    return None


def _activity_account(store: Store, rec: dict[str, Any]) -> None:
    account = None
    what = store.find(rec.get("WhatId"))
    who = store.find(rec.get("WhoId"))
    if what and what[0] == "Account":
        account = what[1]["Id"]
    elif what and "AccountId" in what[1]:
        account = what[1].get("AccountId")
    elif who and who[0] == "Contact":
        account = who[1].get("AccountId")
    rec["AccountId"] = account


def _task(store: Store, rec: dict[str, Any], before: dict[str, Any] | None,
          changed: set[str]) -> None:
    rec["IsClosed"] = rec.get("Status") == "Completed"
    rec["IsHighPriority"] = rec.get("Priority") == "High"
    if rec["IsClosed"] and not rec.get("CompletedDateTime"):
        rec["CompletedDateTime"] = rec["LastModifiedDate"]
    _activity_account(store, rec)
    if before is None:
        _relations(store, "TaskRelation", "TaskId", rec)


def _event(store: Store, rec: dict[str, Any], before: dict[str, Any] | None,
           changed: set[str]) -> None:
    start = rec.get("StartDateTime") or rec.get("ActivityDateTime")
    if isinstance(start, datetime):
        rec["StartDateTime"] = rec["ActivityDateTime"] = start
        rec["ActivityDate"] = start.date()
        end, minutes = rec.get("EndDateTime"), rec.get("DurationInMinutes")
        if isinstance(end, datetime) and "DurationInMinutes" not in changed:
            rec["DurationInMinutes"] = int((end - start).total_seconds() // 60)
        elif minutes is not None:
            rec["EndDateTime"] = start + timedelta(minutes=int(minutes))
    _activity_account(store, rec)
    if before is None:
        _relations(store, "EventRelation", "EventId", rec)


def _relations(store: Store, obj: str, parent_field: str, rec: dict[str, Any]) -> None:
    """Real orgs create a TaskRelation/EventRelation row for the WhoId and WhatId."""
    for key, is_what in (("WhoId", False), ("WhatId", True)):
        if rec.get(key):
            extra = {"IsParent": True, "IsInvitee": False} if obj == "EventRelation" else {}
            store.insert(obj, {parent_field: rec["Id"], "RelationId": rec[key],
                               "IsWhat": is_what, **extra})


def _relation(store: Store, rec: dict[str, Any], before: dict[str, Any] | None,
              changed: set[str]) -> None:
    target = store.find(rec.get("RelationId"))
    if target and target[0] == "Contact":
        rec["AccountId"] = target[1].get("AccountId")
    elif target and target[0] == "Account":
        rec["AccountId"] = target[1]["Id"]


def _contract(store: Store, rec: dict[str, Any], before: dict[str, Any] | None,
              changed: set[str]) -> None:
    rec["StatusCode"] = STATUS_CODES.get(rec.get("Status") or "", rec.get("Status"))
    if rec["StatusCode"] == "Activated" and not rec.get("ActivatedDate"):
        rec["ActivatedDate"] = rec["LastModifiedDate"]
    start, term = rec.get("StartDate"), rec.get("ContractTerm")
    if isinstance(start, date) and term:
        months = start.month - 1 + int(term)
        year, month = start.year + months // 12, months % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        rec["EndDate"] = date(year, month, day) - timedelta(days=1)


def _order(store: Store, rec: dict[str, Any], before: dict[str, Any] | None,
           changed: set[str]) -> None:
    rec["StatusCode"] = rec.get("Status")


def _case(store: Store, rec: dict[str, Any], before: dict[str, Any] | None,
          changed: set[str]) -> None:
    rec["IsClosed"] = rec.get("Status") == "Closed"
    if not rec["IsClosed"]:
        rec["ClosedDate"] = None
    elif not rec.get("ClosedDate") or not (before or {}).get("IsClosed"):
        rec["ClosedDate"] = rec["LastModifiedDate"]
    contact = store.get("Contact", rec.get("ContactId"))
    if contact and not rec.get("AccountId"):
        rec["AccountId"] = contact.get("AccountId")


_HANDLERS = {
    "Opportunity": _opportunity, "Task": _task, "Event": _event, "TaskRelation": _relation,
    "EventRelation": _relation, "Contract": _contract, "Order": _order, "Case": _case,
}
