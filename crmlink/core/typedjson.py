"""Dataclasses that are JSON documents: each field declared once, with its description,
and both the JSON form (``to_json()``) and the JSON Schema derived from it.

A field is declared with :func:`prop`, which records its description and how it appears
in JSON: ``omit_empty`` leaves it out when it is ``None`` or ``""`` (and makes it optional
in the schema); ``flatten`` (a
``dict[str, X]`` field) merges its items into the enclosing object; ``enum`` lists the
allowed values; ``json=False`` keeps it out of the JSON and the schema.

The schema generator knows exactly the types the documents use: ``str``, ``int``,
``float``, ``bool``, ``None``, ``Any``, ``X | None``, ``list[X]`` (or ``Sequence[X]``, the
same JSON array, for a field that may hold a sequence kept on disk), ``dict[str, X]`` and
nested :class:`JsonObject` dataclasses (which become ``$defs``). Anything else is a
:class:`TypeError` when the schema is built, so a test catches it.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Union

_MISSING: Any = dataclasses.MISSING


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

    def to_json(self) -> dict[str, Any]:
        """The JSON object: fields in declaration order, nested objects converted."""
        cls = type(self)
        convert = cls.__dict__.get("_to_json")
        if convert is None:
            convert = _compile(cls)
            cls._to_json = convert  # type: ignore[attr-defined]
        return convert(self)


def _compile(cls: type) -> Callable[[Any], dict[str, Any]]:
    """``to_json`` for ``cls`` as one generated function, as dataclasses generate
    ``__init__``: the audit converts hundreds of thousands of small objects."""
    hints = typing.get_type_hints(cls)
    items, after = [], []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("json", True):
            continue
        value = _value_code(f"self.{f.name}", hints[f.name])
        if f.metadata.get("flatten"):
            items.append(f"**{value}")
        elif f.metadata.get("omit_empty"):
            after.append(f"    if self.{f.name} is not None and self.{f.name} != '':\n"
                         f"        out[{f.name!r}] = {value}")
        else:
            items.append(f"{f.name!r}: {value}")
    source = ("def to_json(self):\n"
              f"    out = {{{', '.join(items)}}}\n" + "".join(line + "\n" for line in after) + "    return out\n")
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - generated from the class's own field names
    return namespace["to_json"]  # type: ignore[no-any-return]


def _value_code(expr: str, hint: Any) -> str:
    """Python source converting ``expr`` (of type ``hint``) to JSON."""
    inner = _strip_optional(hint)
    optional = inner is not hint
    if isinstance(inner, type) and issubclass(inner, JsonObject):
        code = f"{expr}.to_json()"
    elif typing.get_origin(inner) in _ARRAYS and _is_object(typing.get_args(inner)[0]):
        code = f"[v.to_json() for v in {expr}]"
    else:
        return expr
    return f"(None if {expr} is None else {code})" if optional else code


#: the types that are a JSON array
_ARRAYS = (list, collections.abc.Sequence)


def _is_object(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, JsonObject)


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
    if origin in _ARRAYS:
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
