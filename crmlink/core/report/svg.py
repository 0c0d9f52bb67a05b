"""Inline SVG charts for the HTML report, generated in Python with no dependency.

Every chart is ``role="img"`` with a ``<title>`` and a ``<desc>`` (referenced by
``aria-labelledby``) so a screen reader gets a summary; the report puts a data
table next to each chart. Colours come from the Okabe-Ito palette, which stays
distinguishable with the common forms of colour blindness, and no chart relies on
colour alone: bars and cells carry their numbers, map nodes their role letter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from html import escape
from typing import Any

from crmlink.core.document import MapContact, RelationshipMap

#: Okabe & Ito (2008), "Color Universal Design"
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000"}
GREY = "#8C8C8C"
SEVERITY_COLOURS = {"critical": OKABE_ITO["vermillion"], "high": OKABE_ITO["orange"],
                    "medium": OKABE_ITO["yellow"], "low": OKABE_ITO["sky"], "info": "#BBBBBB"}
#: our people's line colours, in order of their share of the account
USER_COLOURS = [OKABE_ITO[c] for c in ("vermillion", "blue", "green", "purple", "orange", "sky", "black")]
STANCES: dict[int | None, tuple[str, str]] = {-2: ("opponent", OKABE_ITO["vermillion"]), -1: ("not approving", OKABE_ITO["orange"]),
           0: ("neutral", "#BBBBBB"), 1: ("supporter", OKABE_ITO["sky"]),
           2: ("strong supporter", OKABE_ITO["blue"]), 3: ("coach", OKABE_ITO["green"])}
UNKNOWN_STANCE = ("stance unknown", "#FFFFFF")
ROLE_LETTERS = {"economic_buyer": "E", "decision_maker": "D", "approver": "A", "technical_evaluator": "T",
                "procurement": "P", "user": "U", "influencer": "I", "gatekeeper": "G", "blocker": "B",
                "other": "O"}
SENIORITY_BANDS: list[tuple[str, set[str | None]]] = [("executive", {"vp", "c_suite", "owner"}), ("director", {"head", "director"}),
                   ("manager", {"manager"}), ("staff", {"senior", "entry", "intern"}), ("unknown", {None})]
FONT = 'font-family="system-ui, sans-serif"'
_SPECIAL = re.compile("[&<>\"']")


def _e(value: Any) -> str:
    """``value`` as SVG text or an attribute value; most (numbers, ids, plain words) need
    no escaping, and skipping html.escape for them is a tenth of a large report's time."""
    text = value if type(value) is str else str(value)
    return escape(text, quote=True) if _SPECIAL.search(text) else text


def _frame(uid: str, width: float, height: float, title: str, desc: str, body: list[str],
           css_class: str = "chart") -> str:
    return (f'<svg class="{css_class}" id="{uid}" role="img" aria-labelledby="{uid}-t {uid}-d" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
            f'{FONT} font-size="12">'
            f'<title id="{uid}-t">{_e(title)}</title><desc id="{uid}-d">{_e(desc)}</desc>'
            + "".join(body) + "</svg>")


def _text(x: float, y: float, text: Any, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{_e(text)}</text>'


def text_colour(fill: str) -> str:
    """Black or white, whichever reads better on ``fill`` (#RRGGBB)."""
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


def heatmap(uid: str, rows: Sequence[str], cols: Sequence[str], counts: Mapping[tuple[str, str], int],
            title: str, desc: str) -> str:
    """A count matrix: darker blue means more; every cell shows its number."""
    cell_w, cell_h, left, top = 92, 34, 70, 28
    peak = max(counts.values(), default=0) or 1
    body = [_text(left + i * cell_w + cell_w / 2, 18, c, "middle", 'font-weight="600"') for i, c in enumerate(cols)]
    for j, r in enumerate(rows):
        y = top + j * cell_h
        body.append(_text(left - 8, y + cell_h / 2 + 4, r, "end", 'font-weight="600"'))
        for i, c in enumerate(cols):
            n = counts.get((r, c), 0)
            x = left + i * cell_w
            alpha = 0.08 + 0.92 * n / peak if n else 0.0
            body.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" rx="3" '
                        f'fill="{OKABE_ITO["blue"]}" fill-opacity="{alpha:.2f}" stroke="#ccc"/>')
            colour = "#fff" if alpha > 0.55 else "#000"
            body.append(_text(x + cell_w / 2 - 1, y + cell_h / 2 + 4, n, "middle", f'fill="{colour}"'))
    return _frame(uid, left + len(cols) * cell_w + 4, top + len(rows) * cell_h + 4, title, desc, body)


