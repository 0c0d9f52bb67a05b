"""Several CRM sources audited as one portfolio (crmlink.core.merge and the audit's merged
unit): the bundled sample split into two CSV sources with another id scheme audits
exactly as the sample itself; conflicts are reported and never merged; overrides force
and prevent merges; a store of one CRM source audits as it always did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from tests.conftest import AS_OF, SAMPLE
from tests.mergefixtures import MARKETING_ONLY, SHARED, combined, domain, mid, read, split, write

ORDER = '[identity.match]\nsource_order = ["sales", "marketing"]\n'


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def sync(db: str, folder: Path, name: str) -> None:
    invoke("sync", "csv", str(folder), "--source", name, "--db", db)


def audit(db: str, config: Path, *flags: str) -> dict[str, Any]:
    out = invoke("audit", "--db", db, "--as-of", AS_OF, "--format", "json", "--config", str(config), *flags).stdout
    return json.loads(out)


def config(tmp_path: Path, text: str = ORDER) -> Path:
    path = tmp_path / "crmlink.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The audit of the sample as one source, and of its two halves merged and side by side."""
    tmp = tmp_path_factory.mktemp("merge")
    one, two = f"sqlite:///{tmp / 'one.db'}", f"sqlite:///{tmp / 'two.db'}"
    sync(one, combined(tmp / "combined"), "crm")
    sales, marketing = split(tmp / "split")
    sync(two, marketing, "marketing")   # synced first: the order of sync must not matter
    sync(two, sales, "sales")
    cfg = config(tmp)
    return {"one": audit(one, cfg), "merged": audit(two, cfg), "apart": audit(two, cfg, "--no-merge")}


