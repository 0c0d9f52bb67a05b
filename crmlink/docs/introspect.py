"""What the reference pages read from classes: fields with their types and the comments
next to them in the source, and the public properties and methods with their docstrings."""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

#: ``name: type = default  # comment`` or ``name: type  # comment``
TRAILING = re.compile(r"^\s+(\w+)\s*:[^#\n]*#\s*(?!:)(.+)$")
#: ``#: comment`` lines just above ``name: type``
LEADING = re.compile(r"((?:^[ \t]+#:.*\n)+)^[ \t]+(\w+)\s*:", re.MULTILINE)


@dataclass(frozen=True)
class Member:
    """A documented attribute: a field, property or method."""

    name: str
    kind: str   # field | property | method
    signature: str
    doc: str


def comments(cls: type) -> dict[str, str]:
    """Field name -> the comment next to its declaration (``#:`` above, or ``#`` after)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    found = {}
    for block, name in LEADING.findall(source):
        found[name] = " ".join(line.strip().removeprefix("#:").strip() for line in block.splitlines())
    for line in source.splitlines():
        match = TRAILING.match(line)
        if match and match.group(1) not in found:
            found[match.group(1)] = match.group(2).strip()
    return found


def first_paragraph(doc: str | None) -> str:
    """The docstring's first paragraph on one line, RST literals as Markdown code."""
    text = inspect.cleandoc(doc or "").split("\n\n")[0]
    text = " ".join(text.split())
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")


def cell(text: str) -> str:
    """``text`` fit for a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def fields(cls: type) -> list[Member]:
    notes = comments(cls)
    return [Member(f.name, "field", f"{f.name}: {_type(f.type)}", notes.get(f.name, ""))
            for f in dataclasses.fields(cls)]


def members(cls: type) -> list[Member]:
    """Public properties and methods defined by ``cls`` itself, in source order."""
    declared = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    found = []
    for name, value in vars(cls).items():
        if name.startswith("_") or name in declared:
            continue
        if isinstance(value, (property, cached_property)):
            getter = value.fget if isinstance(value, property) else value.func
            found.append(Member(name, "property", f"{name} -> {_returns(getter)}",
                                first_paragraph(getter.__doc__)))
        elif inspect.isfunction(value):
            found.append(Member(name, "method", f"{name}{_signature(value)}",
                                first_paragraph(value.__doc__)))
    return found


def _signature(function: Any) -> str:
    text = str(inspect.signature(function))
    return re.sub(r"^\(self,? ?", "(", text).replace("'", "")


def _returns(function: Any) -> str:
    annotation = inspect.signature(function).return_annotation
    return "?" if annotation is inspect.Signature.empty else _type(annotation)


def _type(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
