"""The champion plugin on a tiny CSV export: one A account with a supporter we meet
often, one S account whose only supporter we never talk to."""

from __future__ import annotations

from datetime import date

import crmlink_champion_score
import pytest

from crmlink import Account, Contact, Interaction, User
from crmlink.testing import account_view

MEETINGS = "\n".join(
    f"I{n},A1,2026-{month:02d}-10T10:00:00Z,meeting,two_way,,Review,U1,C1,,60"
    for n, month in enumerate(range(5, 12)))
FILES = {
    "accounts": "id,name,tier\nA1,Aurora,A\nS1,Borealis,S\n",
    "users": "id,name,title,team_role,active\nU1,Alice,Account Director,AR,true\n",
    "contacts": ("id,account_id,name,title,stance,active\n"
                 "C1,A1,Dana,VP Operations,2,true\nC2,S1,Farah,CFO,3,true\n"),
    "interactions": ("id,account_id,occurred_at,kind,direction,method,subject,user_ids,"
                     "contact_ids,opportunity_id,duration_minutes\n" + MEETINGS + "\n"),
}


@pytest.fixture
def audit(tmp_path, register_plugin, cli_runner):
    for name, text in FILES.items():
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    register_plugin(crmlink_champion_score, name="champion")
    result = cli_runner.invoke("audit", tmp_path, "--as-of", "2026-11-20", "--format", "json")
    return {a["remote_id"]: a for a in result.assert_success().json()["accounts"]}


def test_champion_score(audit):
    assert audit["A1"]["scores"]["champion"] >= crmlink_champion_score.CHAMPION_MIN_STRENGTH
    assert audit["A1"]["score_evidence"]["champion"]["champion"] == "C1"
    assert audit["S1"]["scores"]["champion"] == 0


def test_no_champion_only_where_it_is_missing(audit):
    codes = {rid: {f["code"] for f in a["findings"]} for rid, a in audit.items()}
    assert "NO_CHAMPION" in codes["S1"]
    assert "NO_CHAMPION" not in codes["A1"]


def test_the_strongest_supporter_is_the_champion():
    """The same plugin unit-tested on a view built from records, without an audit."""
    people = [Contact(remote_id="C1", name="Dana", stance=2), Contact(remote_id="C2", name="Eli", stance=3),
              Contact(remote_id="C3", name="Farah", stance=-1)]
    met = [Interaction(remote_id=f"{c}-{m}", kind="meeting", direction="two_way",
                       occurred_at=f"2026-{m:02d}-10", user_ids=["U1"], contact_ids=[c])
           for c, months in (("C1", range(9, 12)), ("C2", range(5, 12)), ("C3", range(1, 12)))
           for m in months]
    view = account_view(Account(remote_id="A1", name="Aurora", tier="S"), contacts=people,
                        users=[User(remote_id="U1", name="Alice")], interactions=met,
                        as_of=date(2026, 11, 20))
    [score] = crmlink_champion_score.score_account(view)
    assert score.evidence["champion"] == "C2" and score.evidence["candidates"] == ["C2", "C1"]
    view.scores["champion"] = score.value
    assert crmlink_champion_score.account_findings(view) == []
    view.scores["champion"] = 10.0
    [finding] = crmlink_champion_score.account_findings(view)
    assert finding.code == "NO_CHAMPION" and finding.severity == "high"
