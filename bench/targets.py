"""The targets of issue 9, judged from one report: each met, or missed by how much."""

from __future__ import annotations

import math
from typing import Any

MIB_LIMIT = 1024.0
GROWTH_LIMIT = math.log(11) / math.log(10)  # ten times the data, at most eleven times the time
HTML_WRITE_SECONDS = 10.0  # the report directory of the largest size, "written in seconds"
INDEX_LOAD_SECONDS = 2.0  # its index, from navigation to the first rows drawn
#: CSV import, interactions per second: the SQLite store, and PostgreSQL (a server round trip a batch)
IMPORT_RATE_SQLITE, IMPORT_RATE_POSTGRESQL = 50_000, 30_000
FLAT_MEMORY = 1.25  # import peak at the largest size over the smallest, "does not grow"
#: the sizes between which the audit's peak memory is to stay flat (issue 19)
AUDIT_FLAT = ("1m", "10m")


def _target(name: str, value: float, limit: float, *, at_most: bool = True) -> dict[str, Any]:
    met = value <= limit if at_most else value >= limit
    return {"target": name, "value": value, "limit": limit, "at_most": at_most, "met": met,
            "off_by": None if met else round(value / limit if at_most else limit / value, 2)}


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target the report has figures for (the 1M ones only when 1M ran)."""
    runs = {r["size"]: r for r in report["sizes"]}
    found = []
    big = runs.get("1m")
    if big:
        found += [_target("audit 1M: wall seconds", round(big["audit"]["seconds"], 2), 10.0),
                  _target("audit 1M: peak MiB", big["audit"]["peak_mib"], MIB_LIMIT)]
    if runs:
        largest = report["sizes"][-1]
        label = largest["size"]
        found += [
            _target(f"audit {label}: time / read-the-table time", largest["audit"]["floor_ratio"], 3.0),
            _target(f"import {label}: interactions per second", largest["import"]["rate"],
                    IMPORT_RATE_POSTGRESQL if str(report.get("store", "")).startswith("PostgreSQL")
                    else IMPORT_RATE_SQLITE, at_most=False),
        ]
        if "change" in largest:
            found.append(_target(f"re-audit {label} after a small change: (refresh + audit) / read",
                                 largest["change"]["floor_ratio"], 1.0))
        smallest = report["sizes"][0]
        if smallest is not largest:
            growth = round(largest["import"]["peak_mib"] / smallest["import"]["peak_mib"], 2)
            found.append(_target(f"import peak memory {label} / {smallest['size']}", growth, FLAT_MEMORY))
    small, large = (runs.get(size) for size in AUDIT_FLAT)
    if small and large:
        growth = round(large["audit"]["peak_mib"] / small["audit"]["peak_mib"], 2)
        found.append(_target(f"audit peak memory {AUDIT_FLAT[1]} / {AUDIT_FLAT[0]}", growth, FLAT_MEMORY))
    for phase in ("import", "audit"):
        for step in report["growth"][phase]:
            found.append(_target(f"{phase} growth exponent {step['from']} -> {step['to']}",
                                 step["exponent"], round(GROWTH_LIMIT, 3)))
    html = report.get("html")
    if html:
        label = f"HTML directory, {html['accounts']:,} accounts"
        found.append(_target(f"{label}: write seconds (audit aside)", html["write_seconds"], HTML_WRITE_SECONDS))
        if html["index_load_seconds"] is not None:
            found.append(_target(f"{label}: index load seconds in Chromium", html["index_load_seconds"],
                                 INDEX_LOAD_SECONDS))
    for sync in report["api"]:
        crm = sync["crm"]
        found.append(_target(f"{crm} sync: requests / minimum", sync["request_ratio"], 1.05))
        found.append(_target(f"{crm} sync: errors surfaced", sync["errors"], 0))
        if crm == "hubspot":
            found.append(_target("hubspot sync: wall / rate-limit floor", sync["floor_ratio"], 1.15))
    graph = report.get("graph") or []
    if len(graph) == 2:
        small, big = graph
        growth = round(big["peak_mib"] / small["peak_mib"], 2)
        found.append(_target(f"graph sync peak memory {big['messages']} / {small['messages']} "
                             "messages", growth, FLAT_MEMORY))
    for sync in graph:
        found.append(_target(f"graph sync {sync['messages']} messages: errors surfaced",
                             sync["errors"], 0))
    return found
