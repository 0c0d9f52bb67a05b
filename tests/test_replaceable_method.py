"""The relationship method is an ordinary plugin: with it blocked every format works, and a
third-party plugin (installed through an entry point) that declares its own scores gets
them headlined in the table, Markdown and HTML reports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

import crmlink
from crmlink.cli import cli
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from tests.conftest import AS_OF, ROOT, SAMPLE
from tests.test_audit_document import assert_valid

FORMATS = ("table", "json", "markdown", "html")

VITALITY = '''
"""A replacement method: how many of its contacts an account engages."""
import crmlink


@crmlink.hookimpl
def score_definitions():
    return [crmlink.ScoreDefinition("vitality", description="Share of the contacts engaged.",
                                    headline=0, overall=True),
            crmlink.ScoreDefinition("reach", "people reached", "Engaged contacts, 10 points each.",
                                    headline=1)]


def vitality(view):
    return 100.0 * len(view.engaged()) / len(view.contacts) if view.contacts else 0.0


@crmlink.hookimpl
def score_account(view):
    engaged = len(view.engaged())
    return [crmlink.Score("vitality", vitality(view), {"engaged": engaged, "contacts": len(view.contacts)}),
            crmlink.Score("reach", min(100.0, 10.0 * engaged))]


@crmlink.hookimpl
def simulate_departure(view, user_id):
    before, after = vitality(view), vitality(view.without_user(user_id))
    return crmlink.Departure(user_id, round(before, 1), round(after, 1), round(before - after, 1), [],
                             f"Without {user_id}, vitality drops {before - after:.0f} points.")
'''

CHAMPION = '''
"""An extension of the method: one more score, headlined after the method's."""
import crmlink


@crmlink.hookimpl
def score_definitions():
    return [crmlink.ScoreDefinition("champion", headline=9)]


