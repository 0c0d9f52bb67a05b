"""The HTML report as a directory (``--output DIR``): an index with a filter and sort over
every account, a page per account, shared files; the rule that tells a directory from
the single file; and Chinese names drawn with real glyphs in both forms, in Chromium."""

from __future__ import annotations

import json
import multiprocessing
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.document import AuditDocument
from crmlink.core.host import get_plugin_host
from crmlink.core.report import htmldir
from crmlink.core.store import Store
from tests.conftest import AS_OF, SAMPLE
from tests.test_html_report import CHROMIUM, CHROMIUM_ARGS

CJK_ACCOUNT, CJK_NAME = "ACC-002", "东海移动"


def _audit(folder: Path, output: str, *more: str) -> Any:
    return CliRunner().invoke(cli, ["audit", str(SAMPLE), "--db", f"sqlite:///{folder / 'store.db'}",
                                    "--as-of", AS_OF, "--format", "html", "--output", output, *more],
                              catch_exceptions=False)


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory report of the sample, written by ``crmlink audit --output DIR``."""
    folder = tmp_path_factory.mktemp("htmldir")
    result = _audit(folder, str(folder / "report"))
    assert result.exit_code == 0, result.output
    assert "50 account page(s)" in result.stderr
    return folder / "report"


@pytest.fixture(scope="session")
def sample_document(report_dir: Path) -> AuditDocument:
    store = Store(f"sqlite:///{report_dir.parent / 'store.db'}")
    return Audit(store, get_plugin_host(), load_config(), date.fromisoformat(AS_OF)).document()


def _rows(index: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="account-data">(.*?)</script>', index, re.S)
    assert found
    return json.loads(found.group(1))


# -- always run ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("output", "directory"), [
    ("report.html", False), ("REPORT.HTM", False), ("out/audit.html", False),
    ("report", True), ("htmlcov", True), ("reports/2026-11-20", True), ("report.v2", True), ("x.html/", True),
])
def test_directory_or_single_file_by_name(output: str, directory: bool) -> None:
    assert htmldir.is_directory_target(output) is directory


def test_an_existing_directory_is_a_directory_whatever_its_name(tmp_path: Path) -> None:
    (tmp_path / "audit.html").mkdir()
    assert htmldir.is_directory_target(str(tmp_path / "audit.html"))


def test_single_file_stays_a_file(tmp_path: Path) -> None:
    result = _audit(tmp_path, str(tmp_path / "audit.html"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "audit.html").is_file()
    assert (tmp_path / "audit.html").read_text(encoding="utf-8").count("<section class=\"page account\"") == 50


def test_directory_layout_and_links(report_dir: Path, sample_audit: dict) -> None:
    names = sorted(p.name for p in report_dir.iterdir())
    assert names == [".crmlink-report", "accounts", "index.html", "report.css", "report.js"]
    index = (report_dir / "index.html").read_text(encoding="utf-8")
    pages = sorted((report_dir / "accounts").iterdir())
    assert len(pages) == len(sample_audit["accounts"]) == 50
    rows = _rows(index)["rows"]
    assert [r[1] for r in rows] == [a["name"] for a in sample_audit["accounts"]]  # attention order
    assert [r[3] for r in rows] == [a["owner"] for a in sample_audit["accounts"]]
    for row in rows:
        page = (report_dir / row[0]).read_text(encoding="utf-8")
        assert f">{row[1]} <span class=\"tier" in page.replace("&#39;", "'")
        assert 'href="../index.html"' in page and 'href="../report.css"' in page
        assert "<svg" in page and 'class="chart relmap"' in page
    # the attention list links to the pages too
    for href in re.findall(r'<a href="(accounts/[^"]+)">', index):
        assert (report_dir / href).is_file()
    assert len(index) < 100_000  # the portfolio and a short row per account, no account section


def test_directory_has_no_network_reference(report_dir: Path) -> None:
    for path in [report_dir / "index.html", report_dir / "report.css", report_dir / "report.js",
                 *(report_dir / "accounts").iterdir()]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I), path
        assert not re.search(r"""url\(\s*["']?\s*(?:https?:)?//""", text, re.I), path
        assert "@import" not in text and "fetch(" not in text and "XMLHttpRequest" not in text, path


def test_both_forms_set_lang_and_a_cjk_font_stack(report_dir: Path, tmp_path: Path) -> None:
    _audit(tmp_path, str(tmp_path / "audit.html"))
    css = (report_dir / "report.css").read_text(encoding="utf-8")
    for text in (css, (tmp_path / "audit.html").read_text(encoding="utf-8")):
        assert '"Noto Sans CJK SC"' in text and '"Microsoft YaHei"' in text
    for page in [report_dir / "index.html", *(report_dir / "accounts").iterdir()]:
        assert '<html lang="en">' in page.read_text(encoding="utf-8")


def test_a_foreign_directory_is_never_replaced(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["audit", str(SAMPLE), "--db", f"sqlite:///{tmp_path / 's.db'}",
                                      "--as-of", AS_OF, "--format", "html", "--output", str(mine)])
    assert result.exit_code == 2
    assert f"cannot write the HTML report into {mine}: it is not empty" in result.output
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_html_to_stdout_is_the_single_file(tmp_path: Path) -> None:
    result = _audit(tmp_path, "-")
    assert result.exit_code == 0 and result.stdout.startswith("<!DOCTYPE html>")
    assert not (Path.cwd() / "-").exists()


def test_a_missing_parent_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = _audit(tmp_path, str(tmp_path / "no" / "report"))
    assert result.exit_code == 2
    assert f"folder {tmp_path / 'no'} does not exist" in result.output


def test_a_report_directory_is_replaced_whole(report_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "report"
    shutil.copytree(report_dir, target)
    (target / "accounts" / "acc-GONE.html").write_text("an account no longer audited")
    result = _audit(report_dir.parent, str(target))
    assert result.exit_code == 0, result.output
    assert not (target / "accounts" / "acc-GONE.html").exists()
    assert len(list((target / "accounts").iterdir())) == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging left behind


def test_page_names_stay_distinct_across_sources(sample_document: AuditDocument) -> None:
    twin = sample_document.accounts[0]
    clone = type(twin)(**{**{f: getattr(twin, f) for f in twin.__dataclass_fields__},
                          "id": "other:" + twin.remote_id, "source": "other"})
    doc = type(sample_document)(**{**{f: getattr(sample_document, f) for f in sample_document.__dataclass_fields__},
                                   "accounts": [*sample_document.accounts, clone]})
    names = htmldir.page_names(doc)
    assert len(set(names.values())) == len(doc.accounts)
    assert names[clone.id] == f"acc-{twin.remote_id}-other.html"


# -- in a real browser --------------------------------------------------------------------------


def _browser() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def _page(browser: Any, errors: list[str], requests: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    return page


def _shown(page: Any) -> list[list[str]]:
    return page.locator("#account-table tbody tr").evaluate_all(
        "trs => trs.map(tr => [...tr.children].map(c => c.textContent))")


def test_index_filters_sorts_and_links_in_chromium(report_dir: Path, sample_audit: dict, tmp_path: Path) -> None:
    sync_api = _browser()
    accounts = sample_audit["accounts"]
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _page(browser, errors, requests)
            page.goto((report_dir / "index.html").as_uri(), wait_until="load")
            assert page.locator("#portfolio h2").is_visible() and page.locator("#coverage").is_visible()
            assert page.locator("#attention tbody tr").count() == 12
            assert [r[1] for r in _shown(page)] == [a["name"] for a in accounts]
            page.locator("#all-accounts").screenshot(path=str(tmp_path / "index.png"))

            # a finding code typed in the search box
            code = "KEY_SINGLE_HOLDER"
            page.fill("#f-text", code.lower())
            expected = [a["name"] for a in accounts if any(f["code"] == code for f in a["findings"])]
            assert expected and [r[1] for r in _shown(page)] == expected
            assert all(code in r[-1] for r in _shown(page))
            assert page.locator("#account-count").text_content().startswith(f"{len(expected)} of 50 accounts")

            # a tier chosen from the list, on top of the text
            page.fill("#f-text", "")
            page.select_option("#f-tier", "S")
            assert [r[1] for r in _shown(page)] == [a["name"] for a in accounts if a["tier"] == "S"]
            owner = accounts[0]["owner"]
            page.select_option("#f-owner", owner)
            assert [r[1] for r in _shown(page)] == [a["name"] for a in accounts
                                                     if a["tier"] == "S" and a["owner"] == owner]
            page.click("#account-filter button[type=reset]")
            page.wait_for_function("document.querySelectorAll('#account-table tbody tr').length === 50")

            # sort by health, highest first, then lowest first; no score last both ways
            page.click("#account-table th[data-sort='score-0'] button")
            health = [a["scores"]["health"] for a in accounts]
            known = sorted((h for h in health if h is not None), reverse=True)
            assert [r[3] for r in _shown(page)] == [f"{h:.0f}" for h in known] + ["–"] * health.count(None)
            assert page.locator("#account-table th[data-sort='score-0']").get_attribute("aria-sort") == "descending"
            page.click("#account-table th[data-sort='score-0'] button")
            assert [r[3] for r in _shown(page)][:len(known)] == [f"{h:.0f}" for h in sorted(known)]

            # click an account and land on its page, and back
            target = accounts[5]
            page.locator("#account-table tbody a", has_text=target["name"]).click()
            page.wait_for_load_state("load")
            assert page.url.endswith(f"/accounts/acc-{target['remote_id']}.html")
            assert target["name"] in page.locator("main h2").first.text_content()
            assert page.locator("svg.relmap").is_visible()
            page.click("text=Back to the portfolio")
            page.wait_for_load_state("load")
            assert page.url.endswith("/index.html")
        finally:
            browser.close()
    assert errors == []
    assert requests and all(url.startswith("file://") for url in requests)


def test_index_pages_through_the_accounts_in_chromium(sample_document: AuditDocument, tmp_path: Path) -> None:
    sync_api = _browser()
    htmldir.write(sample_document, tmp_path / "report", page_rows=20)
    names = [a.name for a in sample_document.accounts]
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _page(browser, errors, [])
            page.goto((tmp_path / "report" / "index.html").as_uri(), wait_until="load")
            assert [r[1] for r in _shown(page)] == names[:20]
            assert page.is_disabled("#page-prev")
            page.click("#page-next")
            page.click("#page-next")
            assert [r[1] for r in _shown(page)] == names[40:]
            assert page.is_disabled("#page-next")
            assert page.locator("#page-info").text_content() == "rows 41–50 of 50"
        finally:
            browser.close()
    assert errors == []


def _cjk_fonts() -> bool:
    found = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


@pytest.mark.parametrize("form", ["directory", "single file"])
def test_chinese_name_is_drawn_with_real_glyphs(form: str, report_dir: Path, tmp_path: Path) -> None:
    """Draw the name's first four characters, then the same characters in another
    order: real glyphs give different pixels; missing-glyph boxes look alike."""
    sync_api = _browser()
    if shutil.which("fc-list") is None or not _cjk_fonts():
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    if form == "directory":
        url = (report_dir / "accounts" / f"acc-{CJK_ACCOUNT}.html").as_uri()
    else:
        assert _audit(tmp_path, str(tmp_path / "audit.html")).exit_code == 0
        url = (tmp_path / "audit.html").as_uri()
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _page(browser, errors, [])
            page.goto(url, wait_until="load")
            heading = page.locator(f'section[data-account="{CJK_ACCOUNT}"] h2')
            heading.scroll_into_view_if_needed()
            assert heading.text_content().startswith(CJK_NAME)
            box = heading.evaluate("""h => { const r = document.createRange(); r.setStart(h.firstChild, 0);
                r.setEnd(h.firstChild, 4); const b = r.getBoundingClientRect();
                return {x: b.x + scrollX, y: b.y + scrollY, width: b.width, height: b.height}; }""")
            assert box["width"] > 40 and box["height"] > 10
            drawn = page.screenshot(clip=box, full_page=True)
            heading.evaluate("(h, text) => { h.firstChild.data = text + h.firstChild.data.slice(4); }",
                             CJK_NAME[::-1])
            reversed_ = page.screenshot(clip=box, full_page=True)
            (tmp_path / "cjk.png").write_bytes(drawn)
            assert drawn != reversed_, "the Chinese characters are drawn as missing-glyph boxes"
        finally:
            browser.close()
    assert errors == []


def test_pages_drawn_by_forked_workers_are_the_same(sample_document: AuditDocument, tmp_path: Path) -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this system: the pages are always drawn in one process")
    htmldir.write(sample_document, tmp_path / "one", workers=1)
    htmldir.write(sample_document, tmp_path / "three", workers=3)
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    three = sorted(p.relative_to(tmp_path / "three") for p in (tmp_path / "three").rglob("*") if p.is_file())
    assert one == three and len(one) == 50 + 4  # pages, index, css, js, marker
    for path in one:
        assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "three" / path).read_bytes(), path
