"""The audit document's JSON text: exactly what ``json.dumps(value, indent=indent,
ensure_ascii=False)`` writes, made faster where the standard library is slow.

Without ``indent`` the standard library's encoder is its C one, and that is what
:func:`dumps` uses. With ``indent`` (a person at a terminal gets ``indent=2``) the
standard library falls back to its encoder written in Python, about four times slower
than the C one on the audit's entries; for ``indent=2`` :func:`dumps` makes the text with
orjson instead, when that is provably the same text (:func:`_orjson_indented`), and
with the standard library otherwise.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict, defaultdict
from typing import Any

import orjson

#: orjson's options: two spaces a level as ``indent=2``, and every subclass of ``str``,
#: ``int``, ``dict`` and ``list``, every dataclass and date handed to :func:`_plain`
_OPTIONS = (orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_DATETIME)
#: a float as the standard library writes it with an exponent (``1e-05``, ``1.5e+16``)
_EXPONENT = re.compile(r"[0-9]e[-+][0-9]")


def dumps(value: Any, indent: int | None = None, *, check_circular: bool = True) -> str:
    """``json.dumps(value, indent=indent, ensure_ascii=False, check_circular=...)``: the
    same text, or the same exception."""
    if indent == 2:
        text = _orjson_indented(value, check_circular)
        if text is not None:
            return text
    return json.dumps(value, indent=indent, ensure_ascii=False, check_circular=check_circular)


def _orjson_indented(value: Any, check_circular: bool = True) -> str | None:
    """The standard library's ``indent=2`` text of ``value`` made by orjson, or ``None``
    where orjson's could differ and the standard library must write it. The two write
    the same structure, separators, escapes (``ensure_ascii=False``: only ``"``, ``\\``
    and control characters, in the same forms), integers, and floats written without an
    exponent (both give the shortest text that reads back as the same float); they differ
    where the standard library writes ``NaN`` or ``Infinity`` (orjson: ``null``), a float
    with an exponent (``1e-05`` against orjson's forms), integers past 64 bits, keys that
    are not strings, and the types only one of them takes. So the standard library's C
    encoder checks ``value`` first, compactly (no ``NaN``, nothing it cannot write; about
    a third of the Python encoder's time), and its text must hold no exponent; orjson then
    refuses anything but the plain types (:func:`_plain`)."""
    try:
        compact = json.dumps(value, ensure_ascii=False, allow_nan=False, check_circular=check_circular)
    except (ValueError, TypeError, RecursionError):  # NaN or infinity, a cycle, or a type it refuses
        return None
    if ("e-" in compact or "e+" in compact) and _EXPONENT.search(compact):  # a float with an exponent
        return None  # (or text that looks like one)
    try:
        return orjson.dumps(value, default=_plain, option=_OPTIONS).decode("utf-8")
    except orjson.JSONEncodeError:  # a type refused, an integer past 64 bits, a key not a string
        return None


def _plain(value: Any) -> Any:
    """What orjson writes for a subclass it hands back: the same text as the standard
    library's for the few plain ones an audit's data holds, else refused."""
    if type(value) in (OrderedDict, defaultdict):
        return dict(value)
    if isinstance(value, str):  # the standard library writes the string itself, whatever __str__ says
        return str.__str__(value)
    raise TypeError(type(value).__name__)


__all__ = ["dumps"]
