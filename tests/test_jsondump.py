"""crmlink.core.jsondump writes the standard library's JSON (ensure_ascii=False, compact
without spaces or indented by two) on generated values holding everything orjson and the
standard library could disagree on, and on the bundled sample's audit: the same data
always, the same text but where a float needs an exponent or is not finite."""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict, defaultdict
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlink.core import jsondump
from crmlink.core.document import account_json, account_jsonb


class Label(str):
    """A str subclass whose str() is not its text (as an enum's can be)."""

    def __str__(self) -> str:
        return "not the text"


def _floats() -> st.SearchStrategy[float]:
    awkward = st.sampled_from([1e-05, 1e-4, 0.0001234, 9.99e-5, 1e15, 1e16, 1.5e16, 123456789012345680.0,
                               5e-324, 1.7976931348623157e308, -0.0, 0.1, 1 / 3, 2.5, 100.0,
                               math.nan, math.inf, -math.inf])
    return st.one_of(st.floats(), awkward, st.floats(min_value=-1e6, max_value=1e6).map(lambda f: round(f, 3)))


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["Łódź Telecom", "张伟 (运维工程师)", "e-mail", "1e-05", "tab\there", 'quote " and \\ slash', "\x00\x1f\x7f",
     "\u2028\u2029", "😀", "\ud800"])  # the last: a lone surrogate, which neither writes as UTF-8
_SCALARS = st.none() | st.booleans() | st.integers() | st.integers(-2**63, 2**64) | _floats() | _TEXT
_KEYS = _TEXT | st.integers(-5, 5) | st.just(Label("label"))


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (st.lists(children, max_size=5) | st.lists(children, max_size=3).map(tuple)
            | st.dictionaries(_KEYS, children, max_size=5)
            | st.dictionaries(_TEXT, children, max_size=3).map(OrderedDict)
            | st.dictionaries(_TEXT, children, max_size=3).map(lambda d: defaultdict(list, d))
            | _TEXT.map(Label))


VALUES = st.recursive(_SCALARS, _containers, max_leaves=30)


def _outcome(write: Any, value: Any, indent: int | None) -> tuple[str, Any]:
    try:
        return "text", write(value, indent)
    except Exception as exc:  # noqa: BLE001 - the same exception type is the expected result
        return "error", type(exc).__name__


def _stdlib(value: Any, indent: int | None) -> str:
    """The standard library's text in the document's layout, as UTF-8 can write it (a
    lone surrogate fails here, as in the document's text)."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(value, indent=indent, separators=separators, ensure_ascii=False)
    return text.encode("utf-8").decode("utf-8")


def _finite(value: Any) -> Any:
    """``value`` as JSON reads it back, with NaN and the infinities as ``null`` (what
    orjson writes for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _exact(text: str) -> bool:
    """Whether the standard library's ``text`` holds no float orjson writes otherwise: an
    exponent, NaN or an infinity (or text that looks like one)."""
    return not (_EXPONENT.search(text) or "NaN" in text or "Infinity" in text)


_EXPONENT = re.compile(r"[0-9]e[-+][0-9]")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES, st.sampled_from([None, 2]))
def test_the_same_json_as_the_standard_library(value: Any, indent: int | None) -> None:
    """The same data read back, or the same error; the same text where no float needs
    an exponent (and no NaN or infinity)."""
    ours, theirs = _outcome(jsondump.dumps, value, indent), _outcome(_stdlib, value, indent)
    assert ours[0] == theirs[0]
    if ours[0] == "error":
        assert ours == theirs
        return
    assert json.loads(ours[1]) == _finite(json.loads(theirs[1]))
    if _exact(theirs[1]):
        assert ours == theirs


def test_compact_text_has_no_space_outside_strings() -> None:
    value = {"a b": [1, 2.5, None, True], "c": {"d": "e, f: g"}, "h": []}
    assert jsondump.dumps(value) == '{"a b":[1,2.5,null,true],"c":{"d":"e, f: g"},"h":[]}'
    assert jsondump.dumpb(value) == jsondump.dumps(value).encode("utf-8")


@pytest.mark.parametrize(("value", "text"), [(math.nan, "null"), (-math.inf, "null"), (-0.0, "-0.0"), (0.1, "0.1")])
def test_floats_not_finite_are_null(value: float, text: str) -> None:
    assert jsondump.dumps([value]) == f"[{text}]"


@pytest.mark.parametrize("value", [1e16, 1.5e16, 1e-05, 5e-324, 1.7976931348623157e308])
def test_a_float_with_an_exponent_reads_back_the_same(value: float) -> None:
    """Written in orjson's shortest form, which its versions differ on (``1e16`` or
    ``1e+16``, ``0.00001``): JSON reads it back as the same float."""
    text = jsondump.dumps([value])
    assert json.loads(text) == [value] and " " not in text


def test_what_orjson_refuses_the_standard_library_writes_in_the_same_layout() -> None:
    big = {"n": [2**70, 1]}
    assert jsondump.dumps(big) == '{"n":[1180591620717411303424,1]}'
    assert jsondump.dumps(big, 2) == json.dumps(big, indent=2)
    with pytest.raises(TypeError):
        jsondump.dumps({"when": date(2026, 1, 1)})


def test_other_indents_from_the_standard_library() -> None:
    value = {"a": [1, {"b": math.nan}]}
    assert jsondump.dumps(value, 4) == json.dumps({"a": [1, {"b": None}]}, indent=4)


def test_the_sample_audit(sample_audit: dict[str, Any]) -> None:
    """The bundled sample's audit is the standard library's text in both layouts."""
    assert jsondump.dumps(sample_audit, 2) == _stdlib(sample_audit, 2)
    assert jsondump.dumps(sample_audit) == _stdlib(sample_audit, None)


@pytest.mark.parametrize("indent", [None, 2])
def test_an_entry_nested_in_the_document(sample_audit: dict[str, Any], indent: int | None) -> None:
    """account_json indents an entry for its place in the document's array, and
    account_jsonb is its UTF-8."""
    from crmlink.core.document import AccountEntry

    class Entry(AccountEntry):  # an entry whose JSON is the sample's first account
        def to_json(self) -> dict[str, Any]:
            return sample_audit["accounts"][0]  # type: ignore[no-any-return]

    entry = Entry.__new__(Entry)
    whole = _stdlib({"accounts": [sample_audit["accounts"][0]]}, indent)
    assert account_json(entry, indent) in whole
    assert account_jsonb(entry, indent) == account_json(entry, indent).encode("utf-8")