def by_sample_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Accounts by their sample id (marketing's M- ids undone)."""
    return {a["remote_id"].removeprefix("M-"): a for a in document["accounts"]}


def codes(findings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((f["code"], f["severity"]) for f in findings)


def test_the_merged_halves_audit_as_the_sample_itself(audits: dict[str, dict[str, Any]]) -> None:
    one, merged = by_sample_id(audits["one"]), by_sample_id(audits["merged"])
    assert set(merged) == set(one) and len(merged) == 50
    for rid, account in one.items():
        got = merged[rid]
        assert got["scores"] == account["scores"], rid
        assert got["previous_scores"] == account["previous_scores"], rid
        assert codes(got["findings"]) == codes(account["findings"]), rid
        assert got["coverage"] == account["coverage"], rid
        assert got["personalization"] == account["personalization"], rid
        assert (got["name"], got["tier"], got["owner"]) == (account["name"], account["tier"], account["owner"]), rid
    assert codes(audits["merged"]["portfolio_findings"]) == codes(audits["one"]["portfolio_findings"])
    deals_one = {o["remote_id"]: o for o in audits["one"]["opportunities"]}
    deals = {o["remote_id"].removeprefix("M-"): o for o in audits["merged"]["opportunities"]}
    assert set(deals) == set(deals_one)
    for rid, deal in deals_one.items():
        assert (deals[rid]["ltc_stage"], codes(deals[rid]["findings"])) == (deal["ltc_stage"], codes(deal["findings"]))


def test_the_merge_is_shown_with_its_evidence(audits: dict[str, dict[str, Any]]) -> None:
    merged = audits["merged"]
    summary = merged["merge"]
    assert summary["sources"] == ["sales", "marketing"]
    assert summary["accounts_joined"] == len(SHARED)
    assert summary["users_joined"] == len(read("users"))
    assert summary["contacts_joined"] > 0 and summary["conflicts"] == []
    shared = {a["remote_id"]: a for a in merged["accounts"] if a["remote_id"] in SHARED}
    assert len(shared) == len(SHARED)
    for rid, account in shared.items():  # the primary record's id, name and source
        assert (account["id"], account["source"]) == (f"sales:{rid}", "sales")
        assert account["merged_from"] == [
            {"source": "sales", "remote_id": rid, "primary": True, "rule": "domain", "value": domain(rid)},
            {"source": "marketing", "remote_id": mid(rid), "primary": False, "rule": "domain", "value": domain(rid)}]
    alone = [a for a in merged["accounts"] if a["remote_id"] not in SHARED]
    assert alone and all("merged_from" not in a for a in alone)
    # deals keep their own source and id, under the merged account
    deal = next(o for o in merged["opportunities"] if o["source"] == "marketing"
                and o["account_id"].removeprefix("sales:") in SHARED)
    assert deal["remote_id"].startswith("M-") and deal["account_id"].startswith("sales:ACC-")


def test_side_by_side_without_merging(audits: dict[str, dict[str, Any]]) -> None:
    apart = audits["apart"]
    assert "merge" not in apart and len(apart["accounts"]) == 50 + len(SHARED)
    assert {a["source"] for a in apart["accounts"] if a["remote_id"].removeprefix("M-") in MARKETING_ONLY} == {"marketing"}


def test_the_report_says_what_the_merge_did(tmp_path: Path, audits: dict[str, dict[str, Any]]) -> None:
    from crmlink.core.document import MergeSummary
    from crmlink.core.report.text import merge_lines

    summary = audits["merged"]["merge"]
    line = merge_lines(MergeSummary(summary["sources"], summary["accounts_joined"], summary["contacts_joined"],
                                    summary["users_joined"], []))[0]
    assert line.startswith(f"2 sources merged (sales, marketing): {len(SHARED)} accounts, ")
    assert line.endswith("joined; 0 conflicts left apart")


def test_a_single_source_audits_as_before(tmp_path: Path) -> None:
    """One CRM source: merging on or off, the same document, and no merge fields in it."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    sync(db, SAMPLE, "csv")
    cfg = config(tmp_path, "")
    on, off = (invoke("audit", "--db", db, "--as-of", AS_OF, "--format", "json", "--config", str(cfg), *flags).stdout
               for flags in ((), ("--no-merge",)))
    strip = [json.loads(text) for text in (on, off)]
    for document in strip:
        document.pop("generated_at")
    assert strip[0] == strip[1]
    assert "merge" not in strip[0] and all("merged_from" not in a for a in strip[0]["accounts"])
    table = invoke("audit", "--db", db, "--as-of", AS_OF, "--config", str(cfg)).stdout
    assert "merged" not in table


# -- small portfolios: conflicts and overrides ----------------------------------------------

USERS = [{"id": "U1", "name": "Alice Chen", "email": "alice@vendor.example", "title": "", "team_role": "AR",
          "active": "true"}]
ACCOUNT_COLUMNS = ["id", "name", "domain", "tier", "owner_id"]
CONTACT_COLUMNS = ["id", "account_id", "name", "email", "title"]


def source(folder: Path, accounts: list[tuple[str, str, str]], contacts: list[tuple[str, str, str, str]]) -> Path:
    """A CSV source with ``(id, name, domain)`` accounts and ``(id, account, name, email)`` contacts."""
    write(folder, "users", USERS, list(USERS[0]))
    write(folder, "accounts", [{"id": i, "name": n, "domain": d, "tier": "A", "owner_id": "U1"}
                               for i, n, d in accounts], ACCOUNT_COLUMNS)
    write(folder, "contacts", [{"id": i, "account_id": a, "name": n, "email": e, "title": "CTO"}
                               for i, a, n, e in contacts], CONTACT_COLUMNS)
    return folder


@pytest.fixture()
def small(tmp_path: Path) -> str:
    """Two sources: one domain on two accounts of one source; one email on two people;
    a person in both; a contact without email."""
    db = f"sqlite:///{tmp_path / 'small.db'}"
    sync(db, source(tmp_path / "a", [("A1", "Pinnacle Bank", "pinnacle.example"),
                                     ("A2", "Pinnacle Bank Wealth", "pinnacle.example"),
                                     ("A3", "Harbor Telecom", "harbor.example"),
                                     ("A4", "Gmail Co", "gmail.com")],
                    [("C1", "A3", "Lena Fischer", "lena@harbor.example"),
                     ("C2", "A3", "Omar Khan", "shared@harbor.example"),
                     ("C3", "A3", "Ines Duarte", "")]), "a")
    sync(db, source(tmp_path / "b", [("B1", "Pinnacle", "https://pinnacle.example"),
                                     ("B2", "Harbor Telecom Ltd", "www.harbor.example"),
                                     ("B4", "Gmail Co", "gmail.com")],
                    [("D1", "B2", "Fischer, Lena", "Lena+crm@Harbor.example"),
                     ("D2", "B2", "Nina Chen", "shared@harbor.example"),
                     ("D3", "B2", "Ines Duarte", "")]), "b")
    return db


def accounts_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in document["accounts"]}


def contact_ids(account: dict[str, Any]) -> list[str]:
    return sorted(c["id"] for c in account["relationship_map"]["contacts"])


def test_conflicts_are_reported_and_never_merged(tmp_path: Path, small: str) -> None:
    document = audit(small, config(tmp_path, '[identity.match]\nsource_order = ["a", "b"]\n'))
    accounts = accounts_of(document)
    # one domain on two accounts of source a: nothing joined on it; gmail.com never joins
    assert {"a:A1", "a:A2", "b:B1", "a:A4", "b:B4"} <= set(accounts)
    assert [m["remote_id"] for m in accounts["a:A3"]["merged_from"]] == ["A3", "B2"]
    assert "b:B2" not in accounts
    # Lena is one person (alias and name order aside); the shared address with two names is two;
    # Ines has no email, so she is not joined by name
    assert contact_ids(accounts["a:A3"]) == ["C1", "C2", "C3", "D2", "D3"]
    lena = next(c for c in accounts["a:A3"]["relationship_map"]["contacts"] if c["id"] == "C1")
    assert (lena["name"], lena["merged_from"]) == ("Lena Fischer", [
        {"source": "a", "remote_id": "C1", "primary": True, "rule": "email", "value": "lena@harbor.example"},
        {"source": "b", "remote_id": "D1", "primary": False, "rule": "email", "value": "lena@harbor.example"}])
    assert all("merged_from" not in c for c in accounts["a:A3"]["relationship_map"]["contacts"] if c["id"] != "C1")
    conflicts = {(c["kind"], c["value"]) for c in document["merge"]["conflicts"]}
    assert conflicts == {("shared_domain", "pinnacle.example"), ("names_differ", "shared@harbor.example")}
    findings = [f for f in document["portfolio_findings"] if f["code"] == "IDENTITY_CONFLICT"]
    assert len(findings) == 2 and all("[identity.overrides]" in f["action"] or "never_merge" in f["action"]
                                      for f in findings)
    names_differ = next(f for f in findings if f["evidence"]["kind"] == "names_differ")
    assert sorted(names_differ["evidence"]["records"]) == ["a:contact:C2", "b:contact:D2"]
    table = invoke("audit", "--db", small, "--as-of", AS_OF, "--config",
                   str(tmp_path / "crmlink.toml")).stdout
    assert "2 sources merged (a, b): 1 accounts, 1 contacts, 1 of our people joined; 2 conflicts left apart" in table
    assert "IDENTITY_CONFLICT" in table
    cfg = str(tmp_path / "crmlink.toml")
    markdown = invoke("audit", "--db", small, "--as-of", AS_OF, "--config", cfg, "--format", "markdown").stdout
    assert "## Identity conflicts (not merged)" in markdown and "- Decide: to join them" in markdown
    invoke("audit", "--db", small, "--as-of", AS_OF, "--config", cfg, "--format", "html", "--output",
           str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "2 sources merged (a, b)" in html and "Identity conflicts, not merged (2)" in html
    assert "Merged from a A3 (primary) and b B2, by domain harbor.example." in html


def test_overrides_force_and_prevent_merges(tmp_path: Path, small: str) -> None:
    text = """[identity]
never_merge = [["a:contact:C1", "b:contact:D1"], ["a:account:A2", "b:account:B1"]]

[identity.match]
source_order = ["a", "b"]
contact_name = true

[identity.overrides]
"b:account:B1" = "a:account:A1"
"b:contact:D2" = "a:contact:C2"
"""
    document = audit(small, config(tmp_path, text))
    accounts = accounts_of(document)
    assert accounts["a:A1"]["merged_from"][1] == {"source": "b", "remote_id": "B1", "primary": False,
                                                  "rule": "override", "value": "a:account:A1"}
    # Lena kept apart by never_merge; C2 and D2 joined by the override; Ines joined by name
    assert contact_ids(accounts["a:A3"]) == ["C1", "C2", "C3", "D1"]
    assert document["merge"]["conflicts"] == []  # every conflict decided in the config


def test_account_names_join_only_when_enabled(tmp_path: Path, small: str) -> None:
    base = '[identity.match]\nsource_order = ["a", "b"]\naccount_domain = false\n'
    off = accounts_of(audit(small, config(tmp_path, base)))
    assert "b:B2" in off and "merged_from" not in off["a:A3"]
    on = accounts_of(audit(small, config(tmp_path, base + "account_name = true\n")))
    assert [m["rule"] for m in on["a:A3"]["merged_from"]] == ["name", "name"]  # "Harbor Telecom Ltd"
    assert "b:B1" in on  # "Pinnacle" is not "Pinnacle Bank"


def test_bad_record_overrides_are_config_errors(tmp_path: Path, small: str) -> None:
    cfg = config(tmp_path, '[identity.overrides]\n"b:account:B1" = "b:account:B2"\n')
    result = CliRunner().invoke(cli, ["audit", "--db", small, "--config", str(cfg)])
    assert result.exit_code == 2 and "another source" in result.output


def test_a_message_linked_to_two_merged_sources_counts_once(tmp_path: Path) -> None:
    import mailbox
    from email.message import EmailMessage

    db = f"sqlite:///{tmp_path / 'mail.db'}"
    sync(db, source(tmp_path / "a", [("A3", "Harbor Telecom", "harbor.example")],
                    [("C1", "A3", "Lena Fischer", "lena@harbor.example"),
                     ("C4", "A3", "Kai Berg", "kai@harbor.example")]), "a")
    sync(db, source(tmp_path / "b", [("B2", "Harbor Telecom Ltd", "harbor.example")],
                    [("D1", "B2", "Lena Fischer", "lena@harbor.example")]), "b")
    box = mailbox.mbox(str(tmp_path / "sent.mbox"))
    msg = EmailMessage()
    msg["From"], msg["To"] = "alice@vendor.example", "lena@harbor.example, kai@harbor.example, new@harbor.example"
    msg["Date"], msg["Message-ID"], msg["Subject"] = "Tue, 10 Nov 2026 10:00:00 +0000", "<m1@vendor.example>", "Plan"
    msg.set_content("not read")
    box.add(msg)
    box.flush()
    invoke("sync", "mail", str(tmp_path / "sent.mbox"), "--db", db, "-q")
    cfg = config(tmp_path, '[identity.match]\nsource_order = ["a", "b"]\n')
    apart = accounts_of(audit(db, cfg, "--no-merge"))
    assert apart["a:A3"]["coverage"]["interactions"] == apart["b:B2"]["coverage"]["interactions"] == 1
    assert [p["address"] for p in apart["b:B2"]["unknown_people"]] == ["kai@harbor.example", "new@harbor.example"]
    merged = accounts_of(audit(db, cfg))["a:A3"]
    assert merged["coverage"]["interactions"] == 1 and merged["coverage"]["contacts_reached"] == 2
    assert merged["unknown_people"] == [{"address": "new@harbor.example", "name": None, "messages": 1}]


def test_what_changed_between_saved_audits_of_merged_sources(tmp_path: Path) -> None:
    """crmlink diff of two saved audits of the merged halves names the same moves and the
    same relationships as the diff of the sample itself."""
    one, two = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'two.db'}"
    sync(one, combined(tmp_path / "combined"), "crm")
    sales, marketing = split(tmp_path / "split")
    sync(two, sales, "sales")
    sync(two, marketing, "marketing")
    cfg = str(config(tmp_path))
    diffs = []
    for db in (one, two):
        for day in ("2026-05-20", AS_OF):
            invoke("audit", "--db", db, "--as-of", day, "--format", "json", "--config", cfg, "--save")
        diffs.append(json.loads(invoke("diff", "--db", db, "--format", "json", "--config", cfg).stdout))

    def moves(diff: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted((m["remote_id"].removeprefix("M-"), m["field"], m["change"], m["reason"]) for m in diff["moved"])

    assert moves(diffs[0]) and moves(diffs[1]) == moves(diffs[0])
    shared = [m for m in diffs[1]["moved"] if m["remote_id"] in SHARED]
    assert shared and all(m["source"] == "sales" for m in shared)
