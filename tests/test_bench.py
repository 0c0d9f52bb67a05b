"""The benchmark harness at its smoke size: it runs, and its report is well-formed and
sane. No timing is asserted (CI machines are shared and noisy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_smoke_run_reports_every_phase(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    subprocess.run([sys.executable, "-m", "bench", "--sizes", "tiny", "--api-contacts", "40",
                    "--delay", "0.005", "--mail-messages", "300", "--graph-messages", "300", "--imap-messages", "200",
                    "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["machine"]["cpus"] >= 1 and report["date"]
    (run,) = report["sizes"]
    assert run["size"] == "tiny" and run["interactions"] > 1000
    # the faster of the floors read before and after the change phase added its interactions
    assert run["floor"]["rows"] in (run["interactions"], run["interactions"] + run["change"]["added"])
    assert run["audit"]["accounts"] == run["accounts"] and run["audit"]["findings"] > 0
    for phase in ("import", "floor", "audit"):
        assert run[phase]["seconds"] > 0 and run[phase]["peak_mib"] > report["idle_peak_mib"] / 2
    assert run["import"]["rate"] > 0 and run["audit"]["floor_ratio"] > 0
    # the audit through the aggregates and through every row: the same document
    assert run["audit_raw"]["accounts"] == run["accounts"] and run["audit_raw"]["floor_ratio"] > 0
    documents = [json.loads((out / f"audit-tiny{suffix}.json").read_text(encoding="utf-8")) for suffix in ("", "-raw")]
    for document in documents:
        document.pop("generated_at")
    assert documents[0] == documents[1]
    assert run["change"]["changed"] + run["change"]["added"] == 300 and 0 < run["change"]["rebuilt"] <= run["accounts"]
    assert run["aggregate"]["seconds"] > 0 and run["change"]["floor_ratio"] > 0
    assert [a["crm"] for a in report["api"]] == ["hubspot", "salesforce"]
    for sync in report["api"]:
        assert sync["errors"] == 0 and sync["requests"] >= sync["min_requests"] > 0
        assert sync["seconds"] > 0 and sync["floor_seconds"] > 0
    mail = report["mail"]
    assert mail["messages"] == 300 and mail["rate"] > 0 and mail["peak_mib"] > 0
    assert 0 < mail["interactions"] < 300  # internal mail, strangers: not every message links
    html = report["html"]
    assert html["size"] == "tiny" and html["accounts"] == run["accounts"]
    assert html["write_seconds"] > 0 and html["index_kib"] > 0
    assert (out / "report-tiny" / "index.html").is_file()
    assert len(list((out / "report-tiny" / "accounts").iterdir())) == run["accounts"]
    assert "| HTML directory of |" in (out / "report.md").read_text(encoding="utf-8")
    small, big = report["graph"]
    assert small["messages"] < big["messages"] and big["messages"] >= 300
    for sync in report["graph"]:
        assert sync["errors"] == 0 and sync["interactions"] > 0 and sync["requests"] > 0
        assert sync["rate"] > 0 and sync["peak_mib"] > 0
    imap = report["imap"]
    if imap is not None:  # None without pymap (Python 3.10)
        assert imap["messages"] == 200 and imap["errors"] == 0 and imap["rate"] > 0
        assert 0 < imap["interactions"] < 200 and imap["peak_mib"] > 0
        assert "| imap sync: messages |" in (out / "report.md").read_text(encoding="utf-8")
    names = [t["target"] for t in report["targets"]]
    assert any(name.startswith("graph sync peak memory") for name in names)
    assert "hubspot sync: wall / rate-limit floor" in names
    assert all(isinstance(t["met"], bool) for t in report["targets"])
    assert "| target |" in (out / "report.md").read_text(encoding="utf-8")
    assert "| mail: messages |" in (out / "report.md").read_text(encoding="utf-8")
    assert "| graph sync: messages |" in (out / "report.md").read_text(encoding="utf-8")
    # each phase's figures were kept as it finished, for a run that fails later
    logged = [json.loads(line) for line in (out / "phases.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [p["phase"] for p in logged][:3] == ["generate", "import", "floor"]
    assert [p["seconds"] for p in logged if p["phase"] == "import"][0] == run["import"]["seconds"]


def test_the_harness_runs_on_postgresql_with_multiparty_data(tmp_path: Path) -> None:
    import csv

    from tests.conftest import require_postgres

    require_postgres()
    out = tmp_path / "bench"
    subprocess.run([sys.executable, "-m", "bench", "--sizes", "tiny", "--store", "postgresql",
                    "--people", "multiparty", "--api-contacts", "0", "--mail-messages", "0",
                    "--graph-messages", "0", "--imap-messages", "0", "--no-html", "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["store"].startswith("PostgreSQL ") and report["people"] == "multiparty"
    (run,) = report["sizes"]
    # the faster of the floors read before and after the change phase added its interactions
    n = run["interactions"]
    assert run["db"].startswith("postgresql") and n > 1000 and run["floor"]["rows"] in (n, n + run["change"]["added"])
    assert run["audit"]["accounts"] == run["accounts"]
    with open(out / "data-tiny-multiparty" / "interactions.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    pairs = [len(r["user_ids"].split(";")) * len(r["contact_ids"].split(";")) for r in rows if r["contact_ids"]]
    assert 2.8 < sum(pairs) / len(pairs) < 4.2  # the default profile gives about 1.7
    assert max(len(r["user_ids"].split(";")) for r in rows) == 3
    assert max(len(r["contact_ids"].split(";")) for r in rows) == 3


def test_the_multiparty_export_has_a_subject_a_thread(tmp_path: Path) -> None:
    """The multi-party profile's subjects are nearly all distinct, as a real export's are
    (a thread's messages share one), and the thread's mark added to a subject changes
    no method the classification finds in it."""
    import csv

    from crmlink.plugins.method.programs import recognise
    from crmlink.testing.generate import generate

    for profile in ("default", "multiparty"):
        generate(tmp_path / profile, 20, 2000, profile=profile)
        with (tmp_path / profile / "interactions.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        subjects = [row["subject"] for row in rows]
        distinct = len(set(subjects)) / len(subjects)
        assert distinct > 0.5 if profile == "multiparty" else distinct < 0.05
        for row in rows:
            base = row["subject"].rsplit(" (", 1)[0] if row["subject"].endswith(")") else row["subject"]
            assert recognise(row["kind"], row["subject"], None) == recognise(row["kind"], base, None)
