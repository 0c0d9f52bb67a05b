"""What judging an account computes the fast way equals the plain formulas, exactly (``==``
on floats, the same key order), on random accounts: the contacts' stats (team strength,
holders, best holder, days since), the evidence coverage, the iron triangle, the engaged
contacts a view keeps, and the departure simulation, whose health is computed from the
layers' values alone against the full scores of a view without the user, and the scores
of a view that wants no evidence (the previous period's), whose values are the full ones'."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlink import Account, Contact, ContactStat, Opportunity, User
from crmlink.core import vocab
from crmlink.core.analysis.accumulate import AccountData, Pair, WindowCounts
from crmlink.core.analysis.config import DEFAULTS
from crmlink.core.analysis.coverage import Coverage, _gaps, _thin, account_coverage, evidence_ratio
from crmlink.core.analysis.view import DAY, AccountView, infer_role, pair_strengths_of
from crmlink.plugins.method import scores

AS_OF = 1_790_000_000.0
USERS = {u.remote_id: u for u in [
    User(remote_id="u1", name="Ana", team_role="AR", seniority="vp"),
    User(remote_id="u2", name="Ben", team_role="SR", seniority="manager"),
    User(remote_id="u3", name="Cy", team_role="FR", active=False),
    User(remote_id="u10", name="Di", team_role="executive", seniority="c_suite"),
    User(remote_id="U4", name="Ed")]}
CONTACT_IDS = ["c1", "c2", "c10", "C3", "c4"]

#: seconds before the audit instant, or never; 30 and 90 days sit on window ends
moments = st.one_of(st.none(), st.sampled_from([0.0, 30 * DAY, 90 * DAY]), st.floats(0.0, 800 * DAY))
strengths = st.one_of(st.sampled_from([0.0, 35.0, 40.0]), st.floats(0.0, 100.0))


def _at(age: float | None) -> float | None:
    return None if age is None else AS_OF - age


contacts = st.builds(
    lambda rid, department, seniority, role, stance, active, title: Contact(
        remote_id=rid, name=rid.upper(), title=title, department=department, seniority=seniority,
        buying_role=role, stance=stance, active=active),
    st.sampled_from(CONTACT_IDS), st.sampled_from((None, *vocab.DEPARTMENTS)),
    st.sampled_from((None, *vocab.SENIORITIES)), st.sampled_from((None, *vocab.BUYING_ROLES)),
    st.one_of(st.none(), st.integers(-2, 3)), st.booleans(), st.sampled_from([None, "", "Head of IT"]))
pairs = st.builds(
    lambda weight, inbound, outbound, two_way, last: Pair(weight, inbound, outbound, _at(two_way), _at(last)),
    st.one_of(st.sampled_from([0.0, 2.5]), st.floats(0.0, 40.0)), st.integers(0, 4), st.integers(0, 4),
    moments, moments)
deals = st.builds(
    lambda n, amount, closed, deleted: Opportunity(remote_id=f"o{n}", amount=amount, is_closed=closed, deleted=deleted),
    st.integers(0, 9), st.one_of(st.none(), st.decimals(0, 10**6, places=2).map(Decimal)),
    st.one_of(st.none(), st.booleans()), st.booleans())


@st.composite
def views(draw: Any) -> AccountView:
    found = {c.remote_id: c for c in draw(st.lists(contacts, max_size=5))}
    data = AccountData(AS_OF)
    data.pairs = draw(st.dictionaries(st.tuples(st.sampled_from(sorted(USERS)), st.sampled_from(CONTACT_IDS)),
                                      pairs, max_size=14))
    data.contact_last = {c: [_at(a), _at(b)] for c, (a, b) in
                         draw(st.dictionaries(st.sampled_from(CONTACT_IDS), st.tuples(moments, moments))).items()}
    data.user_last = {u: AS_OF - age for u, age in
                      draw(st.dictionaries(st.sampled_from(sorted(USERS)), st.floats(0.0, 400 * DAY))).items()}
    data.exec_links = [AS_OF - age for age in draw(st.lists(st.floats(0.0, 400 * DAY), max_size=3))]
    data.methods = {m: AS_OF - age for m, age in draw(st.dictionaries(
        st.sampled_from(["site_visit", "exhibition", "tech_exchange"]), st.floats(0.0, 400 * DAY))).items()}
    interactions, with_contact, with_user, paired = sorted(draw(st.lists(st.integers(0, 30), min_size=4, max_size=4)),
                                                           reverse=True)
    data.window = WindowCounts(interactions, with_contact, with_user, paired)
    config = {**DEFAULTS, "strength": {**DEFAULTS["strength"], "holder_threshold": draw(st.sampled_from([20.0, 35]))}}
    account = Account(remote_id="A1", name="Aurora", tier=draw(st.sampled_from([None, "S", "A", "B", "C"])),
                      owner_id="u3")
    return AccountView(account, data, list(found.values()), USERS, draw(st.lists(deals, max_size=4)), config)


def reference_stats(view: AccountView) -> dict[str, ContactStat]:
    """``contact_stats`` by the formulas: each contact in id order, its pair strengths in
    (user, contact) order, the noisy-OR of them, the holders by id, days since as
    ``days_since`` gives them."""
    strength = view.config["strength"]
    values = pair_strengths_of(view.data.pairs, view.as_of, strength, view.excluded_users)
    found = {}
    for contact in sorted(view.contacts, key=lambda c: c.remote_id):
        mine = {u: s for (u, c), s in values.items() if c == contact.remote_id}
        team = 100.0 * (1.0 - math.prod([1.0 - s / 100.0 for s in mine.values()]))
        holders = tuple(sorted(u for u, s in mine.items() if s >= strength["holder_threshold"]))
        last = view.data.contact_last.get(contact.remote_id, [None, None])
        found[contact.remote_id] = ContactStat(contact, infer_role(contact), mine, team, holders,
                                               view.days_since(last[1]), view.days_since(last[0]))
    return found


def reference_best_holder(stat: ContactStat) -> str | None:
    if not stat.strengths:
        return None
    best = max(stat.strengths.values())
    return min(u for u, s in stat.strengths.items() if s == best)


#: a view is a lot of data to draw; on a loaded machine its drawing is slow, not wrong
SLOW = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)


@settings(SLOW, max_examples=300)
@given(views())
def test_contact_stats_are_the_formulas(view):
    made, expected = view.contact_stats, reference_stats(view)
    assert list(made) == list(expected)
    for rid, stat in made.items():
        assert stat == expected[rid] and list(stat.strengths.items()) == list(expected[rid].strengths.items())
        assert stat.best_holder == reference_best_holder(expected[rid])
        assert all(type(v) is float for v in (stat.team, *stat.strengths.values()))
    for user in USERS:  # and without each user, from the view's stats
        after = view.without_user(user)
        assert after.contact_stats == reference_stats(after)
        assert all(s.best_holder == reference_best_holder(s) for s in after.contact_stats.values())


def reference_coverage(view: AccountView) -> Coverage:
    """The evidence counts as the module docstring of :mod:`.coverage` describes them."""
    settings_ = view.config["coverage"]
    window = float(settings_["window_days"])
    live = [c for c in view.contacts if c.active and not c.deleted]
    classified = sum(1 for c in live if c.title or c.seniority or c.department or c.buying_role)
    counts = view.data.window
    reached = sum(1 for last in view.data.contact_last.values()
                  if last[0] is not None and (view.as_of - last[0]) / DAY <= window)
    people = sum(1 for last in view.data.user_last.values() if (view.as_of - last) / DAY <= window)
    open_deals = [o for o in view.opportunities if not o.is_closed and not o.deleted]
    return Coverage(
        window, len(live), classified, sum(1 for c in live if c.title), sum(1 for c in live if c.department),
        sum(1 for c in live if c.seniority), sum(1 for c in live if c.buying_role), counts.interactions,
        counts.with_contact, counts.with_user, counts.paired, reached, people,
        sum(1 for o in view.opportunities if not o.deleted), len(open_deals),
        round(sum((float(o.amount) if o.amount is not None else 0.0 for o in open_deals), 0.0), 2),
        _gaps(len(live), classified, counts.interactions, counts.with_contact, counts.with_user, counts.paired),
        _thin(len(live), classified, counts.interactions, counts.paired, settings_),
        evidence_ratio(len(live), classified, counts.interactions, counts.paired, settings_))


@SLOW
@given(views())
def test_coverage_is_the_counts(view):
    made, expected = account_coverage(view), reference_coverage(view)
    assert made == expected and vars(made) == vars(expected)
    assert type(made.open_pipeline) is float


def reference_triangle(view: AccountView, window: float) -> dict[str, bool]:
    """Each role of ours has an engaged pair, two-way within ``window``, with a counterpart."""
    threshold = view.config["strength"]["engaged_threshold"]
    found = dict.fromkeys(scores.COUNTERPARTS, False)
    for (user_id, contact_id), strength in view.pair_strengths.items():
        user, stat = view.users.get(user_id), view.contact_stats.get(contact_id)
        role = user.team_role if user else None
        last = view.data.pairs[(user_id, contact_id)].last_two_way
        if (strength >= threshold and role in found and stat is not None and last is not None
                and (view.as_of - last) / DAY <= window):
            departments, roles = scores.COUNTERPARTS[role]
            found[role] = found[role] or stat.contact.department in departments or stat.role in roles
    return found


@SLOW
@given(views(), st.sampled_from([30, 90.0, 400]))
def test_iron_triangle_and_engaged_are_the_rules(view, window):
    assert scores.iron_triangle(view, window) == reference_triangle(view, window)
    threshold = view.config["strength"]["engaged_threshold"]
    for days in (window, None, window):  # the second ask of a window is the view's kept list
        engaged = view.engaged(days)
        assert engaged == [s for s in view.contact_stats.values() if s.team >= threshold and s.contact.active
                           and (days is None or (s.days_since_two_way is not None and s.days_since_two_way <= days))]
        engaged.clear()  # a caller's list is its own


@settings(SLOW, max_examples=200)
@given(views(), st.sampled_from(sorted(USERS)))
def test_departure_is_the_health_of_the_view_without_the_user(view, user):
    found = scores.departure(view, user)
    fresh = AccountView(view.account, view.data, view.contacts, view.users, view.opportunities, view.config,
                        frozenset({user}))  # every value computed again, nothing shared with the view
    before, after = scores.health_of(view) or 0.0, scores.health_of(fresh) or 0.0
    cap = view.config["strength"]["one_way_cap"]
    lost = sorted(c for c, s in reference_stats(view).items() if s.is_decision_maker and s.contact.active
                  and s.team > cap and reference_stats(fresh)[c].team <= cap)
    assert (found["health_before"], found["health_after"], found["health_drop"]) == (
        round(before, 1), round(after, 1), round(before - after, 1))
    assert found["decision_makers_losing_all_coverage"] == lost


@settings(SLOW, max_examples=200)
@given(views())
def test_a_view_that_wants_no_evidence_gets_the_same_values(view):
    bare = AccountView(view.account, view.data, view.contacts, view.users, view.opportunities, view.config,
                       wants_evidence=False)  # nothing computed shared with the view
    full, values = scores.score_all(view), scores.score_all(bare)
    assert [(s.name, s.value) for s in values] == [(s.name, s.value) for s in full]
    assert all(s.evidence == {} for s in values)
    assert any(s.evidence for s in full)  # the full path's evidence is what the bare one skips
