"""Bulk API 2.0 query jobs: ``jobs/query``, ``jobs/query/<id>``, ``.../results``."""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import soql_eval
from .errors import ApiError, Response, json_response
from .values import format_datetime, to_csv

if TYPE_CHECKING:
    from .rest import Ctx

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^",
              "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


@dataclass
class BulkJob:
    id: str
    operation: str
    object: str
    query: str
    created: datetime
    created_by: str
    version: str
    columns: list[str]
    rows: list[list[Any]]
    delimiter: str = "COMMA"
    line_ending: str = "LF"
    state: str = "UploadComplete"
    polls_left: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.object,
            "createdById": self.created_by, "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.created), "state": self.state,
            "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(self.version), "jobType": "V2Query",
            "lineEnding": self.line_ending, "columnDelimiter": self.delimiter,
        }
        if self.state == "JobComplete":
            out.update({"numberRecordsProcessed": len(self.rows), "retries": 0,
                        "totalProcessingTime": 42})
        return out


def dispatch(ctx: Ctx) -> Response:
    segs = ctx.segments[2:]
    if not segs or segs == [""]:
        if ctx.method == "POST":
            return create(ctx)
        jobs = [j.info() for j in ctx.emu.bulk_jobs.values()]
        return json_response(200, {"done": True, "records": jobs, "nextRecordsUrl": None})
    job = ctx.emu.bulk_jobs.get(segs[0])
    if job is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    if len(segs) > 1 and segs[1] == "results":
        return results(ctx, job)
    if ctx.method == "DELETE":
        del ctx.emu.bulk_jobs[job.id]
        return Response(204)
    if ctx.method == "PATCH":
        state = (ctx.json_body() or {}).get("state")
        if state == "Aborted" and job.state != "JobComplete":
            job.state = "Aborted"
        return json_response(200, job.info())
    return json_response(200, poll(job))


def poll(job: BulkJob) -> dict[str, Any]:
    if job.state in ("UploadComplete", "InProgress"):
        if job.polls_left > 0:
            job.polls_left -= 1
            job.state = "InProgress"
        else:
            job.state = "JobComplete"
    return job.info()


def create(ctx: Ctx) -> Response:
    body = ctx.json_body() or {}
    operation = body.get("operation")
    if operation not in ("query", "queryAll"):
        raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
    delimiter = body.get("columnDelimiter") or "COMMA"
    line_ending = body.get("lineEnding") or "LF"
    if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
        raise ApiError(400, "INVALIDJOB", "Invalid columnDelimiter or lineEnding")
    emu, store = ctx.emu, ctx.emu.store
    plan = soql_eval.plan(store, str(body.get("query") or ""), ctx.username)
    if plan.query.count:
        raise ApiError(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0")
    with store.lock:
        rows = soql_eval.execute(store, plan, operation == "queryAll")
        values = [soql_eval.flat(store, plan, r) for r in rows]
    job = BulkJob(
        id=store.new_id("750"), operation=operation, object=plan.od.name, query=plan.query.text,
        created=emu.clock.now, created_by=ctx.user_id or store.default_user_id,
        version=ctx.version, columns=[r.column for r in plan.fields], rows=values,
        delimiter=delimiter, line_ending=line_ending, polls_left=emu.bulk_in_progress_polls,
    )
    emu.bulk_jobs[job.id] = job
    return json_response(200, job.info())


def encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int:
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except ValueError as exc:
        raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from exc


def results(ctx: Ctx, job: BulkJob) -> Response:
    if job.state != "JobComplete":
        raise ApiError(400, "INVALIDJOBSTATE", f"Job is not complete: {job.state}")
    locator = ctx.params.get("locator", "")
    start = decode_locator(locator) if locator and locator != "null" else 0
    max_records = ctx.params.get("maxRecords", "")
    size = int(max_records) if max_records.isdigit() and int(max_records) > 0 else len(job.rows)
    chunk = job.rows[start:start + size]
    end = start + len(chunk)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=DELIMITERS[job.delimiter], quoting=csv.QUOTE_ALL,
                        lineterminator=LINE_ENDINGS[job.line_ending])
    writer.writerow(job.columns)
    for row in chunk:
        writer.writerow([to_csv(v) for v in row])
    headers = {"Sforce-NumberOfRecords": str(len(chunk)),
               "Sforce-Locator": encode_locator(end) if end < len(job.rows) else "null"}
    return Response(200, buf.getvalue().encode("utf-8"), "text/csv", headers)
