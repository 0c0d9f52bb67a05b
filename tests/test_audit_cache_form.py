"""The audit cache's stored form and the store's writes around it: an item a
:class:`~crmlink.core.analysis.spill.Spilled` holds still pickled reads as the item,
whether it stays in memory or goes to disk, and is unpickled only when read."""

from __future__ import annotations

import pickle
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crmlink.core.analysis.spill import Pickled, Spilled

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