def hbars(uid: str, items: Sequence[tuple[str, float, str]], title: str, desc: str,
          fmt: str = "{:g}", label_width: int = 190, width: int = 520) -> str:
    """Horizontal bars: (label, value, colour), each labelled with its value."""
    bar_h, gap = 20, 6
    peak = max((v for _, v, _ in items), default=0) or 1
    span = width - label_width - 60
    body = []
    for i, (label, value, colour) in enumerate(items):
        y = 4 + i * (bar_h + gap)
        length = max(1.0, span * value / peak) if value else 0.0
        body.append(_text(label_width - 6, y + 14, label, "end"))
        body.append(f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="{colour}" '
                    f'stroke="#333" stroke-width="0.5"/>')
        body.append(_text(label_width + length + 5, y + 14, fmt.format(value)))
    return _frame(uid, width, 8 + len(items) * (bar_h + gap), title, desc, body)


def paired_bars(uid: str, groups: Sequence[tuple[str, float, float]], labels: tuple[str, str],
                title: str, desc: str) -> str:
    """Two bars per group (e.g. actual effort share against the target), values 0..1."""
    left, top, plot_h, group_w = 40, 24, 160, 90
    colours = (OKABE_ITO["blue"], OKABE_ITO["orange"])
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + group_w * len(groups)}" y2="{top + plot_h}" stroke="#333"/>']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + group_w * len(groups)}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        body.append(_text(left - 4, y + 4, f"{tick:.0%}", "end", 'font-size="10"'))
    for i, (name, a, b) in enumerate(groups):
        x = left + i * group_w + 12
        for k, value in enumerate((a, b)):
            h = plot_h * max(0.0, min(1.0, value))
            pattern = ' stroke-dasharray="4 2"' if k else ""
            body.append(f'<rect x="{x + k * 32}" y="{top + plot_h - h:.1f}" width="28" height="{h:.1f}" '
                        f'fill="{colours[k]}" stroke="#333" stroke-width="0.8"{pattern}/>')
            body.append(_text(x + k * 32 + 14, top + plot_h - h - 4, f"{value:.0%}", "middle", 'font-size="10"'))
        body.append(_text(x + 30, top + plot_h + 16, name, "middle", 'font-weight="600"'))
    lx = left + group_w * len(groups) + 10
    for k, label in enumerate(labels):
        body.append(f'<rect x="{lx}" y="{top + k * 20}" width="12" height="12" fill="{colours[k]}" stroke="#333"/>')
        body.append(_text(lx + 17, top + k * 20 + 10, label))
    return _frame(uid, lx + 110, top + plot_h + 26, title, desc, body)


def funnel(uid: str, stages: Sequence[tuple[str, int, float]], money: str, title: str, desc: str) -> str:
    """The LTC funnel: one row per stage, bar width by count, amount written beside it."""
    row_h, left, span = 26, 110, 300
    peak = max((n for _, n, _ in stages), default=0) or 1
    body = []
    for i, (stage, count, amount) in enumerate(stages):
        y = 4 + i * row_h
        w = span * count / peak if count else 0.0
        x = left + (span - w) / 2
        colour = OKABE_ITO["vermillion"] if stage in ("lost", "unmapped") else OKABE_ITO["green"]
        body.append(_text(left - 8, y + 15, stage, "end"))
        if w:
            body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 5}" fill="{colour}" '
                        f'fill-opacity="0.85" stroke="#333" stroke-width="0.5"/>')
        body.append(_text(left + span / 2, y + 15, count, "middle", f'fill="{text_colour(colour) if w > 24 else "#000"}"'))
        body.append(_text(left + span + 10, y + 15, money.format(amount) if count else "-"))
    return _frame(uid, left + span + 130, 8 + len(stages) * row_h, title, desc, body)


