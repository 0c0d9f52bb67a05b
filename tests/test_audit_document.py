"""The audit document's contract: its JSON Schema (printed by ``crmlink audit --schema``,
copied in docs/), the reference page, and the document every format receives."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

import crmlink
from crmlink.cli import cli
from crmlink.commands import audit as audit_command
from crmlink.core import document_docs
from crmlink.core.document import SCHEMA_VERSION, AuditDocument, audit_schema
from tests.conftest import AS_OF, ROOT, SAMPLE

DOCS = ROOT / "docs"


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(audit_schema())


def assert_valid(document: dict[str, Any]) -> None:
    errors = sorted(validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(audit_schema())
    assert audit_schema()["properties"]["schema_version"]["enum"] == [SCHEMA_VERSION]


def test_cli_prints_the_schema() -> None:
    result = CliRunner().invoke(cli, ["audit", "--schema"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == audit_schema()


def test_docs_copy_of_the_schema_is_current() -> None:
    assert (DOCS / "audit-schema.json").read_text(encoding="utf-8") == document_docs.schema_text(), (
        "docs/audit-schema.json is stale: run python -m crmlink.core.document_docs")


def test_reference_page_is_current_and_mentions_every_property() -> None:
    page = (DOCS / "audit.md").read_text(encoding="utf-8")
    assert page == document_docs.page_text(page), "docs/audit.md is stale: run python -m crmlink.core.document_docs"
    schema = audit_schema()
    for name, node in [("AuditDocument", schema), *schema["$defs"].items()]:
        assert f"### {name}" in page
        for prop in node["properties"]:
            assert f"`{prop}`" in page, f"docs/audit.md does not mention {name}.{prop}"


def test_sample_json_follows_the_schema(sample_audit: dict) -> None:
    assert_valid(sample_audit)
    assert list(sample_audit)[:4] == ["crmlink_version", "schema_version", "generated_at", "as_of"]
    assert sample_audit["schema_version"] == SCHEMA_VERSION


def test_the_schema_rejects_what_the_document_never_holds(sample_audit: dict) -> None:
    broken = json.loads(json.dumps(sample_audit))
    broken["accounts"][0]["scores"]["health"] = "high"
    broken["accounts"][1]["surprise"] = 1
    del broken["opportunities"][0]["ltc_stage"]
    found = {tuple(e.absolute_path) for e in validator().iter_errors(broken)}
    assert found == {("accounts", 0, "scores", "health"), ("accounts", 1), ("opportunities", 0)}


# -- what each format receives ------------------------------------------------------------


class PeekFormat:
    """A plugin that offers an output format and keeps the data the format is handed."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    @crmlink.hookimpl
    def register_report_formats(self, register: Any) -> None:
        register("peek", self.render)

    def render(self, audit: dict[str, Any]) -> str:
        self.seen.append(audit)
        return f"{len(audit['accounts'])} accounts\n"


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('doc') / 'store.db'}"
    result = CliRunner().invoke(cli, ["sync", "csv", str(SAMPLE), "--db", url, "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return url


def test_every_format_receives_a_document_that_follows_the_schema(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from crmlink.core.host import get_plugin_host

    handed: dict[str, AuditDocument] = {}
    for name, fmt in audit_command.BUILTIN_FORMATS.items():
        def keep(document: AuditDocument, limit: int | None, name: str = name, render: Any = fmt.render) -> str:
            handed[name] = document
            return render(document, limit)
        monkeypatch.setitem(audit_command.BUILTIN_FORMATS, name, fmt._replace(render=keep))
    peek = PeekFormat()
    host = get_plugin_host(load_entrypoints=False, extra=[("peek", peek)])
    for name in [*audit_command.BUILTIN_FORMATS, "peek"]:
        result = CliRunner().invoke(cli, ["audit", "--db", store_url, "--as-of", AS_OF, "--format", name],
                                    obj={"host": host}, catch_exceptions=False)
        assert result.exit_code == 0, (name, result.output)
    assert set(handed) == {"table", "json", "markdown", "html"}
    for name, document in handed.items():
        assert isinstance(document, AuditDocument), name
        assert_valid(document.to_json())
    assert all("health_history" in a for a in handed["html"].to_json()["accounts"])
    (data,) = peek.seen
    assert_valid(data)
    assert all(len(a["health_history"]) == 12 for a in data["accounts"])  # plugin formats get the history


def test_renderers_show_a_null_or_missing_score_as_a_dash(store_url: str) -> None:
    """A score with no evidence (null) or none at all is "–" in every report, never 0."""
    from datetime import date

    from crmlink.core.analysis.audit import Audit
    from crmlink.core.analysis.config import load_config
    from crmlink.core.host import get_plugin_host
    from crmlink.core.report import html, markdown, table
    from crmlink.core.store import Store

    doc = Audit(Store(store_url), get_plugin_host(load_entrypoints=False), load_config(None),
                date.fromisoformat(AS_OF)).document(history=True)
    first = doc.accounts[0]
    first.scores["health"] = None
    del first.scores["key"]
    assert_valid(doc.to_json())
    name = re.escape(first.name or "")
    row = next(line for line in table.render(doc).splitlines() if re.search(name, line))
    assert (row[39:51].strip(), row[51:57].strip()) == ("–", "–"), row  # the health and key columns
    md_row = next(line for line in markdown.render(doc).splitlines() if line.startswith(f"| {first.tier} | {first.name} |"))
    assert md_row.split(" | ")[2:4] == ["–", "–"], md_row
    page = html.render(doc)
    section = page[page.index(f'data-account="{first.remote_id}"'):]
    assert '<dt>health</dt><dd>–</dd>' in section and '<dt>key</dt><dd>–</dd>' in section
    assert "– no score" in page  # the tier x health matrix has a column for it


def test_document_json_is_what_json_format_prints(store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    result = CliRunner().invoke(cli, ["audit", "--db", store_url, "--as-of", AS_OF, "--format", "json",
                                      "--output", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    printed = json.loads(out.read_text(encoding="utf-8"))
    assert_valid(printed)
    assert "health_history" not in printed["accounts"][0]
    assert printed["tier_target"] == {"S": 7, "A": 3, "B": 0, "C": 0}
