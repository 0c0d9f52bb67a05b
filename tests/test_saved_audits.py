"""crmlink audit --save and crmlink history: audits kept in the store in a compact
layout, read back as they were saved."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmlink.core import schema
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import DEFAULTS
from crmlink.core.evaluation.saved import SavedAudits
from crmlink.core.evaluation.snapshot import snapshot_of
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from tests.saved_store import as_json, crmlink, url_in, write
from tests.scenario import healthy


@pytest.fixture()
def url(store_url: str) -> str:
    """A small store, on SQLite and on PostgreSQL."""
    s = healthy()
    s.add_account("B", "C", name="Bravo").contact("b1", "decision_maker", "vp", "executive", account="B")
    s.meet("u1", "b1", 200, account="B")
    write(s, store_url)
    return store_url


def test_a_saved_audit_reads_back_as_it_was(url: str) -> None:
    store = Store(url)
    document = Audit(store, get_plugin_host(load_entrypoints=False), DEFAULTS | {"sources": {}},
                     date(2026, 6, 30)).document()
    snap = snapshot_of(document, "q2")
    SavedAudits(store).save(snap)
    saved = SavedAudits(store)
    [audit] = saved.audits()
    back = saved.load(audit)
    assert (audit.label, audit.as_of, audit.accounts) == ("q2", date(2026, 6, 30), 2)
    assert back.accounts == snap.accounts and back.findings == snap.findings
    assert snap.findings, "the scenario has findings to keep"
    entry = next(a for a in document.accounts if a.remote_id == "A")
    acme = back.accounts["t:A"]
    assert acme.scores == {n: entry.scores[n] for n in ("health", "key", "broad", "org")}
    assert (acme.tier, acme.assessment, acme.ratio) == ("S", entry.coverage.assessment, entry.coverage.ratio)


def test_saving_one_label_twice_replaces_it_and_says_so(url: str) -> None:
    first = crmlink("audit", "--db", url, "--as-of", "2026-06-30", "--save")
    assert "Saved the audit as '2026-06-30'" in first.stderr and "replacing" not in first.stderr
    again = crmlink("audit", "--db", url, "--as-of", "2026-06-30", "--save")
    assert "replacing the audit saved under that label" in again.stderr
    crmlink("audit", "--db", url, "--as-of", "2026-03-31", "--label", "Q1 review")
    rows = as_json("history", "--db", url)
    assert [(r["label"], r["as_of"]) for r in rows] == [("Q1 review", "2026-03-31"), ("2026-06-30", "2026-06-30")]
    assert set(rows[0]) == {"label", "as_of", "saved_at", "accounts", "findings"} and rows[0]["accounts"] == 2
    with Store(url).engine.connect() as conn:   # the replaced audit left no rows behind
        assert conn.execute(sa.text("SELECT count(*) FROM saved_accounts")).scalar() == 4


def test_history_of_one_account(url: str) -> None:
    crmlink("audit", "--db", url, "--as-of", "2026-03-31", "--save")
    crmlink("audit", "--db", url, "--as-of", "2026-06-30", "--save")
    rows = as_json("history", "B", "--db", url)
    bravo = rows[-1]["account"]
    assert bravo["id"] == "t:B" and bravo["tier"] == "C" and {"health", "key", "broad", "org"} <= set(bravo)
    assert all(set(f) == {"code", "severity"} for f in bravo["findings"])
    table = crmlink("history", "Bravo", "--db", url).stdout
    assert "Bravo (t:B) in 2 of 2 saved audit(s)" in table
    missing = crmlink("history", "nobody", "--db", url, ok=False)
    assert missing.exit_code == 2 and "no saved audit holds an account 'nobody'" in missing.stderr


def test_the_config_switch_saves_every_audit(url: str, tmp_path: Path) -> None:
    config = tmp_path / "crmlink.toml"
    config.write_text("[evaluation]\nsave = true\n", encoding="utf-8")
    crmlink("audit", "--db", url, "--as-of", "2026-05-31", "--config", str(config))
    assert [r["label"] for r in as_json("history", "--db", url)] == ["2026-05-31"]
    crmlink("audit", "--db", url, "--as-of", "2026-04-30")
    assert len(as_json("history", "--db", url)) == 1


def test_history_without_saved_audits_says_how_to_save(url: str) -> None:
    assert "run crmlink audit --save" in crmlink("history", "--db", url).stdout
    assert as_json("history", "--db", url) == []


def test_a_store_of_schema_2_gains_the_saved_audit_tables(tmp_path: Path) -> None:
    url = url_in(tmp_path)
    Store(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # what crmlink wrote before schema 3
        for table in ("saved_findings", "saved_accounts", "saved_codes", "saved_subjects", "saved_audits"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql("UPDATE crmlink_meta SET value = '2' WHERE key = 'schema_version'")
    store = Store(url)
    assert store.schema_version == schema.SCHEMA_VERSION >= 3
    assert sa.inspect(store.engine).has_table("saved_accounts")
    assert SavedAudits(store).audits() == []