def line_chart(uid: str, dates: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], str, float]],
               title: str, desc: str) -> str:
    """Scores (0..100) month by month: (name, values, colour, stroke width)."""
    left, top, w, h = 34, 12, 440, 150
    step = w / max(1, len(dates) - 1)
    body = []
    for tick in (0, 25, 50, 75, 100):
        y = top + h * (1 - tick / 100)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        body.append(_text(left - 4, y + 4, tick, "end", 'font-size="10"'))
    for i, day in enumerate(dates):
        if (len(dates) - 1 - i) % 2 == 0:
            body.append(_text(left + i * step, top + h + 14, day[:7] if i < len(dates) - 1 else day, "middle",
                              'font-size="9"'))
    dashes = ["", ' stroke-dasharray="5 3"', ' stroke-dasharray="2 2"', ' stroke-dasharray="8 3 2 3"']
    for k, (name, values, colour, stroke) in enumerate(series):
        points = [(left + i * step, top + h * (1 - v / 100)) for i, v in enumerate(values) if v is not None]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="{stroke}"'
                    f'{dashes[k % len(dashes)]}/>')
        if k == 0:
            body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in points]
        ly = top + 10 + k * 16
        body.append(f'<line x1="{left + w + 12}" y1="{ly - 4}" x2="{left + w + 34}" y2="{ly - 4}" stroke="{colour}" '
                    f'stroke-width="{stroke}"{dashes[k % len(dashes)]}/>')
        body.append(_text(left + w + 38, ly, name))
    legend = max([90] + [44 + 7 * len(name) for name, _, _, _ in series])  # room for the longest name
    return _frame(uid, left + w + legend, top + h + 22, title, desc, body)


def share_bar(uid: str, parts: Sequence[tuple[str, float, str]], title: str, desc: str, width: int = 440) -> str:
    """One stacked bar of shares (0..1), each segment labelled when it is wide enough."""
    body, x = [], 0.0
    for label, value, colour in parts:
        w = width * value
        body.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="24" fill="{colour}" stroke="#fff"/>')
        if w > 60:
            body.append(_text(x + 4, 16, f"{label} {value:.0%}", extra=f'fill="{text_colour(colour)}"'))
        x += w
    return _frame(uid, width, 26, title, desc, body)


def _band(seniority: str | None) -> str:
    return next(name for name, members in SENIORITY_BANDS if seniority in members)


