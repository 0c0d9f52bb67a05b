"""Resolve a parsed SOQL query against the org schema and evaluate it over the store."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .schema import FieldDef, ObjectDef
from .soql import BoolOp, Comparison, FieldRef, Literal, Not, Query, locate, parse
from .store import Store
from .values import NUMERIC, to_json

Row = dict[str, Any]
POLY_FIELDS = {"Id": "id", "Name": "string", "Type": "string", "FirstName": "string",
               "LastName": "string", "Email": "email", "Title": "string", "Alias": "string",
               "Phone": "phone", "IsActive": "boolean"}
STRINGY = {"string", "textarea", "picklist", "multipicklist", "email", "phone", "url", "id",
           "reference", "combobox"}
_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_NOT_FOUND_TAIL = (" If you are attempting to use a custom field, be sure to append the '__c' "
                   "after the custom field name. Please reference your WSDL or the describe call "
                   "for the appropriate names.")


@dataclass
class Resolved:
    ref: FieldRef
    rels: list[FieldDef]
    leaf: FieldDef
    poly: bool = False

    @property
    def column(self) -> str:
        return ".".join([r.relationship_name or "" for r in self.rels] + [self.leaf.name])


@dataclass
class Plan:
    query: Query
    od: ObjectDef
    fields: list[Resolved]
    predicate: Callable[[Row], bool]
    order: list[tuple[Resolved, bool, bool]]


def invalid_field(q: Query, pos: int, message: str) -> ApiError:
    return ApiError(400, "INVALID_FIELD", locate(q.text, pos, message))


def resolve(store: Store, od: ObjectDef, q: Query, ref: FieldRef, user: str | None) -> Resolved:
    path = list(ref.path)
    if len(path) > 1 and path[0].lower() == od.name.lower():
        path = path[1:]  # "SELECT Account.Name FROM Account" is legal SOQL
    cur: ObjectDef | None = od
    rels: list[FieldDef] = []
    for part in path[:-1]:
        rel = cur.relationship(part) if cur else None
        if rel is None or cur is None or store.is_hidden(cur.name, rel.name, user):
            raise invalid_field(q, ref.pos, f"Didn't understand relationship '{part}' in field "
                                "path. If you are attempting to use a custom relationship, be sure "
                                "to append the '__r' after the custom relationship name. Please "
                                "reference your WSDL or the describe call for the appropriate names.")
        rels.append(rel)
        cur = store.obj(rel.reference_to[0]) if len(rel.reference_to) == 1 else None
    last = path[-1]
    if cur is None:  # polymorphic relationship: only the "Name" object fields exist
        name = next((k for k in POLY_FIELDS if k.lower() == last.lower()), None)
        if name is None:
            raise invalid_field(q, ref.pos, f"No such column '{last}' on entity 'Name'."
                                + _NOT_FOUND_TAIL)
        return Resolved(ref, rels, FieldDef(name, POLY_FIELDS[name], name), poly=True)
    leaf = cur.field(last)
    if leaf is None or store.is_hidden(cur.name, leaf.name, user):
        raise invalid_field(q, ref.pos, f"No such column '{last}' on entity '{cur.name}'."
                            + _NOT_FOUND_TAIL)
    return Resolved(ref, rels, leaf)


def value_of(store: Store, rec: Row, r: Resolved) -> Any:
    cur, cur_obj = rec, ""
    for rel in r.rels:
        found = store.find(cur.get(rel.name))
        if found is None:
            return None
        cur_obj, cur = found
    if r.poly and r.leaf.name == "Type":
        return cur_obj
    return cur.get(r.leaf.name)


# ---- WHERE ------------------------------------------------------------------------------
def check_literal(q: Query, r: Resolved, lit: Literal) -> None:
    ftype = r.leaf.type
    if lit.kind == "null":
        return
    name = r.leaf.name
    if ftype in STRINGY:
        if lit.kind != "string":
            raise invalid_field(q, lit.pos, f"value of filter criterion for field '{name}' must "
                                "be of type string and should be enclosed in quotes")
        if ftype in ("id", "reference") and not _ID.match(lit.value):
            raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR",
                           locate(q.text, lit.pos, f"invalid ID field: {lit.value}"))
        return
    expected = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(ftype, "number")
    if lit.kind != expected:
        label = {"datetime": "dateTime", "number": "integer" if ftype == "int" else "double"}
        raise invalid_field(q, lit.pos, f"value of filter criterion for field '{name}' must be "
                            f"of type {label.get(expected, expected)} and should not be enclosed "
                            "in quotes")


def _norm(ftype: str, value: Any) -> Any:
    if isinstance(value, str) and ftype not in ("id", "reference"):
        return value.casefold()
    return value


def _equal(ftype: str, value: Any, lit: Any) -> bool:
    if lit is None or value is None:
        return lit is None and value is None
    if ftype in ("id", "reference") and isinstance(lit, str) and len(lit) == 15:
        return str(value)[:15] == lit
    if ftype in NUMERIC:
        return float(value) == float(lit)
    return _norm(ftype, value) == _norm(ftype, lit)


def _like(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE | re.DOTALL)


def compile_comparison(store: Store, q: Query, r: Resolved, c: Comparison) -> Callable[[Row], bool]:
    ftype = r.leaf.type
    if isinstance(c.value, list):
        for lit in c.value:
            check_literal(q, r, lit)
        values = [lit.value for lit in c.value]
        negate = c.op == "NOT IN"
        return lambda rec: negate != any(_equal(ftype, value_of(store, rec, r), v) for v in values)
    if c.op != "LIKE":
        check_literal(q, r, c.value)
    lit = c.value.value
    if c.op == "LIKE":
        rx = _like(str(lit))
        return lambda rec: (v := value_of(store, rec, r)) is not None and bool(rx.match(str(v)))
    if c.op in ("=", "!="):
        negate = c.op == "!="
        return lambda rec: negate != _equal(ftype, value_of(store, rec, r), lit)
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    fn = ops[c.op]

    def ordered(rec: Row) -> bool:
        value = value_of(store, rec, r)
        if value is None or lit is None:
            return False
        return fn(_norm(ftype, value), _norm(ftype, lit))
    return ordered


def compile_where(store: Store, od: ObjectDef, q: Query, node: Any,
                  user: str | None) -> Callable[[Row], bool]:
    if node is None:
        return lambda rec: True
    if isinstance(node, Not):
        inner = compile_where(store, od, q, node.part, user)
        return lambda rec: not inner(rec)
    if isinstance(node, BoolOp):
        parts = [compile_where(store, od, q, p, user) for p in node.parts]
        if node.op == "AND":
            return lambda rec: all(p(rec) for p in parts)
        return lambda rec: any(p(rec) for p in parts)
    return compile_comparison(store, q, resolve(store, od, q, node.field, user), node)


# ---- planning and execution -------------------------------------------------------------
def plan(store: Store, text: str, user: str | None = None) -> Plan:
    q = parse(text)
    if not store.has_object(q.sobject):
        raise ApiError(400, "INVALID_TYPE", locate(q.text, q.sobject_pos, (
            f"sObject type '{q.sobject}' is not supported. If you are attempting to use a custom "
            "object, be sure to append the '__c' after the entity name. Please reference your "
            "WSDL or the describe call for the appropriate names.")))
    od = store.obj(q.sobject)
    fields, seen = [], set()
    for ref in q.fields:
        r = resolve(store, od, q, ref, user)
        if r.column.lower() in seen:
            raise ApiError(400, "DUPLICATE_FIELD", f"duplicate field selected: {r.column}")
        seen.add(r.column.lower())
        fields.append(r)
    predicate = compile_where(store, od, q, q.where, user)
    order = [(resolve(store, od, q, item.field, user), item.descending, item.nulls_last)
             for item in q.order]
    return Plan(q, od, fields, predicate, order)


def execute(store: Store, p: Plan, include_deleted: bool) -> list[Row]:
    """Matching raw rows, sorted and limited (projection happens separately)."""
    rows = [r for r in store.rows(p.od.name, include_deleted) if p.predicate(r)]
    for r, desc, nulls_last in reversed(p.order):
        null_rank = (-1 if nulls_last else 1) if desc else (1 if nulls_last else -1)

        def key(rec: Row, r: Resolved = r, null_rank: int = null_rank) -> tuple[int, Any]:
            value = value_of(store, rec, r)
            return (null_rank, 0) if value is None else (0, _norm(r.leaf.type, value))
        rows.sort(key=key, reverse=desc)
    if p.query.limit is not None:
        rows = rows[:p.query.limit]
    return rows


def project(store: Store, p: Plan, rec: Row, version: str) -> Row:
    """One REST query record: attributes, then fields in SELECT order, relationships nested."""
    out: Row = {"attributes": _attributes(p.od.name, p.od.name, rec["Id"], version)}
    for r in p.fields:
        container, cur, cur_obj = out, rec, p.od.name
        for rel in r.rels:
            key = rel.relationship_name or rel.name
            found = store.find(cur.get(rel.name))
            if found is None:
                container.setdefault(key, None)
                break
            cur_obj, cur = found
            if container.get(key) is None:
                atype = cur_obj if len(rel.reference_to) == 1 else "Name"
                container[key] = {"attributes": _attributes(atype, cur_obj, cur["Id"], version)}
            container = container[key]
        else:
            value = cur_obj if r.poly and r.leaf.name == "Type" else cur.get(r.leaf.name)
            container[r.leaf.name] = to_json(r.leaf.type, value)
    return out


def flat(store: Store, p: Plan, rec: Row) -> list[Any]:
    """Raw values for a Bulk CSV row, in SELECT order."""
    return [value_of(store, rec, r) for r in p.fields]


def _attributes(atype: str, obj: str, rid: str, version: str) -> dict[str, str]:
    return {"type": atype, "url": f"/services/data/v{version}/sobjects/{obj}/{rid}"}
