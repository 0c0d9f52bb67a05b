"""The saved-audit benchmark at a tiny size: it runs and its figures add up. No timing
is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.saved import run


def test_saved_audit_bench_figures(tmp_path: Path) -> None:
    figures = run(accounts=60, weeks=3, db=tmp_path / "saved.db")
    assert figures["accounts"] == 60 and figures["weeks"] == 3
    assert figures["rows"]["saved_accounts"] == 180
    assert figures["rows"]["saved_findings"] > 0 and figures["findings_per_audit"] > 0
    assert figures["bytes"] > 0 and figures["bytes_per_audit"] * 3 == pytest.approx(figures["bytes"], abs=3)
    assert figures["save_seconds_per_audit"] > 0

