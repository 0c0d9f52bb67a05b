"""The account view's derived values, computed the fast way, equal the method's formulas
computed the straightforward way, exactly (``==`` on floats, the same key order): pair
strengths on random pairs (one-way caps, the freshness grace period, ties with the cap
included), team strengths and holders on random strengths, and a contact's stat as
the view makes it against ``ContactStat(...)``. And what views share: the contacts'
roles and ``contacts_derived`` values are computed once for a view, its previous
period's and its departure simulations."""

from __future__ import annotations

import dataclasses
import math
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmlink import Account, Contact, ContactStat, Interaction, User
from crmlink.core.analysis.accumulate import Pair
from crmlink.core.analysis.view import (
    DAY,
    _stat,
    _team,
    infer_role,
    pair_strength,
    pair_strengths_of,
)
from crmlink.testing import account_view

AS_OF = 1_790_000_000.0


def reference_strength(pair: Pair, as_of: float, strength: dict[str, Any]) -> float:
    """docs/method.md's pair strength, step by step."""
    saturation = 1.0 - math.exp(-pair.weight / strength["k"])
    reciprocity = min(1.0, pair.inbound / max(1, pair.outbound))
    value = 100.0 * saturation * (0.4 + 0.6 * reciprocity)
    if pair.inbound == 0:
        value = min(value, strength["one_way_cap"])
    if pair.last_any is not None:
        silent = max(0.0, (as_of - pair.last_any) / DAY - strength["freshness_grace_days"])
        value *= math.pow(2.0, -silent / strength["freshness_half_life_days"])
    return float(value)


def reference_team(strengths: dict[str, float], threshold: float) -> tuple[float, tuple[str, ...]]:
    team = 100.0 * (1.0 - math.prod([1.0 - s / 100.0 for s in strengths.values()]))
    return team, tuple(sorted([u for u, s in strengths.items() if s >= threshold]))


settings = st.fixed_dictionaries({
    "k": st.sampled_from([1, 2.5, 3.0, 7]),
    "one_way_cap": st.sampled_from([40, 25, 25.5, 100]),
    "freshness_grace_days": st.sampled_from([0, 14, 30.0]),
    "freshness_half_life_days": st.sampled_from([30, 45.0, 90]),
})
#: days before the audit instant; 14 and 30 sit exactly on a grace period's end
ages = st.one_of(st.none(), st.sampled_from([0.0, 14.0, 30.0]), st.floats(0.0, 2000.0))
pairs = st.builds(
    lambda weight, inbound, outbound, age: Pair(weight, inbound, outbound, None,
                                                None if age is None else AS_OF - age * DAY),
    st.one_of(st.sampled_from([0.0, 1.0, 2.5]), st.floats(0.0, 50.0)),
    st.integers(0, 6), st.integers(0, 6), ages)
keys = st.tuples(st.sampled_from(["u1", "u2", "u10", "U3"]), st.sampled_from(["c1", "c2", "C3"]))


@given(st.dictionaries(keys, pairs, max_size=12), settings, st.sets(st.sampled_from(["u1", "u2", "U3"])))
def test_pair_strengths_are_the_formulas_in_key_order(found, strength, excluded):
    expected = {key: reference_strength(found[key], AS_OF, strength)
                for key in sorted(found) if key[0] not in excluded}
    computed = pair_strengths_of(found, AS_OF, strength, frozenset(excluded))
    assert list(computed.items()) == list(expected.items())
    assert all(type(value) is float for value in computed.values())
    for pair in found.values():
        assert pair_strength(pair, AS_OF, strength) == reference_strength(pair, AS_OF, strength)


def test_one_way_strength_capped_at_exactly_the_cap():
    strong_one_way = Pair(50.0, 0, 3, None, AS_OF)
    assert pair_strengths_of({("u", "c"): strong_one_way}, AS_OF, {
        "k": 3.0, "one_way_cap": 25, "freshness_grace_days": 14, "freshness_half_life_days": 45}) == {("u", "c"): 25.0}


strength_values = st.one_of(st.sampled_from([0.0, 20.0, 35.0, 100.0]), st.floats(0.0, 100.0))


@given(st.dictionaries(st.sampled_from(["u1", "u2", "u10", "U3", "a"]), strength_values, max_size=5),
       st.sampled_from([20.0, 35.0, 35]))
def test_team_strength_and_holders(strengths, threshold):
    assert _team(strengths, threshold) == reference_team(strengths, threshold)


def test_a_stat_made_by_the_view_is_the_dataclass():
    args = (Contact(remote_id="C1", name="Dana"), "decision_maker", {"u1": 50.0}, 50.0, ("u1",), 3.5, None)
    made = _stat(*args)
    assert made == ContactStat(*args) and vars(made) == vars(ContactStat(*args))
    assert made.best_holder == "u1" and made.is_decision_maker
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.team = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(("strengths", "holder"), [
    ({}, None), ({"u2": 40.0, "u1": 40.0, "u3": 10.0}, "u1"), ({"b": 10.0, "a": 60.0}, "a")])
def test_best_holder_is_the_strongest_then_the_smallest_id(strengths, holder):
    stat = ContactStat(Contact(remote_id="C1"), None, strengths, 0.0, (), None, None)
    assert stat.best_holder == holder


def _view():
    contacts = [Contact(remote_id=f"C{i}", name=f"N{i}", seniority=seniority, department=department)
                for i, (seniority, department) in enumerate([("vp", None), ("manager", "it"), (None, "finance")])]
    users = [User(remote_id="U1", name="Alice"), User(remote_id="U2", name="Bob")]
    meetings = [Interaction(remote_id=f"I{i}", kind="meeting", direction="two_way", occurred_at=day,
                            user_ids=[user], contact_ids=[contact])
                for i, (day, user, contact) in enumerate([("2026-06-01", "U1", "C0"), ("2026-10-01", "U2", "C1"),
                                                          ("2026-11-01", "U1", "C2")])]
    return account_view(Account(remote_id="A1", name="Aurora"), contacts=contacts, users=users,
                        interactions=meetings, as_of=date(2026, 11, 20))


def test_views_of_the_same_contacts_share_what_follows_from_them():
    view = _view()
    calls = []

    def count(contacts):
        calls.append(len(contacts))
        return len(contacts)

    assert view.previous is not None and view.previous.contacts is view.contacts
    assert view.previous.contacts_derived("k", count) == 3
    assert view.contacts_derived("k", count) == 3
    assert view.without_user("U1").contacts_derived("k", count) == 3
    assert calls == [3]
    assert [s.role for s in view.contact_stats.values()] == [infer_role(c) for c in view.contacts]


def test_the_departure_view_is_computed_as_a_view_without_the_user():
    view = _view()
    before = dict(view.contact_stats)
    after = view.without_user("U1")
    fresh = dataclasses.replace(view, excluded_users=frozenset({"U1"}), previous=None)
    assert after.pair_strengths == fresh.pair_strengths
    assert after.contact_stats == fresh.contact_stats
    assert view.contact_stats == before
