"""The "What changed" section: ``crmlink diff`` and every audit report draw it from
:class:`~crmlink.core.evaluation.changes.Changes`."""

from __future__ import annotations

from typing import Any

from crmlink.core.evaluation.changes import Changes, FindingChange, Move
from crmlink.core.evaluation.vocab import label

NUMBERS = ("health", "key", "broad", "org")


def _who(f: FindingChange) -> str:
    if f.remote_id is None:
        return "portfolio"
    name = f"{f.name or f.remote_id} ({f.remote_id})"
    return f"{name}, deal {f.opportunity}" if f.opportunity else name


def _value(move: Move, value: float | str | None) -> str:
    if move.field in NUMBERS:
        return "–" if value is None else f"{float(value):.0f}"
    return value if move.field == "tier" and isinstance(value, str) else label(value if isinstance(value, str) else None)


def move_text(move: Move) -> str:
    """"health 80 → 52 (-28)", "stage community of interest → perceptual recognition (1 step down)"."""
    if move.field in NUMBERS:
        change = f"{move.change:+.0f}"
    else:
        steps = abs(int(move.change))
        change = f"{steps} step{'s' if steps != 1 else ''} {'up' if move.change > 0 else 'down'}"
    return f"{move.field} {_value(move, move.before)} → {_value(move, move.after)} ({change})"


def _named(label_: str, as_of: object) -> str:
    """A saved audit's label, with its as-of date when the label is not that date."""
    return label_ if label_ == str(as_of) else f"{label_} (as of {as_of})"


def headline(changes: Changes) -> str:
    return (f"What changed since {_named(changes.since, changes.since_as_of)} to "
            f"{_named(changes.until, changes.until_as_of)}: {len(changes.new)} new, {len(changes.resolved)} resolved, "
            f"{len(changes.persisting)} persisting finding(s); {len(changes.moved)} move(s)")


def _finding_line(f: FindingChange, since: bool = False) -> str:
    tail = f" since {_named(f.since, f.since_as_of)}" if since and f.since else ""
    return f"[{f.severity}] {f.code}: {_who(f)}{tail}"


def _more(items: list[Any], limit: int) -> list[str]:
    return [f"  ... and {len(items) - limit} more"] if len(items) > limit else []


def table(changes: Changes, limit: int = 10) -> list[str]:
    """Plain lines for the terminal report and ``crmlink diff``."""
    lines = [headline(changes)]
    if changes.moved:
        lines.append("Moved most:")
        for move in changes.moved[:limit]:
            reason = f"  ({move.reason})" if move.reason else ""
            lines.append(f"  {(move.name or move.remote_id)[:30]:<31}{move_text(move)}{reason}")
        lines += _more(changes.moved, limit)
    for title, items, since in (("New findings:", changes.new, False), ("Resolved:", changes.resolved, False),
                                ("Persisting:", changes.persisting, True)):
        if items:
            lines.append(title)
            lines += [f"  {_finding_line(f, since)}" for f in items[:limit]]
            lines += _more(items, limit)
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(changes: Changes, limit: int = 10, heading: str = "##") -> list[str]:
    """The Markdown section (its heading at level ``heading``)."""
    out = [f"{heading} What changed since {_named(changes.since, changes.since_as_of)}", "",
           f"_{_cell(headline(changes))}._", ""]
    if changes.moved:
        out += [f"{heading}# Moved most", "", "| account | move | relationships |", "|---|---|---|"]
        out += [f"| {_cell(m.name or m.remote_id)} | {_cell(move_text(m))} | {_cell(m.reason) or '–'} |"
                for m in changes.moved[:limit]]
        out += [f"_... and {len(changes.moved) - limit} more._"] if len(changes.moved) > limit else []
        out.append("")
    for title, items, since in (("New findings", changes.new, False), ("Resolved findings", changes.resolved, False),
                                ("Persisting findings", changes.persisting, True)):
        if items:
            out += [f"{heading}# {title}", ""]
            out += [f"- {_cell(_finding_line(f, since))}" for f in items[:limit]]
            out += [f"- ... and {len(items) - limit} more"] if len(items) > limit else []
            out.append("")
    return out


def context(changes: Changes | None, limit: int = 10) -> dict[str, Any] | None:
    """What the HTML templates show."""
    if changes is None:
        return None
    return {"headline": headline(changes),
            "moved": [{"name": m.name or m.remote_id, "text": move_text(m), "reason": m.reason,
                       "up": m.change > 0} for m in changes.moved[:limit]],
            "new": [_finding_line(f) for f in changes.new[:limit]],
            "resolved": [_finding_line(f) for f in changes.resolved[:limit]],
            "persisting": [_finding_line(f, True) for f in changes.persisting[:limit]],
            "counts": {"moved": len(changes.moved), "new": len(changes.new), "resolved": len(changes.resolved),
                       "persisting": len(changes.persisting)}}
