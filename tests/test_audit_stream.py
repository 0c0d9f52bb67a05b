"""The streamed audit (``Audit.stream``, what ``crmlink audit --format json`` runs) writes
exactly the JSON of the whole document, for one source, merged sources and sources side
by side, compact and indented; its returned document is the whole one less each
account's relationship map and score evidence."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.analysis.spool import AccountSpool
from crmlink.core.document import AccountEntry, account_json
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from tests.conftest import AS_OF, SAMPLE
from tests.mergefixtures import split

MERGE = '[identity.match]\nsource_order = ["sales", "marketing"]\n'


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _without_time(text: str) -> str:
    return re.sub(r'"generated_at": ?"[^"]*"', '"generated_at": ""', text, count=1)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("stream")
    one, two = f"sqlite:///{tmp / 'one.db'}", f"sqlite:///{tmp / 'two.db'}"
    _invoke("sync", "csv", str(SAMPLE), "--db", one)
    sales, marketing = split(tmp / "split")
    _invoke("sync", "csv", str(marketing), "--source", "marketing", "--db", two)
    _invoke("sync", "csv", str(sales), "--source", "sales", "--db", two)
    return {"one": one, "two": two}


def _audit(url: str, merge: bool, tmp_path: Path) -> Audit:
    config_file = tmp_path / "crmlink.toml"
    config_file.write_text(MERGE, encoding="utf-8")
    return Audit(Store(url), get_plugin_host(), load_config(str(config_file)), date.fromisoformat(AS_OF),
                 merge=merge)


@pytest.mark.parametrize(("store", "merge"), [("one", True), ("two", True), ("two", False)])
@pytest.mark.parametrize("indent", [None, 2])
def test_streamed_json_is_the_whole_documents(stores: dict[str, str], store: str, merge: bool,
                                              indent: int | None, tmp_path: Path) -> None:
    whole = _audit(stores[store], merge, tmp_path).document()
    out = io.StringIO()
    streamed = _audit(stores[store], merge, tmp_path).stream(None, out, indent=indent)
    assert _without_time(out.getvalue()) == _without_time(whole.dumps(indent))
    if store == "two" and merge:
        assert whole.merge is not None and whole.merge.accounts_joined > 0  # the merged path ran
    assert [a.id for a in streamed.accounts] == [a.id for a in whole.accounts]


def test_the_returned_document_lacks_maps_and_evidence_alone(stores: dict[str, str], tmp_path: Path) -> None:
    whole = _audit(stores["one"], True, tmp_path).document()
    slim = _audit(stores["one"], True, tmp_path).stream()
    assert len(slim.accounts) == len(whole.accounts) == 50
    for kept, full in zip(slim.accounts, whole.accounts):
        assert kept.score_evidence == {} and kept.relationship_map.contacts == []
        assert full.relationship_map.contacts  # the sample's accounts all have contacts
        assert _rest(kept) == _rest(full)
    assert slim.summary == whole.summary and slim.opportunities == whole.opportunities
    assert slim.portfolio_findings == whole.portfolio_findings


def _rest(entry: AccountEntry) -> dict[str, object]:
    data = entry.to_json()
    del data["score_evidence"], data["relationship_map"]
    return data


def test_write_json_of_a_whole_document_is_dumps(stores: dict[str, str], tmp_path: Path) -> None:
    document = _audit(stores["one"], True, tmp_path).document()
    for indent in (None, 2, 4):
        out = io.StringIO()
        document.write_json(out, indent)
        assert out.getvalue() == document.dumps(indent)
    empty = io.StringIO()
    document.accounts = []
    text = document.dumps()
    document.write_json(empty)
    assert empty.getvalue() == text and '"accounts":[]' in text


@pytest.mark.parametrize("indent", [None, 2])
def test_streamed_json_to_a_file_is_the_whole_documents(stores: dict[str, str], indent: int | None,
                                                        tmp_path: Path) -> None:
    """Written to a UTF-8 file after text of its own (compact: the spooled entries'
    bytes straight to the file's buffer), then more text after it: all in order."""
    whole = _audit(stores["one"], True, tmp_path).document()
    path = tmp_path / "audit.json"
    with path.open("w", encoding="utf-8") as out:
        out.write("<")
        _audit(stores["one"], True, tmp_path).stream(None, out, indent=indent)
        out.write(">")
    assert _without_time(path.read_text(encoding="utf-8")) == f"<{_without_time(whole.dumps(indent))}>"


def test_spool_reads_entries_back_in_any_order(stores: dict[str, str], tmp_path: Path) -> None:
    entries = _audit(stores["one"], True, tmp_path).document().accounts[:5]
    with AccountSpool(2) as spool:
        numbers = [spool.add(e) for e in entries]
        assert list(spool.texts(reversed(numbers))) == [account_json(e, 2) for e in reversed(entries)]
        spool.add(entries[0])  # adding after reading goes to the end, not over an entry
        assert list(spool.texts([0, 5])) == [account_json(entries[0], 2)] * 2
        assert [data.decode("utf-8") for data in spool.datas([5, 1])] == [account_json(e, 2) for e in entries[:2]]


def test_spool_reads_texts_kept_elsewhere_in_batches_beside_its_own(stores: dict[str, str], tmp_path: Path) -> None:
    """Texts kept elsewhere (the audit's cache) are numbered among the spool's own and
    read in the order asked, each source of them asked once a batch for its keys."""
    entries = _audit(stores["one"], True, tmp_path).document().accounts[:4]
    texts = {f"k{i}": account_json(e, 2).encode("utf-8") for i, e in enumerate(entries)}
    asked: list[list[str]] = []

    def fetch(keys: Sequence[str]) -> dict[str, bytes]:
        asked.append(list(keys))
        return {key: texts[key] for key in keys}

    other: list[list[str]] = []

    def fetch_other(keys: Sequence[str]) -> dict[str, bytes]:  # another source's cache, same keys
        other.append(list(keys))
        return {key: texts[f"k{3 - int(key[1:])}"] for key in keys}

    with AccountSpool(2) as spool:
        numbers = [spool.add_elsewhere(fetch, "k0"), spool.add(entries[1]), spool.add_elsewhere(fetch, "k2"),
                   spool.add_elsewhere(fetch, "k3"), spool.add_elsewhere(fetch_other, "k0")]
        order = [numbers[3], numbers[1], numbers[4], numbers[0], numbers[2], numbers[3]]
        assert list(spool.texts(order)) == [account_json(entries[i], 2) for i in (3, 1, 3, 0, 2, 3)]
    assert asked == [["k3", "k0", "k2", "k3"]]
    assert other == [["k0"]]


def test_write_json_of_spooled_bytes_is_dumps_in_a_file_and_in_text(stores: dict[str, str], tmp_path: Path) -> None:
    """The spool's texts as bytes (what the streamed audit writes): straight to a UTF-8
    file's buffer, between what went to it as text, or decoded where ``out`` has no
    buffer; a name with letters beyond ASCII comes out the same either way."""
    document = _audit(stores["one"], True, tmp_path).document()
    document.accounts[0].name = "Société Générale — Zürich"
    for indent in (None, 2):
        with AccountSpool(indent) as spool:
            numbers = [spool.add(e) for e in document.accounts]
            path = tmp_path / f"written-{indent}.json"
            with path.open("w", encoding="utf-8") as handle:
                document.write_json(handle, indent, spool.datas(numbers))
            text = io.StringIO()
            document.write_json(text, indent, spool.datas(numbers))
            assert path.read_text(encoding="utf-8") == text.getvalue() == document.dumps(indent)
            spool.add(document.accounts[0])  # reading left the spool's files where the next write goes
            assert list(spool.datas([len(numbers)])) == [account_json(document.accounts[0], indent).encode()]


def test_cli_json_to_stdout_and_to_a_file(stores: dict[str, str], tmp_path: Path) -> None:
    printed = _invoke("audit", "--db", stores["one"], "--as-of", AS_OF, "--format", "json")
    target = tmp_path / "audit.json"
    _invoke("audit", "--db", stores["one"], "--as-of", AS_OF, "--format", "json", "--output", str(target))
    written = target.read_text(encoding="utf-8")
    assert _without_time(printed) == _without_time(written) + "\n"
    assert json.loads(written)["summary"]["accounts"] == 50
    assert [p.name for p in tmp_path.iterdir()] == ["audit.json"]  # no temporary file left


def test_cli_json_into_a_missing_folder_says_so(stores: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "audit.json"
    result = CliRunner().invoke(cli, ["audit", "--db", stores["one"], "--as-of", AS_OF, "--format", "json",
                                      "--output", str(target)])
    assert result.exit_code != 0
    assert f"folder {target.parent} does not exist" in result.output
    assert not target.parent.exists()
