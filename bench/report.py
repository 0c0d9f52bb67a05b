"""The harness report as Markdown (the same figures as report.json)."""

from __future__ import annotations

from typing import Any


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"Run {report['date']} on {m['cpus']} x {m['cpu']}, Python {m['python']}, "
             f"store {report.get('store', 'SQLite ' + m['sqlite'])}, data profile "
             f"{report.get('people', 'default')}; an idle child process peaks at "
             f"{report['idle_peak_mib']} MiB.", ""]
    lines += _table(
        ["size", "accounts", "contacts", "interactions", "import s", "import/s", "import MiB",
         "read table s", "audit s", "audit MiB", "audit / read", "audit workers"],
        [[r["size"], r["accounts"], r["contacts"], r["interactions"], f"{r['import']['seconds']:.2f}",
          r["import"]["rate"], r["import"]["peak_mib"], f"{r['floor']['seconds']:.2f}",
          f"{r['audit']['seconds']:.2f}", r["audit"]["peak_mib"], r["audit"]["floor_ratio"],
          r["audit"].get("workers", "")]
         for r in report["sizes"]])
    if all("audit_raw" in r for r in report["sizes"]):
        lines += _table(
            ["size", "read table s", "audit, aggregates s", "/ read", "audit, every row s", "/ read",
             "rebuild all aggregates s", "300 changes: refresh s", "then audit s", "refresh + audit / read"],
            [[r["size"], f"{r['floor']['seconds']:.2f}", f"{r['audit']['seconds']:.2f}", r["audit"]["floor_ratio"],
              f"{r['audit_raw']['seconds']:.2f}", r["audit_raw"]["floor_ratio"], f"{r['aggregate']['seconds']:.2f}",
              r["change"]["refresh_seconds"], r["change"]["audit_seconds"], r["change"]["floor_ratio"]]
             for r in report["sizes"]])
    if all("fold" in r for r in report["sizes"]):
        lines += _table(
            ["size", "fold from", "audit date + previous s", "/ read", "11 month ends s", "accounts (aggregates, rows)"],
            [[r["size"], name, f["audit_date_seconds"], f["floor_ratio"], f["history_seconds"],
              f"{f['from_aggregates']}, {f['from_rows']}"] for r in report["sizes"] for name, f in r["fold"].items()])
    steps = [[phase, s["from"], s["to"], s["data_ratio"], s["time_ratio"], s["exponent"]]
             for phase in ("import", "audit") for s in report["growth"][phase]]
    if steps:
        lines += _table(["phase", "from", "to", "data x", "time x", "exponent"], steps)
    if report["api"]:
        lines += _table(
            ["crm", "records", "requests", "minimum", "requests / min", "wall s", "floor s",
             "wall / floor", "429s retried", "errors"],
            [[a["crm"], a["records"], a["requests"], a["min_requests"], a["request_ratio"],
              f"{a['seconds']:.2f}", f"{a['floor_seconds']:.2f}", a["floor_ratio"],
              a["throttled"], a["errors"]] for a in report["api"]])
    mail = report.get("mail")
    if mail:
        lines += _table(["mail: messages", "mbox MiB", "sync s", "messages/s", "MiB/s", "peak MiB",
                         "interactions"],
                        [[mail["messages"], mail["mib"], f"{mail['seconds']:.2f}", mail["rate"],
                          mail["mib_per_s"], mail["peak_mib"], mail["interactions"]]])
    html = report.get("html")
    if html:
        load = html["index_load_seconds"]
        lines += _table(
            ["HTML directory of", "accounts", "audit s (with history)", "write s", "write CPU s", "workers",
             "index KiB", "directory MiB", "index load s (Chromium)", "peak MiB"],
            [[html["size"], html["accounts"], html["audit_seconds"], html["write_seconds"],
              html["write_cpu_seconds"], html["workers"], html["index_kib"],
              html["directory_mib"], "no Chromium" if load is None else load, html["peak_mib"]]])
    if report.get("graph"):
        lines += _table(
            ["graph sync: messages", "interactions", "requests", "wall s", "messages/s", "peak MiB",
             "errors"],
            [[g["messages"], g["interactions"], g["requests"], f"{g['seconds']:.2f}", g["rate"],
              g["peak_mib"], g["errors"]] for g in report["graph"]])
    imap = report.get("imap")
    if imap:
        lines += _table(["imap sync: messages", "mbox MiB", "interactions", "wall s", "messages/s",
                         "peak MiB", "errors"],
                        [[imap["messages"], imap["mib"], imap["interactions"], f"{imap['seconds']:.2f}",
                          imap["rate"], imap["peak_mib"], imap["errors"]]])
    lines += _table(["target", "value", "limit", "result"],
                    [[t["target"], t["value"], ("<= " if t["at_most"] else ">= ") + str(t["limit"]),
                      "met" if t["met"] else f"missed ({t['off_by']}x)"] for t in report["targets"]])
    return "\n".join(lines)
