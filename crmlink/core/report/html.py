"""The HTML report: one self-contained file (styles, script and SVG charts inline; no
request to any network) with the portfolio overview and a page per account.

It is a function of the audit document alone (:class:`~crmlink.core.document.AuditDocument`):
the scores it headlines and the overall score it sorts and bands by are the ones the
plugins declared (``doc.presentation``), the relationship maps, the departure simulation
and the monthly history are the document's. Requires Jinja2.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from crmlink.core import vocab
from crmlink.core.document import AccountEntry, AuditDocument, OpportunityEntry, Presentation
from crmlink.core.findings import SEVERITIES, SEVERITY_RANK, Finding, ScoreDefinition
from crmlink.core.ltc import OPEN_STAGES
from crmlink.core.report import changes, svg
from crmlink.core.report.funnel import ltc_funnel
from crmlink.core.report.text import (
    GAP_WORDS,
    NO_SCORE,
    coverage_cell,
    coverage_lines,
    fix_first_text,
    merge_lines,
    merged_line,
    unknown_people_line,
)

HERE = Path(__file__).resolve().parent
TIER_ROWS = ("S", "A", "B", "C", "none")
#: bands of the overall score; accounts without one go to a column of their own
HEALTH_BANDS = (("at risk <40", 0, 40), ("watch 40-59", 40, 60), ("fair 60-79", 60, 80), ("strong 80+", 80, 101))
NO_BAND = f"{NO_SCORE} no score"
#: the funnel always shows the open stages and contract, other stages when they hold deals
FUNNEL_STAGES = (*OPEN_STAGES, "contract")
ATTENTION = 12
#: line colours of the monthly history after the overall score's (black)
HISTORY_COLOURS = ("vermillion", "blue", "green", "purple", "orange", "sky")


def render(doc: AuditDocument) -> str:
    """The single self-contained file."""
    context = build_context(doc)
    context["css"] = Markup(stylesheet())
    return environment().get_template("report.html.j2").render(**context)


def stylesheet() -> str:
    return (HERE / "templates" / "report.css").read_text(encoding="utf-8")


@cache
def environment() -> Environment:
    """The Jinja2 environment of both report forms (built once: compiling the templates
    is a third of a small report's time)."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["j2", "html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:.0%}"
    env.filters["num"] = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
    env.filters["score"] = lambda v: NO_SCORE if v is None else f"{v:,.0f}"
    env.filters["label"] = lambda v: "-" if v is None else str(v).replace("_", " ")
    env.filters["evidence"] = _evidence
    env.filters["yesno"] = lambda v: "yes" if v else "no"
    env.filters["extract"] = lambda key, mapping: mapping.get(key, key)
    return env


def user_names(doc: AuditDocument) -> dict[str, str]:
    """Our people's names by remote id, from every account's relationship map."""
    return {u.id: u.name for a in doc.accounts for u in a.relationship_map.users}


def deals_by_account(doc: AuditDocument) -> dict[str, list[OpportunityEntry]]:
    deals: dict[str, list[OpportunityEntry]] = defaultdict(list)
    for opp in doc.opportunities:
        deals[opp.account_id or ""].append(opp)
    return deals


def build_context(doc: AuditDocument) -> dict[str, Any]:
    """Everything the single file draws: the portfolio and every account."""
    users, deals, p = user_names(doc), deals_by_account(doc), doc.presentation
    return {**portfolio_context(doc, lambda a: "#" + anchor(a)),
            "accounts": [account(a, deals.get(a.id, []), users, p) for a in doc.accounts]}


def portfolio_context(doc: AuditDocument, href: Callable[[AccountEntry], str]) -> dict[str, Any]:
    """The portfolio part (overview, coverage, attention); ``href`` links an account's page."""
    return {"doc": doc, "summary": doc.summary, "portfolio": portfolio(doc, href),
            "coverage": {"lines": [line.removeprefix("Data coverage: ").strip()
                                   for line in coverage_lines(doc.summary.coverage)[:2]],
                         "fix_first": [fix_first_text(e) for e in doc.summary.coverage.fix_first],
                         "c": doc.summary.coverage,
                         "merge": merge_lines(doc.merge, shown=0)[:1],
                         "conflicts": doc.merge.conflicts if doc.merge else []},
            "severities": list(reversed(SEVERITIES)), "overall": doc.presentation.overall,
            "changes": changes.context(doc.changes)}


def _title(definition: ScoreDefinition | None, fallback: str = "health") -> str:
    """The overall score's label as the start of a sentence."""
    label = definition.label if definition else fallback
    return label[:1].upper() + label[1:]


# -- the portfolio ---------------------------------------------------------------------------


def band(value: float | None) -> str:
    if value is None:
        return NO_BAND
    return next(name for name, low, high in HEALTH_BANDS if low <= value < high)


def portfolio(doc: AuditDocument, href: Callable[[AccountEntry], str]) -> dict[str, Any]:
    return {**_tier_health(doc), **_findings_charts(doc), **_effort(doc), **_funnel(doc),
            "attention": _attention(doc, href)}


def _tier_health(doc: AuditDocument) -> dict[str, Any]:
    """Accounts per tier and band of the overall score; nothing without an overall score."""
    overall, accounts = doc.presentation.overall, doc.accounts
    if overall is None:
        return {"heatmap": None}
    bands = [band(a.scores.get(overall.name)) for a in accounts]
    cols = [name for name, _, _ in HEALTH_BANDS] + ([NO_BAND] if NO_BAND in bands else [])
    rows = [t for t in TIER_ROWS if any((a.tier or "none") == t for a in accounts)]
    counts = Counter(((a.tier or "none"), band) for a, band in zip(accounts, bands, strict=True))
    matrix = [{"tier": r, "cells": [counts.get((r, c), 0) for c in cols]} for r in rows]
    title = f"Accounts by tier and {overall.label}"
    heat = svg.heatmap("chart-tier-health", rows, cols, counts, title,
                       "; ".join(f"tier {r}: " + ", ".join(f"{n} {c}" for c, n in zip(cols, m["cells"], strict=True) if n)
                                 for r, m in zip(rows, matrix, strict=True)))
    return {"heatmap": Markup(heat), "heatmap_title": title, "band_label": overall.label,
            "matrix": matrix, "bands": cols}


def _findings_charts(doc: AuditDocument) -> dict[str, Any]:
    summary = doc.summary
    severity = [(s, summary.findings_by_severity.get(s, 0), svg.SEVERITY_COLOURS[s]) for s in reversed(SEVERITIES)]
    sev_chart = svg.hbars("chart-severity", severity, "Findings by severity",
                          ", ".join(f"{n} {s}" for s, n, _ in severity), label_width=80, width=420)
    worst: dict[str, str] = {}
    everything: list[Finding] = ([f for a in doc.accounts for f in a.findings]
                                 + [f for o in doc.opportunities for f in o.findings] + doc.portfolio_findings)
    for f in everything:
        if SEVERITY_RANK[f.severity] > SEVERITY_RANK.get(worst.get(f.code, "info"), -1):
            worst[f.code] = f.severity
    codes = sorted(summary.findings_by_code.items(), key=lambda kv: (-kv[1], kv[0]))
    code_items = [(c, n, svg.SEVERITY_COLOURS[worst.get(c, "info")]) for c, n in codes]
    code_chart = svg.hbars("chart-codes", code_items, "Findings by code",
                           ", ".join(f"{c}: {n}" for c, n in codes) + ". Bar colour: the worst severity of the code.",
                           label_width=230, width=560)
    return {"severity_chart": Markup(sev_chart), "severity": severity, "code_chart": Markup(code_chart),
            "codes": [(c, n, worst.get(c)) for c, n in codes]}


def _effort(doc: AuditDocument) -> dict[str, Any]:
    target = doc.tier_target
    total = sum(target.values()) or 1
    effort = doc.summary.effort_share_by_tier
    tiers = [t for t in TIER_ROWS if t in effort or t in target]
    groups = [(t, effort.get(t, 0.0), target.get(t, 0) / total) for t in tiers]
    rows = [{"tier": t, "actual": actual, "target": wanted} for t, actual, wanted in groups]
    ratio = ":".join(f"{target.get(t, 0):g}" for t in ("S", "A", "B", "C"))
    chart = svg.paired_bars(
        "chart-effort", groups, ("actual", f"target {ratio}"), "Effort share per tier against the target",
        "; ".join(f"tier {t}: {actual:.0%} of effort, target {wanted:.0%}" for t, actual, wanted in groups))
    return {"effort_chart": Markup(chart), "effort": rows, "ratio": ratio}


def _funnel(doc: AuditDocument) -> dict[str, Any]:
    stages = [(s.stage, s.count, float(s.amount)) for s in ltc_funnel(doc.opportunities)
              if s.count or s.stage in FUNNEL_STAGES]
    rows = [{"stage": stage, "count": count, "amount": amount} for stage, count, amount in stages]
    currencies = sorted({o.currency for o in doc.opportunities if o.currency})
    money = (currencies[0] + " {:,.0f}") if len(currencies) == 1 else "{:,.0f} (mixed currencies)"
    chart = svg.funnel("chart-ltc", stages, money, "LTC funnel: deals and amount per stage",
                       "; ".join(f"{stage}: {count} deals, {money.format(amount)}"
                                 for stage, count, amount in stages if count))
    return {"funnel_chart": Markup(chart), "funnel": rows, "money": money}


def _attention(doc: AuditDocument, href: Callable[[AccountEntry], str]) -> list[dict[str, Any]]:
    overall = doc.presentation.overall
    return [{"name": a.name, "href": href(a), "tier": a.tier,
             "score": a.scores.get(overall.name) if overall else None,
             "severity": a.findings[0].severity, "code": a.findings[0].code,
             "reason": a.findings[0].message, "more": len(a.findings) - 1}
            for a in doc.accounts if a.findings][:ATTENTION]


# -- one account -----------------------------------------------------------------------------


def anchor(a: AccountEntry) -> str:
    return "acc-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(a.remote_id))


def account(a: AccountEntry, deals: list[OpportunityEntry], users: dict[str, str],
            presentation: Presentation) -> dict[str, Any]:
    key = anchor(a)
    detail = a.relationship_map
    contacts = {c.id: c for c in detail.contacts}
    p = a.personalization
    top = users.get(p.top_holder or "", p.top_holder)
    departments = sorted({c.department or "unknown" for c in detail.contacts})
    map_desc = (f"{len(detail.contacts)} contacts in {len(departments)} department(s) "
                f"({', '.join(departments) or 'none'}); {len(detail.users)} of our people; "
                + (f"{top} holds {p.top_share:.0%} of the relationship strength, bus factor {p.bus_factor}."
                   if top else "no relationship strength on our side."))
    order = list(vocab.DEPARTMENTS) + ["unknown"]
    relmap = svg.relationship_map(f"{key}-map", detail, f"Relationship map of {a.name}", map_desc, order)
    holders = [(u.name, u.share, svg.USER_COLOURS[min(i, len(svg.USER_COLOURS) - 1)])
               for i, u in enumerate(detail.users) if u.share]
    share_chart = svg.share_bar(f"{key}-share", holders, f"Share of relationship strength at {a.name}",
                                ", ".join(f"{n} {s:.0%}" for n, s, _ in holders) or "nobody") if holders else ""
    overall = presentation.overall
    previous = a.previous_scores.get(overall.name) if overall else None
    value = a.scores.get(overall.name) if overall else None
    return {"a": a, "anchor": key, "relmap": Markup(relmap), "legend": Markup(svg.map_legend(f"{key}-legend")),
            "contacts": detail.contacts, "users": detail.users, "user_names": users,
            "names": {**users, **{c: v.name for c, v in contacts.items() if v.name}},
            "contact_names": {c: v.name for c, v in contacts.items()},
            "scores": [{"label": d.label, "value": a.scores.get(d.name), "overall": d.overall}
                       for d in presentation.headline],
            "departure": _departure(a, users, contacts), "overall_title": _title(overall),
            "share_chart": Markup(share_chart), **_history(a, key, presentation), "deals": deals,
            "top_holder": top, "period": f"{presentation.previous_period_days:g}", "delta": None if previous is None or value is None else round(value - previous, 1),
            "evidence": _evidence_tables(a, presentation), "coverage": coverage_cell(a),
            "coverage_text": _coverage_text(a), "unknown_people": unknown_people_line(a),
            "merged_from": merged_line(a)}


def _coverage_text(a: AccountEntry) -> str:
    """What the account's scores rest on, in one sentence."""
    c = a.coverage
    gaps = ", ".join(GAP_WORDS.get(code, code) for code in c.gaps + c.thin)
    return (f"{c.contacts} contacts ({c.classified_contacts} with a title, level, department or role); "
            f"{c.interactions} activities in {c.window_days:g} days, {c.interactions_paired} naming a contact "
            f"and one of our people" + (f"; {gaps}" if gaps else "") + ".")


def _departure(a: AccountEntry, users: dict[str, str], contacts: dict[str, Any]) -> dict[str, Any] | None:
    found = a.relationship_map.departure
    if found is None:
        return None
    lost = [getattr(contacts.get(c), "name", None) or c for c in found.decision_makers_losing_all_coverage]
    return {"user_name": users.get(found.user, found.user), "health_before": found.health_before,
            "health_after": found.health_after, "health_drop": found.health_drop, "lost_names": lost}


def _history(a: AccountEntry, key: str, presentation: Presentation) -> dict[str, Any]:
    """The headline scores month by month: a line each, the overall score's black and first."""
    headline = presentation.headline
    history = (a.health_history or []) if headline else []
    if not history:
        return {"history": [], "history_chart": Markup(""), "history_labels": []}
    colours = iter(svg.OKABE_ITO[c] for c in HISTORY_COLOURS)
    series = [(d.label, [h.scores.get(d.name) for h in history],
               svg.OKABE_ITO["black"] if d.overall else next(colours, svg.GREY), 2.5 if d.overall else 1.5)
              for d in headline]
    lead = presentation.overall or headline[0]
    chart = svg.line_chart(
        f"{key}-health", [h.date for h in history], series, f"{_title(lead)} of {a.name} month by month",
        f"{_title(lead)} " + ", ".join(f"{h.date}: {v:.0f}" for h in history
                                       if (v := h.scores.get(lead.name)) is not None))
    rows = [{"date": h.date, "values": [h.scores.get(d.name) for d in headline]} for h in history]
    return {"history": rows, "history_chart": Markup(chart), "history_labels": [d.label for d in headline]}


#: evidence with these keys is drawn as a table of buying roles (weight, quality, best contact)
ROLE_EVIDENCE = ("role_weights", "by_role", "best_contact_by_role")


def _evidence_tables(a: AccountEntry, presentation: Presentation) -> list[dict[str, Any]]:
    """A table per score with evidence, in the order the plugins gave the scores."""
    return [{"label": presentation.label(name), "value": a.scores.get(name), "evidence": evidence,
             "roles": all(k in evidence for k in ROLE_EVIDENCE)}
            for name, evidence in a.score_evidence.items() if evidence]


def _evidence(value: Any, names: dict[str, str] | None = None) -> str:
    """Evidence as compact, readable text; record ids in ``names`` become "Name (id)"."""
    names = names or {}
    if isinstance(value, dict):
        return "; ".join(f"{(names.get(k) or k).replace('_', ' ')}: {_evidence(v, names)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_evidence(v, names) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and value in names:
        return f"{names[value]} ({value})"
    if value is None or isinstance(value, (str, int)):
        return "-" if value is None else str(value)
    return json.dumps(value, default=str)
