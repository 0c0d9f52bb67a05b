"""HubSpot objects to canonical records. Pure functions over decoded JSON."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from crmlink import (
    Account,
    Competitor,
    Contact,
    Interaction,
    InvalidRecord,
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

ENGAGEMENTS = ("calls", "meetings", "emails", "notes", "tasks")
KIND = {"calls": "call", "meetings": "meeting", "emails": "email", "notes": "note", "tasks": "task"}
ENTERED = "hs_date_entered_"


def modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


#: Properties each object type is read with (mapped ones, then useful unmapped ones for ``extra``).
PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "jobtitle", "hs_buying_role", "associatedcompanyid",
                 "hubspot_owner_id", "createdate", "lastmodifieddate", "phone", "company",
                 "lifecyclestage", "hs_lead_status", "city", "country"),
    "companies": ("name", "domain", "industry", "hs_parent_company_id", "annualrevenue",
                  "hubspot_owner_id", "createdate", "hs_lastmodifieddate", "numberofemployees",
                  "city", "country", "website", "lifecyclestage"),
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage", "hs_is_closed",
              "hs_is_closed_won", "hs_deal_stage_probability", "hubspot_owner_id", "createdate",
              "hs_lastmodifieddate", "dealtype", "deal_currency_code"),
    "tickets": ("subject", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "hs_ticket_category",
                "createdate", "closed_date", "hs_lastmodifieddate", "hubspot_owner_id", "source_type"),
    "calls": ("hs_call_title", "hs_call_direction", "hs_call_duration", "hs_call_status",
              "hs_call_disposition"),
    "meetings": ("hs_meeting_title", "hs_meeting_outcome", "hs_meeting_start_time",
                 "hs_meeting_end_time", "hs_attendee_owner_ids"),
    "emails": ("hs_email_subject", "hs_email_direction", "hs_email_status"),
    "notes": (),
    "tasks": ("hs_task_subject", "hs_task_status", "hs_task_type"),
}
for _kind in ENGAGEMENTS:
    PROPERTIES[_kind] = ("hs_timestamp", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate",
                         *PROPERTIES[_kind])
#: Properties that feed canonical fields, so they stay out of ``extra``.
MAPPED = {
    "contacts": {"firstname", "lastname", "email", "jobtitle", "hs_buying_role", "associatedcompanyid",
                 "lastmodifieddate"},
    "companies": {"name", "domain", "industry", "hs_parent_company_id", "annualrevenue",
                  "hubspot_owner_id", "createdate", "hs_lastmodifieddate"},
    "deals": {"dealname", "amount", "closedate", "pipeline", "dealstage", "hs_is_closed",
              "hs_is_closed_won", "hs_deal_stage_probability", "hubspot_owner_id", "createdate",
              "hs_lastmodifieddate", "deal_currency_code"},
    "tickets": {"subject", "hs_pipeline_stage", "hs_ticket_priority", "hs_ticket_category", "createdate",
                "closed_date", "hs_lastmodifieddate"},
}
_ENGAGEMENT_MAPPED = {"hs_timestamp", "hubspot_owner_id", "hs_lastmodifieddate", "hs_call_title",
                      "hs_call_direction", "hs_call_duration", "hs_meeting_title", "hs_email_subject",
                      "hs_email_direction", "hs_task_subject"}
for _kind in ENGAGEMENTS:
    MAPPED[_kind] = _ENGAGEMENT_MAPPED
ALWAYS = {"hs_object_id"}


@dataclass
class StageInfo:
    pipeline: str
    pipeline_label: str
    label: str
    order: int
    probability: float | None
    is_closed: bool
    is_won: bool


@dataclass
class Pipelines:
    """Deal stages by id, from the pipelines API."""

    stages: dict[str, StageInfo] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Pipelines:
        found = cls()
        for pipeline in body.get("results") or []:
            for order, stage in enumerate(sorted(pipeline.get("stages") or [],
                                                 key=lambda s: s.get("displayOrder") or 0)):
                meta = stage.get("metadata") or {}
                probability = _float(meta.get("probability"))
                closed = str(meta.get("isClosed", "false")).lower() == "true"
                found.stages[str(stage["id"])] = StageInfo(
                    str(pipeline["id"]), str(pipeline.get("label") or pipeline["id"]),
                    str(stage.get("label") or stage["id"]), order, probability, closed,
                    closed and probability is not None and probability >= 1.0)
        return found

    def records(self) -> Iterator[Stage]:
        for stage_id, info in self.stages.items():
            yield Stage(remote_id=stage_id, pipeline=info.pipeline, label=info.label, order=info.order,
                        probability=info.probability, is_closed=info.is_closed, is_won=info.is_won,
                        raw={"pipeline_label": info.pipeline_label})


@dataclass(frozen=True)
class TicketStage:
    pipeline: str
    pipeline_label: str
    label: str
    is_closed: bool


def ticket_stages(body: Mapping[str, Any]) -> dict[str, TicketStage]:
    """Ticket stages by id from the pipelines API: closed when ``metadata.ticketState`` is
    ``CLOSED`` (or, in older answers, ``isClosed`` is true)."""
    found: dict[str, TicketStage] = {}
    for pipeline in body.get("results") or []:
        for stage in pipeline.get("stages") or []:
            meta = stage.get("metadata") or {}
            closed = (str(meta.get("ticketState") or "").upper() == "CLOSED"
                      or str(meta.get("isClosed", "false")).lower() == "true")
            found[str(stage["id"])] = TicketStage(str(pipeline["id"]), str(pipeline.get("label") or pipeline["id"]),
                                                  str(stage.get("label") or stage["id"]), closed)
    return found


def _float(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _extra(props: Mapping[str, Any], object_type: str) -> dict[str, Any]:
    skip = MAPPED.get(object_type, set()) | ALWAYS
    return {k: v for k, v in props.items()
            if v not in (None, "") and k not in skip and not k.startswith(ENTERED)}


def _name(first: Any, last: Any) -> str | None:
    return " ".join(str(p) for p in (first, last) if p) or None


def _ms_to_minutes(value: Any) -> float | None:
    number = _float(value)
    return None if number is None else round(number / 60000.0, 2)


def user(owner: Mapping[str, Any], archived: bool = False) -> User:
    return User(remote_id=str(owner["id"]), name=_name(owner.get("firstName"), owner.get("lastName")),
                email=owner.get("email"), active=not (archived or owner.get("archived")),
                modified_at=owner.get("updatedAt"), deleted=False,
                extra={k: owner[k] for k in ("userId", "type") if owner.get(k) is not None})


def account(obj: Mapping[str, Any], parent: str | None, tier_property: str | None) -> Account:
    p = obj.get("properties") or {}
    tier_value, raw, tier_source = p.get(tier_property) if tier_property else None, {}, None
    tier = None
    if tier_value not in (None, ""):
        try:
            tier = normalize_vocabulary("tier", tier_value)
            tier_source = "crm"
        except ValueError:
            raw["tier"] = tier_value
    extra = _extra(p, "companies")
    extra.pop(tier_property or "", None)
    return Account(remote_id=str(obj["id"]), name=p.get("name"), domain=p.get("domain"),
                   industry=p.get("industry"), parent_id=parent or p.get("hs_parent_company_id"),
                   tier=tier, tier_source=tier_source, annual_revenue=_decimal(p.get("annualrevenue")),
                   owner_id=p.get("hubspot_owner_id"), created_at=p.get("createdate"),
                   modified_at=p.get("hs_lastmodifieddate") or obj.get("updatedAt"),
                   deleted=bool(obj.get("archived")), extra=extra, raw=raw)


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def contact(obj: Mapping[str, Any], company: str | None) -> Contact:
    p = obj.get("properties") or {}
    raw = {}
    roles = [r for r in str(p.get("hs_buying_role") or "").split(";") if r]
    if roles:
        raw["buying_role"] = roles[0]  # the classify hook maps it (DECISION_MAKER -> decision_maker)
        if len(roles) > 1:
            raw["buying_roles"] = ";".join(roles)
    return Contact(remote_id=str(obj["id"]), account_id=company or p.get("associatedcompanyid"),
                   name=_name(p.get("firstname"), p.get("lastname")), email=p.get("email"),
                   title=p.get("jobtitle"), modified_at=p.get("lastmodifieddate") or obj.get("updatedAt"),
                   deleted=bool(obj.get("archived")), extra=_extra(p, "contacts"), raw=raw)


def opportunity(obj: Mapping[str, Any], company: str | None, pipelines: Pipelines) -> Opportunity:
    p = obj.get("properties") or {}
    stage_id = p.get("dealstage")
    info = pipelines.stages.get(stage_id or "")
    closed, won = p.get("hs_is_closed"), p.get("hs_is_closed_won")
    if info is not None:
        closed = info.is_closed if closed in (None, "") else closed
        won = info.is_won if won in (None, "") else won
    probability = _float(p.get("hs_deal_stage_probability"))
    if probability is None and info is not None:
        probability = info.probability
    return Opportunity(
        remote_id=str(obj["id"]), account_id=company, name=p.get("dealname"), amount=p.get("amount"),
        currency=p.get("deal_currency_code"), pipeline=p.get("pipeline"), stage_id=stage_id,
        stage_label=info.label if info else stage_id, probability=probability, is_closed=closed,
        is_won=won, created_at=p.get("createdate"), close_date=p.get("closedate"),
        stage_entered_at=p.get(ENTERED + stage_id) if stage_id else None,
        owner_id=p.get("hubspot_owner_id"),
        modified_at=p.get("hs_lastmodifieddate") or obj.get("updatedAt"),
        deleted=bool(obj.get("archived")), extra=_extra(p, "deals"),
        raw={"pipeline_label": info.pipeline_label} if info else {})


def stage_changes(obj: Mapping[str, Any], pipelines: Pipelines) -> Iterator[StageChange]:
    p = obj.get("properties") or {}
    deal = str(obj["id"])
    modified = p.get("hs_lastmodifieddate") or obj.get("updatedAt")
    for name, value in sorted(p.items()):
        if not name.startswith(ENTERED) or value in (None, ""):
            continue
        stage_id = name[len(ENTERED):]
        info = pipelines.stages.get(stage_id)
        yield StageChange(remote_id=f"{deal}:{stage_id}", opportunity_id=deal, stage_id=stage_id,
                          stage_label=info.label if info else stage_id, entered_at=value,
                          modified_at=modified, deleted=bool(obj.get("archived")))


def role_of(labels: Iterable[str]) -> tuple[str | None, str | None]:
    """The canonical buying role for a deal-contact association's labels, and the label used."""
    first = None
    for label in labels:
        if not label:
            continue
        first = first or label
        try:
            role = normalize_vocabulary("buying_role", label)
        except ValueError:
            role = classify_title(None, role=label).buying_role
        if role:
            return role, label
    return None, first


