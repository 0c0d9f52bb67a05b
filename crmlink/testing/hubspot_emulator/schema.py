"""Object types and property definitions (the ``/crm/v3/properties`` schema)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .clock import iso_ms, to_ms

OBJECT_TYPE_IDS: dict[str, str] = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tickets": "0-5",
    "tasks": "0-27",
    "notes": "0-46",
    "meetings": "0-47",
    "calls": "0-48",
    "emails": "0-49",
}
SINGULAR: dict[str, str] = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "tickets": "ticket",
    "tasks": "task",
    "notes": "note",
    "meetings": "meeting",
    "calls": "call",
    "emails": "email",
}
ENGAGEMENTS = ("calls", "meetings", "emails", "notes", "tasks")
_ALIASES = {**{v: k for k, v in OBJECT_TYPE_IDS.items()}, **{v: k for k, v in SINGULAR.items()}}

# The properties a list/batch call returns when none are asked for (research 2.2).
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"),
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": (
        "dealname", "amount", "closedate", "pipeline", "dealstage",
        "createdate", "hs_lastmodifieddate", "hs_object_id",
    ),
    "tickets": (
        "subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_category",
        "hs_ticket_priority", "createdate", "hs_lastmodifieddate", "hs_object_id",
    ),
}
ENGAGEMENT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")


def normalize_type(name: str) -> str | None:
    """``contacts`` / ``contact`` / ``0-1`` -> ``contacts``; unknown -> None."""
    key = name.strip().lower()
    if key in OBJECT_TYPE_IDS:
        return key
    return _ALIASES.get(key)


def modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def created_property(object_type: str) -> str:
    return "hs_createdate" if object_type in ENGAGEMENTS else "createdate"


def default_properties(object_type: str) -> tuple[str, ...]:
    return DEFAULT_PROPERTIES.get(object_type, ENGAGEMENT_DEFAULTS)


def always_properties(object_type: str) -> tuple[str, ...]:
    """Properties HubSpot adds to every returned object whatever was requested."""
    return (created_property(object_type), modified_property(object_type), "hs_object_id")


FIELD_TYPES = {
    "string": "text",
    "number": "number",
    "datetime": "date",
    "date": "date",
    "enumeration": "select",
    "bool": "booleancheckbox",
}


@dataclass
class PropertyDef:
    name: str
    type: str
    field_type: str
    label: str
    options: list[str] = field(default_factory=list)
    option_labels: dict[str, str] = field(default_factory=dict)
    hubspot_defined: bool = True
    group_name: str = ""
    description: str = ""
    read_only: bool = False

    def to_json(self, created_ms: int) -> dict[str, Any]:
        options = [
            {"label": self.option_labels.get(v, _label(v)), "value": v,
             "displayOrder": i, "hidden": False}
            for i, v in enumerate(self.options)
        ]
        if self.type == "bool" and not options:
            options = [{"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
                       {"label": "No", "value": "false", "displayOrder": 1, "hidden": False}]
        body: dict[str, Any] = {
            "name": self.name, "label": self.label, "type": self.type,
            "fieldType": self.field_type, "description": self.description,
            "groupName": self.group_name, "options": options, "displayOrder": -1,
            "calculated": False, "externalOptions": False, "hasUniqueValue": False,
            "hidden": False, "formField": not self.read_only, "archived": False,
            "createdAt": iso_ms(created_ms), "updatedAt": iso_ms(created_ms),
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined,
                                     "readOnlyValue": self.read_only},
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        return body


def _label(value: str) -> str:
    return value.replace("_", " ").title()


def _p(name: str, type_: str = "string", label: str = "", options: str = "",
       field_type: str = "", read_only: bool = False) -> PropertyDef:
    opts = options.split() if options else []
    ft = field_type or FIELD_TYPES[type_]
    return PropertyDef(name, type_, ft, label or _label(name.removeprefix("hs_")), opts,
                       read_only=read_only)


LIFECYCLE = ("subscriber lead marketingqualifiedlead salesqualifiedlead opportunity "
             "customer evangelist other")
BUYING_ROLES = ("BLOCKER BUDGET_HOLDER CHAMPION DECISION_MAKER END_USER EXECUTIVE_SPONSOR "
                "INFLUENCER LEGAL_AND_COMPLIANCE OTHER")
_COMMON = [
    _p("hs_object_id", "number", "Record ID", read_only=True),
    _p("hubspot_owner_id", "enumeration", "Owner"),
]
_CRM_DATES = [
    _p("createdate", "datetime", "Create Date", read_only=True),
]
_CONTACTS = [
    _p("email", label="Email"), _p("firstname", label="First Name"),
    _p("lastname", label="Last Name"), _p("phone", label="Phone Number"),
    _p("company", label="Company Name"), _p("jobtitle", label="Job Title"),
    _p("city"), _p("country", label="Country/Region"),
    _p("lifecyclestage", "enumeration", "Lifecycle Stage", LIFECYCLE),
    _p("hs_lead_status", "enumeration", "Lead Status",
       "NEW OPEN IN_PROGRESS OPEN_DEAL UNQUALIFIED ATTEMPTED_TO_CONTACT CONNECTED BAD_TIMING"),
    _p("hs_buying_role", "enumeration", "Buying Role", BUYING_ROLES, "checkbox"),
    _p("associatedcompanyid", "number", "Primary Associated Company ID"),
    _p("lastmodifieddate", "datetime", "Last Modified Date", read_only=True),
    _p("notes_last_updated", "datetime", "Last Activity Date", read_only=True),
]
_COMPANIES = [
    _p("name", label="Company name"), _p("domain", label="Company Domain Name"),
    _p("website", label="Website URL"), _p("phone", label="Phone Number"),
    _p("city"), _p("country", label="Country/Region"),
    _p("industry", "enumeration", "Industry",
       "COMPUTER_SOFTWARE INFORMATION_TECHNOLOGY_AND_SERVICES FINANCIAL_SERVICES "
       "HOSPITAL_HEALTH_CARE RETAIL MACHINERY TELECOMMUNICATIONS"),
    _p("numberofemployees", "number", "Number of Employees"),
    _p("annualrevenue", "number", "Annual Revenue"),
    _p("lifecyclestage", "enumeration", "Lifecycle Stage", LIFECYCLE),
    _p("hs_parent_company_id", "number", "Parent Company"),
    _p("hs_lastmodifieddate", "datetime", "Last Modified Date", read_only=True),
]
_DEALS = [
    _p("dealname", label="Deal Name"), _p("amount", "number", "Amount"),
    _p("closedate", "datetime", "Close Date"),
    _p("pipeline", "enumeration", "Pipeline"), _p("dealstage", "enumeration", "Deal Stage"),
    _p("dealtype", "enumeration", "Deal Type", "newbusiness existingbusiness"),
    _p("description", label="Deal Description", field_type="textarea"),
    _p("hs_is_closed", "bool", "Is Deal Closed?", read_only=True),
    _p("hs_is_closed_won", "bool", "Is Closed Won", read_only=True),
    _p("hs_deal_stage_probability", "number", "Deal probability", read_only=True),
    _p("hs_lastmodifieddate", "datetime", "Last Modified Date", read_only=True),
]
# Tickets (Service Hub): the status is the pipeline stage; HubSpot sets closed_date when a
# ticket enters a stage whose ticketState is CLOSED.
_TICKETS = [
    _p("subject", label="Ticket name"),
    _p("content", label="Ticket description", field_type="textarea"),
    _p("hs_pipeline", "enumeration", "Pipeline"),
    _p("hs_pipeline_stage", "enumeration", "Ticket status"),
    _p("hs_ticket_priority", "enumeration", "Priority", "LOW MEDIUM HIGH URGENT"),
    _p("hs_ticket_category", "enumeration", "Category",
       "PRODUCT_ISSUE BILLING_ISSUE FEATURE_REQUEST GENERAL_INQUIRY"),
    _p("source_type", "enumeration", "Source", "CHAT EMAIL FORM PHONE"),
    _p("closed_date", "datetime", "Close date"),
    _p("hs_ticket_reopened_at", "datetime", "Ticket reopen date", read_only=True),
    _p("hs_lastmodifieddate", "datetime", "Last Modified Date", read_only=True),
]
_ENGAGEMENT_COMMON = [
    _p("hs_timestamp", "datetime", "Activity date"),
    _p("hs_createdate", "datetime", "Create date", read_only=True),
    _p("hs_lastmodifieddate", "datetime", "Last Modified Date", read_only=True),
    _p("hs_attachment_ids", label="Attached file IDs"),
    _p("hs_activity_type", label="Activity type"),
]
_ENGAGEMENTS: dict[str, list[PropertyDef]] = {
    "calls": [
        _p("hs_call_title"), _p("hs_call_body", field_type="html"),
        _p("hs_call_direction", "enumeration", "Call direction", "INBOUND OUTBOUND"),
        _p("hs_call_duration", "number", "Call duration"),
        _p("hs_call_status", "enumeration", "Call status",
           "BUSY CALLING_CRM_USER CANCELED COMPLETED CONNECTING FAILED IN_PROGRESS "
           "NO_ANSWER QUEUED RINGING"),
        _p("hs_call_disposition", label="Call outcome"),
        _p("hs_call_from_number"), _p("hs_call_to_number"), _p("hs_call_recording_url"),
    ],
    "meetings": [
        _p("hs_meeting_title"), _p("hs_meeting_body", field_type="html"),
        _p("hs_internal_meeting_notes", field_type="html"),
        _p("hs_meeting_start_time", "datetime"), _p("hs_meeting_end_time", "datetime"),
        _p("hs_meeting_location"), _p("hs_meeting_external_url"),
        _p("hs_meeting_outcome", "enumeration", "Meeting outcome",
           "SCHEDULED COMPLETED RESCHEDULED NO_SHOW CANCELED"),
        _p("hs_attendee_owner_ids", label="Attendee owner IDs"),
    ],
    "emails": [
        _p("hs_email_direction", "enumeration", "Email direction",
           "EMAIL INCOMING_EMAIL FORWARDED_EMAIL"),
        _p("hs_email_subject"), _p("hs_email_text", field_type="textarea"),
        _p("hs_email_html", field_type="html"), _p("hs_email_headers"),
        _p("hs_email_status", "enumeration", "Email send status",
           "BOUNCED FAILED SCHEDULED SENDING SENT"),
    ],
    "notes": [_p("hs_note_body", label="Note body", field_type="html")],
    "tasks": [
        _p("hs_task_subject"), _p("hs_task_body", field_type="html"),
        _p("hs_task_status", "enumeration", "Task status",
           "NOT_STARTED IN_PROGRESS WAITING COMPLETED DEFERRED"),
        _p("hs_task_priority", "enumeration", "Priority", "NONE LOW MEDIUM HIGH"),
        _p("hs_task_type", "enumeration", "Task type", "EMAIL CALL TODO"),
        _p("hs_task_reminders", label="Reminders"),
    ],
}
_GROUPS = {"contacts": "contactinformation", "companies": "companyinformation",
           "deals": "dealinformation", "tickets": "ticketinformation"}


def default_schema() -> dict[str, dict[str, PropertyDef]]:
    out: dict[str, dict[str, PropertyDef]] = {}
    for object_type in OBJECT_TYPE_IDS:
        if object_type in ENGAGEMENTS:
            defs = _COMMON + _ENGAGEMENT_COMMON + _ENGAGEMENTS[object_type]
        else:
            specific = {"contacts": _CONTACTS, "companies": _COMPANIES, "deals": _DEALS,
                        "tickets": _TICKETS}
            defs = _COMMON + _CRM_DATES + specific[object_type]
        group = _GROUPS.get(object_type, "engagement")
        out[object_type] = {d.name: _copy(d, group) for d in defs}
    return out


def _copy(d: PropertyDef, group: str) -> PropertyDef:
    return PropertyDef(d.name, d.type, d.field_type, d.label, list(d.options),
                       dict(d.option_labels), d.hubspot_defined, group, d.description,
                       d.read_only)


def normalize_value(prop: PropertyDef, value: Any) -> str | None:
    """Python value -> the string HubSpot stores; raises ValueError when invalid."""
    if value is None:
        return None
    if prop.type == "datetime":
        return "" if value == "" else iso_ms(to_ms(value))
    if prop.type == "date":
        return "" if value == "" else iso_ms(to_ms(value))[:10]
    if prop.type == "bool":
        return _bool_text(value)
    if prop.type == "number":
        return _number_text(value)
    if prop.type == "enumeration":
        return _enum_text(prop, value)
    return str(value)


def _bool_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().lower()
    if text not in ("true", "false", ""):
        raise ValueError(f"{value!r} is not a valid boolean")
    return text


def _number_text(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        return str(int(value)) if value == int(value) else str(value)
    text = str(value).strip()
    if text:
        float(text)
    return text


def _enum_text(prop: PropertyDef, value: Any) -> str:
    parts = [str(v) for v in value] if isinstance(value, (list, tuple, set)) else None
    text = ";".join(parts) if parts is not None else str(value)
    if prop.options and text:
        bad = [v for v in text.split(";") if v not in prop.options]
        if bad:
            raise ValueError(f"{bad[0]!r} was not one of the allowed options for {prop.name}: "
                             f"{', '.join(prop.options)}")
    return text
