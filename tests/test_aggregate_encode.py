"""The aggregates' encoder against a plain statement of what it computes: each series'
running sums and latest flagged times start again at the series, in the order of its
sorted entries (crmlink.core.analysis.aggregate_build: one pass over every series at once)."""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crmlink.core.analysis.aggregate_build import _flagged, _pairs
from crmlink.core.analysis.aggregates import _NONE

HALF_LIFE = 90 * 86400.0
#: few distinct times, so that entries tie
TIMES = st.sampled_from([1.7e9 + 3600.0 * k for k in range(6)] + [1.7e9 + 0.5])
SHARES = st.sampled_from([0.2, 1.0 / 3.0, 0.5, 1.0, 2.5])
PAIR = st.tuples(TIMES, SHARES, st.booleans(), st.booleans(), st.booleans())


def latest_so_far(entries: list[tuple[Any, ...]], flag: int) -> list[float]:
    return list(accumulate((e[0] if e[flag] else _NONE for e in entries), max))


@given(st.lists(st.lists(PAIR, min_size=1, max_size=6), max_size=8))
def test_the_pairs_arrays_are_each_pair_s_own(series: list[list[tuple[float, float, bool, bool, bool]]]) -> None:
    out: dict[str, list[Any]] = {name: [] for name in ("pt", "pw", "pi", "po", "pm", "pr")}
    lengths = _pairs(out, [list(s) for s in series], HALF_LIFE)
    assert lengths == [len(s) for s in series]
    expected: dict[str, list[Any]] = {name: [] for name in out}
    theirs = ours = 0
    for entries in map(sorted, series):
        ref = entries[-1][0]
        expected["pr"].append(ref)
        expected["pt"].extend(e[0] for e in entries)
        expected["pw"].extend(accumulate(w * 2.0 ** ((t - ref) / HALF_LIFE) for t, w, _, _, _ in entries))
        expected["pm"].extend(latest_so_far(entries, 4))
        for e in entries:
            expected["pi"].append(theirs)
            expected["po"].append(ours)
            theirs, ours = theirs + e[2], ours + e[3]
    expected["pi"].append(theirs)
    expected["po"].append(ours)
    assert out == expected  # the same floats, not close ones


@given(st.lists(st.lists(st.tuples(TIMES, st.booleans()), max_size=6), max_size=8))
def test_a_flagged_series_keeps_its_latest_flagged_time(series: list[list[tuple[float, bool]]]) -> None:
    times: list[float] = []
    latest: list[float] = []
    lengths = _flagged(times, latest, [list(s) for s in series])
    assert lengths == [len(s) for s in series]
    ordered = [sorted(s) for s in series]
    assert times == [t for s in ordered for t, _ in s]
    assert latest == [value for s in ordered for value in latest_so_far(s, 1)]
