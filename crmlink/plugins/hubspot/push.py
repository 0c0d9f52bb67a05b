"""``crmlink push hubspot``: crmlink's properties on companies and deals.

Setup creates a ``crmlink`` property group on each object type and the properties in it
(``POST /crm/v3/properties/{type}/groups``, ``.../batch/create``); a property of the same
name that is not crmlink's (its description lacks the owner mark) is refused. A push
reads the current values with batch read (100 ids a request) and writes with batch update
(``POST /crm/v3/objects/{type}/batch/update``, 100 records a request), within the
connector's client-side rate limiter. docs/push.md has the request formula.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from crmlink import (
    OWNER_MARK,
    PUSH_FIELDS,
    ConfigError,
    FatalError,
    Outcome,
    PushField,
    PushTarget,
    SetupReport,
    Update,
    hookimpl,
)
from crmlink.plugins.hubspot.client import HubSpotApi

GROUP = "crmlink"
_TYPES = {"number": ("number", "number"), "percent": ("number", "number"), "text": ("string", "text"),
          "date": ("date", "date")}


class HubSpotPushTarget(PushTarget):
    connector = "hubspot"
    objects = {"account": "companies", "opportunity": "deals"}
    default_names = {f.key: f"crmlink_{f.key}" for f in PUSH_FIELDS}
    read_batch = 100
    write_batch = 100
    formula = ("2 property listings + Σ over companies and deals of ceil(records / 100) batch reads + "
               "ceil(changed records / 100) batch updates")

    @property
    def api(self) -> HubSpotApi:
        api: HubSpotApi = self.crm.api  # type: ignore[attr-defined]
        return api

    def requests_made(self) -> int:
        return self.api.requests

    def _schema(self, otype: str) -> dict[str, dict[str, Any]]:
        found = self.api.call("properties", "get_all", otype).get("results") or []
        return {str(p["name"]): p for p in found}

    # -- setup -------------------------------------------------------------------------------
    def setup(self, dry_run: bool = False) -> SetupReport:
        report = SetupReport()
        for obj, otype in self.objects.items():
            schema = self._schema(otype)
            missing: list[PushField] = []
            for spec in (f for f in self.fields if f.obj == obj):
                name = self.field_name(spec)
                found = schema.get(name)
                if found is None:
                    missing.append(spec)
                elif OWNER_MARK not in str(found.get("description") or ""):
                    raise ConfigError(
                        f"the {otype} property {name} exists in HubSpot and crmlink did not create it, so "
                        f"crmlink will not write to it; name another property with [push.<source>.fields] "
                        f"{spec.key} = \"crmlink_other\" in the config file, or delete that property")
                else:
                    report.existing.append((obj, name))
            report.created += [(s.obj, self.field_name(s)) for s in missing]
            if missing and not dry_run:
                self._group(otype)
                self._create(otype, missing)
        if dry_run:
            report.notes.append(f"would create {len(report.created)} propert(ies) in the {GROUP!r} group")
        return report

    def _group(self, otype: str) -> None:
        groups = self.api.call("properties.groups", "get_all", otype).get("results") or []
        if any(g.get("name") == GROUP for g in groups):
            return
        self.api.call("properties.groups", "create", otype,
                      property_group_create={"name": GROUP, "label": "crmlink", "displayOrder": -1})

    def _create(self, otype: str, specs: Sequence[PushField]) -> None:
        inputs = []
        for spec in specs:
            kind, field_type = _TYPES[spec.kind]
            inputs.append({"name": self.field_name(spec), "label": spec.label, "type": kind,
                           "fieldType": field_type, "groupName": GROUP,
                           "description": spec.description_text})
        answer = self.api.call("properties.batch", "create", otype,
                               batch_input_property_create={"inputs": inputs})
        errors = answer.get("errors") or []
        if errors:
            said = "; ".join(str(e.get("message")) for e in errors)
            raise FatalError(f"HubSpot refused to create crmlink's {otype} properties: {said}")

    # -- push --------------------------------------------------------------------------------
    def check(self) -> None:
        for obj, otype in self.objects.items():
            schema = self._schema(otype)
            for spec in (f for f in self.fields if f.obj == obj):
                found = schema.get(self.field_name(spec))
                if found is None or (found.get("modificationMetadata") or {}).get("readOnlyValue"):
                    what = "does not exist" if found is None else "is read-only"
                    raise FatalError(f"the {otype} property {self.field_name(spec)} {what}; run "
                                     "'crmlink push --setup'")

    def read(self, obj: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        names = [self.field_name(s) for s in self.fields if s.obj == obj]
        body = {"inputs": [{"id": rid} for rid in record_ids], "properties": names,
                "propertiesWithHistory": []}
        answer = self.api.call("objects.batch", "read", self.objects[obj],
                               batch_read_input_simple_public_object_id=body, archived=False)
        return {str(o["id"]): {n: (o.get("properties") or {}).get(n) for n in names}
                for o in answer.get("results") or []}

    def write(self, obj: str, updates: Sequence[Update]) -> list[Outcome]:
        inputs = [{"id": u.record_id, "properties": {k: ("" if v is None else v) for k, v in u.values.items()}}
                  for u in updates]
        answer = self.api.call("objects.batch", "update", self.objects[obj],
                               batch_input_simple_public_object_batch_input={"inputs": inputs})
        written = {str(o.get("id")) for o in answer.get("results") or []}
        refused: dict[str, str] = {}
        for error in answer.get("errors") or []:
            message = f"{error.get('category', 'ERROR')}: {error.get('message', '')}"
            for rid in (error.get("context") or {}).get("ids") or []:
                refused[str(rid)] = message
        outcomes = []
        for update in updates:
            if update.record_id in written:
                outcomes.append(Outcome(update.record_id, True))
            else:
                outcomes.append(Outcome(update.record_id, False,
                                        refused.get(update.record_id, "HubSpot did not report this record as written")))
        return outcomes


@hookimpl
def register_push_targets(register: Callable[[type[PushTarget]], None]) -> None:
    register(HubSpotPushTarget)
