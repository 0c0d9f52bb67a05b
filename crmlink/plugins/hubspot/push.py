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
    URGENT_SEVERITIES,
    ConfigError,
    ExistingTask,
    FatalError,
    Outcome,
    PushField,
    PushTarget,
    SetupReport,
    TaskSpec,
    Update,
    hookimpl,
)
from crmlink.plugins.hubspot.client import HubSpotApi, _body

GROUP = "crmlink"
#: HubSpot-defined association types from a task to a company and to a deal
TASK_TO_COMPANY, TASK_TO_DEAL = 192, 216
SEARCH_PAGE = 100
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
    task_object = "tasks"
    task_batch = 100
    task_key_field = "crmlink_task_key"

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
                self._create(otype, [self._definition(s) for s in missing])
        self._setup_task_key(report, dry_run)
        if dry_run:
            report.notes.append(f"would create {len(report.created)} propert(ies) in the {GROUP!r} group")
        return report

    def _group(self, otype: str) -> None:
        groups = self.api.call("properties.groups", "get_all", otype).get("results") or []
        if any(g.get("name") == GROUP for g in groups):
            return
        self.api.call("properties.groups", "create", otype,
                      property_group_create={"name": GROUP, "label": "crmlink", "displayOrder": -1})

    def _setup_task_key(self, report: SetupReport, dry_run: bool) -> None:
        """The tasks property holding crmlink's key of each of its tasks."""
        found = self._schema("tasks").get(self.task_key_field)
        if found is not None and OWNER_MARK not in str(found.get("description") or ""):
            raise ConfigError(f"the tasks property {self.task_key_field} exists in HubSpot and crmlink did not "
                              "create it; crmlink keeps the key of its tasks there, so delete that property "
                              "to use --tasks")
        if found is not None:
            report.existing.append(("task", self.task_key_field))
            return
        report.created.append(("task", self.task_key_field))
        if not dry_run:
            self._group("tasks")
            self._create("tasks", [{"name": self.task_key_field, "label": "crmlink Task Key", "type": "string",
                                    "fieldType": "text", "groupName": GROUP,
                                    "description": f"The key crmlink finds its tasks by. {OWNER_MARK}; do not "
                                                   "edit by hand."}])

    def _definition(self, spec: PushField) -> dict[str, Any]:
        kind, field_type = _TYPES[spec.kind]
        return {"name": self.field_name(spec), "label": spec.label, "type": kind, "fieldType": field_type,
                "groupName": GROUP, "description": spec.description_text}

    def _create(self, otype: str, inputs: Sequence[dict[str, Any]]) -> None:
        answer = self.api.call("properties.batch", "create", otype,
                               batch_input_property_create={"inputs": list(inputs)})
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
        inputs = [{"id": u.record_id, "properties": _values(u)} for u in updates]
        try:
            answer = self.api.call("objects.batch", "update", self.objects[obj],
                                   batch_input_simple_public_object_batch_input={"inputs": inputs})
        except Exception as exc:
            if getattr(exc, "status", None) != 400 or len(updates) < 2:
                raise
            return [self._write_one(obj, u) for u in updates]  # which record HubSpot refused
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


    def _write_one(self, obj: str, update: Update) -> Outcome:
        """One record through ``PATCH /crm/v3/objects/{type}/{id}``, after HubSpot refused
        its whole batch (a 400 names only the first bad input)."""
        try:
            self.api.call("objects.basic", "update", self.objects[obj], update.record_id,
                          simple_public_object_input={"properties": _values(update)})
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status is None or status >= 500 or status in (401, 403, 429):
                raise
            body = _body(exc)
            return Outcome(update.record_id, False, f"{body.get('category', status)}: {body.get('message', '')}")
        return Outcome(update.record_id, True)

    # -- tasks -------------------------------------------------------------------------------
    def read_tasks(self, keys: Sequence[str] | None = None) -> list[ExistingTask]:
        key = self.task_key_field
        chunks: list[Sequence[str] | None] = [None] if keys is None else [
            keys[i:i + 100] for i in range(0, len(keys), 100)]
        found: list[ExistingTask] = []
        for chunk in chunks:
            condition = ({"propertyName": key, "operator": "HAS_PROPERTY"} if chunk is None else
                         {"propertyName": key, "operator": "IN", "values": list(chunk)})
            after: str | None = "0"
            while after is not None:
                body = {"filterGroups": [{"filters": [condition]}], "limit": SEARCH_PAGE, "after": after,
                        "properties": [key, "hs_task_subject", "hubspot_owner_id", "hs_task_status"],
                        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]}
                page = self.api.call("objects.search", "do_search", "tasks", public_object_search_request=body,
                                     search=True)
                for obj in page.get("results") or []:
                    p = obj.get("properties") or {}
                    found.append(ExistingTask(str(obj["id"]), str(p.get(key)), p.get("hs_task_subject"),
                                              p.get("hubspot_owner_id") or None, p.get("hs_task_status") == "COMPLETED"))
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
        return found

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[Outcome]:
        from datetime import datetime, timezone

        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        inputs = []
        for task in tasks:
            props = {"hs_task_subject": task.subject, "hs_task_body": task.body, "hs_task_status": "NOT_STARTED",
                     "hs_task_priority": "HIGH" if task.severity in URGENT_SEVERITIES else "MEDIUM",
                     "hs_task_type": "TODO", "hs_timestamp": now, self.task_key_field: task.key}
            if task.owner:
                props["hubspot_owner_id"] = task.owner
            links = [(task.account, TASK_TO_COMPANY)] + ([(task.deal, TASK_TO_DEAL)] if task.deal else [])
            inputs.append({"properties": props, "associations": [
                {"to": {"id": target}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": kind}]}
                for target, kind in links]})
        answer = self.api.call("objects.batch", "create", "tasks",
                               batch_input_simple_public_object_batch_input_for_create={"inputs": inputs})
        made = {str((o.get("properties") or {}).get(self.task_key_field)): str(o["id"])
                for o in answer.get("results") or []}
        said = "; ".join(f"{e.get('category', 'ERROR')}: {e.get('message', '')}" for e in answer.get("errors") or [])
        return [Outcome(t.key, t.key in made, "" if t.key in made else said or "HubSpot did not create it",
                        created_id=made.get(t.key, "")) for t in tasks]

    def close_tasks(self, tasks: Sequence[ExistingTask]) -> list[Outcome]:
        inputs = [{"id": t.id, "properties": {"hs_task_status": "COMPLETED"}} for t in tasks]
        answer = self.api.call("objects.batch", "update", "tasks",
                               batch_input_simple_public_object_batch_input={"inputs": inputs})
        done = {str(o.get("id")) for o in answer.get("results") or []}
        return [Outcome(t.id, t.id in done, "" if t.id in done else "HubSpot did not close it") for t in tasks]


def _values(update: Update) -> dict[str, Any]:
    """HubSpot clears a property given an empty string."""
    return {k: ("" if v is None else v) for k, v in update.values.items()}


@hookimpl
def register_push_targets(register: Callable[[type[PushTarget]], None]) -> None:
    register(HubSpotPushTarget)
