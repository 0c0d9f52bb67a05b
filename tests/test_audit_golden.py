"""The audit's output, byte for byte, against files recorded before the audit was made
faster: the JSON of the bundled sample and of a generated 10k multi-party export, the
sample's whole document with its health history, and its Markdown and table reports,
each in one process and in two worker processes. A speed-up (caching, streaming,
another fold, workers) must not change a single byte; a change of results must come
with new golden files.

To record new golden files after an intended change of results or of the document's
shape: ``PYTHONPATH=$PWD python -m tests.test_audit_golden`` (then review the diff of
the decompressed files before committing them).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmlink.cli import cli
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from crmlink.testing.generate import generate

GOLDEN = Path(__file__).parent / "data" / "golden"
SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample"
AS_OF = "2026-11-20"
#: the generated export: 100 accounts, about 1,000 contacts and 10,000 interactions with
#: several people on each side (``python -m crmlink.testing.generate DIR --accounts 100
#: --contacts 1000 --interactions 10000 --people multiparty``)
GENERATED = {"accounts": 100, "contacts": 1000, "interactions": 10_000, "profile": "multiparty"}

#: the fields that differ from run to run (or from version to version), emptied before comparing
_VOLATILE = re.compile(rb'"(generated_at|crmlink_version)":( ?)"[^"]*"')


def _normalised(data: bytes) -> bytes:
    return _VOLATILE.sub(lambda m: b'"' + m.group(1) + b'":' + m.group(2) + b'""', data, count=2)


def _audit(db: str, fmt: str, out: Path, *extra: str) -> bytes:
    result = CliRunner().invoke(cli, ["audit", "--db", db, "--as-of", AS_OF, "--format", fmt,
                                      "--output", str(out), *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    return _normalised(data) if fmt == "json" else data


def _store(folder: Path, db: Path) -> str:
    url = f"sqlite:///{db}"
    result = CliRunner().invoke(cli, ["sync", "csv", str(folder), "--db", url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return url


def _first_difference(got: bytes, want: bytes) -> str:
    """Where two audit documents part: the first account (or top-level key) that differs."""
    a, b = json.loads(got), json.loads(want)
    for key in b:
        if key == "accounts" and a.get(key) != b[key]:
            for i, (x, y) in enumerate(zip(a[key], b[key])):
                if x != y:
                    fields = [k for k in y if x.get(k) != y[k]]
                    return f"accounts[{i}] ({y['id']}), fields {fields}"
            return f"accounts: {len(a[key])} against {len(b[key])}"
        if a.get(key) != b[key]:
            return f"top-level {key!r}"
    return "same JSON data, different bytes (key order, float text or separators)"


def _check(got: bytes, name: str) -> None:
    want = gzip.decompress((GOLDEN / f"{name}.gz").read_bytes())
    if got != want:
        where = _first_difference(got, want) if name.endswith(".json") else _first_line(got, want)
        pytest.fail(f"{name}: the output differs from the golden file at {where}")


def _first_line(got: bytes, want: bytes) -> str:
    for n, (x, y) in enumerate(zip(got.splitlines(), want.splitlines()), 1):
        if x != y:
            return f"line {n}: {x[:120]!r} against {y[:120]!r}"
    return f"the end: {len(got)} bytes against {len(want)}"


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _store(SAMPLE, tmp_path_factory.mktemp("golden-sample") / "store.db")


@pytest.fixture(scope="module")
def generated_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("golden-generated")
    generate(folder / "export", **GENERATED)
    return _store(folder / "export", folder / "store.db")


#: the audit in one process, and in two worker processes (forced: the stores are small)
WORKERS = pytest.mark.parametrize("workers", ["1", "2"])


@WORKERS
def test_sample_json_is_unchanged(sample_db: str, tmp_path: Path, workers: str) -> None:
    _check(_audit(sample_db, "json", tmp_path / "audit.json", "--workers", workers), "sample-audit.json")


@WORKERS
def test_generated_multiparty_json_is_unchanged(generated_db: str, tmp_path: Path, workers: str) -> None:
    _check(_audit(generated_db, "json", tmp_path / "audit.json", "--workers", workers),
           "generated-10k-multiparty-audit.json")


@WORKERS
@pytest.mark.parametrize(("fmt", "name"), [("markdown", "sample-audit.md"), ("table", "sample-audit.txt")])
def test_sample_reports_are_unchanged(sample_db: str, tmp_path: Path, fmt: str, name: str, workers: str) -> None:
    _check(_audit(sample_db, fmt, tmp_path / name, "--all", "--workers", workers), name)


def _history(db: str, workers: str) -> bytes:
    """The sample's whole document with each account's health history (what the HTML
    report and plugin formats get), indented."""
    config = load_config(None)
    config["audit"]["workers"] = int(workers)
    document = Audit(Store(db), get_plugin_host(), config, date.fromisoformat(AS_OF)).document(history=True)
    return _normalised(document.dumps(2).encode("utf-8"))


@WORKERS
def test_sample_history_is_unchanged(sample_db: str, workers: str) -> None:
    _check(_history(sample_db, workers), "sample-audit-history.json")


def _record(work: Path) -> None:
    """Write the golden files from the code as it is now."""
    sample = _store(SAMPLE, work / "sample.db")
    generate(work / "export", **GENERATED)
    generated = _store(work / "export", work / "generated.db")
    outputs = {"sample-audit.json": _audit(sample, "json", work / "a.json"),
               "generated-10k-multiparty-audit.json": _audit(generated, "json", work / "b.json"),
               "sample-audit.md": _audit(sample, "markdown", work / "c.md", "--all"),
               "sample-audit.txt": _audit(sample, "table", work / "d.txt", "--all"),
               "sample-audit-history.json": _history(sample, "1")}
    for name, data in outputs.items():
        with gzip.GzipFile(GOLDEN / f"{name}.gz", "wb", mtime=0) as out:
            out.write(data)
        print(f"wrote {GOLDEN / name}.gz")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        _record(Path(tmp))
    sys.exit(0)