def opportunity_contact(deal: Mapping[str, Any], contact_id: str, labels: list[str]) -> OpportunityContact:
    role, label = role_of(labels)
    p = deal.get("properties") or {}
    return OpportunityContact(remote_id=f"{deal['id']}:{contact_id}", opportunity_id=str(deal["id"]),
                              contact_id=contact_id, role=role,
                              is_primary=any(str(x).lower() == "primary" for x in labels),
                              modified_at=p.get("hs_lastmodifieddate") or deal.get("updatedAt"),
                              deleted=bool(deal.get("archived")),
                              raw={"role": label} if label else {})


_EMAIL_DIRECTION = {"EMAIL": "outbound", "INCOMING_EMAIL": "inbound", "FORWARDED_EMAIL": "outbound"}
_CALL_DIRECTION = {"INBOUND": "inbound", "OUTBOUND": "outbound"}


def interaction(obj: Mapping[str, Any], kind: str, links: Mapping[str, list[str]]) -> Record | InvalidRecord:
    p = obj.get("properties") or {}
    direction = None
    if kind == "emails":
        direction = _EMAIL_DIRECTION.get(str(p.get("hs_email_direction") or "").upper())
    elif kind == "calls":
        direction = _CALL_DIRECTION.get(str(p.get("hs_call_direction") or "").upper())
    subject = (p.get("hs_call_title") or p.get("hs_meeting_title") or p.get("hs_email_subject")
               or p.get("hs_task_subject"))
    owners = (str(p["hubspot_owner_id"]),) if p.get("hubspot_owner_id") else ()
    companies, deals = links.get("companies") or [], links.get("deals") or []
    try:
        return Interaction(
            remote_id=str(obj["id"]), kind=KIND[kind], direction=direction,
            occurred_at=p.get("hs_timestamp") or p.get("hs_createdate") or obj.get("createdAt"),
            subject=subject, account_id=companies[0] if companies else None,
            opportunity_id=deals[0] if deals else None, user_ids=owners,
            contact_ids=tuple(links.get("contacts") or ()),
            duration_minutes=_ms_to_minutes(p.get("hs_call_duration")) if kind == "calls" else None,
            modified_at=p.get("hs_lastmodifieddate") or obj.get("updatedAt"),
            deleted=bool(obj.get("archived")), extra=_extra(p, kind),
            raw={"hubspot_type": kind, **({"deal_ids": ";".join(deals)} if len(deals) > 1 else {})})
    except InvalidRecord as exc:
        return exc


