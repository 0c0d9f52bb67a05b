"""Bulk API 2.0 ingest jobs (``jobs/ingest``): create, upload CSV, UploadComplete, job info,
and the successful, failed and unprocessed record results. Operations ``update`` and
``upsert`` (with ``externalIdFieldName`` ``Id``) are supported, the ones ``crmlink push``
uses. Each row is checked as an sObject Collections record is (field-level security,
validation rules, locks, deleted records) and written or failed on its own; ``#N/A``
blanks a field, an empty value leaves it as it is, as in Salesforce.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import writes
from .errors import ApiError, Response, json_response
from .values import format_datetime

if TYPE_CHECKING:
    from .rest import Ctx

OPERATIONS = ("update", "upsert")


@dataclass
class IngestJob:
    id: str
    operation: str
    object: str
    created: datetime
    created_by: str
    version: str
    external_id: str | None = None
    state: str = "Open"
    data: str = ""
    polls_left: int = 0
    succeeded: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.object, "createdById": self.created_by,
            "createdDate": format_datetime(self.created), "systemModstamp": format_datetime(self.created),
            "state": self.state, "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(self.version), "jobType": "V2Ingest", "lineEnding": "LF",
            "columnDelimiter": "COMMA", "numberRecordsProcessed": len(self.succeeded) + len(self.failed),
            "numberRecordsFailed": len(self.failed), "retries": 0, "totalProcessingTime": 42,
        }
        if self.external_id:
            out["externalIdFieldName"] = self.external_id
        return out


def dispatch(ctx: Ctx) -> Response:
    emu = ctx.emu
    segs = [s for s in ctx.segments[2:] if s]
    if not segs:
        if ctx.method == "POST":
            return _create(ctx)
        return json_response(200, {"done": True, "records": [j.info() for j in emu.ingest_jobs.values()],
                                   "nextRecordsUrl": None})
    job = emu.ingest_jobs.get(segs[0])
    if job is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if len(segs) == 1:
        if ctx.method == "PATCH":
            return _set_state(ctx, job)
        if ctx.method == "DELETE":
            del emu.ingest_jobs[job.id]
            return Response(204)
        if job.state in ("UploadComplete", "InProgress") and job.polls_left > 0:
            job.polls_left -= 1
            job.state = "InProgress"
        elif job.state in ("UploadComplete", "InProgress"):
            job.state = "JobComplete"
        return json_response(200, job.info())
    if segs[1] == "batches" and ctx.method == "PUT":
        if job.state != "Open":
            raise ApiError(409, "INVALIDJOBSTATE", f"Job {job.id} is not open for data uploads")
        job.data += ctx.body.decode("utf-8")
        return Response(201, b"", "text/plain")
    results = {"successfulResults": ("sf__Id", "sf__Created"), "failedResults": ("sf__Id", "sf__Error"),
               "unprocessedrecords": ()}
    if segs[1] in results and ctx.method == "GET":
        rows = job.succeeded if segs[1] == "successfulResults" else job.failed if segs[1] == "failedResults" else []
        return Response(200, _csv(results[segs[1]], job.data, rows).encode(), "text/csv")
    raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def _create(ctx: Ctx) -> Response:
    body = ctx.json_body() or {}
    operation, obj = str(body.get("operation") or ""), str(body.get("object") or "")
    if operation not in OPERATIONS:
        raise ApiError(400, "FeatureNotEnabled", f"the emulator's ingest jobs take {', '.join(OPERATIONS)}, "
                       f"not {operation!r}")
    od = ctx.emu.store.obj(obj)
    external = body.get("externalIdFieldName")
    if operation == "upsert" and str(external or "").lower() != "id":
        raise ApiError(400, "InvalidJob", "the emulator upserts by Id only")
    job_id = "750" + ctx.emu.store.new_id("750")[3:]
    job = IngestJob(job_id, operation, od.name, ctx.emu.now, ctx.user_id or "", ctx.version,
                    external_id="Id" if external else None, polls_left=ctx.emu.bulk_in_progress_polls)
    ctx.emu.ingest_jobs[job_id] = job
    return json_response(200, job.info())


def _set_state(ctx: Ctx, job: IngestJob) -> Response:
    state = str((ctx.json_body() or {}).get("state") or "")
    if state == "Aborted":
        job.state = "Aborted"
    elif state == "UploadComplete" and job.state == "Open":
        job.state = "UploadComplete"
        _process(ctx, job)
    else:
        raise ApiError(400, "INVALIDJOBSTATE", f"cannot change the state of job {job.id} to {state}")
    return json_response(200, job.info())


def _process(ctx: Ctx, job: IngestJob) -> None:
    """Write every row on its own, as Salesforce does (a failed row fails alone)."""
    store = ctx.emu.store
    for row in csv.DictReader(io.StringIO(job.data)):
        rid = row.get("Id") or row.get("id") or ""
        values = {k: (None if v == "#N/A" else v) for k, v in row.items() if k.lower() != "id" and v != ""}
        try:
            with store.lock:
                rec = store.get(job.object, rid)
                if rec is None or rec["IsDeleted"]:
                    raise ApiError(400, "ENTITY_IS_DELETED" if rec else "INVALID_CROSS_REFERENCE_KEY",
                                   "entity is deleted" if rec else f"invalid cross reference id: {rid}")
                clean = store.clean(store.obj(job.object), values, api=True, creating=False)
                writes.check_update(ctx.emu, ctx.username, job.object, rec, clean)
                store.update(job.object, rec["Id"], values, user_id=ctx.user_id, api=True)
        except ApiError as err:
            fields = ":".join(err.fields or [])
            job.failed.append({**row, "sf__Id": rid, "sf__Error": f"{err.error_code}:{err.message}:{fields} --"})
            continue
        job.succeeded.append({**row, "sf__Id": rec["Id"], "sf__Created": "false"})


def _csv(head: tuple[str, ...], data: str, rows: list[dict[str, str]]) -> str:
    columns = list(head) + (next(csv.reader(io.StringIO(data)), []) if data else [])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n",
                            quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
