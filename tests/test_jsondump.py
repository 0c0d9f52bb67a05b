"""crmlink.core.jsondump.dumps writes exactly json.dumps's text (ensure_ascii=False),
with and without indentation, on generated values holding everything orjson and the
standard library could disagree on, and on the bundled sample's audit; and the indented
text comes from orjson wherever it can (not from the standard library every time)."""

from __future__ import annotations

import json
import math
from collections import OrderedDict, defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlink.core import jsondump
from crmlink.core.document import account_json


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


def _outcome(write: Any, value: Any, indent: int | None) -> tuple[str, str]:
    try:
        return "text", write(value, indent)
    except Exception as exc:  # noqa: BLE001 - the same exception type is the expected result
        return "error", type(exc).__name__


def _stdlib(value: Any, indent: int | None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES, st.sampled_from([None, 2]))
def test_the_same_text_or_the_same_error_as_the_standard_library(value: Any, indent: int | None) -> None:
    assert _outcome(jsondump.dumps, value, indent) == _outcome(_stdlib, value, indent)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | _TEXT.filter(lambda t: "\ud800" not in t)
                    | st.floats(min_value=-1e6, max_value=1e6).map(lambda f: round(f, 3)),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(_TEXT.filter(lambda t: "\ud800" not in t),
                                                                        c, max_size=4), max_leaves=25))
def test_orjson_writes_the_plain_values_an_audit_holds(value: Any) -> None:
    """Rounded floats, text without exponents, plain containers: orjson writes them,
    and its text is the standard library's (unless text looks like an exponent)."""
    text = jsondump._orjson_indented(value)
    if text is None:
        assert jsondump._EXPONENT.search(json.dumps(value, ensure_ascii=False))
    else:
        assert text == _stdlib(value, 2)


def test_the_sample_audit_is_written_by_orjson_and_equal(sample_audit: dict[str, Any]) -> None:
    fast = [jsondump._orjson_indented(entry) for entry in sample_audit["accounts"]]
    assert all(text is not None for text in fast)
    assert fast == [_stdlib(entry, 2) for entry in sample_audit["accounts"]]
    assert jsondump.dumps(sample_audit, 2) == _stdlib(sample_audit, 2)
    assert jsondump.dumps(sample_audit) == _stdlib(sample_audit, None)


@pytest.mark.parametrize("indent", [None, 2])
def test_an_entry_nested_in_the_document(sample_audit: dict[str, Any], indent: int | None) -> None:
    """account_json indents an entry for its place in the document's array."""
    from crmlink.core.document import AccountEntry

    class Entry(AccountEntry):  # an entry whose JSON is the sample's first account
        def to_json(self) -> dict[str, Any]:
            return sample_audit["accounts"][0]  # type: ignore[no-any-return]

    entry = Entry.__new__(Entry)
    whole = _stdlib({"accounts": [sample_audit["accounts"][0]]}, indent)
    assert account_json(entry, indent) in whole
