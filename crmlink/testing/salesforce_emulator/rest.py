"""REST data API handlers under ``/services/data/vXX.X/``."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import bulk, describe, ingest, soql_eval, writes
from .errors import ApiError, Response, json_response
from .values import format_datetime, parse_datetime, to_json

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator


@dataclass
class Ctx:
    emu: SalesforceEmulator
    method: str
    version: str
    segments: list[str]
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    username: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def json_body(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from exc

    @property
    def user_id(self) -> str | None:
        user = self.emu.users.get(self.username or "")
        return user.user_id if user else None


def dispatch(ctx: Ctx) -> Response:
    while len(ctx.segments) > 1 and ctx.segments[-1] == "":
        ctx.segments.pop()  # "query/", "limits/", "sobjects/Account/" == without the slash
    segs = ctx.segments
    head = segs[0] if segs else ""
    if head == "":
        return json_response(200, describe.resources(ctx.version))
    if head in ("query", "queryAll"):
        return query(ctx, include_deleted=head == "queryAll")
    if head == "sobjects":
        return sobjects(ctx)
    if head == "limits":
        return json_response(200, limits(ctx.emu))
    if head == "composite" and segs[1:2] == ["sobjects"]:
        return collections(ctx)
    if head == "jobs" and segs[1:2] == ["query"]:
        return bulk.dispatch(ctx)
    if head == "jobs" and segs[1:2] == ["ingest"]:
        return ingest.dispatch(ctx)
    raise ApiError(404, "NOT_FOUND")


# ---- query / queryAll -------------------------------------------------------------------
def batch_size(ctx: Ctx) -> int:
    size = ctx.emu.default_batch_size
    for part in ctx.headers.get("sforce-query-options", "").split(","):
        key, _, value = part.partition("=")
        if key.strip().lower() == "batchsize" and value.strip().isdigit():
            size = int(value.strip())
    return max(200, min(2000, size))


def query(ctx: Ctx, include_deleted: bool) -> Response:
    _only(ctx, "GET")
    endpoint = "queryAll" if include_deleted else "query"
    if len(ctx.segments) > 1:
        return _more(ctx, endpoint, ctx.segments[1])
    text = ctx.params.get("q")
    if not text:
        raise ApiError(400, "MALFORMED_QUERY", "A query string must be specified")
    store = ctx.emu.store
    plan = soql_eval.plan(store, text, ctx.username)
    with store.lock:
        rows = soql_eval.execute(store, plan, include_deleted)
        if plan.query.count:
            return json_response(200, {"totalSize": len(rows), "done": True, "records": []})
        records = [soql_eval.project(store, plan, r, ctx.version) for r in rows]
    locator = "01g" + secrets.token_hex(6).upper() + "AAA"
    open_cursor(ctx.emu, ctx.username or "", locator, records)
    return json_response(200, _page(ctx, endpoint, locator, records, 0, batch_size(ctx)))


def open_cursor(emu: SalesforceEmulator, username: str, locator: str,
                records: list[dict[str, Any]]) -> None:
    """Like Salesforce: a user has at most N open cursors; the oldest one is released."""
    with emu.store.lock:
        emu.cursors[locator] = (username, records)
        mine = [key for key, (owner, _) in emu.cursors.items() if owner == username]
        for key in mine[: max(0, len(mine) - emu.max_query_cursors)]:
            del emu.cursors[key]


def _more(ctx: Ctx, endpoint: str, token: str) -> Response:
    locator, _, offset = token.rpartition("-")
    _, records = ctx.emu.cursors.get(locator, ("", None))
    if records is None or not offset.isdigit():
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return json_response(200, _page(ctx, endpoint, locator, records, int(offset),
                                    batch_size(ctx)))


def _page(ctx: Ctx, endpoint: str, locator: str, records: list[dict[str, Any]], offset: int,
          size: int) -> dict[str, Any]:
    end = offset + size
    done = end >= len(records)
    page: dict[str, Any] = {"totalSize": len(records), "done": done}
    if not done:
        page["nextRecordsUrl"] = f"/services/data/v{ctx.version}/{endpoint}/{locator}-{end}"
    page["records"] = records[offset:end]
    return page


# ---- sobjects ---------------------------------------------------------------------------
def sobjects(ctx: Ctx) -> Response:
    segs, emu = ctx.segments, ctx.emu
    if len(segs) == 1:
        _only(ctx, "GET")
        return json_response(200, describe.global_describe(emu, ctx.version))
    od = emu.store.obj(segs[1])
    if len(segs) == 2:
        if ctx.method == "POST":
            rid = emu.store.insert(od.name, ctx.json_body() or {}, user_id=ctx.user_id, api=True)
            return json_response(201, {"id": rid, "success": True, "errors": []})
        _only(ctx, "GET")
        return json_response(200, {"objectDescribe": describe.summary(od, ctx.version),
                                   "recentItems": []})
    action = segs[2]
    if action == "describe":
        _only(ctx, "GET")
        return json_response(200, describe.describe_object(emu, od, ctx.version, ctx.username))
    if action in ("updated", "deleted"):
        _only(ctx, "GET")
        return json_response(200, _replication(ctx, od.name, action))
    return record(ctx, od.name, action)


def record(ctx: Ctx, obj: str, rid: str) -> Response:
    store = ctx.emu.store
    rec = store.get(obj, rid)
    if rec is None or rec["IsDeleted"]:
        raise ApiError(404, "NOT_FOUND")
    if ctx.method == "GET":
        return json_response(200, _full_record(ctx, obj, rec))
    if ctx.method == "PATCH":
        store.update(obj, rec["Id"], ctx.json_body() or {}, user_id=ctx.user_id, api=True)
        return Response(204)
    if ctx.method == "DELETE":
        store.delete(obj, rec["Id"])
        return Response(204)
    raise ApiError(405, "METHOD_NOT_ALLOWED")


def _full_record(ctx: Ctx, obj: str, rec: dict[str, Any]) -> dict[str, Any]:
    od = ctx.emu.store.obj(obj)
    wanted = [f.strip().lower() for f in ctx.params.get("fields", "").split(",") if f.strip()]
    out: dict[str, Any] = {"attributes": {
        "type": od.name, "url": f"/services/data/v{ctx.version}/sobjects/{od.name}/{rec['Id']}"}}
    for name, fdef in od.fields.items():
        if ctx.emu.store.is_hidden(od.name, name, ctx.username):
            continue
        if not wanted or name.lower() in wanted:
            out[name] = to_json(fdef.type, rec.get(name))
    return out


def _replication(ctx: Ctx, obj: str, action: str) -> dict[str, Any]:
    start = parse_datetime(ctx.params.get("start", ""))
    end = parse_datetime(ctx.params.get("end", ""))
    if start is None or end is None or end < start:
        raise ApiError(400, "INVALID_REPLICATION_DATE", "start and end must be valid datetimes")
    store = ctx.emu.store
    rows = store.rows(obj, include_deleted=True)
    if action == "updated":
        ids = [r["Id"] for r in rows
               if not r["IsDeleted"] and start <= r["SystemModstamp"] < end]
        return {"ids": ids, "latestDateCovered": format_datetime(end)}
    deleted = [{"id": r["Id"], "deletedDate": format_datetime(store.deleted_at[r["Id"]])}
               for r in rows if r["IsDeleted"] and r["Id"] in store.deleted_at
               and start <= store.deleted_at[r["Id"]] < end]
    return {"deletedRecords": deleted, "earliestDateAvailable": format_datetime(start),
            "latestDateCovered": format_datetime(end)}


# ---- limits -----------------------------------------------------------------------------
def limits(emu: SalesforceEmulator) -> dict[str, Any]:
    used, total = emu.api_limit
    return {
        "DailyApiRequests": {"Max": total, "Remaining": max(0, total - used)},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(emu.bulk_jobs)},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        "DataStorageMB": {"Max": 5, "Remaining": 5},
        "FileStorageMB": {"Max": 20, "Remaining": 20},
    }


# ---- sObject Collections ----------------------------------------------------------------
def collections(ctx: Ctx) -> Response:
    if ctx.method == "DELETE":
        ids = [i for i in ctx.params.get("ids", "").split(",") if i]
        items = [{"attributes": {"type": ""}, "id": i} for i in ids]
        all_or_none = ctx.params.get("allOrNone", "false").lower() == "true"
    else:
        _only(ctx, "PATCH", "POST")
        body = ctx.json_body() or {}
        items, all_or_none = body.get("records") or [], bool(body.get("allOrNone"))
    if len(items) > 200:
        raise ApiError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than "
                       "200 records into this call")
    checks = [_check_item(ctx, item) for item in items]
    failed = any(err for _, err in checks)
    results = []
    for item, (obj, err) in zip(items, checks, strict=False):
        if err is not None:
            results.append(_failure(err.error_code, err.message, err.fields or []))
        elif failed and all_or_none:
            results.append(_failure("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back "
                                    "because not all records were valid and the request was "
                                    "using AllOrNone header", []))
        else:
            results.append(_apply_item(ctx, obj, item))
    return json_response(200, results)


def _check_item(ctx: Ctx, item: dict[str, Any]) -> tuple[str, ApiError | None]:
    store = ctx.emu.store
    rid = item.get("id") or item.get("Id")
    obj = (item.get("attributes") or {}).get("type") or (store.object_of_id(rid) if rid else None) or ""
    try:
        if not obj or not store.has_object(obj):
            raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
        values = {k: v for k, v in item.items() if k not in ("attributes", "id", "Id")}
        if ctx.method == "POST":
            if rid:
                raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            store.check_insert(obj, values)
            return obj, None
        if not rid:
            raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        rec = store.get(obj, rid)
        if rec is None or rec["IsDeleted"]:
            code = "ENTITY_IS_DELETED" if rec else "INVALID_CROSS_REFERENCE_KEY"
            raise ApiError(400, code, "entity is deleted" if rec else f"invalid cross reference "
                           f"id: {rid}", [])
        store.clean(store.obj(obj), values, api=True, creating=False)
        writes.check_update(ctx.emu, ctx.username, obj, rec, values)
    except ApiError as err:
        return obj, err
    return obj, None


def _apply_item(ctx: Ctx, obj: str, item: dict[str, Any]) -> dict[str, Any]:
    store = ctx.emu.store
    values = {k: v for k, v in item.items() if k not in ("attributes", "id", "Id")}
    rid = item.get("id") or item.get("Id")
    try:
        if ctx.method == "POST":
            rid = store.insert(obj, values, user_id=ctx.user_id, api=True)
        elif ctx.method == "PATCH":
            store.update(obj, str(rid), values, user_id=ctx.user_id, api=True)
        else:
            store.delete(obj, str(rid))
    except ApiError as err:
        return _failure(err.error_code, err.message, err.fields or [])
    return {"id": rid, "success": True, "errors": []}


def _failure(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message,
                                          "fields": fields}]}


def _only(ctx: Ctx, *methods: str) -> None:
    if ctx.method not in methods:
        raise ApiError(405, "METHOD_NOT_ALLOWED",
                       f"HTTP Method '{ctx.method}' not allowed. Allowed are {','.join(methods)}")
