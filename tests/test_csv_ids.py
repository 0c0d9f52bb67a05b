"""The CSV import's set of referenced ids (:class:`crmlink.plugins.csv.ids.IdSet`) answers
as a set of the ids would, across its merges of the latest ids into the sorted array."""

from __future__ import annotations

import random

import pytest

from crmlink.plugins.csv import ids as ids_module
from crmlink.plugins.csv.ids import IdSet


def test_the_set_answers_as_a_set_of_the_ids_across_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids_module, "RECENT", 7)  # many merges
    chosen = random.Random(3)
    kept, plain = IdSet(), set()
    for step in range(60):
        batch = [f"CON-{chosen.randrange(500):06d}" for _ in range(chosen.randrange(1, 20))]
        if step % 3:
            kept.update(batch)
        else:
            for one in batch:
                kept.add(one)
        plain.update(batch)
        asked = [f"CON-{k:06d}" for k in range(0, 520, 7)] + ["", "con-000001", "CON-000001 "]
        assert [one in kept for one in asked] == [one in plain for one in asked]
        assert kept.missing(asked) == set(asked) - plain
    assert len(kept._sorted) > 0 and len(kept._recent) < 7


def test_an_empty_set_holds_nothing() -> None:
    assert "A1" not in IdSet() and IdSet().missing(["A1", "A2"]) == {"A1", "A2"}
