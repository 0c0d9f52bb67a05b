"""The garbage collector spared during a sync or an aggregates' build (crmlink.core.collector)."""

from __future__ import annotations

import gc

from crmlink.core import collector


def test_the_outermost_block_sets_and_restores_the_collector() -> None:
    before = gc.get_threshold()
    held = [object() for _ in range(3)]  # alive on entry: frozen
    with collector.spared():
        assert gc.get_threshold()[0] == collector.YOUNG_OBJECTS
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with collector.spared():  # a sync's refresh: the sync's block stays in charge
            assert gc.get_threshold()[0] == collector.YOUNG_OBJECTS
            assert gc.get_freeze_count() == frozen
        assert gc.get_threshold()[0] == collector.YOUNG_OBJECTS
        assert gc.get_freeze_count() == frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert held


def test_an_error_in_the_block_restores_the_collector() -> None:
    before = gc.get_threshold()
    try:
        with collector.spared():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with collector.spared():  # and a later block takes charge again
        assert gc.get_threshold()[0] == collector.YOUNG_OBJECTS
