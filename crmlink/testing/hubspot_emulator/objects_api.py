"""``/crm/v3/objects/{type}``: list, read, batch read and search."""

from __future__ import annotations

from typing import Any

from . import search
from .associations import v3_type_name
from .clock import iso_ms
from .errors import error_body, not_found, validation
from .schema import always_properties, default_properties, normalize_type
from .store import CrmObject
from .wire import Context, Request, object_type, paging

LIST_MAX = 100
LIST_MAX_WITH_HISTORY = 50
BATCH_MAX = 100


def select_properties(ctx: Context, otype: str, requested: list[str]) -> list[str]:
    """Requested properties HubSpot knows (unknown ones are dropped silently) + the always-on
    ones; the object type's defaults when nothing was requested."""
    schema = ctx.store.schema[otype]
    names = [p for p in requested if p in schema] if requested else list(default_properties(otype))
    return list(dict.fromkeys(names + list(always_properties(otype))))


def object_json(ctx: Context, req: Request, obj: CrmObject, props: list[str],
                history: list[str], assoc_types: list[str]) -> dict[str, Any]:
    body = obj.to_json(props, [h for h in history if h in ctx.store.schema[obj.object_type]])
    associations = {}
    for to_type in assoc_types:
        inline = _inline_associations(ctx, req, obj, to_type)
        if inline:
            associations[to_type] = inline
    if associations:
        body["associations"] = associations
    return body


def _inline_associations(ctx: Context, req: Request, obj: CrmObject,
                         to_type: str) -> dict[str, Any] | None:
    resolved = normalize_type(to_type)
    if resolved is None:
        return None
    results: list[dict[str, Any]] = []
    for to_id, types in ctx.store.associations.targets(obj.object_type, obj.id, resolved):
        target = ctx.store.get(resolved, str(to_id))
        if target is None or target.archived:
            continue
        results.extend({"id": str(to_id), "type": v3_type_name(obj.object_type, resolved, t)}
                       for t in types)
    if not results:
        return None
    cap = ctx.options.list_association_cap
    if len(results) <= cap:
        return {"results": results}
    next_id = results[cap]["id"]
    link = f"{req.base_url}/crm/v4/objects/{obj.object_type}/{obj.id}/associations/{resolved}"
    return {"results": results[:cap], "paging": {"next": {"after": next_id, "link": link}}}


def list_objects(ctx: Context, req: Request, type_name: str) -> dict[str, Any]:
    otype = object_type(type_name)
    history = req.many("propertiesWithHistory")
    cap = LIST_MAX_WITH_HISTORY if history else LIST_MAX
    limit = max(1, min(req.integer("limit", 10), cap))
    props = select_properties(ctx, otype, req.many("properties"))
    with ctx.store.lock:
        page, next_after = ctx.store.page(otype, req.cursor(), limit, req.flag("archived"))
        results = [object_json(ctx, req, o, props, history, req.many("associations"))
                   for o in page]
    return {"results": results, **paging(req, next_after)}


def get_object(ctx: Context, req: Request, type_name: str, object_id: str) -> dict[str, Any]:
    otype = object_type(type_name)
    props = select_properties(ctx, otype, req.many("properties"))
    with ctx.store.lock:
        obj = _lookup(ctx, otype, object_id, req.one("idProperty"))
        if obj is None or obj.archived != req.flag("archived"):
            raise not_found("Object not found.  objectId are usually numeric.",
                            context={"id": [object_id]})
        return object_json(ctx, req, obj, props, req.many("propertiesWithHistory"),
                           req.many("associations"))


def _lookup(ctx: Context, otype: str, key: str, id_property: str | None) -> CrmObject | None:
    if id_property and id_property != "hs_object_id":
        if id_property not in ctx.store.schema[otype]:
            raise validation(f"Property {id_property!r} does not exist or is not unique.")
        return ctx.store.find_by(otype, id_property, key)
    return ctx.store.get(otype, key)


def batch_read(ctx: Context, req: Request, type_name: str) -> tuple[int, dict[str, Any]]:
    otype = object_type(type_name)
    body = req.body if isinstance(req.body, dict) else {}
    inputs = body.get("inputs") or []
    if len(inputs) > BATCH_MAX:
        raise validation(f"Batch input must contain at most {BATCH_MAX} inputs; got "
                         f"{len(inputs)}.", context={"inputs": [str(len(inputs))]})
    props = select_properties(ctx, otype, list(body.get("properties") or []))
    history = list(body.get("propertiesWithHistory") or [])
    archived, started = req.flag("archived"), iso_ms(ctx.store.clock.now_ms())
    results, missing, seen = [], [], set()
    with ctx.store.lock:
        for item in inputs:
            key = str(item.get("id", "")) if isinstance(item, dict) else str(item)
            obj = _lookup(ctx, otype, key, body.get("idProperty"))
            if obj is None or obj.archived != archived:
                missing.append(key)
            elif obj.id not in seen:
                seen.add(obj.id)
                results.append(object_json(ctx, req, obj, props, history, []))
    out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                           "completedAt": iso_ms(ctx.store.clock.now_ms())}
    if not missing:
        return 200, out
    error = error_body(f"Could not get some {otype[:-1].upper()} objects, they may be deleted "
                       "or not exist. Check that ids are valid.", "OBJECT_NOT_FOUND",
                       context={"ids": missing}, errors=[], links={})
    error.pop("correlationId")
    return 207, {**out, "numErrors": 1, "errors": [error]}


def search_objects(ctx: Context, req: Request, type_name: str) -> dict[str, Any]:
    otype = object_type(type_name)
    body = req.body if isinstance(req.body, dict) else {}
    store = ctx.store
    with store.lock:
        request = search.parse_request(body, store.schema[otype])
        cutoff = store.clock.now_ms() - int(ctx.options.search_lag * 1000)
        visible = (o for o in store.iter(otype, False)
                   if not ctx.options.search_lag or o.updated_ms <= cutoff)
        matched = search.run(visible, request, store.schema[otype], otype,
                             lambda o, t: _associated_ids(ctx, o, t))
        page = matched[request.after:request.after + request.limit]
        props = select_properties(ctx, otype, request.properties or [])
        results = [o.to_json(props) for o in page]
    out: dict[str, Any] = {"total": len(matched), "results": results}
    end = request.after + request.limit
    if end < len(matched) and request.limit > 0:
        out["paging"] = {"next": {"after": str(end)}}
    return out


def _associated_ids(ctx: Context, obj: CrmObject, to_type: str) -> set[str]:
    resolved = normalize_type(to_type)
    if resolved is None:
        return set()
    return {str(i) for i, _ in ctx.store.associations.targets(obj.object_type, obj.id, resolved)}
