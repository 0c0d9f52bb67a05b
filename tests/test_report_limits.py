"""The table and Markdown reports of a large portfolio list the accounts that need
attention first and say how many they left out; ``--all`` lists every one. The bundled
sample (50 accounts) is listed whole either way."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.report.text import ACCOUNT_LIMIT
from crmlink.testing.generate import generate
from tests.conftest import AS_OF, SAMPLE

ACCOUNTS = 64


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A generated export of more accounts than the limit, synced; and its JSON audit."""
    folder = tmp_path_factory.mktemp("limits")
    generate(str(folder / "export"), ACCOUNTS, 1500, contacts=ACCOUNTS * 4)
    db = f"sqlite:///{folder / 'store.db'}"
    result = CliRunner().invoke(cli, ["audit", str(folder / "export"), "--db", db, "--as-of", AS_OF,
                                      "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder, json.loads(result.stdout)


def _audit(folder: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["audit", "--db", f"sqlite:///{folder / 'store.db'}", "--as-of", AS_OF, *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _table_rows(text: str, names: list[str]) -> list[str]:
    return [n for n in names if re.search(rf"^\S+\s+{re.escape(n[:33])}\s", text, re.M)]


def test_table_lists_the_first_accounts_and_says_how_to_see_all(portfolio: tuple[Path, dict]) -> None:
    folder, audit = portfolio
    names = [a["name"] for a in audit["accounts"]]
    assert len(names) == ACCOUNTS > ACCOUNT_LIMIT
    text = _audit(folder)
    assert _table_rows(text, names) == names[:ACCOUNT_LIMIT]
    left = ACCOUNTS - ACCOUNT_LIMIT
    assert (f"{left} more account(s) not listed here: these are the {ACCOUNT_LIMIT} that need attention first. "
            f"Run crmlink audit with --all to list all {ACCOUNTS}.") in text
    assert "Run with --format json, or markdown with --all, for every finding" in text
    everything = _audit(folder, "--all")
    assert _table_rows(everything, names) == names
    assert "not listed here" not in everything


def test_markdown_lists_the_first_accounts_and_their_deals(portfolio: tuple[Path, dict]) -> None:
    folder, audit = portfolio
    shown = audit["accounts"][:ACCOUNT_LIMIT]
    text = _audit(folder, "--format", "markdown")
    accounts = text.split("## Accounts", 1)[1].split("##", 1)[0]
    assert accounts.count("\n| ") == ACCOUNT_LIMIT + 1  # the header row and the first accounts
    assert f"_{ACCOUNTS - ACCOUNT_LIMIT} more account(s) not listed here" in text
    headings = re.findall(r"^### (.+) \(", text, re.M)
    assert headings == [a["name"] for a in shown if a["findings"]]
    ids = {a["id"] for a in shown}
    deals = [o["name"] for o in audit["opportunities"] if o["account_id"] in ids]
    opportunities = text.split("## Opportunities", 1)[1]
    assert f"_The deals of the {ACCOUNT_LIMIT} accounts listed: {len(deals)} of {len(audit['opportunities'])}._" \
        in opportunities
    assert opportunities.count("\n| ") == len(deals) + 1

    everything = _audit(folder, "--format", "markdown", "--all")
    assert everything.split("## Accounts", 1)[1].split("##", 1)[0].count("\n| ") == ACCOUNTS + 1
    assert everything.split("## Opportunities", 1)[1].count("\n| ") == len(audit["opportunities"]) + 1
    assert "not listed here" not in everything and "The deals of the" not in everything


def test_the_sample_is_listed_whole_without_the_flag(tmp_path: Path, sample_audit: dict) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    outputs = {}
    for args in ([], ["--all"]):
        for fmt in ("table", "markdown"):
            result = CliRunner().invoke(cli, ["audit", str(SAMPLE), "--db", db, "--as-of", AS_OF,
                                              "--format", fmt, *args], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            outputs[fmt, bool(args)] = result.stdout
    assert len(sample_audit["accounts"]) <= ACCOUNT_LIMIT
    for fmt in ("table", "markdown"):
        assert outputs[fmt, False] == outputs[fmt, True]
        assert "not listed here" not in outputs[fmt, False]
