"""The audit cache's stored form and the store's writes around it: an item a
:class:`~crmlink.core.analysis.spill.Spilled` holds still pickled reads as the item,
whether it stays in memory or goes to disk, and is unpickled only when read."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmlink.core.analysis.cache import StoredSummary
from crmlink.core.analysis.coverage import Coverage
from crmlink.core.analysis.spill import Pickled, Spilled
from crmlink.core.analysis.summary import AccountSummary
from crmlink.core.errors import StoreError
from crmlink.core.evaluation.relationship import Relationship
from crmlink.core.findings import Finding
from crmlink.core.model import Account

#: how many times :func:`counted_loads` ran
LOADS: list[bytes] = []


def counted_loads(data: bytes) -> Any:
    LOADS.append(data)
    return pickle.loads(data)  # noqa: S301 - the test's own bytes


values = st.lists(st.tuples(st.booleans(), st.one_of(st.integers(), st.text(max_size=20),
                                                     st.lists(st.integers(), max_size=5))), max_size=40)


@given(values, st.sampled_from([0, 1, 3, 100]))
def test_a_pickled_item_reads_as_the_item_held_or_spilled(items: list[tuple[bool, Any]], keep: int) -> None:
    spilled: Spilled[Any] = Spilled(keep=keep)
    for still_pickled, value in items:
        spilled.append(Pickled(pickle.dumps(value), counted_loads) if still_pickled else value)
    expected = [value for _, value in items]
    LOADS.clear()
    assert list(spilled) == expected
    assert len(LOADS) == sum(1 for still_pickled, _ in items if still_pickled)  # once per read, each
    order = list(range(len(items)))[::-1]
    assert list(spilled.view(order)) == [expected[n] for n in order]


def test_an_item_never_read_is_never_unpickled() -> None:
    LOADS.clear()
    spilled: Spilled[Any] = Spilled(keep=1)
    spilled.append(Pickled(pickle.dumps("held"), counted_loads))
    spilled.append(Pickled(pickle.dumps("on disk"), counted_loads))
    spilled.append("plain")
    assert LOADS == []
    assert spilled[2] == "plain" and LOADS == []
    assert spilled[1] == "on disk" and len(LOADS) == 1


def _summary() -> AccountSummary:
    coverage = Coverage(365.0, 3, 3, 2, 1, 1, 0, 9, 9, 8, 8, 2, 2, 1, 1, 2500.0, (), ("few_contacts",), 0.5)
    relationship = Relationship("perceptual_recognition", "friendship", {"level": {"health": 50.0}},
                                stage_because=("a reason",), level_next=("next",))
    return AccountSummary(Account("a1", "crm", name="Acme", tier="S", created_at=datetime(2025, 1, 2, tzinfo=timezone.utc)),
                          "a1", {"health": 50.0}, {"health": 40.0}, (Finding("A_CODE", "high", "m", {"n": 1}),),
                          relationship, coverage, {"top_holder": "u1"}, 12.5)


def test_a_stored_summary_unpickles_each_part_when_first_read_and_equals_the_summary() -> None:
    """The audit's cache keeps a hit's record, key, scores, coverage and effort at hand;
    the rest unpickled on the first read of any of it."""
    summary = _summary()
    stored = StoredSummary.of(summary)
    read = pickle.loads(pickle.dumps(stored))  # noqa: S301 - the test's own bytes (as spilled)
    assert read.key == "a1" and read.tier == "S" and read.assessment == summary.assessment
    assert read.coverage == summary.coverage and read.effort == 12.5
    assert read.account == summary.account and "findings" not in vars(read) and "relationship" not in vars(read)
    assert read.findings == summary.findings and "relationship" in vars(read)
    assert read.relationship == summary.relationship
    assert stored == summary and summary == stored and read == summary
    assert isinstance(stored, AccountSummary) and stored != replace(summary, effort=1.0)
    assert replace(stored, effort=1.0) == replace(summary, effort=1.0)
    with pytest.raises(AttributeError):
        _ = stored.no_such_field  # type: ignore[attr-defined]


def test_a_stored_summary_that_cannot_be_read_says_so() -> None:
    stored = StoredSummary.of(_summary())
    vars(stored)["_rest"] = pickle.dumps(print)  # a callable the cache never stores
    with pytest.raises(StoreError, match="cannot read"):
        _ = stored.findings
