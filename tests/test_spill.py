"""The audit's on-disk sequences (crmlink.core.analysis.spill) behave as lists of the
same items, in any order a view asks for, and the streamed document that holds them
reads and compares like the whole one."""

from __future__ import annotations

import io
import pickle
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmlink.core.analysis import spill
from crmlink.core.analysis.spill import Chained, Pickled, SortedNumbers, Spilled, SpilledView
from tests.conftest import SAMPLE

items = st.lists(st.one_of(st.integers(), st.text(max_size=30), st.binary(max_size=3000),
                           st.tuples(st.integers(), st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False)))),
                 max_size=60)


@given(items, st.data())
def test_a_spilled_sequence_reads_like_the_list_it_was_given(values: list[Any], data: st.DataObject) -> None:
    spilled = Spilled(values, keep=data.draw(st.sampled_from([0, 1, 5, 100])),
                      hold=data.draw(st.sampled_from([0, 1, 2000, 1 << 20])))
    assert len(spilled) == len(values) and list(spilled) == values and spilled == values and values == spilled
    if values:
        index = data.draw(st.integers(-len(values), len(values) - 1))
        assert spilled[index] == values[index]
    low, high, step = data.draw(st.tuples(st.integers(-70, 70), st.integers(-70, 70), st.sampled_from([1, 2, -1, 3])))
    assert spilled[low:high:step] == values[low:high:step]
    order = data.draw(st.lists(st.integers(0, len(values) - 1), max_size=80)) if values else []
    view = spilled.view(order)
    assert isinstance(view, SpilledView)
    assert list(view) == [values[n] for n in order] and len(view) == len(order) and view == [values[n] for n in order]
    if order:
        assert view[-1] == values[order[-1]] and view[1:] == [values[n] for n in order[1:]]
    assert list(view) == list(view)  # read again, from the start
    spilled.close()


def test_items_with_a_weight_are_held_up_to_the_bytes_and_others_up_to_the_count() -> None:
    """Bytes and pickled items count their length against ``hold``, other items nothing:
    past ``hold`` the weighed ones go to disk while the others are still held, up to
    ``keep`` items."""
    mixed = [b"ab", {"x": 1}, b"cd", b"ef", {"y": 2}, b"", {"z": 3}]
    spilled = Spilled(mixed, keep=4, hold=3)
    assert spilled._held == [b"ab", {"x": 1}, {"y": 2}, b""] and spilled == mixed
    assert list(spilled.view([6, 3, 1, 0])) == [mixed[6], mixed[3], mixed[1], mixed[0]]
    pickled = Spilled([Pickled(b"1234", bytes.decode), "s", Pickled(b"5", bytes.decode)], hold=4)
    assert len(pickled._held) == 2 and list(pickled) == ["1234", "s", "5"]
    assert len(Spilled([{"a": 1}] * 5, keep=3, hold=0)._held) == 3
    for done in (spilled, pickled):
        done.close()


def test_bytes_and_pickled_items_go_to_disk_as_the_bytes_they_are() -> None:
    """Past the bound, a ``bytes`` item and a :class:`Pickled` one's bytes are written as
    they are (no pickle around them), each read back with its own ``loads``."""
    items: list[Any] = [Pickled(b"12", bytes.decode), b"raw", Pickled(b"3", bytes.hex), ("t", 1), b"", Pickled(b"4", bytes.decode)]
    spilled = Spilled(items, keep=0)
    assert spilled._held == [] and spilled._size == len(b"12raw3") + len(pickle.dumps(("t", 1), pickle.HIGHEST_PROTOCOL)) + 1
    assert list(spilled) == ["12", b"raw", "33", ("t", 1), b"", "4"]
    assert list(spilled.view([5, 2, 0])) == ["4", "33", "12"]
    spilled.close()


def test_items_read_out_of_the_file_s_order_are_read_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A document reads its accounts in another order than they were spilled in: each
    item read out of order costs its own bytes, not the megabyte after it; items read in
    the file's order are read a megabyte at a time."""
    items = [bytes([n]) * 100_000 for n in range(30)]
    spilled = Spilled(items, keep=0)
    reads: list[int] = []
    real = spill.os.pread

    def pread(fd: int, size: int, offset: int) -> bytes:
        reads.append(size)
        return real(fd, size, offset)

    monkeypatch.setattr(spill.os, "pread", pread)
    assert list(spilled.view(range(29, -1, -1))) == items[::-1]
    assert reads == [100_000] * 30
    reads.clear()
    assert list(spilled) == items
    assert len(reads) <= 4 and all(size >= spill._READ for size in reads[1:])
    spilled.close()


