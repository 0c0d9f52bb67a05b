"""``crmlink.testing.account_view`` builds, from records, the view the audit builds from a
store: the same scores, previous scores and personalisation for every sample account."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pytest
from click.testing import CliRunner

from crmlink import Account, Contact, Interaction, User
from crmlink.cli import cli
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from crmlink.testing import account_view
from tests.conftest import AS_OF, SAMPLE

ENTITIES = ("account", "contact", "user", "interaction", "opportunity")


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """The sample's records as the sync stored them (contacts classified from titles)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('views') / 'store.db'}"
    synced = CliRunner().invoke(cli, ["sync", "csv", str(SAMPLE), "--db", url, "-q"])
    assert synced.exit_code == 0, synced.output
    store = Store(url)
    return {entity: list(store.records(entity, include_deleted=entity == "user")) for entity in ENTITIES}


def scored(view, host) -> dict[str, float]:
    return {name: round(score.value, 1) for name, score in host.score_account(view).items()}


def test_every_sample_account_matches_the_audit(stored, sample_audit):
    host = get_plugin_host(load_entrypoints=False)
    contacts, deals, interactions = defaultdict(list), defaultdict(list), defaultdict(list)
    home = {c.remote_id: c.account_id for c in stored["contact"]}
    for contact in stored["contact"]:
        contacts[contact.account_id].append(contact)
    for deal in stored["opportunity"]:
        deals[deal.account_id].append(deal)
    for item in stored["interaction"]:
        owner = item.account_id or next((home[c] for c in item.contact_ids if home.get(c)), None)
        interactions[owner].append(item)
    audited = {a["remote_id"]: a for a in sample_audit["accounts"]}
    assert len(stored["account"]) == len(audited) == 50
    for account in stored["account"]:
        rid = account.remote_id
        view = account_view(account, contacts=contacts[rid], users=stored["user"],
                            interactions=interactions[rid], opportunities=deals[rid],
                            as_of=date.fromisoformat(AS_OF), host=host)
        view.previous.scores = scored(view.previous, host)
        view.scores = scored(view, host)
        expected = audited[rid]
        assert view.tier == expected["tier"], rid
        assert view.scores == expected["scores"], rid
        assert view.previous.scores == expected["previous_scores"], rid
        assert view.personalization["top_holder"] == expected["personalization"]["top_holder"], rid
        assert view.personalization["bus_factor"] == expected["personalization"]["bus_factor"], rid


def meeting(rid: str, day: str, **fields) -> Interaction:
    return Interaction(remote_id=rid, kind="meeting", direction="two_way", occurred_at=day,
                       user_ids=["U1"], contact_ids=["C1"], **fields)


def test_records_are_folded_as_of_the_date():
    account = Account(remote_id="A1", name="Aurora", annual_revenue=50_000_000)
    dana = Contact(remote_id="C1", name="Dana", seniority="vp")
    view = account_view(
        account, contacts=[dana], users=[User(remote_id="U1", name="Alice")],
        interactions=[meeting("I1", "2026-10-01"), meeting("I2", "2026-11-01"),
                      meeting("I3", "2026-12-01"),            # after the audit date
                      meeting("I4", "2026-11-02", deleted=True),
                      meeting("I5", "2026-11-03", account_id=None)],  # counts through Dana
        as_of=date(2026, 11, 20))
    assert view.data.interactions == 3
    assert view.previous.data.interactions == 0        # 90 days earlier: nothing yet
    assert view.contact_stats["C1"].holders == ("U1",)
    assert view.contacts[0].account_id == "A1" and dana.account_id is None  # a copy
    assert view.tier and view.account.tier_source == "computed" and account.tier is None


def test_config_overrides_one_setting():
    args = dict(contacts=[Contact(remote_id="C1")], users=[User(remote_id="U1")],
                interactions=[meeting("I1", "2026-11-01")], as_of=date(2026, 11, 20))
    strict = account_view(Account(remote_id="A1"), config={"strength": {"engaged_threshold": 99}}, **args)
    lenient = account_view(Account(remote_id="A1"), **args)
    assert lenient.engaged() and not strict.engaged()


def test_a_record_of_another_account_is_an_error():
    with pytest.raises(ValueError, match="contact 'C9' belongs to account 'B2', not 'A1'"):
        account_view(Account(remote_id="A1"), contacts=[Contact(remote_id="C9", account_id="B2")])
    with pytest.raises(ValueError, match="interaction 'I1' belongs to account 'B2'"):
        account_view(Account(remote_id="A1"), interactions=[meeting("I1", "2026-11-01", account_id="B2")])
