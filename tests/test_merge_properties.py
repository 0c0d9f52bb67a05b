"""Properties of the merge plan (crmlink.core.merge): the records it joins do not depend on
the order of the sources, a merged record never holds two records of one source, and two
contacts with different canonical emails are never one person."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crmlink import Account, Contact, IdentitySettings, User
from crmlink.core.identity import canonical_address, normalize_address
from crmlink.core.merge import (
    ACCOUNT,
    CONTACT,
    MatchRules,
    SourceRecords,
    company_key,
    person_key,
    plan_merge,
)

SOURCES = ("sf", "hs", "csv")
DOMAINS = ("bank.example", "WWW.Bank.example", "telco.example", "gmail.com", None)
NAMES = ("Pinnacle Bank", "Pinnacle Bank Ltd", "Harbor Telecom", "东海移动有限公司", "东海移动", None)
PEOPLE = ("Lena Fischer", "Fischer, Lena", "Omar Khan", None)
EMAILS = ("lena@bank.example", "Lena+x@bank.example", "omar@bank.example", "l.ena@gmail.com", "lena@gmail.com", None)


@st.composite
def portfolios(draw: st.DrawFn) -> dict[str, SourceRecords]:
    result = {}
    for source in draw(st.lists(st.sampled_from(SOURCES), min_size=2, max_size=3, unique=True)):
        accounts = [Account(f"A{i}", source=source, name=draw(st.sampled_from(NAMES)),
                            domain=draw(st.sampled_from(DOMAINS)))
                    for i in range(draw(st.integers(1, 3)))]
        contacts = [Contact(f"C{i}", source=source, account_id=draw(st.sampled_from([a.remote_id for a in accounts])),
                            name=draw(st.sampled_from(PEOPLE)), email=draw(st.sampled_from(EMAILS)))
                    for i in range(draw(st.integers(0, 4)))]
        users = [User("U1", source=source, email="alice@vendor.example")]
        result[source] = SourceRecords(accounts, contacts, users)
    return result


RULES = st.builds(MatchRules, st.just(True), st.booleans(), st.booleans(), st.booleans(), st.booleans())


def joined_sets(plan_groups: dict[str, list[list[tuple[str, str, str]]]]) -> dict[str, set[frozenset]]:
    return {kind: {frozenset(group) for group in groups} for kind, groups in plan_groups.items()}


@settings(max_examples=150, deadline=None)
@given(portfolios(), RULES, st.randoms(use_true_random=False))
def test_merging_does_not_depend_on_source_order(portfolio: dict[str, SourceRecords], rules: MatchRules,
                                                 rng: object) -> None:
    order = list(portfolio)
    shuffled = order[:]
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    identity = IdentitySettings.from_config({})
    first = plan_merge(portfolio, identity, rules, order)
    second = plan_merge(dict(reversed(list(portfolio.items()))), identity, rules, shuffled)
    assert joined_sets(first.groups) == joined_sets(second.groups)
    assert sorted(c.records for c in first.conflicts) == sorted(c.records for c in second.conflicts)
    for group in first.groups.get(ACCOUNT, []) + first.groups.get(CONTACT, []):
        assert group[0][1] == min((r[1] for r in group), key=order.index)  # the primary leads


@settings(max_examples=150, deadline=None)
@given(portfolios(), RULES)
def test_never_two_people_or_two_records_of_one_source(portfolio: dict[str, SourceRecords],
                                                       rules: MatchRules) -> None:
    plan = plan_merge(portfolio, IdentitySettings.from_config({}), rules, list(portfolio))
    contacts = {(CONTACT, s, c.remote_id): c for s, r in portfolio.items() for c in r.contacts}
    for groups in plan.groups.values():
        for group in groups:
            assert len({ref[1] for ref in group}) == len(group)
    for group in plan.groups.get(CONTACT, []):
        emails = {canonical_address(a) for ref in group if (a := normalize_address(contacts[ref].email))}
        names = {person_key(contacts[ref].name) for ref in group} - {None}
        assert len(emails) <= 1 and len(names) <= 1


def test_company_and_person_names() -> None:
    assert company_key("Pinnacle Bank, Ltd.") == company_key("pinnacle bank plc") == "pinnacle bank"
    assert company_key("东海移动有限公司") == company_key("东海移动") == "东海移动"
    assert company_key("Acme GmbH & Co. KG") == "acme"
    assert company_key("Inc.") == "inc"     # a name that is only a legal form stays a name
    assert person_key("Fischer, Lena") == person_key("lena  FISCHER") == ("fischer", "lena")
    assert person_key("") is None


def test_a_join_that_would_put_two_accounts_of_one_source_together_is_a_conflict() -> None:
    portfolio = {
        "sf": SourceRecords([Account("A1", name="Harbor Telecom", domain="harbor.example"),
                             Account("A2", name="Harbor Wholesale")], [], []),
        "hs": SourceRecords([Account("B1", name="Harbor Wholesale Ltd", domain="harbor.example")], [], []),
    }
    rules = MatchRules(account_name=True)
    plan = plan_merge(portfolio, IdentitySettings.from_config({}), rules, ["sf", "hs"])
    assert plan.groups[ACCOUNT] == [[(ACCOUNT, "sf", "A1"), (ACCOUNT, "hs", "B1")]]  # the domain came first
    assert [(c.kind, c.value) for c in plan.conflicts] == [("same_source", "harbor wholesale")]
    assert "never_merge" in plan.conflicts[0].decide
    decided = IdentitySettings.from_config({"identity": {"never_merge": [["sf:account:A2", "hs:account:B1"]]}})
    assert plan_merge(portfolio, decided, rules, ["sf", "hs"]).conflicts == []


def test_contacts_at_accounts_that_are_not_one_are_left_apart() -> None:
    portfolio = {
        "sf": SourceRecords([Account("A1", domain="bank.example")],
                            [Contact("C1", account_id="A1", name="Lena Fischer", email="lena@gmail.com")], []),
        "hs": SourceRecords([Account("B1", domain="telco.example")],
                            [Contact("D1", account_id="B1", name="Lena Fischer", email="lena@gmail.com")], []),
    }
    plan = plan_merge(portfolio, IdentitySettings.from_config({}), MatchRules(), ["sf", "hs"])
    assert plan.groups[CONTACT] == [] and [c.kind for c in plan.conflicts] == ["accounts_apart"]
