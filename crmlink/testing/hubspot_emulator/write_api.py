"""The writes ``crmlink push`` makes: property groups, properties (batch create) and
batch update of objects, with HubSpot's multi-status answers.

A batch update checks each input: an unknown or archived id is an ``OBJECT_NOT_FOUND``
error, a value its property cannot hold (a word in a number) or a property that does not
exist or is read-only a ``VALIDATION_ERROR``; the other inputs are written and the answer
is 207 with ``results`` and ``errors`` (each error's ``context.ids`` names its record).
Objects listed in ``emu.refused`` are refused with the message given there, to rehearse
a record HubSpot will not change.
"""

from __future__ import annotations

from typing import Any

from .clock import iso_ms
from .errors import ApiError, error_body, validation
from .schema import FIELD_TYPES, PropertyDef, normalize_value
from .wire import Context, Request, object_type

BATCH_MAX = 100


def _inputs(req: Request) -> list[dict[str, Any]]:
    body = req.body if isinstance(req.body, dict) else {}
    inputs = body.get("inputs") or []
    if len(inputs) > BATCH_MAX:
        raise validation(f"Batch input must contain at most {BATCH_MAX} inputs; got {len(inputs)}.",
                         context={"inputs": [str(len(inputs))]})
    return [i for i in inputs if isinstance(i, dict)]


# -- property groups -------------------------------------------------------------------------
def groups_list(ctx: Context, req: Request, type_name: str) -> dict[str, Any]:
    otype = object_type(type_name)
    with ctx.store.lock:
        return {"results": [dict(g) for g in ctx.store.groups.get(otype, {}).values()]}


def group_create(ctx: Context, req: Request, type_name: str) -> tuple[int, dict[str, Any]]:
    otype = object_type(type_name)
    body = req.body if isinstance(req.body, dict) else {}
    name, label = str(body.get("name") or ""), str(body.get("label") or "")
    if not name or not label:
        raise validation("Property group name and label are required.")
    with ctx.store.lock:
        groups = ctx.store.groups.setdefault(otype, {})
        if name in groups:
            raise ApiError(409, error_body(f"A property group named '{name}' already exists.", "CONFLICT"))
        groups[name] = {"name": name, "label": label, "displayOrder": int(body.get("displayOrder") or -1),
                        "archived": False}
        return 201, dict(groups[name])


# -- properties ------------------------------------------------------------------------------
def properties_batch_create(ctx: Context, req: Request, type_name: str) -> tuple[int, dict[str, Any]]:
    otype = object_type(type_name)
    started = iso_ms(ctx.store.clock.now_ms())
    results, errors = [], []
    with ctx.store.lock:
        for item in _inputs(req):
            try:
                results.append(_create_property(ctx, otype, item))
            except ApiError as exc:
                assert isinstance(exc.body, dict)
                errors.append({**exc.body, "context": {"name": [str(item.get("name"))]}})
    out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                           "completedAt": iso_ms(ctx.store.clock.now_ms())}
    if errors:
        return 207, {**out, "numErrors": len(errors), "errors": errors}
    return 201, out


def _create_property(ctx: Context, otype: str, item: dict[str, Any]) -> dict[str, Any]:
    name, kind = str(item.get("name") or ""), str(item.get("type") or "")
    group = str(item.get("groupName") or "")
    if name in ctx.store.schema[otype]:
        raise ApiError(409, error_body(f"A property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS"))
    if kind not in FIELD_TYPES:
        raise validation(f"Invalid property type {kind!r}.")
    known = {g for g in ctx.store.groups.get(otype, {})} | {d.group_name for d in ctx.store.schema[otype].values()}
    if group not in known:
        raise validation(f"Property group {group!r} does not exist.")
    definition = PropertyDef(name, kind, str(item.get("fieldType") or FIELD_TYPES[kind]),
                             str(item.get("label") or name), hubspot_defined=False, group_name=group,
                             description=str(item.get("description") or ""))
    ctx.store.schema[otype][name] = definition
    return definition.to_json(ctx.store.clock.now_ms())


# -- batch update ----------------------------------------------------------------------------
def batch_update(ctx: Context, req: Request, type_name: str) -> tuple[int, dict[str, Any]]:
    otype = object_type(type_name)
    started = iso_ms(ctx.store.clock.now_ms())
    results, errors = [], []
    with ctx.store.lock:
        if ctx.options.batch_errors == "400":
            for item in _inputs(req):  # checked first: a refused batch writes nothing
                try:
                    _check_update(ctx, otype, str(item.get("id") or ""), item.get("properties") or {})
                except ApiError as exc:
                    raise ApiError(400, exc.body) from None
        for item in _inputs(req):
            key = str(item.get("id") or "")
            try:
                results.append(_update(ctx, otype, key, item.get("properties") or {}))
            except ApiError as exc:
                assert isinstance(exc.body, dict)
                body = {k: v for k, v in exc.body.items() if k != "correlationId"}
                errors.append({**body, "context": {"ids": [key]}})
    out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                           "completedAt": iso_ms(ctx.store.clock.now_ms())}
    if errors:
        return 207, {**out, "numErrors": len(errors), "errors": errors}
    return 200, out


