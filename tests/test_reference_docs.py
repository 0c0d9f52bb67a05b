"""The reference pages generated from the code (docs/cli.md, docs/records.md,
docs/views.md) are committed as generated and complete, and every page the docs and the
code point to exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from crmlink import docs
from crmlink.core import vocab
from crmlink.core.analysis.accumulate import AccountData, Pair
from crmlink.core.analysis.summary import AccountSummary, OpportunitySummary
from crmlink.core.analysis.view import AccountView, ContactStat, OpportunityView, PortfolioView
from crmlink.core.model import ENTITIES, Record
from crmlink.core.sync import RETRY_ENV
from crmlink.docs import cli, introspect, records, views

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
VIEWS = (AccountView, ContactStat, OpportunityView, PortfolioView, AccountSummary, OpportunitySummary,
         AccountData, Pair)


@pytest.mark.parametrize("name", sorted(docs.pages()))
def test_committed_page_is_the_generated_one(name):
    assert (DOCS / name).read_text(encoding="utf-8") == docs.pages()[name](), (
        f"docs/{name} differs from the code; run: python -m crmlink.docs")


def test_check_command_names_a_stale_page(tmp_path):
    docs.write(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "crmlink.docs", "--check", str(tmp_path)],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "views.md").write_text("old\n", encoding="utf-8")
    stale = subprocess.run([sys.executable, "-m", "crmlink.docs", "--check", str(tmp_path)],
                           capture_output=True, text=True, cwd=ROOT)
    assert stale.returncode == 1 and "views.md differs from the code" in stale.stderr


def test_every_environment_variable_the_code_reads_is_documented():
    read = set()
    for path in (ROOT / "crmlink").rglob("*.py"):
        if "testing" in path.parts or "docs" in path.parts:
            continue
        read |= set(re.findall(r"CRMLINK_[A-Z_]*[A-Z](?![A-Z_])", path.read_text(encoding="utf-8")))
    documented = set(cli.ENVIRONMENT) | set(RETRY_ENV.values())
    assert read == documented, (f"not in crmlink/docs/cli.py ENVIRONMENT: {sorted(read - documented)}; "
                                f"no longer read: {sorted(documented - read)}")


def test_every_record_field_and_vocabulary_value_is_on_the_page():
    page = (DOCS / "records.md").read_text(encoding="utf-8")
    for cls in (Record, *ENTITIES.values()):
        for info in records.field_infos(cls, base=cls is Record):
            assert f"| `{info.name}` |" in page, f"{cls.__name__}.{info.name}"
    for name, terms in vocab.VOCABULARIES.items():
        section = page.split(f"### {name}\n", 1)[1].split("###", 1)[0]
        assert all(f"`{term}`" in section for term in terms), name
    contact = {i.name: i for i in records.field_infos(ENTITIES["contact"])}
    assert "[department](#department)" in contact["department"].values
    interaction = {i.name: i for i in records.field_infos(ENTITIES["interaction"])}
    assert interaction["kind"].required and interaction["occurred_at"].required
    assert not interaction["direction"].required
    assert "fraction" in {i.name: i for i in records.field_infos(ENTITIES["opportunity"])}["probability"].note


def test_record_notes_are_for_fields_the_model_does_not_explain():
    fields = {(cls.entity, f) for cls in (Record, *ENTITIES.values())
              for f in cls.__dataclass_fields__}
    for entity, name in records.NOTES:
        assert (entity, name) in fields, f"records.NOTES names {entity}.{name}, which does not exist"
    for cls in ENTITIES.values():
        commented = introspect.comments(cls)
        stale = [name for (entity, name) in records.NOTES if entity == cls.entity and name in commented]
        assert not stale, f"{cls.__name__} now comments {stale} in the model; remove them from records.NOTES"


def test_every_view_member_has_a_meaning():
    missing = [f"{cls.__name__}.{m.name}" for cls in VIEWS
               for _, rows in views.documented(cls) for m in rows if not m.doc]
    assert not missing, f"add a docstring or comment in the code (or views.NOTES): {missing}"
    own = {(cls.__name__, m.name): m.doc for cls in VIEWS
           for m in introspect.fields(cls) + introspect.members(cls)}
    unknown = [key for key in views.NOTES if key not in own]
    assert not unknown, f"views.NOTES names members that are gone: {unknown}"
    moved = [key for key in views.NOTES if own[key]]
    assert not moved, f"the code now documents {moved}; remove them from views.NOTES"


LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *DOCS.rglob("*.md"), *(ROOT / "examples").rglob("*.md")]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lower case, punctuation dropped."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target, anchor in LINK.findall(text):
        if "://" in target or target.startswith("mailto:"):
            continue
        path = (page.parent / target) if target else page
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}#{anchor}")
    assert not broken, f"{page.relative_to(ROOT)} links to missing {broken}"


def test_docs_named_in_code_exist():
    missing = set()
    for path in [*(ROOT / "crmlink").rglob("*.py"), *(ROOT / "crmlink").rglob("*.tmpl"),
                 *(ROOT / "examples").rglob("*.py")]:
        for name in re.findall(r"\bdocs/[\w./-]*?\.md\b", path.read_text(encoding="utf-8")):
            if not (ROOT / name).exists():
                missing.add(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, sorted(missing)


def test_nothing_cites_the_design_notes():
    """The code and the docs stand alone: no citation of design notes users do not have."""
    cites = re.compile(r"\b(?:DESIGN|METHOD)\.md\b|\bDESIGN(?: section)? \d")
    files = [ROOT / "README.md", *(ROOT / "crmlink").rglob("*"), *DOCS.rglob("*"),
             *(ROOT / "examples").rglob("*"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*")]
    citing = []
    for path in files:
        if path.is_dir() or path == Path(__file__).resolve() or path.suffix not in (
                ".py", ".md", ".toml", ".j2", ".tmpl", ".txt", ".json", ".css", ".js", ".html"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        citing += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in cites.finditer(text)]
    assert not citing, citing
