"""Associations v4, owners, pipelines and properties handlers."""

from __future__ import annotations

from typing import Any

from .clock import iso_ms
from .errors import not_found, validation
from .schema import SINGULAR
from .wire import Context, Request, object_type, paging

ASSOC_BATCH_MAX = 1000
OWNERS_MAX = 500


# --- associations v4 ----------------------------------------------------------------------
def _to_list(ctx: Context, from_type: str, from_id: int, to_type: str, after: int,
             limit: int) -> tuple[list[dict[str, Any]], int | None]:
    rows: list[dict[str, Any]] = []
    for to_id, types in ctx.store.associations.targets(from_type, from_id, to_type):
        target = ctx.store.get(to_type, str(to_id))
        if to_id < after or target is None or target.archived:
            continue
        if len(rows) == limit:
            return rows, to_id
        rows.append({"toObjectId": to_id, "associationTypes": [t.to_json() for t in types]})
    return rows, None


def associations_batch_read(ctx: Context, req: Request, from_name: str,
                            to_name: str) -> tuple[int, dict[str, Any]]:
    from_type, to_type = object_type(from_name), object_type(to_name)
    inputs = (req.body.get("inputs") or []) if isinstance(req.body, dict) else []
    if len(inputs) > ASSOC_BATCH_MAX:
        raise validation(f"Batch input must contain at most {ASSOC_BATCH_MAX} inputs; "
                         f"got {len(inputs)}.")
    started = iso_ms(ctx.store.clock.now_ms())
    results, errors = [], []
    with ctx.store.lock:
        for item in inputs:
            key = str(item.get("id", "")) if isinstance(item, dict) else str(item)
            after = str(item.get("after") or "0") if isinstance(item, dict) else "0"
            obj = ctx.store.get(from_type, key)
            rows, next_id = ([], None) if obj is None or obj.archived else _to_list(
                ctx, from_type, obj.id, to_type, int(after) if after.isdigit() else 0,
                ctx.options.association_page_size)
            if not rows:
                errors.append(_no_associations(from_type, to_type, key))
                continue
            result: dict[str, Any] = {"from": {"id": key}, "to": rows}
            if next_id is not None:
                result["paging"] = {"next": {"after": str(next_id), "link": None}}
            results.append(result)
    out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                           "completedAt": iso_ms(ctx.store.clock.now_ms())}
    if not errors:
        return 200, out
    return 207, {**out, "numErrors": len(errors), "errors": errors}


def _no_associations(from_type: str, to_type: str, key: str) -> dict[str, Any]:
    return {"status": "error", "category": "OBJECT_NOT_FOUND",
            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
            "message": f"No {to_type} is associated with {SINGULAR[from_type]} {key}.",
            "context": {"fromObjectId": [key]}, "errors": [], "links": {}}


def associations_page(ctx: Context, req: Request, type_name: str, object_id: str,
                      to_name: str) -> dict[str, Any]:
    from_type, to_type = object_type(type_name), object_type(to_name)
    limit = max(1, min(req.integer("limit", 500), 500))
    with ctx.store.lock:
        obj = ctx.store.get(from_type, object_id)
        if obj is None or obj.archived:
            return {"results": []}
        rows, next_id = _to_list(ctx, from_type, obj.id, to_type, req.cursor(), limit)
    return {"results": rows, **paging(req, next_id)}


def association_labels(ctx: Context, req: Request, from_name: str,
                       to_name: str) -> dict[str, Any]:
    from_type, to_type = object_type(from_name), object_type(to_name)
    with ctx.store.lock:
        types = ctx.store.associations.labels(from_type, to_type)
    return {"results": [t.to_json() for t in types]}


# --- owners -------------------------------------------------------------------------------
def owners_page(ctx: Context, req: Request) -> dict[str, Any]:
    limit = max(1, min(req.integer("limit", 100), OWNERS_MAX))
    with ctx.store.lock:
        owners, next_id = ctx.store.owners.page(
            archived=req.flag("archived"), email=req.one("email"), after=req.cursor(),
            limit=limit)
        results = [o.to_json() for o in owners]
    return {"results": results, **paging(req, next_id)}


def owner(ctx: Context, req: Request, owner_id: str) -> dict[str, Any]:
    by_user = (req.one("idProperty") or "id") == "userId"
    with ctx.store.lock:
        found = next((o for o in ctx.store.owners.all()
                      if str(o.user_id if by_user else o.id) == owner_id
                      and o.archived == req.flag("archived")), None)
        if found is None:
            raise not_found(f"Owner {owner_id} not found")
        return found.to_json()


# --- pipelines ----------------------------------------------------------------------------
def pipelines(ctx: Context, req: Request, type_name: str) -> dict[str, Any]:
    otype = object_type(type_name)
    with ctx.store.lock:
        return {"results": [p.to_json() for p in ctx.store.pipelines.ordered(otype)
                            if not p.archived]}


def pipeline(ctx: Context, req: Request, type_name: str, pipeline_id: str) -> dict[str, Any]:
    otype = object_type(type_name)
    with ctx.store.lock:
        found = ctx.store.pipelines.get(otype, pipeline_id)
        if found is None:
            raise not_found(f"Unable to find pipeline {pipeline_id}")
        return found.to_json()


def pipeline_stages(ctx: Context, req: Request, type_name: str,
                    pipeline_id: str) -> dict[str, Any]:
    return {"results": pipeline(ctx, req, type_name, pipeline_id)["stages"]}


# --- properties ---------------------------------------------------------------------------
def properties(ctx: Context, req: Request, type_name: str) -> dict[str, Any]:
    otype = object_type(type_name)
    if req.flag("archived"):
        return {"results": []}
    created = ctx.store.created_ms
    with ctx.store.lock:
        return {"results": [d.to_json(created) for d in ctx.store.property_defs(otype)]}


def property_one(ctx: Context, req: Request, type_name: str, name: str) -> dict[str, Any]:
    otype = object_type(type_name)
    created = ctx.store.created_ms
    with ctx.store.lock:
        found = next((d for d in ctx.store.property_defs(otype) if d.name == name), None)
        if found is None:
            raise not_found(f"Unable to find property {name}")
        return found.to_json(created)
