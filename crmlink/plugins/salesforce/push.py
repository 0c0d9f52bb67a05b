"""``crmlink push salesforce``: crmlink's custom fields on Account and Opportunity.

Setup goes through the Metadata API (simple-salesforce's ``mdapi``: readMetadata and
createMetadata of CustomField, upsertMetadata of a PermissionSet with field-level
security) and the REST API (the running user's id from ``/services/oauth2/userinfo``,
the permission set's id, and a PermissionSetAssignment). A push reads the current
values with SOQL (200 ids a query) and writes with sObject Collections
(``PATCH composite/sobjects``, 200 records a request, ``allOrNone: false``, so each
record succeeds or fails on its own). docs/push.md has the request formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .client import Client

PERMISSION_SET = "crmlink"
#: Metadata API calls take at most 10 components each.
METADATA_BATCH = 10
_TYPES = {"number": "Number", "percent": "Percent", "text": "Text", "date": "Date"}


def _name(key: str) -> str:
    special = {"ltc_stage": "LTC_Stage", "ltc_phase": "LTC_Phase"}
    return "crmlink_" + special.get(key, "_".join(p.capitalize() for p in key.split("_"))) + "__c"


class SalesforcePushTarget(PushTarget):
    connector = "salesforce"
    objects = {"account": "Account", "opportunity": "Opportunity"}
    default_names = {f.key: _name(f.key) for f in PUSH_FIELDS}
    read_batch = 200
    write_batch = 200
    formula = ("2 describes + Σ over Account and Opportunity of ceil(records / 200) queries + "
               "ceil(changed records / 200) sObject Collections PATCH requests")
    task_object = "Task"
    task_batch = 200
    #: a Bulk API 2.0 upsert: create the job, upload, UploadComplete, one poll, job info, failed results
    bulk_requests = 6
    task_key_field = "crmlink_Task_Key__c"
    #: a Task custom field is defined on the Activity object in the Metadata API
    TASK_KEY = "Activity.crmlink_Task_Key__c"

    @property
    def client(self) -> Client:
        client: Client = self.crm.client  # type: ignore[attr-defined]
        return client

    def requests_made(self) -> int:
        return self.client.requests_made

    def _full(self, spec: PushField) -> str:
        return f"{self.objects[spec.obj]}.{self.field_name(spec)}"

    # -- setup -------------------------------------------------------------------------------
    def setup(self, dry_run: bool = False) -> SetupReport:
        report = SetupReport()
        mdapi = self._mdapi()
        found = self._read_fields(mdapi)
        missing: list[PushField] = []
        for spec in self.fields:
            existing = found.get(self._full(spec))
            if existing is None:
                missing.append(spec)
            elif OWNER_MARK not in str(getattr(existing, "description", None) or ""):
                raise ConfigError(
                    f"{self._full(spec)} exists in Salesforce and crmlink did not create it, so crmlink "
                    f"will not write to it; name another field with [push.<source>.fields] {spec.key} = "
                    "\"crmlink_Other__c\" in the config file, or delete that field")
            else:
                report.existing.append((spec.obj, self.field_name(spec)))
        report.created = [(s.obj, self.field_name(s)) for s in missing]
        key_field = found.get(self.TASK_KEY)
        if key_field is not None and OWNER_MARK not in str(getattr(key_field, "description", None) or ""):
            raise ConfigError(f"{self.TASK_KEY} exists in Salesforce and crmlink did not create it; crmlink "
                              "keeps the key of its tasks there, so delete or rename that field to use --tasks")
        (report.existing if key_field is not None else report.created).append(("task", self.task_key_field))
        if dry_run:
            report.notes.append(f"would create {len(missing)} field(s) and the permission set {PERMISSION_SET!r}")
            return report
        components = [self._field_metadata(mdapi, spec) for spec in missing]
        if key_field is None:
            components.append(self._key_metadata(mdapi))
        for start in range(0, len(components), METADATA_BATCH):
            chunk = components[start:start + METADATA_BATCH]
            self._metadata(lambda c=chunk: mdapi.CustomField.create(c))  # type: ignore[misc]
        self._permission_set(mdapi)
        report.notes.append(self._assign())
        return report

    def _mdapi(self) -> Any:
        sf = self.client.sf
        mdapi = sf.mdapi
        # zeep posts through its own requests session: give it ours, so the Metadata API
        # calls share the timeout, the API budget and the CA settings of every other call
        transport = getattr(getattr(mdapi, "_client", None), "transport", None)
        if transport is not None:
            transport.session = self.client.http
        return mdapi

    def _metadata(self, call: Callable[[], Any]) -> Any:
        """A Metadata API call; simple-salesforce raises a bare Exception for a refused
        component, which becomes a FatalError with Salesforce's code and message."""
        try:
            return call()
        except (OSError, ConnectionError):
            raise
        except Exception as exc:
            if type(exc) is Exception:
                raise FatalError(f"the Salesforce Metadata API refused a change:{exc}".rstrip(", ")) from None
            raise

    def _key_metadata(self, mdapi: Any) -> Any:
        return mdapi.CustomField(fullName=self.TASK_KEY, label="crmlink Task Key", type="Text", length=255,
                                 externalId=True, description=f"The key crmlink finds its tasks by. {OWNER_MARK}; "
                                 "do not edit by hand.")

    def _read_fields(self, mdapi: Any) -> dict[str, Any]:
        names = [self._full(s) for s in self.fields] + [self.TASK_KEY]
        found: dict[str, Any] = {}
        for start in range(0, len(names), METADATA_BATCH):
            chunk = names[start:start + METADATA_BATCH]
            answer = self._metadata(lambda c=chunk: mdapi.CustomField.read(c))  # type: ignore[misc]
            for item in answer if isinstance(answer, list) else [answer] if answer is not None else []:
                if item is not None and getattr(item, "fullName", None):
                    found[str(item.fullName)] = item
        return found

    def _field_metadata(self, mdapi: Any, spec: PushField) -> Any:
        values: dict[str, Any] = {"fullName": self._full(spec), "label": spec.label,
                                  "type": _TYPES[spec.kind], "description": spec.description_text,
                                  "inlineHelpText": spec.description}
        if spec.kind in ("number", "percent"):
            values.update(precision=6 if spec.kind == "number" else 4, scale=spec.scale)
        elif spec.kind == "text":
            values["length"] = spec.length
        return mdapi.CustomField(**values)

    def _permission_set(self, mdapi: Any) -> None:
        names = [self._full(s) for s in self.fields] + [self.TASK_KEY]
        grants = [mdapi.PermissionSetFieldPermissions(field=name, editable=True, readable=True) for name in names]
        permission_set = mdapi.PermissionSet(
            fullName=PERMISSION_SET, label="crmlink",
            description=f"Read and edit the crmlink fields. {OWNER_MARK}.", fieldPermissions=grants)
        self._metadata(lambda: mdapi.PermissionSet.upsert([permission_set]))

    def _assign(self) -> str:
        """Assign the permission set to the running user (once)."""
        info = self.client.call(lambda s: s.session.get(
            f"https://{s.sf_instance}/services/oauth2/userinfo", headers=s.headers))
        user_id = str(info.json().get("user_id") or "")
        found = self.client.call(lambda s: s.query(f"SELECT Id FROM PermissionSet WHERE Name = '{PERMISSION_SET}'"))
        if not found["records"]:
            raise FatalError(f"Salesforce has no permission set {PERMISSION_SET!r} after creating it; try again")
        set_id = found["records"][0]["Id"]
        assigned = self.client.call(lambda s: s.query(
            f"SELECT Id FROM PermissionSetAssignment WHERE PermissionSetId = '{set_id}' "
            f"AND AssigneeId = '{user_id}'"))
        if assigned["records"]:
            return f"the permission set {PERMISSION_SET!r} was assigned to the running user already"
        self.client.call(lambda s: s.restful("sobjects/PermissionSetAssignment", method="POST",
                                             json={"PermissionSetId": set_id, "AssigneeId": user_id}))
        return f"assigned the permission set {PERMISSION_SET!r} to the running user ({user_id})"

    # -- push --------------------------------------------------------------------------------
    def check(self) -> None:
        for obj, name in self.objects.items():
            described = self.client.describe(name)
            fields = {f["name"].lower(): f for f in described.get("fields", [])}
            for spec in self.fields:
                if spec.obj != obj:
                    continue
                found = fields.get(self.field_name(spec).lower())
                if found is None or not found.get("updateable"):
                    what = "does not exist or is hidden" if found is None else "is read-only"
                    raise FatalError(
                        f"{name}.{self.field_name(spec)} {what} for the user crmlink runs as; run "
                        f"'crmlink push --setup' (it assigns the {PERMISSION_SET!r} permission set), "
                        "or assign that permission set to this user in Setup")

    def read(self, obj: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        names = [self.field_name(s) for s in self.fields if s.obj == obj]
        ids = ", ".join(f"'{_quote(rid)}'" for rid in record_ids)
        soql = f"SELECT Id, {', '.join(names)} FROM {self.objects[obj]} WHERE Id IN ({ids})"
        out: dict[str, dict[str, Any]] = {}
        for _total, rows in self.client.pages(soql, include_deleted=False):
            for row in rows:
                values = {name: row.get(name) for name in names}
                out[str(row["Id"])] = values
                out.setdefault(str(row["Id"])[:15], values)
        return {rid: out[rid] for rid in record_ids if rid in out}

    def write(self, obj: str, updates: Sequence[Update]) -> list[Outcome]:
        records = [{"attributes": {"type": self.objects[obj]}, "id": u.record_id, **u.values}
                   for u in updates]
        answer = self.client.call(lambda sf: sf.restful(
            "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}))
        outcomes = []
        for update, result in zip(updates, answer or [], strict=False):
            if result.get("success"):
                outcomes.append(Outcome(update.record_id, True))
                continue
            errors = result.get("errors") or [{}]
            message = "; ".join(f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}".rstrip(": ")
                                for e in errors)
            outcomes.append(Outcome(update.record_id, False, message))
        return outcomes


    def write_bulk(self, obj: str, updates: Sequence[Update]) -> list[Outcome]:
        """One Bulk API 2.0 upsert job by Id; ``#N/A`` blanks a field (an empty cell would
        leave it as it is), and a record's failure is its row of the failed results."""
        columns = sorted({name for u in updates for name in u.values})
        records = [{"Id": u.record_id, **{c: _bulk_value(u.values[c]) if c in u.values else "" for c in columns}}
                   for u in updates]
        handler = self.objects[obj]
        wait = float(self.crm.config.get("bulk_wait") or 1)
        jobs = self.client.call(lambda sf: getattr(sf.bulk2, handler).upsert(
            records=records, external_id_field="Id", wait=wait))
        failed: dict[str, str] = {}
        for job in jobs:
            job_id = str(job["job_id"])
            text: str = self.client.call(lambda sf: getattr(sf.bulk2, handler).get_failed_records(job_id))  # noqa: B023
            for row in csv.DictReader(io.StringIO(text)):
                failed[row.get("sf__Id") or row.get("Id") or ""] = str(row.get("sf__Error") or "").removesuffix(" --")
        return [Outcome(u.record_id, u.record_id not in failed, failed.get(u.record_id, "")) for u in updates]

    # -- tasks -------------------------------------------------------------------------------
    def read_tasks(self, keys: Sequence[str] | None = None) -> list[ExistingTask]:
        key = self.task_key_field
        if keys is None:
            fields = {f["name"].lower(): f for f in self.client.describe("Task").get("fields", [])}
            if not (fields.get(key.lower()) or {}).get("updateable"):
                raise FatalError(f"Task.{key} does not exist or is read-only for the user crmlink runs as; "
                                 "run 'crmlink push --setup'")
            chunks: list[Sequence[str] | None] = [None]
        else:
            chunks = [keys[i:i + 200] for i in range(0, len(keys), 200)]
        found = []
        for chunk in chunks:
            where = f"{key} != null" if chunk is None else f"{key} IN ({', '.join(repr_soql(k) for k in chunk)})"
            soql = f"SELECT Id, {key}, Subject, OwnerId, IsClosed FROM Task WHERE {where}"
            for _total, rows in self.client.pages(soql, include_deleted=False):
                found += [ExistingTask(str(r["Id"]), str(r[key]), r.get("Subject"), r.get("OwnerId"),
                                       bool(r.get("IsClosed"))) for r in rows]
        return found

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[Outcome]:
        records = []
        for task in tasks:
            record: dict[str, Any] = {"attributes": {"type": "Task"}, "Subject": task.subject,
                                      "Description": task.body, "WhatId": task.what, "Status": "Not Started",
                                      "Priority": "High" if task.severity in URGENT_SEVERITIES else "Normal",
                                      self.task_key_field: task.key}
            if task.owner:
                record["OwnerId"] = task.owner
            records.append(record)
        answer = self.client.call(lambda sf: sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}))
        return [Outcome(task.key, bool(r.get("success")), _errors(r), created_id=str(r.get("id") or ""))
                for task, r in zip(tasks, answer or [], strict=False)]

    def close_tasks(self, tasks: Sequence[ExistingTask]) -> list[Outcome]:
        records = [{"attributes": {"type": "Task"}, "id": t.id, "Status": "Completed"} for t in tasks]
        answer = self.client.call(lambda sf: sf.restful(
            "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}))
        return [Outcome(t.id, bool(r.get("success")), _errors(r)) for t, r in zip(tasks, answer or [], strict=False)]


def _bulk_value(value: Any) -> str:
    return "#N/A" if value is None else str(value)


def _errors(result: dict[str, Any]) -> str:
    if result.get("success"):
        return ""
    return "; ".join(f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}".rstrip(": ")
                     for e in result.get("errors") or [{}])


def repr_soql(value: str) -> str:
    return f"'{_quote(value)}'"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


@hookimpl
def register_push_targets(register: Callable[[type[PushTarget]], None]) -> None:
    register(SalesforcePushTarget)