def relationship_map(uid: str, detail: RelationshipMap, title: str, desc: str,
                     department_order: Sequence[str]) -> str:
    """The customer's contacts by department (columns) and seniority (rows), our people on
    the left, a line per pair weighted by its strength. Node size: the team's strength
    with the contact; fill: stance; letter: buying role; thick ring: decision power."""
    contacts, users, pairs = detail.contacts, detail.users, detail.pairs
    departments = [d for d in department_order if any((c.department or "unknown") == d for c in contacts)]
    bands = [b for b, _ in SENIORITY_BANDS if any(_band(c.seniority) == b for c in contacts)]
    cells: dict[tuple[str, str], list[MapContact]] = {}
    for c in contacts:
        cells.setdefault((c.department or "unknown", _band(c.seniority)), []).append(c)
    per_row = {b: max((len(v) for (d, bb), v in cells.items() if bb == b), default=1) for b in bands}
    col_w, slot, left_w, top = 118, 46, 190, 30
    grid_x = left_w + 96  # our people at left_w - 30, the seniority labels between them and the grid
    row_h = {b: 20 + slot * ((per_row[b] + 1) // 2) for b in bands}
    width = grid_x + 10 + col_w * max(1, len(departments))
    height = max(top + sum(row_h.values()), top + 20 + 40 * len(users)) + 10
    body = []
    pos: dict[str, tuple[float, float, float]] = {}
    y0 = top
    for b in bands:
        body.append(f'<rect x="{grid_x - 70}" y="{y0}" width="{col_w * len(departments) + 70}" height="{row_h[b]}" '
                    f'fill="{"#f6f6f6" if bands.index(b) % 2 == 0 else "#fff"}"/>')
        body.append(_text(grid_x - 66, y0 + 16, b, "start", 'font-size="11" font-weight="600" fill="#444"'))
        for i, d in enumerate(departments):
            for k, c in enumerate(cells.get((d, b), [])):
                cx: float = grid_x + i * col_w + (30 if k % 2 == 0 else 88)
                cy: float = y0 + 30 + slot * (k // 2)
                pos[c.id] = (cx, cy, 9 + 10 * (c.team_strength or 0) / 100)
        y0 += row_h[b]
    for i, d in enumerate(departments):
        body.append(_text(grid_x + i * col_w + col_w / 2, 18, d, "middle", 'font-weight="600"'))
    colours = {u.id: USER_COLOURS[min(i, len(USER_COLOURS) - 1)] for i, u in enumerate(users)}
    upos: dict[str, tuple[float, float]] = {}
    for i, u in enumerate(users):
        uy: float = top + 24 + i * 40
        upos[u.id] = (left_w - 30, uy)
    lines = []
    for p in sorted(pairs, key=lambda p: p.strength):
        if p.contact not in pos or p.user not in upos:
            continue
        (ux, uy), (cx, cy, r) = upos[p.user], pos[p.contact]
        mid = (ux + cx) / 2
        lines.append(f'<path data-user="{_e(p.user)}" data-contact="{_e(p.contact)}" data-strength="{p.strength}" '
                     f'd="M{ux + 12:.1f},{uy:.1f} C{mid:.1f},{uy:.1f} {mid:.1f},{cy:.1f} {cx - r:.1f},{cy:.1f}" '
                     f'fill="none" stroke="{colours[p.user]}" stroke-width="{0.6 + 5.4 * p.strength / 100:.1f}" '
                     f'stroke-opacity="{0.25 + 0.55 * p.strength / 100:.2f}"><title>{_e(p.user)} - '
                     f'{_e(p.contact)}: {p.strength:.0f}</title></path>')
    body.append('<g class="pairs">' + "".join(lines) + "</g>")
    for u in users:
        ux, uy = upos[u.id]
        r = 6 + 10 * min(1.0, u.share)
        dash = "" if u.active else ' stroke-dasharray="3 2"'
        body.append(f'<circle class="user" data-user="{_e(u.id)}" cx="{ux}" cy="{uy}" r="{r:.1f}" '
                    f'fill="{colours[u.id]}" stroke="#000"{dash}/>')
        name = u.name + ("" if u.active else " (inactive)")
        body.append(_text(ux - r - 5, uy + 1, name, "end", 'font-size="11"'))
        body.append(_text(ux - r - 5, uy + 13, f'{u.team_role or "-"} · {u.share:.0%}', "end",
                          'font-size="10" fill="#555"'))
    for c in contacts:
        cx, cy, r = pos[c.id]
        stance, fill = STANCES.get(c.stance, UNKNOWN_STANCE)
        ring = ' stroke-width="3"' if c.power else ' stroke-width="1"'
        dash = "" if c.active else ' stroke-dasharray="3 2"'
        letter = ROLE_LETTERS.get(c.role or "", "?")
        body.append(f'<g class="contact" data-contact="{_e(c.id)}"><title>{_e(c.name)}, {_e(c.title or "")}: '
                    f'{_e((c.role or "role unknown").replace("_", " "))}, {stance}, team strength '
                    f'{c.team_strength:.0f}</title>'
                    f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{fill}" stroke="#000"{ring}{dash}/>'
                    + _text(cx, cy + 4, letter, "middle", f'font-size="11" font-weight="700" fill="{text_colour(fill)}"')
                    + _text(cx, cy + r + 10, (c.name or c.id).split(" ")[0], "middle", 'font-size="9"')
                    + "</g>")
    if not contacts:
        body.append(_text(grid_x, top + 20, "No contacts known at this account."))
    return _frame(uid, width, height, title, desc, body, "chart relmap")


def map_legend(uid: str) -> str:
    """The key to the relationship map's fills, letters and rings (the same for every
    account but its id: drawn once)."""
    return _legend().replace(_UID, uid)


_UID = "\x00uid\x00"


@cache
def _legend() -> str:
    uid = _UID
    body: list[str] = []
    x: float = 4
    for _, (label, fill) in sorted((k, v) for k, v in STANCES.items() if k is not None) + [(None, UNKNOWN_STANCE)]:
        body.append(f'<circle cx="{x + 7}" cy="12" r="7" fill="{fill}" stroke="#000"/>')
        body.append(_text(x + 18, 16, label, extra='font-size="11"'))
        x += 26 + 6.2 * len(label)
    body.append(f'<circle cx="{x + 7}" cy="12" r="7" fill="#fff" stroke="#000" stroke-width="3"/>')
    body.append(_text(x + 18, 16, "decision power", extra='font-size="11"'))
    letters = "  ".join(f"{v} {k.replace('_', ' ')}" for k, v in ROLE_LETTERS.items())
    body.append(_text(4, 40, f"Letters: {letters}", extra='font-size="11"'))
    body.append(_text(4, 58, "Node size: the team's strength with the contact. Line width: pair strength. "
                             "Dashed: inactive.", extra='font-size="11"'))
    return _frame(uid, 900, 66, "Relationship map legend",
                  "Fill colour is the contact's stance, the letter the buying role, a thick ring marks "
                  "decision power; node size and line width show relationship strength.", body, "chart legend")
