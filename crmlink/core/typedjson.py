"""Dataclasses that are JSON documents: each field declared once, with its description,
and both the JSON form (``to_json()``) and the JSON Schema derived from it.

A field is declared with :func:`prop`, which records its description and how it appears
in JSON: ``omit_empty`` leaves it out when it is ``None`` or ``""`` (and makes it optional
in the schema); ``flatten`` (a
``dict[str, X]`` field) merges its items into the enclosing object; ``enum`` lists the
allowed values; ``json=False`` keeps it out of the JSON and the schema.

The schema generator knows exactly the types the documents use: ``str``, ``int``,
``float``, ``bool``, ``None``, ``Any``, ``X | None``, ``list[X]``, ``dict[str, X]`` and
nested :class:`JsonObject` dataclasses (which become ``$defs``). Anything else is a
:class:`TypeError` when the schema is built, so a test catches it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Union

_MISSING: Any = dataclasses.MISSING
Converter = Callable[[Any], Any]


def prop(description: str, *, default: Any = _MISSING, default_factory: Any = _MISSING,
         omit_empty: bool = False, flatten: bool = False, enum: tuple[Any, ...] | None = None,
         json: bool = True) -> Any:
    """A dataclass field of a :class:`JsonObject`, with its description and JSON form."""
    metadata = {"description": description, "omit_empty": omit_empty, "flatten": flatten,
                "enum": enum, "json": json}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


class JsonObject:
    """Mixin for a dataclass whose fields are declared with :func:`prop`."""

    __slots__ = ()
    _json_plan: ClassVar[tuple[tuple[str, Converter | None, bool, bool], ...]]

    def to_json(self) -> dict[str, Any]:
        """The JSON object: fields in declaration order, nested objects converted."""
        cls = type(self)
        plan = cls.__dict__.get("_json_plan")
        if plan is None:
            plan = _plan(cls)
            cls._json_plan = plan
        out: dict[str, Any] = {}
        for name, convert, omit_empty, flatten in plan:
            value = getattr(self, name)
            if omit_empty and (value is None or value == ""):
                continue
            if convert is not None and value is not None:
                value = convert(value)
            if flatten:
                out.update(value)
            else:
                out[name] = value
        return out


def _plan(cls: type) -> tuple[tuple[str, Converter | None, bool, bool], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _converter(hints[f.name]), bool(f.metadata.get("omit_empty")),
                  bool(f.metadata.get("flatten")))
                 for f in dataclasses.fields(cls) if f.metadata.get("json", True))


def _converter(hint: Any) -> Converter | None:
    """How a value of type ``hint`` becomes JSON; ``None`` when it already is."""
    inner = _strip_optional(hint)
    if isinstance(inner, type) and issubclass(inner, JsonObject):
        return _object_to_json
    if typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner)
        if _converter(item) is not None:
            return _list_to_json
    return None


def _object_to_json(value: JsonObject) -> dict[str, Any]:
    return value.to_json()


def _list_to_json(values: list[JsonObject]) -> list[dict[str, Any]]:
    return [v.to_json() for v in values]


def _strip_optional(hint: Any) -> Any:
    args = typing.get_args(hint)
    if _is_union(hint) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
    return hint


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


# -- JSON Schema ---------------------------------------------------------------------------

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def json_schema(root: type, *, schema_id: str, title: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the :class:`JsonObject` dataclass ``root``."""
    defs: dict[str, Any] = {}
    body = _object_schema(root, defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id,
            "title": title, **body,
            "$defs": dict(sorted(defs.items()))}


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    extra: Any = False
    for f in dataclasses.fields(cls):
        if not f.metadata.get("json", True):
            continue
        if f.metadata.get("flatten"):  # its items are the object's other properties
            extra = {"description": f.metadata["description"],
                     **_type_schema(typing.get_args(hints[f.name])[1], defs)}
            continue
        hint = _strip_optional(hints[f.name]) if f.metadata.get("omit_empty") else hints[f.name]
        schema = {"description": f.metadata["description"], **_type_schema(hint, defs)}
        if f.metadata.get("enum"):
            schema["enum"] = list(f.metadata["enum"])
        properties[f.name] = schema
        if not f.metadata.get("omit_empty"):
            required.append(f.name)
    return {"description": _doc(cls), "type": "object", "properties": properties,
            "required": required, "additionalProperties": extra}


def _doc(cls: type) -> str:
    return " ".join((cls.__doc__ or "").split())


def _type_schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if hint is Any:
        return {}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if isinstance(hint, type) and issubclass(hint, JsonObject):
        if hint.__name__ not in defs:
            defs[hint.__name__] = {}  # a placeholder first: the class may refer to itself
            defs[hint.__name__] = _object_schema(hint, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_union(hint):
        options = [_type_schema(a, defs) for a in args]
        if all(set(o) == {"type"} for o in options):
            return {"type": [o["type"] for o in options]}
        return {"anyOf": options}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], defs)}
    if origin is dict and args[0] is str:
        value = _type_schema(args[1], defs)
        return {"type": "object", **({"additionalProperties": value} if value else {})}
    raise TypeError(f"no JSON Schema for the type {hint!r}")


# -- a reference page ----------------------------------------------------------------------


def reference_markdown(schema: dict[str, Any], root: str) -> str:
    """A Markdown section per object of ``schema`` (the root object titled ``root``, then
    its ``$defs`` in order), each a table of its fields: name, JSON type, description."""
    objects = [(root, schema)] + list(schema.get("$defs", {}).items())
    out: list[str] = []
    for name, node in objects:
        out += [f"### {name}", "", node.get("description", ""), "",
                "| field | type | description |", "|---|---|---|"]
        for field_name, prop_schema in node["properties"].items():
            optional = "" if field_name in node.get("required", ()) else " (optional)"
            text = prop_schema.get("description", "").replace("|", "\\|")
            if "enum" in prop_schema:
                text += " One of: " + ", ".join(f"`{json_text(v)}`" for v in prop_schema["enum"]) + "."
            out.append(f"| `{field_name}`{optional} | {_type_text(prop_schema)} | {text} |")
        extra = node.get("additionalProperties")
        if extra:
            out.append(f"| *any other name* | {_type_text(extra)} | {extra.get('description', '')} |")
        out.append("")
    return "\n".join(out)


def json_text(value: Any) -> str:
    return "null" if value is None else str(value)


def _type_text(node: dict[str, Any]) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in node:
        return " or ".join(_type_text(option) for option in node["anyOf"])
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"array of {_type_text(node['items'])}"
    if kind == "object" and "additionalProperties" in node:
        values = _type_text(node["additionalProperties"])
        return f"object of ({values})" if " or " in values else f"object of {values}"
    return kind or "any"
