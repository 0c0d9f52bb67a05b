"""The fields crmlink writes back into a CRM, and their values from the audit document.

One :class:`PushField` per value, keyed by a canonical name (``health``, ``ltc_stage``)
that every CRM target maps to its own field name (Salesforce ``crmlink_Health__c``,
HubSpot ``crmlink_health``). The values are those of the audit document that
``crmlink audit --format json`` prints for the same store and as-of date.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from crmlink.core.document import AccountEntry, AuditDocument, OpportunityEntry

#: The objects crmlink writes to: an account (Salesforce Account, HubSpot company) and a
#: deal (Salesforce Opportunity, HubSpot deal).
OBJECTS = ("account", "opportunity")
#: The mark every field crmlink creates carries in its description: how crmlink knows a
#: field is its own.
OWNER_MARK = "Written by crmlink push"

Value = float | int | str | None


@dataclass(frozen=True)
class PushField:
    """One field crmlink owns: its canonical ``key``, the ``obj`` it is on (account or
    opportunity), its ``kind`` (number, percent, text, date), the decimals of a number
    or the length of a text, and its label and description for the CRM's setup."""

    key: str
    obj: str
    kind: str
    label: str
    description: str
    scale: int = 0
    length: int = 0

    def normalize(self, value: Any) -> Value:
        """A value as crmlink compares it: numbers rounded to ``scale``, text cut to
        ``length``, blank (``None``) for empty, dates as YYYY-MM-DD."""
        if value is None or value == "":
            return None
        if self.kind in ("number", "percent"):
            try:
                number = round(float(value), self.scale)
            except (TypeError, ValueError):
                return str(value)
            return int(number) if self.scale == 0 else number
        if self.kind == "date":
            return str(value)[:10]
        return cut(str(value), self.length)

    @property
    def description_text(self) -> str:
        return f"{self.description} {OWNER_MARK}; do not edit by hand."


def cut(text: str, length: int) -> str:
    """``text`` cut to ``length`` characters, an ellipsis marking a cut."""
    if not length or len(text) <= length:
        return text
    return text[:length - 1] + "…"


FIELDS: tuple[PushField, ...] = (
    PushField("health", "account", "number", "crmlink Health",
              "Relationship health (0-100), blank where the audit had no evidence.", scale=1),
    PushField("key", "account", "number", "crmlink Key", "Key relationships score (0-100).", scale=1),
    PushField("broad", "account", "number", "crmlink Broad", "Broad relationships score (0-100).", scale=1),
    PushField("org", "account", "number", "crmlink Org", "Organisational relationships score (0-100).",
              scale=1),
    PushField("tier", "account", "text", "crmlink Tier", "Account tier (S, A, B, C).", length=10),
    PushField("top_holder_share", "account", "percent", "crmlink Top Holder Share",
              "Share of the relationship strength held by one person of ours, in percent.", scale=1),
    PushField("bus_factor", "account", "number", "crmlink Bus Factor",
              "How few of our people hold half the relationship strength."),
    PushField("coverage", "account", "text", "crmlink Coverage",
              "Evidence coverage: assessable, partial or not_assessable.", length=20),
    PushField("audited_on", "account", "date", "crmlink Audited On", "The as-of date of the audit."),
    PushField("top_finding", "account", "text", "crmlink Top Finding",
              "The most severe finding as CODE: message.", length=255),
    PushField("ltc_stage", "opportunity", "text", "crmlink LTC Stage", "Lead-to-Cash stage.", length=40),
    PushField("ltc_phase", "opportunity", "text", "crmlink LTC Phase", "Lead-to-Cash phase.", length=40),
    PushField("findings", "opportunity", "text", "crmlink Findings",
              "Codes of the deal's relationship findings, ;-separated.", length=255),
)
BY_KEY = {f.key: f for f in FIELDS}


def fields_of(obj: str) -> tuple[PushField, ...]:
    return tuple(f for f in FIELDS if f.obj == obj)


def account_values(entry: AccountEntry, as_of: str) -> dict[str, Value]:
    """The values of an account's fields."""
    person = entry.personalization
    held = person.top_holder is not None
    top = entry.findings[0] if entry.findings else None  # most severe first, ties as listed
    raw: dict[str, Any] = {
        **{name: entry.scores.get(name) for name in ("health", "key", "broad", "org")},
        "tier": entry.tier,
        "top_holder_share": person.top_share * 100 if held else None,
        "bus_factor": person.bus_factor if held else None,
        "coverage": entry.coverage.assessment,
        "audited_on": as_of,
        "top_finding": f"{top.code}: {top.message}" if top else None,
    }
    return {key: BY_KEY[key].normalize(value) for key, value in raw.items()}


def opportunity_values(entry: OpportunityEntry) -> dict[str, Value]:
    """The values of a deal's fields; the findings are cut at a code, never inside one."""
    codes: list[str] = []
    for finding in entry.findings:
        if finding.code not in codes and len(";".join([*codes, finding.code])) <= BY_KEY["findings"].length:
            codes.append(finding.code)
    raw = {"ltc_stage": entry.ltc_stage, "ltc_phase": entry.ltc_phase, "findings": ";".join(codes)}
    return {key: BY_KEY[key].normalize(value) for key, value in raw.items()}


def members(entry: AccountEntry, source: str) -> list[str]:
    """The ids, in ``source``, of the CRM records an account of the audit stands for: one
    for an account of that source, one per record of that source for an account merged
    from several CRM sources (``merged_from``), none otherwise."""
    if entry.merged_from:
        return [m.remote_id for m in entry.merged_from if m.source == source]
    return [entry.remote_id] if entry.source == source else []


def desired(document: AuditDocument, source: str) -> Iterator[tuple[str, str, dict[str, Value]]]:
    """(object, remote id, values) for each account and deal of ``source`` in the audit; a
    merged account's values go to its record in each CRM."""
    for account in document.accounts:
        ids = members(account, source)
        if ids:
            values = account_values(account, document.as_of)
            for rid in ids:
                yield "account", rid, values
    for opportunity in document.opportunities:
        if opportunity.source == source:
            yield "opportunity", opportunity.remote_id, opportunity_values(opportunity)
