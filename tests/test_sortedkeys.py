"""The packed, sorted keys the audit holds for a whole source read as the sorted list
they were made of: every index, slice and search."""

from __future__ import annotations

import pickle
from bisect import bisect_left

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmlink.core.analysis.sortedkeys import STEP, SortedKeys

# remote ids: any text (accented, wide and astral characters too), a few sharing prefixes
_keys = st.lists(st.text(min_size=0, max_size=6) | st.sampled_from(["ACC-1", "ACC-10", "é", "\U0001f600x"]),
                 max_size=4 * STEP + 3).map(lambda found: sorted(set(found)))


@given(_keys, st.lists(st.text(max_size=6), max_size=20))
def test_reads_as_the_sorted_list(keys: list[str], others: list[str]) -> None:
    packed = SortedKeys(keys)
    assert len(packed) == len(keys)
    assert list(packed) == keys
    assert [packed[i] for i in range(-len(keys), len(keys))] == keys + keys
    assert packed[1:-1] == keys[1:-1] and packed[::3] == keys[::3] and packed[5:2] == []
    for key in [*keys, *others]:
        assert packed.position(key) == bisect_left(keys, key)
        assert (key in packed) == (key in keys)
        assert bisect_left(packed, key) == bisect_left(keys, key)  # as a plain sequence too
        if key in keys:
            assert packed.index(key) == keys.index(key)
        else:
            with pytest.raises(ValueError, match="not among the keys"):
                packed.index(key)
    assert pickle.loads(pickle.dumps(packed))[:] == keys  # noqa: S301 - made here


def test_out_of_range_and_other_types() -> None:
    packed = SortedKeys(["a", "b"])
    with pytest.raises(IndexError):
        packed[2]
    with pytest.raises(IndexError):
        packed[-3]
    assert 1 not in packed
    assert list(SortedKeys()) == [] and SortedKeys().position("x") == 0


@pytest.mark.parametrize("keys", [["b", "a"], ["a", "a"]])
def test_refuses_keys_out_of_order_or_twice(keys: list[str]) -> None:
    with pytest.raises(ValueError, match="out of order"):
        SortedKeys(keys)
