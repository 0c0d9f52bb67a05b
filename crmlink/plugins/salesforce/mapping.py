"""Salesforce rows (REST JSON or Bulk 2.0 CSV) -> canonical records.

Each mapper takes a row and the connector's settings and returns a record. Fields a
mapper reads are listed in ``FIELDS`` (selected when the org has them and the user can
read them); every other selected field goes to ``extra``. Canonicalised values keep their
native spelling in ``raw``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crmlink import (
    Account,
    Competitor,
    Contact,
    ExecutionRecord,
    Interaction,
    InvalidRecord,
    Lead,
    Opportunity,
    OpportunityContact,
    Record,
    Stage,
    StageChange,
    SupportCase,
    User,
    classify_title,
    normalize_vocabulary,
)

Row = Mapping[str, Any]
Config = Mapping[str, Any]
SYSTEM = ("Id", "IsDeleted", "SystemModstamp")
#: Fields read by the mappers, per object (besides ``SYSTEM`` and the custom fields).
FIELDS: dict[str, list[str]] = {
    "User": ["Name", "Email", "Title", "IsActive", "Department"],
    "Account": ["Name", "Website", "ParentId", "Industry", "AnnualRevenue", "OwnerId", "CreatedDate"],
    "Contact": ["AccountId", "Name", "Email", "Title", "Department", "ReportsToId"],
    "Task": ["Subject", "TaskSubtype", "Type", "CallType", "ActivityDate", "CompletedDateTime",
             "CreatedDate", "OwnerId", "WhoId", "WhatId", "AccountId", "CallDurationInSeconds",
             "Status"],
    "Event": ["Subject", "EventSubtype", "Type", "ActivityDateTime", "ActivityDate", "CreatedDate",
              "OwnerId", "WhoId", "WhatId", "AccountId", "DurationInMinutes"],
    "Opportunity": ["AccountId", "Name", "StageName", "IsClosed", "IsWon", "Probability", "Amount",
                    "CloseDate", "CreatedDate", "OwnerId"],
    "OpportunityContactRole": ["OpportunityId", "ContactId", "Role", "IsPrimary"],
    "OpportunityHistory": ["OpportunityId", "StageName", "CreatedDate"],
    "OpportunityStage": ["MasterLabel", "ApiName", "SortOrder", "DefaultProbability", "IsClosed",
                         "IsWon", "IsActive"],
    "Lead": ["Name", "Company", "Email", "Status", "CreatedDate", "OwnerId", "ConvertedOpportunityId"],
    "Contract": ["AccountId", "Status", "StatusCode", "ContractNumber", "StartDate", "EndDate"],
    "Order": ["AccountId", "OpportunityId", "ContractId", "Status", "StatusCode", "OrderNumber",
              "TotalAmount", "EffectiveDate", "EndDate"],
    "OpportunityCompetitor": ["OpportunityId", "CompetitorName", "Strengths", "Weaknesses"],
    "Case": ["AccountId", "ContactId", "Subject", "Status", "Priority", "IsEscalated", "Type", "CreatedDate",
             "ClosedDate", "IsClosed"],
}
#: Setting naming a custom field -> the objects it lives on.
CUSTOM = {"team_role_field": ("User",), "tier_field": ("Account",), "stance_field": ("Contact",),
          "method_field": ("Task", "Event")}
KINDS = {"call": "call", "email": "email", "listemail": "email", "meeting": "meeting",
         "event": "meeting", "task": "task", "linkedin": "note", "cadence": "task", "other": "task"}


def custom_fields(obj: str, config: Config) -> list[str]:
    return [str(config[name]) for name, objs in CUSTOM.items() if obj in objs and config.get(name)]


def _base(row: Row, used: set[str]) -> dict[str, Any]:
    extra = {k: v for k, v in row.items()
             if k not in used and k not in SYSTEM and k != "attributes" and not isinstance(v, dict)}
    deleted = row.get("IsDeleted")
    return {"remote_id": row.get("Id"), "modified_at": row.get("SystemModstamp"),
            "deleted": deleted in (True, "true", "True"), "extra": extra}


def _soft(vocabulary: str, value: Any, raw: dict[str, Any], key: str) -> str | None:
    """The canonical value, or ``None`` with the native one kept in ``raw[key]``."""
    if value in (None, ""):
        return None
    try:
        found = normalize_vocabulary(vocabulary, value)
    except ValueError:
        found = None
    if found is None or str(found) != str(value):
        raw[key] = value
    return found


def _percent(value: Any) -> float | None:
    return None if value in (None, "") else float(value) / 100.0


def user(row: Row, config: Config) -> Record:
    field = config.get("team_role_field")
    base = _base(row, {*FIELDS["User"], *custom_fields("User", config)})
    raw: dict[str, Any] = {}
    team_role = _soft("team_role", row.get(field), raw, "team_role") if field else None
    if row.get("Department"):
        raw["department"] = row["Department"]
    return User(**base, raw=raw, name=row.get("Name"), email=row.get("Email"), title=row.get("Title"),
                team_role=team_role, active=row.get("IsActive", True))


def account(row: Row, config: Config) -> Record:
    field = config.get("tier_field")
    base = _base(row, {*FIELDS["Account"], *custom_fields("Account", config)})
    raw: dict[str, Any] = {}
    tier = _soft("tier", row.get(field), raw, "tier") if field else None
    website = str(row.get("Website") or "").strip()
    domain = website.split("://", 1)[-1].split("/", 1)[0].removeprefix("www.") or None
    return Account(**base, raw=raw, name=row.get("Name"), domain=domain, industry=row.get("Industry"),
                   parent_id=row.get("ParentId"), tier=tier, tier_source="crm" if tier else None,
                   annual_revenue=row.get("AnnualRevenue"), owner_id=row.get("OwnerId"),
                   created_at=row.get("CreatedDate"))


def contact(row: Row, config: Config) -> Record:
    field = config.get("stance_field")
    base = _base(row, {*FIELDS["Contact"], *custom_fields("Contact", config)})
    raw: dict[str, Any] = {}
    if row.get("Department"):
        raw["department"] = row["Department"]
    stance = row.get(field) if field else None
    if stance not in (None, ""):
        raw["stance"] = stance

    def build(stance: Any) -> Record:
        return Contact(**base, raw=raw, account_id=row.get("AccountId"), name=row.get("Name"),
                       email=row.get("Email"), title=row.get("Title"), stance=stance,
                       reports_to_id=row.get("ReportsToId"))

    try:
        return build(stance)
    except InvalidRecord as exc:
        if exc.field != "stance":
            raise
        return build(None)  # an unknown stance label stays in raw; the record is fine


def interaction(row: Row, config: Config, contact_ids: tuple[str, ...] = ()) -> Record:
    obj = "Event" if str(row.get("Id") or "").startswith("00U") else "Task"
    field = config.get("method_field")
    base = _base(row, {*FIELDS[obj], *custom_fields(obj, config)})
    raw: dict[str, Any] = {}
    if obj == "Event":
        native = row.get("Type") or row.get("EventSubtype") or "Event"
        occurred = row.get("ActivityDateTime") or row.get("ActivityDate") or row.get("CreatedDate")
        duration = row.get("DurationInMinutes")
    else:
        native = row.get("TaskSubtype") if row.get("TaskSubtype") not in (None, "Task") else row.get("Type")
        native = native or row.get("TaskSubtype") or "Task"
        occurred = row.get("ActivityDate") or row.get("CompletedDateTime") or row.get("CreatedDate")
        seconds = row.get("CallDurationInSeconds")
        duration = None if seconds is None or seconds == "" else float(seconds) / 60.0
    kind = KINDS.get(str(native).strip().lower(), "task")
    raw["kind"] = native
    direction = {"inbound": "inbound", "outbound": "outbound", "internal": "internal"}.get(
        str(row.get("CallType") or "").lower())
    method = _soft("method", row.get(field), raw, "method") if field else None
    what = str(row.get("WhatId") or "")
    who = str(row.get("WhoId") or "")
    contacts = tuple(dict.fromkeys(c for c in (who, *contact_ids) if c.startswith("003")))
    return Interaction(**base, raw=raw, kind=kind, occurred_at=occurred, direction=direction,
                       method=method, subject=row.get("Subject"),
                       account_id=row.get("AccountId") or (what if what.startswith("001") else None),
                       opportunity_id=what if what.startswith("006") else None,
                       user_ids=(row["OwnerId"],) if row.get("OwnerId") else (),
                       contact_ids=contacts, duration_minutes=duration)


def opportunity(row: Row, config: Config) -> Record:
    base = _base(row, set(FIELDS["Opportunity"]))
    raw = {"probability": row.get("Probability")} if row.get("Probability") not in (None, "") else {}
    return Opportunity(**base, raw=raw, account_id=row.get("AccountId"), name=row.get("Name"),
                       amount=row.get("Amount"), stage_id=row.get("StageName"),
                       stage_label=row.get("StageName"), probability=_percent(row.get("Probability")),
                       is_closed=row.get("IsClosed"), is_won=row.get("IsWon"),
                       created_at=row.get("CreatedDate"), close_date=row.get("CloseDate"),
                       owner_id=row.get("OwnerId"))


def opportunity_contact(row: Row, config: Config) -> Record:
    base = _base(row, set(FIELDS["OpportunityContactRole"]))
    role = row.get("Role")
    raw = {"role": role} if role else {}
    return OpportunityContact(**base, raw=raw, opportunity_id=row.get("OpportunityId"),
                              contact_id=row.get("ContactId"),
                              role=classify_title(None, role=role).buying_role if role else None,
                              is_primary=row.get("IsPrimary", False))


def stage_change(row: Row, config: Config) -> Record:
    base = _base(row, set(FIELDS["OpportunityHistory"]))
    return StageChange(**base, opportunity_id=row.get("OpportunityId"), stage_id=row.get("StageName"),
                       stage_label=row.get("StageName"), entered_at=row.get("CreatedDate"))


def stage(row: Row, config: Config) -> Record:
    base = _base(row, set(FIELDS["OpportunityStage"]))
    api_name = row.get("ApiName") or row.get("MasterLabel")
    base["remote_id"] = api_name or base["remote_id"]
    base["extra"]["salesforce_id"] = row.get("Id")
    base["extra"]["is_active"] = row.get("IsActive")
    return Stage(**base, label=row.get("MasterLabel") or api_name, order=row.get("SortOrder"),
                 probability=_percent(row.get("DefaultProbability")),
                 is_closed=row.get("IsClosed"), is_won=row.get("IsWon"))


def lead(row: Row, config: Config) -> Record:
    base = _base(row, set(FIELDS["Lead"]))
    return Lead(**base, name=row.get("Name"), company=row.get("Company"), email=row.get("Email"),
                status=row.get("Status"), created_at=row.get("CreatedDate"), owner_id=row.get("OwnerId"),
                converted_opportunity_id=row.get("ConvertedOpportunityId"))


def _activated(row: Row) -> bool | None:
    """StatusCode is the status category (labels can be renamed; the category cannot)."""
    code = row.get("StatusCode") or row.get("Status")
    return None if code in (None, "") else str(code) == "Activated"


def contract(row: Row, config: Config) -> Record:
    """A Contract; deals point at it through Opportunity.ContractId (kept in ``extra``)."""
    base = _base(row, set(FIELDS["Contract"]))
    raw = {"status_code": row["StatusCode"]} if row.get("StatusCode") else {}
    return ExecutionRecord(**base, raw=raw, kind="contract", account_id=row.get("AccountId"),
                           number=row.get("ContractNumber"), status=row.get("Status"),
                           active=_activated(row), started_at=row.get("StartDate"),
                           ended_at=row.get("EndDate"))


def order(row: Row, config: Config) -> Record:
    base = _base(row, set(FIELDS["Order"]))
    raw = {"status_code": row["StatusCode"]} if row.get("StatusCode") else {}
    return ExecutionRecord(**base, raw=raw, kind="order", account_id=row.get("AccountId"),
                           opportunity_id=row.get("OpportunityId"), contract_id=row.get("ContractId"),
                           number=row.get("OrderNumber"), status=row.get("Status"),
                           active=_activated(row), amount=row.get("TotalAmount"),
                           started_at=row.get("EffectiveDate"), ended_at=row.get("EndDate"))


def competitor(row: Row, config: Config) -> Record:
    """An OpportunityCompetitor: a competitor on one deal."""
    base = _base(row, set(FIELDS["OpportunityCompetitor"]))
    return Competitor(**base, opportunity_id=row.get("OpportunityId"), name=row.get("CompetitorName") or "",
                      strengths=row.get("Strengths"), weaknesses=row.get("Weaknesses"))


def support_case(row: Row, config: Config) -> Record:
    """A Case: opened at CreatedDate, escalated by IsEscalated (not by a status label)."""
    base = _base(row, set(FIELDS["Case"]))
    return SupportCase(**base, account_id=row.get("AccountId"), contact_id=row.get("ContactId"),
                       subject=row.get("Subject"), opened_at=row.get("CreatedDate"),
                       closed_at=row.get("ClosedDate"), is_closed=row.get("IsClosed"), status=row.get("Status"),
                       priority=row.get("Priority"), escalated=row.get("IsEscalated") or False, type=row.get("Type"))


MAPPERS: dict[str, Callable[..., Record]] = {
    "User": user, "Account": account, "Contact": contact, "Task": interaction,
    "Event": interaction, "Opportunity": opportunity, "OpportunityContactRole": opportunity_contact,
    "OpportunityHistory": stage_change, "OpportunityStage": stage, "Lead": lead,
    "Contract": contract, "Order": order, "OpportunityCompetitor": competitor, "Case": support_case,
}
