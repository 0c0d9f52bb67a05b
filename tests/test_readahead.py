"""Reading ahead in a thread (crmlink.core.readahead): order, errors, stopping early."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from crmlink.core.readahead import ReadAhead


def test_the_items_come_out_in_order_then_the_error_where_its_item_would_have() -> None:
    def items() -> Iterator[int]:
        yield from range(50)
        raise ValueError("line 51 is bad")

    got: list[int] = []
    with ReadAhead(items()) as (ahead, _), pytest.raises(ValueError, match="line 51"):
        for item in ahead:
            got.append(item)
    assert got == list(range(50))


def test_leaving_early_stops_the_reading_and_closes_the_items() -> None:
    closed = threading.Event()
    read: list[int] = []

    def items() -> Iterator[int]:
        try:
            for number in range(1000):
                read.append(number)
                yield number
        finally:
            closed.set()

    with ReadAhead(items(), depth=2) as (ahead, _):
        for item in ahead:
            if item == 3:
                break
    assert closed.is_set()
    assert len(read) <= 4 + 3  # no further ahead than the queue, the item in hand and the one being read
    assert not any(t.name == "crmlink-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_nothing_is_read_while_paused() -> None:
    read: list[int] = []

    def items() -> Iterator[int]:
        for number in range(100):
            read.append(number)
            yield number

    with ReadAhead(items(), depth=100) as (ahead, paused):
        first = next(ahead)
        with paused:
            before = len(read)
            threading.Event().wait(0.05)
            assert len(read) == before
        assert first == 0 and list(ahead) == list(range(1, 100))