@given(st.lists(st.lists(st.tuples(st.integers(), st.text(max_size=5)), max_size=8), max_size=5), st.data())
def test_fields_of_spilled_pairs_chained_read_like_one_list(parts: list[list[tuple[int, str]]],
                                                            data: st.DataObject) -> None:
    chained, firsts, seconds, expected = Chained[int](), Chained[str](), [], []
    for values in parts:
        spilled = Spilled(values, keep=data.draw(st.sampled_from([0, 2, 100])))
        order = data.draw(st.permutations(range(len(values))))
        chained.add(spilled.field(order, 0))
        firsts.add(spilled.view(order))
        seconds.extend(values[n][1] for n in order)
        expected.extend(values[n][0] for n in order)
    assert len(chained) == len(expected) and list(chained) == expected and chained == expected
    assert [pair[1] for pair in firsts] == seconds and chained != "no sequence"
    if expected:
        index = data.draw(st.integers(-len(expected), len(expected) - 1))
        assert chained[index] == expected[index] and chained[1:-1] == expected[1:-1]
    with pytest.raises(IndexError):
        chained[len(expected)]


def test_items_larger_than_a_read_and_reads_that_interleave() -> None:
    big = [bytes([n]) * (1 << 20) + b"x" * n for n in range(5)]
    spilled = Spilled(big, keep=1)
    first, second = iter(spilled), iter(spilled.view([4, 0, 3]))
    assert next(first) == big[0] and next(second) == big[4] and next(first) == big[1] and next(second) == big[0]
    spilled.append(b"late")
    assert spilled[-1] == b"late" and list(spilled)[:5] == big
    assert spilled != big and spilled != "not a sequence" and Spilled([]) == []


attention = st.tuples(st.integers(-4, 0), st.integers(0, 4), st.booleans(),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4))


@given(st.lists(attention, max_size=80), st.integers(1, 12), st.integers(1, 5), st.randoms())
def test_sorted_numbers_are_the_numbers_of_the_sorted_pairs_however_many_runs(
        keys: list[tuple[int, int, bool, float, str]], keep: int, block: int, shuffle: Any) -> None:
    numbers = list(range(len(keys)))
    shuffle.shuffle(numbers)  # numbers come in any order; ties on the key go to the lower number
    sorter: SortedNumbers[tuple[int, int, bool, float, str]] = SortedNumbers(keep, block=block)
    for key, number in zip(keys, numbers, strict=True):
        sorter.add(key, number)
        assert len(sorter._pairs) < keep  # past ``keep`` the pairs are on disk, not held
    assert len(sorter) == len(keys)
    assert list(sorter.numbers()) == [number for _, number in sorted(zip(keys, numbers, strict=True))]


def test_the_first_items_stay_in_memory_and_the_rest_go_to_disk() -> None:
    first, second = {"a": 1}, {"b": 2}
    spilled = Spilled([first, second], keep=1)
    assert spilled[0] is first and spilled[1] == second and spilled[1] is not second
    assert spilled._file is not None and Spilled([first], keep=1)._file is None
    spilled.close()


@pytest.mark.parametrize("keep", [0, 7, None])
def test_the_streamed_document_holds_its_entries_on_disk_and_equals_the_whole_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int | None) -> None:
    from click.testing import CliRunner

    from crmlink.cli import cli
    from crmlink.core.analysis.assemble import slim_entry
    from crmlink.core.analysis.audit import Audit
    from crmlink.core.analysis.config import load_config
    from crmlink.core.host import get_plugin_host
    from crmlink.core.store import Store

    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    assert CliRunner().invoke(cli, ["sync", "csv", str(SAMPLE), "--db", store_url]).exit_code == 0

    def audit() -> Audit:
        return Audit(Store(store_url), get_plugin_host(load_entrypoints=False), load_config(None), date(2026, 11, 20))

    whole = audit().document()
    if keep is not None:  # past this many accounts and deals (or bytes of them), on disk
        monkeypatch.setattr(spill, "KEEP", keep)
        monkeypatch.setattr(spill, "HOLD_BYTES", keep * 1000)
    streamed = audit().stream()
    written, spilled_text = io.StringIO(), io.StringIO()
    audit().stream(None, spilled_text, indent=2)
    whole.write_json(written, indent=2)
    assert _without_time(spilled_text.getvalue()) == _without_time(written.getvalue())
    assert isinstance(streamed.accounts, SpilledView) and isinstance(streamed.opportunities, Chained)
    assert isinstance(whole.accounts, list) and isinstance(whole.opportunities, list)
    assert streamed.opportunities == whole.opportunities and len(whole.opportunities) > 0
    assert list(streamed.accounts) == [slim_entry(e) for e in whole.accounts] and len(whole.accounts) == 50
    assert streamed.accounts[3:5] == [slim_entry(e) for e in whole.accounts[3:5]]


def _without_time(text: str) -> str:
    return re.sub(r'"generated_at": ?"[^"]*"', '"generated_at": ""', text, count=1)