def object_update(ctx: Context, req: Request, type_name: str, object_id: str) -> dict[str, Any]:
    """``PATCH /crm/v3/objects/{type}/{id}``: one object's properties."""
    otype = object_type(type_name)
    body = req.body if isinstance(req.body, dict) else {}
    with ctx.store.lock:
        return _update(ctx, otype, object_id, body.get("properties") or {})


def _check_update(ctx: Context, otype: str, key: str, properties: dict[str, Any]) -> None:
    """Raise what an update of ``key`` would fail with, writing nothing."""
    obj = ctx.store.get(otype, key)
    if obj is None or obj.archived:
        raise ApiError(404, error_body(f"Object {key} of type {otype} was not found; it may be deleted.",
                                       "OBJECT_NOT_FOUND"))
    refused = ctx.store.refused.get((otype, key))
    if refused:
        raise validation(refused)
    schema = ctx.store.schema[otype]
    for name, value in properties.items():
        if name not in schema or schema[name].read_only:
            raise validation(f"Property values were not valid: [{{\"isValid\":false,\"message\":\"Property "
                             f"\\\"{name}\\\" does not exist or is read-only\",\"name\":\"{name}\"}}]")
        try:
            normalize_value(schema[name], "" if value is None else value)
        except ValueError as exc:
            raise validation(f"Property values were not valid: {exc}") from None


def _update(ctx: Context, otype: str, key: str, properties: dict[str, Any]) -> dict[str, Any]:
    _check_update(ctx, otype, key, properties)
    obj = ctx.store.get(otype, key)
    assert obj is not None
    values = {name: ("" if value is None else value) for name, value in properties.items()}
    try:
        ctx.store.update(otype, key, values)
    except ValueError as exc:
        raise validation(f"Property values were not valid: {exc}") from None
    return obj.to_json(list(properties))


# -- batch create (tasks and their associations) ----------------------------------------------
def batch_create(ctx: Context, req: Request, type_name: str) -> tuple[int, dict[str, Any]]:
    """Create objects with their ``associations`` (``[{to: {id}, types: [{associationCategory,
    associationTypeId}]}]``). Like HubSpot, the results need not come in the input order."""
    otype = object_type(type_name)
    started = iso_ms(ctx.store.clock.now_ms())
    inputs = _inputs(req)
    with ctx.store.lock:
        for item in inputs:  # everything is checked before anything is created
            _check_links(ctx, otype, item.get("associations") or [])
        results = []
        for item in inputs:
            values = {k: ("" if v is None else v) for k, v in (item.get("properties") or {}).items()}
            try:
                new_id = ctx.store.add(otype, values)
            except ValueError as exc:
                raise validation(f"Property values were not valid: {exc}") from None
            for link in item.get("associations") or []:
                for kind in link.get("types") or []:
                    to_type = _target_type(otype, int(kind["associationTypeId"]))
                    ctx.store.associations.add(otype, int(new_id), to_type, int(link["to"]["id"]),
                                               type_id=int(kind["associationTypeId"]))
            obj = ctx.store.get(otype, new_id)
            assert obj is not None
            results.append(obj.to_json(list(values)))
    results.reverse()
    return 201, {"status": "COMPLETE", "results": results, "startedAt": started,
                 "completedAt": iso_ms(ctx.store.clock.now_ms())}


def _target_type(otype: str, type_id: int) -> str:
    from .associations import DEFAULT_TYPE_IDS, PRIMARY_TYPE_IDS

    for table in (DEFAULT_TYPE_IDS, PRIMARY_TYPE_IDS):
        for (from_type, to_type), found in table.items():
            if from_type == otype and found == type_id:
                return to_type
    raise validation(f"association type {type_id} is not defined from {otype}")


def _check_links(ctx: Context, otype: str, links: list[dict[str, Any]]) -> None:
    for link in links:
        for kind in link.get("types") or []:
            to_type = _target_type(otype, int(kind.get("associationTypeId") or 0))
            target = ctx.store.get(to_type, str((link.get("to") or {}).get("id") or ""))
            if target is None or target.archived:
                raise validation(f"The {to_type[:-1]} {link.get('to')} to associate with does not exist.")
