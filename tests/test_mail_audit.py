"""End to end: the bundled sample synced from CSV, then a generated mailbox and calendar
for a few accounts. The audit of the same store raises the key, broad and organisational
scores of exactly those accounts and leaves every other account as it was."""

from __future__ import annotations

import csv
import json
import mailbox
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from tests.conftest import AS_OF, SAMPLE

END = datetime.fromisoformat(AS_OF + "T12:00:00+00:00")
#: our people who write and meet: an AR, an SR, an FR and an executive (sample users)
TEAM = {"U01": "alice@vendor.example", "U07": "grace@vendor.example", "U11": "kavya@vendor.example",
        "U15": "olivia@vendor.example"}
LAYERS = ("key", "broad", "org")


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def audit(db: str, config: Path) -> dict[str, Any]:
    text = invoke("audit", "--db", db, "--as-of", AS_OF, "--format", "json", "--config", str(config)).stdout
    return {a["remote_id"]: a for a in json.loads(text)["accounts"]}


def covered_accounts(before: dict[str, Any], count: int = 3) -> list[str]:
    """The accounts with the most room to grow: every layer scored and under 60."""
    room = [(sum(a["scores"][s] for s in LAYERS), rid) for rid, a in before.items()
            if all(a["scores"].get(s) is not None and a["scores"][s] < 60 for s in LAYERS)]
    return [rid for _, rid in sorted(room)[:count]]


def contacts_of(accounts: list[str]) -> dict[str, list[dict[str, str]]]:
    with open(SAMPLE / "contacts.csv", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["account_id"] in accounts and r["email"]]
    return {a: [r for r in rows if r["account_id"] == a][:10] for a in accounts}