@crmlink.hookimpl
def score_account(view):
    best = max((s.team for s in view.contact_stats.values() if (s.contact.stance or 0) >= 2), default=0.0)
    return [crmlink.Score("champion", best)]
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the package ``crmlink_extra`` and its distribution metadata with
    two entry points in the ``crmlink`` group: what ``pip install`` leaves behind."""
    folder = tmp_path_factory.mktemp("site")
    package = folder / "crmlink_extra"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "vitality.py").write_text(textwrap.dedent(VITALITY))
    (package / "champion.py").write_text(textwrap.dedent(CHAMPION))
    info = folder / "crmlink_extra-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crmlink-extra\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[crmlink]\nvitality = crmlink_extra.vitality\nchampion = crmlink_extra.champion\n")
    return folder


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('method') / 'store.db'}"
    result = CliRunner().invoke(cli, ["sync", "csv", str(SAMPLE), "--db", url, "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return url


def audit(store_url: str, fmt: str, tmp_path: Path) -> str:
    out = tmp_path / f"audit.{fmt}"
    result = CliRunner().invoke(cli, ["audit", "--db", store_url, "--as-of", AS_OF, "--format", fmt,
                                      "--output", str(out)])
    assert result.exit_code == 0, (fmt, result.output, result.exception)
    return out.read_text(encoding="utf-8")


def header(table: str) -> str:
    return next(line for line in table.splitlines() if line.startswith("tier"))


def test_every_format_works_with_the_method_blocked(store_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMLINK_DISABLE_PLUGINS", "method")
    monkeypatch.setenv("CRMLINK_LOAD_PLUGINS", "")
    out = {fmt: audit(store_url, fmt, tmp_path) for fmt in FORMATS}
    document = json.loads(out["json"])
    assert_valid(document)
    assert all(a["scores"] == {} and a["relationship_map"]["departure"] is None for a in document["accounts"])
    assert {f["code"][:4] for o in document["opportunities"] for f in o["findings"]} == {"LTC_"}
    assert header(out["table"]).split() == ["tier", "account", "evidence", "top", "holder", "findings"]
    assert "| tier | account | evidence | top holder share | findings |" in out["markdown"]
    html = out["html"]
    assert 'id="tier-health"' not in html and "<dt>health</dt>" not in html and " left</h4>" not in html
    assert html.count("No monthly history in this audit document.") == len(document["accounts"])
    assert html.count("No plugin gave evidence for a score.") == len(document["accounts"])


def test_the_method_module_is_not_imported_when_blocked(store_url: str, tmp_path: Path) -> None:
    script = ("import sys; from crmlink.cli import main; sys.argv[0] = 'crmlink'\n"
              "try:\n    main()\nfinally:\n    print('method imported:', 'crmlink.plugins.method' in sys.modules)\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CRMLINK_DISABLE_PLUGINS": "method",
           "CRMLINK_LOAD_PLUGINS": ""}
    done = subprocess.run([sys.executable, "-c", script, "audit", "--db", store_url, "--as-of", AS_OF,
                           "--format", "html", "--output", str(tmp_path / "r.html")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert "method imported: False" in done.stdout, done.stderr[-2000:]


def test_a_replacement_method_gets_its_scores_headlined(installed: Path, store_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.setenv("CRMLINK_DISABLE_PLUGINS", "method")
    monkeypatch.setenv("CRMLINK_LOAD_PLUGINS", "vitality")
    out = {fmt: audit(store_url, fmt, tmp_path) for fmt in FORMATS}
    document = json.loads(out["json"])
    assert_valid(document)
    accounts = document["accounts"]
    assert set(accounts[0]["scores"]) == {"vitality", "reach"}

    assert re.match(r"tier\s+account\s+vitality\s+people reached\s+evidence\s+top holder\s+findings$", header(out["table"]))
    assert "| tier | account | vitality | people reached | evidence | top holder share | findings |" in out["markdown"]
    first = accounts[0]
    cells = (rf"\| {first['tier']} \| {re.escape(first['name'])} \| {first['scores']['vitality']:.0f}( \([+-]\d+\))? "
             rf"\| {first['scores']['reach']:.0f} \|")  # the overall score with its change, if any
    assert re.search(cells, out["markdown"]), cells

    # the overall score orders the accounts: within a tier (and no account finding), lowest first
    tier_s = [a["scores"]["vitality"] for a in accounts if a["tier"] == "S"]
    assert tier_s == sorted(tier_s) and len(tier_s) > 1

    html = out["html"]
    assert '<div class="score health"><dt>vitality</dt>' in html and "<dt>people reached</dt>" in html
    assert "<dt>key</dt>" not in html and "<dt>health</dt>" not in html
    assert "Accounts by tier and vitality" in html
    assert "Vitality would fall from" in html           # its departure simulation
    assert "Vitality month by month" in html and '<th scope="col">people reached</th>' in html


def test_an_extension_is_headlined_after_the_method(installed: Path, store_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.setenv("CRMLINK_LOAD_PLUGINS", "champion")
    table, markdown, html = (audit(store_url, fmt, tmp_path) for fmt in ("table", "markdown", "html"))
    assert header(table).split()[2:7] == ["health", "key", "broad", "org", "champion"]
    assert "| tier | account | health | key | broad | org | champion | evidence | top holder share | findings |" in markdown
    assert '<div class="score health"><dt>health</dt>' in html and "<dt>champion</dt>" in html
    assert "Accounts by tier and health" in html and "If Lena Fischer left" in html


class Override:
    """Scores ``key`` as the constant 1, over the method's."""

    @crmlink.hookimpl
    def score_account(self) -> list[crmlink.Score]:
        return [crmlink.Score("key", 1.0)]


def test_the_later_registered_plugin_wins_a_score_clash(store_url: str) -> None:
    host = get_plugin_host(load_entrypoints=False, extra=[("override", Override())])
    document = Audit(Store(store_url), host, load_config(None), date.fromisoformat(AS_OF)).document()
    assert {a.scores["key"] for a in document.accounts} == {1.0}
    assert all(a.scores["health"] is not None for a in document.accounts)


def test_core_calls_hooks_only_through_the_typed_host() -> None:
    offenders = []
    for folder in ("core", "commands"):
        for path in sorted((ROOT / "crmlink" / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if path.name != "host.py" and re.search(r"\.hook\b", text):
                offenders.append(f"{path.relative_to(ROOT)} calls .hook directly")
            if re.search(r"crmlink\.plugins\.method|plugins import method", text) and path.name != "host.py":
                offenders.append(f"{path.relative_to(ROOT)} imports the method plugin")
    assert not offenders
    assert not hasattr(get_plugin_host(load_entrypoints=False), "hook")
