"""The period review as text: the terminal table and Markdown (``crmlink review``)."""

from __future__ import annotations

from typing import Any

from crmlink.core.evaluation.review import Review, Trend
from crmlink.core.evaluation.vocab import label
from crmlink.core.report.changes import move_text


def _value(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name == "health":
        return f"{float(value):.0f}"
    return str(value) if name == "tier" else label(value)


def _pairs(review_json: dict[str, Any]) -> str:
    return ", ".join(f"{n} {_value(n, review_json['expected'][n])}→{_value(n, review_json['actual'][n])} "
                     f"({review_json['fields'][n]})" for n in review_json["expected"])


def _trend(t: Trend) -> str:
    moves = "; ".join(move_text(m) for m in t.moves)
    reason = next((m.reason for m in t.moves if m.reason), "")
    signals = "; ".join(s.message for s in t.signals)
    return (f"{t.state.name or t.state.remote_id}: {moves}" + (f" ({reason})" if reason else "")
            + (f" [signals: {signals}]" if signals else ""))


def lines(review: Review, markdown: bool = False) -> list[str]:
    """The review, section by section (Markdown headings and bullets when ``markdown``)."""
    h2, h3, bullet = ("## ", "### ", "- ") if markdown else ("", "", "  ")
    p = review.portfolio()
    out = [f"{'# ' if markdown else ''}Review of {review.period.name} ({review.period.start} to "
           f"{review.period.end}), as of {review.as_of}", "",
           f"{h2}Expected against actual", "",
           f"{p['accounts']} account(s) with expectations: {p['met']} met, {p['exceeded']} exceeded, "
           f"{p['missed']} missed; {p['without_expectations']} without expectations."]
    if p["health_expected_mean"] is not None:
        out.append(f"Mean health expected {p['health_expected_mean']:.0f}, actual "
                   + ("–" if p["health_actual_mean"] is None else f"{p['health_actual_mean']:.0f}") + ".")
    out.append("")
    for a in review.accounts:
        data = a.to_json()
        out.append(f"{bullet}[{a.outcome}] {a.state.name or a.state.remote_id} ({a.state.remote_id}): {_pairs(data)}")
    out += ["", f"{h2}Rising and declining ({review.basis})", ""]
    for title, trends in (("Rising", review.rising), ("Declining", review.declining),
                          ("Held back by satisfaction signals", review.held_back)):
        if trends:
            out += [f"{h3}{title}:"] + [f"{bullet}{_trend(t)}" for t in trends] + [""]
    if not (review.rising or review.declining or review.held_back):
        out += ["No account rose or declined.", ""]
    if review.signals:
        out += [f"{h2}Signals: competitors and satisfaction", ""]
        out += [f"{bullet}[{s.kind} {s.value:+.2f}] {s.message}"
                for gid in sorted(review.signals) for s in review.signals[gid]] + [""]
    out += [f"{h2}The {len(review.tasks)} most important tasks for the next period", ""]
    for i, task in enumerate(review.tasks, start=1):
        out.append(f"{i}. [{task.severity}] {task.account.name or task.account.remote_id} — {task.code}: {task.why}")
        out.append(f"   -> {task.action}")
    return out
