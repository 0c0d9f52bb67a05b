"""What the aggregates' builds hold of a source's people, held in little memory and
answering as the plain dicts did: the packed senior contacts, and the accumulator's
remembered answers, bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmlink.core.analysis import accumulate
from crmlink.core.analysis.accumulate import Accumulator, is_senior
from crmlink.core.analysis.aggregate_build import Packed, People
from crmlink.core.analysis.config import load_config
from crmlink.core.model import Contact, User
from crmlink.core.store import Store
from crmlink.core.vocab import SENIORITIES

_ids = st.lists(st.text(max_size=5) | st.sampled_from(["CON-1", "CON-10", "é", "\U0001f600"]), max_size=100)


@given(_ids, st.lists(st.sampled_from(SENIORITIES), min_size=1), st.lists(st.text(max_size=5), max_size=20))
def test_packed_people_answer_as_the_dict(ids: list[str], seniorities: list[str], others: list[str]) -> None:
    records = {s: Contact(remote_id=f"shared-{s}", source="s", seniority=s) for s in seniorities}
    plain = {remote_id: records[seniorities[i % len(seniorities)]] for i, remote_id in enumerate(sorted(set(ids)))}
    packed = Packed(iter(plain.items()))
    assert len(packed) == len(plain) and list(packed) == list(plain)
    for key in [*plain, *others]:
        assert packed.get(key) is plain.get(key)
        assert (key in packed) == (key in plain)
        if key not in plain:
            with pytest.raises(KeyError):
                packed[key]
        else:
            assert packed[key] is plain[key]


def test_packed_people_refuse_ids_out_of_order() -> None:
    person = Contact(remote_id="shared", source="s", seniority="vp")
    with pytest.raises(ValueError, match="out of order"):
        Packed(iter([("b", person), ("a", person)]))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_builds_people_are_the_senior_contacts_in_code_point_order(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Read in the order of their ids on either store (PostgreSQL compares them in its
    "C" collation, as Python does), whatever order they were written in."""
    server = request.getfixturevalue("postgres_server") if kind == "postgresql" else None
    store = Store(server.create() if server else f"sqlite:///{tmp_path / 'store.db'}")
    ids = ["é-2", "B-1", "a-3", "Z", "\u00e9", "ab", "A"]
    ranks = ["c_suite", "entry", "vp", "c_suite", "manager", None, "head"]
    contacts = [Contact(remote_id=i, source="crm", account_id="acc", seniority=r) for i, r in zip(ids, ranks)]
    with store.transaction() as conn:
        store.upsert(conn, [User(remote_id="u1", source="crm", name="Ann", team_role="executive")])
        store.upsert(conn, contacts)
    people = People(store, "crm")
    assert list(people.contacts) == sorted(c.remote_id for c in contacts if is_senior(c))
    assert all(is_senior(people.contacts.get(c.remote_id)) == is_senior(c) for c in contacts)
    assert is_senior(people.contacts.get("nobody")) is False and "u1" in people.users


def test_the_accumulators_remembered_answers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """More distinct subjects than it remembers: each verdict is still the hook's, and
    no more than :data:`~.accumulate.REMEMBERED` are kept."""
    monkeypatch.setattr(accumulate, "REMEMBERED", 4)
    asked: list[str | None] = []

    def classify(kind: str, subject: str | None, campaign: str | None) -> str | None:
        asked.append(subject)
        return f"method-{subject}"

    acc = Accumulator(load_config(), {}, {}, classify)
    subjects = [f"Re: pricing {n}" for n in range(10)]

    def verdicts() -> Iterator[str | None]:
        return (acc.method_of("email", None, subject, None) for subject in subjects)

    assert list(verdicts()) == [f"method-{s}" for s in subjects]
    assert list(verdicts()) == [f"method-{s}" for s in subjects]  # asked again: evicted meanwhile
    assert len(asked) == 20
    assert acc.method_of("email", "given", "x", None) == "given" and len(asked) == 20
    assert acc._method_of_content.cache_info().currsize == 4
