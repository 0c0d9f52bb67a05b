"""The benchmark's targets judged from a report: the audit's memory from 1M to 10M."""

from __future__ import annotations

from typing import Any

import pytest

from bench.targets import FLAT_MEMORY, evaluate


def _report(peaks: dict[str, float]) -> dict[str, Any]:
    sizes = [{"size": size, "audit": {"seconds": 5.0, "peak_mib": peak, "floor_ratio": 3.5},
              "import": {"rate": 60_000, "peak_mib": 180.0}} for size, peak in peaks.items()]
    return {"sizes": sizes, "store": "SQLite 3", "growth": {"import": [], "audit": []}, "api": []}


@pytest.mark.parametrize(("peak_10m", "met"), [(150.0 * FLAT_MEMORY, True), (150.0 * FLAT_MEMORY + 2, False)])
def test_the_audit_s_peak_from_1m_to_10m(peak_10m: float, met: bool) -> None:
    found = {t["target"]: t for t in evaluate(_report({"1m": 150.0, "10m": peak_10m}))}
    target = found["audit peak memory 10m / 1m"]
    assert target["met"] is met and target["limit"] == FLAT_MEMORY
    assert target["value"] == round(peak_10m / 150.0, 2)


def test_no_memory_target_without_both_sizes() -> None:
    names = [t["target"] for t in evaluate(_report({"100k": 90.0, "1m": 150.0}))]
    assert not any(name.startswith("audit peak memory") for name in names)