#: Ticket priorities that make a case escalated (HubSpot tickets have no escalation flag).
ESCALATED_PRIORITIES = frozenset({"URGENT"})
#: HubSpot's default ticket categories -> the case types the satisfaction signal tells apart;
#: any other category (a portal's own ``COMPLAINT`` option ...) keeps its own word.
CATEGORY_TYPES = {"PRODUCT_ISSUE": "problem", "FEATURE_REQUEST": "request", "GENERAL_INQUIRY": "question"}


def support_case(obj: Mapping[str, Any], links: Mapping[str, list[str]],
                 stages: Mapping[str, TicketStage]) -> Record | InvalidRecord:
    """A ticket: the account is its (primary) company, open or closed from its stage's
    ``ticketState``, closed at ``closed_date``, escalated when its priority is URGENT."""
    p = obj.get("properties") or {}
    stage_id = str(p.get("hs_pipeline_stage") or "")
    stage = stages.get(stage_id)
    priority = p.get("hs_ticket_priority") or None
    category = str(p.get("hs_ticket_category") or "").split(";")[0]
    companies, contacts = links.get("companies") or [], links.get("contacts") or []
    try:
        return SupportCase(
            remote_id=str(obj["id"]), account_id=companies[0] if companies else None,
            contact_id=contacts[0] if contacts else None, subject=p.get("subject"),
            opened_at=p.get("createdate") or obj.get("createdAt"), closed_at=p.get("closed_date") or None,
            is_closed=stage.is_closed if stage else None, status=stage.label if stage else stage_id or None,
            priority=priority, escalated=str(priority or "").upper() in ESCALATED_PRIORITIES,
            type=CATEGORY_TYPES.get(category.upper(), category) or None,
            modified_at=p.get("hs_lastmodifieddate") or obj.get("updatedAt"),
            deleted=bool(obj.get("archived")), extra=_extra(p, "tickets"),
            raw={"pipeline_label": stage.pipeline_label} if stage else {})
    except InvalidRecord as exc:
        return exc


def competitor_values(value: Any) -> list[str]:
    """The values of a competitor property: a multi-select's are separated by ``;``."""
    return list(dict.fromkeys(v.strip() for v in str(value or "").split(";") if v.strip()))


def competitors(deal: Mapping[str, Any], prop: str, labels: Mapping[str, str]) -> Iterator[Competitor]:
    """One competitor per value of ``prop`` on ``deal``, named by the option's label;
    ``remote_id`` is ``<deal id>:<value>``."""
    p = deal.get("properties") or {}
    for value in competitor_values(p.get(prop)):
        yield Competitor(remote_id=f"{deal['id']}:{value}", opportunity_id=str(deal["id"]),
                         name=labels.get(value, value),
                         modified_at=p.get("hs_lastmodifieddate") or deal.get("updatedAt"),
                         deleted=bool(deal.get("archived")))