def mail(mid: str, sender: str, to: str, at: datetime, reply_to: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Date"], msg["Message-ID"] = sender, to, format_datetime(at), mid
    msg["Subject"] = "Re: roadmap" if reply_to else "Roadmap"
    if reply_to:
        msg["In-Reply-To"] = msg["References"] = reply_to
    msg.set_content("not read")
    return msg


def write_mailbox(path: Path, people: dict[str, list[dict[str, str]]]) -> Path:
    """Weekly threads for six weeks before the audit date: each of our four writes to each
    contact, the contact answers, and ours answers back."""
    box = mailbox.mbox(path)
    for account, contacts in people.items():
        for week in range(6):
            for user, ours in TEAM.items():
                for contact in contacts:
                    theirs = f"{contact['name']} <{contact['email']}>"
                    at = END - timedelta(weeks=week, hours=len(contact["id"]) + int(user[1:]))
                    tag = f"{account}.{contact['id']}.{user}.{week}"
                    box.add(mail(f"<{tag}.1@vendor.example>", ours, theirs, at - timedelta(hours=6)))
                    box.add(mail(f"<{tag}.2@customer.example>", theirs, ours, at - timedelta(hours=3),
                                 f"<{tag}.1@vendor.example>"))
                    box.add(mail(f"<{tag}.3@vendor.example>", ours, theirs, at, f"<{tag}.2@customer.example>"))
    # an unknown person at the first account (its domain is set by an override) writes too
    box.add(mail("<unknown.1@newco.example>", "Nadia Novak <nadia@harbor-city.example>", TEAM["U01"],
                 END - timedelta(days=3)))
    box.add(mail("<unknown.2@vendor.example>", TEAM["U01"], "nadia@harbor-city.example",
                 END - timedelta(days=2), "<unknown.1@newco.example>"))
    box.flush()
    box.close()
    return path


def write_calendar(path: Path, people: dict[str, list[dict[str, str]]]) -> Path:
    """A fortnightly steering meeting per account over the last ten weeks, the contacts
    accepted; the next occurrences (after the sync) never count."""
    start = END - timedelta(weeks=10)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//crmlink tests//EN"]
    for account, contacts in people.items():
        lines += ["BEGIN:VEVENT", f"UID:steering-{account}@vendor.example",
                  f"DTSTAMP:{start:%Y%m%dT%H%M%SZ}", f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
                  f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}", "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=12",
                  f"ORGANIZER:mailto:{TEAM['U01']}", f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{TEAM['U15']}"]
        lines += [f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{c['email']}" for c in contacts[:4]]
        lines += ["END:VEVENT"]
    path.write_text("\r\n".join(lines + ["END:VCALENDAR", ""]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, list[str], str, Path]:
    folder = tmp_path_factory.mktemp("mail-audit")
    db = f"sqlite:///{folder / 'store.db'}"
    config = folder / "crmlink.toml"
    invoke("sync", "csv", str(SAMPLE), "--db", db, "-q")
    config.write_text("", encoding="utf-8")
    before = audit(db, config)
    covered = covered_accounts(before)
    assert len(covered) == 3, "the sample has fewer accounts with room to grow than the test needs"
    config.write_text(f'[identity.overrides]\n"harbor-city.example" = "account:{covered[0]}"\n', encoding="utf-8")
    people = contacts_of(covered)
    invoke("sync", "mail", str(write_mailbox(folder / "team.mbox", people)), "--db", db, "--config", str(config))
    invoke("sync", "calendar", str(write_calendar(folder / "team.ics", people)), "--db", db, "--config", str(config))
    return before, audit(db, config), covered, db, config


def test_mail_and_meetings_raise_the_covered_accounts(audits: tuple) -> None:
    before, after, covered, _, _ = audits
    for rid in covered:
        for layer in LAYERS:
            assert after[rid]["scores"][layer] > before[rid]["scores"][layer], (rid, layer)


def test_every_other_account_is_unchanged(audits: tuple) -> None:
    before, after, covered, _, _ = audits
    assert set(before) == set(after)
    for rid in set(before) - set(covered):
        for key in ("scores", "previous_scores", "score_evidence", "personalization", "unknown_people"):
            assert after[rid][key] == before[rid][key], (rid, key)
        assert [f["code"] for f in after[rid]["findings"]] == [f["code"] for f in before[rid]["findings"]]


def test_people_not_in_the_crm_are_listed(audits: tuple) -> None:
    _, after, covered, db, config = audits
    assert after[covered[0]]["unknown_people"] == [
        {"address": "nadia@harbor-city.example", "name": "Nadia Novak", "messages": 2}]
    assert all(after[rid]["unknown_people"] == [] for rid in covered[1:])
    assert "unknown_people_engaged" not in after[covered[0]]["score_evidence"]["broad"]
    table = invoke("audit", "--db", db, "--as-of", AS_OF, "--config", str(config)).stdout
    name = after[covered[0]]["name"]
    assert (f"We correspond with 1 person at {name} who is not in the CRM: "
            "Nadia Novak <nadia@harbor-city.example> (2).") in table
    markdown = invoke("audit", "--db", db, "--as-of", AS_OF, "--config", str(config), "--format", "markdown").stdout
    assert "## People not in the CRM" in markdown and "nadia@harbor-city.example" in markdown
    html = config.with_name("report.html")
    invoke("audit", "--db", db, "--as-of", AS_OF, "--config", str(config), "--format", "html", "--output", str(html))
    assert "who is not in the CRM: Nadia Novak &lt;nadia@harbor-city.example&gt; (2)." in html.read_text(encoding="utf-8")


def test_unknown_people_count_for_the_broad_layer_when_allowed(audits: tuple) -> None:
    _, after, covered, db, config = audits
    allowed = config.with_name("count.toml")
    allowed.write_text(config.read_text(encoding="utf-8") + "[identity]\ncount_unknown_people = true\n",
                       encoding="utf-8")
    counted = audit(db, allowed)
    account = covered[0]
    assert counted[account]["score_evidence"]["broad"]["unknown_people_engaged"] == 1
    assert counted[account]["scores"]["broad"] > after[account]["scores"]["broad"]
    assert all(counted[rid]["scores"] == after[rid]["scores"] for rid in after if rid != account)
