"""The HTML audit report of the bundled sample: self-contained, accessible, and shown
correctly in a real (headless) Chromium when one is installed at /usr/bin/chromium."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from tests.conftest import AS_OF, SAMPLE

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
WESTLAKE, PINNACLE = "ACC-003", "ACC-004"


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML report of the sample, written with ``--output`` once per session."""
    folder = tmp_path_factory.mktemp("html")
    out = folder / "report.html"
    result = CliRunner().invoke(cli, ["audit", str(SAMPLE), "--db", f"sqlite:///{folder / 'store.db'}",
                                      "--as-of", AS_OF, "--format", "html", "--output", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def html(report: Path) -> str:
    return report.read_text(encoding="utf-8")


def _account(doc: dict, remote_id: str) -> dict:
    return next(a for a in doc["accounts"] if a["remote_id"] == remote_id)


# -- always run ---------------------------------------------------------------------------------


def test_report_is_one_document_with_no_network_reference(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"""url\(\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "@import" not in html
    assert not re.search(r"<link\b", html, re.I), "styles must be inline"
    assert not re.search(r"<script[^>]*\bsrc=", html, re.I), "scripts must be inline"
    assert "<style>" in html and "@media print" in html


def test_every_chart_has_a_text_alternative(html: str) -> None:
    charts = re.findall(r"<svg\b([^>]*)>(.*?)</svg>", html, re.S)
    assert len(charts) > 50
    for attributes, body in charts:
        assert 'role="img"' in attributes
        assert "aria-label=" in attributes or re.match(r"\s*<title\b[^>]*>[^<]+</title>", body), attributes
        assert "<desc" in body or "aria-label=" in attributes
    # and a data table next to the portfolio charts
    for section in ("tier-health", "effort", "severity", "codes", "ltc"):
        figure = re.search(rf'<figure class="card[^"]*" id="{section}">(.*?)</figure>', html, re.S)
        assert figure and "<table" in figure.group(1), section


def test_portfolio_and_accounts_are_in_the_report(html: str, sample_audit: dict) -> None:
    assert 'id="portfolio"' in html
    for heading in ("Accounts by tier and health", "Findings by severity", "Findings by code",
                    "Effort share per tier against the target 7:3:0:0", "Lead to Cash funnel",
                    "Accounts that need attention first"):
        assert heading in html
    for account in sample_audit["accounts"]:
        assert f'data-account="{account["remote_id"]}"' in html
    assert html.count('class="chart relmap"') == len(sample_audit["accounts"])
    assert "If Lena Fischer left" in html  # the departure simulation of Westlake's top holder


def test_relationship_map_data_shows_the_planted_situations(sample_audit: dict) -> None:
    westlake = _account(sample_audit, WESTLAKE)["relationship_map"]
    top = westlake["users"][0]
    assert top["share"] >= 0.7
    strength = {}
    for pair in westlake["pairs"]:
        strength[pair["user"]] = strength.get(pair["user"], 0.0) + pair["strength"]
    assert strength[top["id"]] / sum(strength.values()) >= 0.7
    contacts = {c["id"] for c in westlake["contacts"] if c["team_strength"] >= 30}
    assert contacts <= {p["contact"] for p in westlake["pairs"] if p["user"] == top["id"]}
    assert westlake["departure"]["health_drop"] > 20

    pinnacle = _account(sample_audit, PINNACLE)["relationship_map"]
    engaged = [c for c in pinnacle["contacts"] if c["team_strength"] >= 30]
    assert [c["title"] for c in engaged] == ["Chief Technology Officer"]
    assert {p["contact"] for p in pinnacle["pairs"] if p["strength"] >= 15} == {engaged[0]["id"]}


@pytest.fixture(scope="session")
def report_document(report: Path) -> dict:
    """The audit document the HTML report is drawn from (with the monthly history)."""
    store = Store(f"sqlite:///{report.parent / 'store.db'}")
    return Audit(store, get_plugin_host(), load_config(), date.fromisoformat(AS_OF)).run()


def test_health_history_covers_twelve_month_ends(report_document: dict, sample_audit: dict) -> None:
    assert sample_audit["tier_target"] == {"S": 7, "A": 3, "B": 0, "C": 0}
    assert all("health_history" not in a for a in sample_audit["accounts"])  # JSON skips its cost
    for account in report_document["accounts"]:
        history = account["health_history"]
        assert len(history) == 12
        assert history[-1]["date"] == AS_OF
        assert history[-1]["health"] == account["scores"]["health"]
        assert history[0]["date"] == "2025-12-31"


def test_markdown_still_works(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", str(SAMPLE), "--db", f"sqlite:///{tmp_path / 's.db'}",
                                      "--as-of", AS_OF, "--format", "markdown"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# Relationship audit, {AS_OF}")
    assert "Westlake Power Grid" in result.stdout and "<svg" not in result.stdout


# -- in a real browser --------------------------------------------------------------------------


def test_report_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    url = report.resolve().as_uri()
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            page.screenshot(path=str(tmp_path / "report.png"))
            assert (tmp_path / "report.png").stat().st_size > 10_000

            assert page.title().startswith("Relationship audit")
            assert page.locator("#portfolio h2").is_visible()
            assert page.locator("#tier-health svg").is_visible()
            assert page.locator("#attention tbody tr").count() > 0

            westlake = page.locator(f'section[data-account="{WESTLAKE}"] svg.relmap')
            westlake.scroll_into_view_if_needed()
            assert westlake.is_visible()
            assert westlake.bounding_box()["width"] > 400
            lines = westlake.locator("path[data-user]")
            by_user: dict[str, float] = {}
            for user, strength in lines.evaluate_all(
                    "ps => ps.map(p => [p.dataset.user, parseFloat(p.dataset.strength)])"):
                by_user[user] = by_user.get(user, 0.0) + strength
            top = max(by_user, key=by_user.__getitem__)
            assert by_user[top] / sum(by_user.values()) >= 0.7  # every strong line leads to one person
            westlake.screenshot(path=str(tmp_path / "westlake.png"))

            pinnacle = page.locator(f'section[data-account="{PINNACLE}"] svg.relmap')
            pinnacle.scroll_into_view_if_needed()
            assert pinnacle.is_visible()
            strong = pinnacle.locator("path[data-user]").evaluate_all(
                "ps => [...new Set(ps.filter(p => parseFloat(p.dataset.strength) >= 15).map(p => p.dataset.contact))]")
            assert len(strong) == 1  # a needle point: only the CTO
            title = pinnacle.locator(f'g.contact[data-contact="{strong[0]}"] title').text_content()
            assert "Chief Technology Officer" in title
        finally:
            browser.close()
    assert errors == []
    assert requests == [url]
