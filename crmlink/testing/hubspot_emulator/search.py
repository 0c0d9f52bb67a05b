"""The CRM search API: request validation, filters, sorts and free-text query."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .clock import to_ms
from .errors import validation
from .schema import PropertyDef
from .store import CrmObject

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS_TOTAL = 18
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
RESULT_CAP = 10_000
MAX_QUERY_LENGTH = 3000
OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
             "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
QUERY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "phone", "company", "hs_object_id"),
    "companies": ("name", "domain", "website", "phone", "hs_object_id"),
    "deals": ("dealname", "hs_object_id"),
    "tickets": ("subject", "content", "hs_object_id"),
}
_NEGATIONS = {"NEQ": "EQ", "NOT_IN": "IN", "NOT_CONTAINS_TOKEN": "CONTAINS_TOKEN"}
AssocLookup = Callable[[CrmObject, str], set[str]]


@dataclass
class SearchRequest:
    groups: list[list[dict[str, Any]]]
    sort: tuple[str, bool] | None
    query: str | None
    properties: list[str] | None
    limit: int
    after: int


def parse_request(body: dict[str, Any], schema: dict[str, PropertyDef]) -> SearchRequest:
    """Validate a search body the way HubSpot does; raises ApiError(400)."""
    groups = [list(g.get("filters") or []) for g in body.get("filterGroups") or []]
    _check_filters(groups, schema)
    limit = _int(body.get("limit"), "limit", DEFAULT_LIMIT)
    after = _int(body.get("after"), "after", 0)
    if limit < 0 or limit > MAX_LIMIT:
        raise validation(f"limit must be between 0 and {MAX_LIMIT}; got {limit}.")
    if after + limit > RESULT_CAP:
        raise validation(
            f"Paging past {RESULT_CAP} results is not supported by the search API "
            f"(after={after}, limit={limit}). Narrow the query with filters instead.")
    query = body.get("query")
    if query is not None and len(str(query)) > MAX_QUERY_LENGTH:
        raise validation(f"query must be at most {MAX_QUERY_LENGTH} characters.")
    props = body.get("properties")
    return SearchRequest(groups, _parse_sort(body.get("sorts") or [], schema),
                         str(query) if query else None,
                         [str(p) for p in props] if props else None, limit, after)


def _int(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(str(value))
    except ValueError:
        raise validation(f"{name} must be an integer; got {value!r}.") from None


def _check_filters(groups: list[list[dict[str, Any]]], schema: dict[str, PropertyDef]) -> None:
    total = sum(len(g) for g in groups)
    if len(groups) > MAX_GROUPS or any(len(g) > MAX_FILTERS_PER_GROUP for g in groups) \
            or total > MAX_FILTERS_TOTAL:
        raise validation(
            f"Too many filters: at most {MAX_GROUPS} filterGroups with up to "
            f"{MAX_FILTERS_PER_GROUP} filters each ({MAX_FILTERS_TOTAL} in total) are allowed.")
    for f in (f for g in groups for f in g):
        name, op = f.get("propertyName"), f.get("operator")
        if op not in OPERATORS:
            raise validation(f"Unsupported operator {op!r}.")
        if not name or (name not in schema and not str(name).startswith("associations.")):
            raise validation(f"Property {name!r} does not exist or cannot be searched.")
        if op in ("IN", "NOT_IN") and not isinstance(f.get("values"), list):
            raise validation(f"Operator {op} requires 'values'.")
        if op == "BETWEEN" and (f.get("value") is None or f.get("highValue") is None):
            raise validation("Operator BETWEEN requires 'value' and 'highValue'.")


def _parse_sort(sorts: list[Any], schema: dict[str, PropertyDef]) -> tuple[str, bool] | None:
    if not sorts:
        return None
    if len(sorts) > 1:
        raise validation("Only one sort is supported.")
    rule = sorts[0]
    if isinstance(rule, str):
        name, desc = rule.lstrip("-"), rule.startswith("-")
    else:
        name = str(rule.get("propertyName", ""))
        desc = str(rule.get("direction", "ASCENDING")).upper() == "DESCENDING"
    if name not in schema:
        raise validation(f"Cannot sort on unknown property {name!r}.")
    return name, desc


def run(objects: Iterable[CrmObject], req: SearchRequest, schema: dict[str, PropertyDef],
        object_type: str, assoc: AssocLookup) -> list[CrmObject]:
    """All matching objects in result order (the caller slices the page)."""
    tokens = _tokens(req.query) if req.query else []
    matched = [o for o in objects
               if (not req.groups or any(_group(o, g, schema, assoc) for g in req.groups))
               and (not tokens or _query_match(o, tokens, object_type))]
    if req.sort is None:
        return matched
    name, desc = req.sort
    prop = schema[name]
    present = [o for o in matched if o.properties.get(name) not in (None, "")]
    missing = [o for o in matched if o.properties.get(name) in (None, "")]
    present.sort(key=lambda o: _typed(prop, o.properties[name] or ""), reverse=desc)
    return present + missing


def _group(obj: CrmObject, filters: list[dict[str, Any]], schema: dict[str, PropertyDef],
           assoc: AssocLookup) -> bool:
    return all(_filter(obj, f, schema, assoc) for f in filters)


def _filter(obj: CrmObject, f: dict[str, Any], schema: dict[str, PropertyDef],
            assoc: AssocLookup) -> bool:
    name, op = str(f["propertyName"]), str(f["operator"])
    if name.startswith("associations."):
        return _assoc_filter(assoc(obj, name.split(".", 1)[1]), op, f)
    raw = obj.properties.get(name)
    has = raw not in (None, "")
    if op == "HAS_PROPERTY":
        return has
    if op == "NOT_HAS_PROPERTY":
        return not has
    prop = schema[name]
    if op in _NEGATIONS:
        return not has or not _positive(prop, raw or "", {**f, "operator": _NEGATIONS[op]})
    return has and _positive(prop, raw or "", f)


def _positive(prop: PropertyDef, raw: str, f: dict[str, Any]) -> bool:
    op = f["operator"]
    if op == "EQ" or op == "IN":
        wanted = [f.get("value")] if op == "EQ" else list(f.get("values") or [])
        return any(_equal(prop, raw, str(w)) for w in wanted if w is not None)
    if op == "CONTAINS_TOKEN":
        return _contains_token(raw, str(f.get("value", "")))
    try:
        value = _typed(prop, raw)
        low = _typed(prop, str(f.get("value")))
        if op == "BETWEEN":
            return low <= value <= _typed(prop, str(f.get("highValue")))
    except (TypeError, ValueError):
        return False
    return {"LT": value < low, "LTE": value <= low, "GT": value > low,
            "GTE": value >= low}.get(op, False)


def _equal(prop: PropertyDef, raw: str, wanted: str) -> bool:
    if prop.type in ("number", "datetime", "date"):
        try:
            return _typed(prop, raw) == _typed(prop, wanted)
        except ValueError:
            return False
    if prop.type == "enumeration" and prop.field_type == "checkbox":
        return wanted.lower() in [v.lower() for v in raw.split(";")]
    return raw.lower() == wanted.lower()


def _typed(prop: PropertyDef, raw: str) -> Any:
    """Comparable value: float for numbers, epoch ms for dates, lowercase text otherwise."""
    if prop.type == "number":
        return float(raw)
    if prop.type in ("datetime", "date"):
        return to_ms(raw)
    return raw.lower()


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^\w@.*-]+", text.lower()) if t]


def _contains_token(raw: str, pattern: str) -> bool:
    pattern = pattern.lower()
    words = re.split(r"[^\w*]+", raw.lower()) + [raw.lower()]
    return any(fnmatch.fnmatchcase(w, pattern) for w in words if w)


def _query_match(obj: CrmObject, tokens: list[str], object_type: str) -> bool:
    names = QUERY_PROPERTIES.get(object_type)
    values = [obj.properties.get(n) or "" for n in names] if names else [
        v or "" for k, v in obj.properties.items() if not k.startswith("hs_date")]
    words = [w for v in values for w in re.split(r"[^\w]+", v.lower()) + _tokens(v) if w]
    words += [v.lower() for v in values]
    return all(any(w.startswith(t) for w in words) for t in tokens)


def _assoc_filter(ids: set[str], op: str, f: dict[str, Any]) -> bool:
    wanted = {str(v) for v in (f.get("values") or [])} | (
        {str(f["value"])} if f.get("value") is not None else set())
    if op in ("EQ", "IN"):
        return bool(ids & wanted)
    if op in ("NEQ", "NOT_IN"):
        return not ids & wanted
    if op == "HAS_PROPERTY":
        return bool(ids)
    if op == "NOT_HAS_PROPERTY":
        return not ids
    return False
