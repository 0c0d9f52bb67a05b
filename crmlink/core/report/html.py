"""The HTML report: one self-contained file (styles, script and SVG charts inline; no
request to any network) with the portfolio overview and a page per account.

It renders the audit document alone: the relationship maps (``relationship_map``),
the monthly health (``health_history``) and the tier target (``tier_target``) come
from :mod:`crmlink.core.analysis.detail`. Requires Jinja2.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from crmlink.core import vocab
from crmlink.core.findings import SEVERITIES, SEVERITY_RANK
from crmlink.core.ltc import LTC_STAGES
from crmlink.core.report import svg

HERE = Path(__file__).resolve().parent
TIER_ROWS = ("S", "A", "B", "C", "none")
HEALTH_BANDS = (("at risk <40", 0, 40), ("watch 40-59", 40, 60), ("fair 60-79", 60, 80), ("strong 80+", 80, 101))
DEFAULT_TARGET = {"S": 7, "A": 3, "B": 0, "C": 0}
ATTENTION = 12


def render(doc: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["j2", "html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:.0%}"
    env.filters["num"] = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
    env.filters["label"] = lambda v: "-" if v is None else str(v).replace("_", " ")
    env.filters["evidence"] = _evidence
    env.filters["yesno"] = lambda v: "yes" if v else "no"
    env.filters["extract"] = lambda key, mapping: mapping.get(key, key)
    context = build_context(doc)
    context["css"] = Markup((HERE / "templates" / "report.css").read_text(encoding="utf-8"))
    return env.get_template("report.html.j2").render(**context)


def build_context(doc: dict[str, Any]) -> dict[str, Any]:
    users = {u["id"]: u["name"] for a in doc["accounts"] for u in a.get("relationship_map", {}).get("users", [])}
    deals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for opp in doc["opportunities"]:
        deals[opp.get("account_id") or ""].append(opp)
    return {"doc": doc, "summary": doc["summary"], "portfolio": portfolio(doc),
            "accounts": [account(a, deals.get(a["id"], []), users) for a in doc["accounts"]],
            "severities": list(reversed(SEVERITIES))}


# -- the portfolio ---------------------------------------------------------------------------


def _band(health: float) -> str:
    return next(name for name, low, high in HEALTH_BANDS if low <= health < high)


def _amount(value: Any) -> float:
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return 0.0


def portfolio(doc: dict[str, Any]) -> dict[str, Any]:
    summary, accounts = doc["summary"], doc["accounts"]
    cols = [name for name, _, _ in HEALTH_BANDS]
    rows = [t for t in TIER_ROWS if any((a["tier"] or "none") == t for a in accounts)]
    counts = Counter(((a["tier"] or "none"), _band(a["scores"].get("health", 0.0))) for a in accounts)
    matrix = [{"tier": r, "cells": [counts.get((r, c), 0) for c in cols]} for r in rows]
    heat = svg.heatmap("chart-tier-health", rows, cols, counts, "Accounts by tier and health",
                       "; ".join(f"tier {r}: " + ", ".join(f"{n} {c}" for c, n in zip(cols, m["cells"], strict=True) if n)
                                 for r, m in zip(rows, matrix, strict=True)))

    severity = [(s, summary["findings_by_severity"].get(s, 0), svg.SEVERITY_COLOURS[s]) for s in reversed(SEVERITIES)]
    sev_chart = svg.hbars("chart-severity", severity, "Findings by severity",
                          ", ".join(f"{n} {s}" for s, n, _ in severity), label_width=80, width=420)
    worst: dict[str, str] = {}
    everything = ([f for a in accounts for f in a["findings"]] + [f for o in doc["opportunities"] for f in o["findings"]]
                  + doc["portfolio_findings"])
    for f in everything:
        if SEVERITY_RANK[f["severity"]] > SEVERITY_RANK.get(worst.get(f["code"], "info"), -1):
            worst[f["code"]] = f["severity"]
    codes = sorted(summary["findings_by_code"].items(), key=lambda kv: (-kv[1], kv[0]))
    code_items = [(c, n, svg.SEVERITY_COLOURS[worst.get(c, "info")]) for c, n in codes]
    code_chart = svg.hbars("chart-codes", code_items, "Findings by code",
                           ", ".join(f"{c}: {n}" for c, n in codes) + ". Bar colour: the worst severity of the code.",
                           label_width=230, width=560)

    target = doc.get("tier_target") or _target_from_findings(doc) or DEFAULT_TARGET
    total = sum(target.values()) or 1
    effort = summary["effort_share_by_tier"]
    tiers = [t for t in ("S", "A", "B", "C", "none") if t in effort or t in target]
    effort_rows = [{"tier": t, "actual": effort.get(t, 0.0), "target": target.get(t, 0) / total} for t in tiers]
    ratio = ":".join(f"{target.get(t, 0):g}" for t in ("S", "A", "B", "C"))
    effort_chart = svg.paired_bars(
        "chart-effort", [(r["tier"], r["actual"], r["target"]) for r in effort_rows], ("actual", f"target {ratio}"),
        "Effort share per tier against the target",
        "; ".join(f"tier {r['tier']}: {r['actual']:.0%} of effort, target {r['target']:.0%}" for r in effort_rows))

    funnel_rows = _funnel(doc["opportunities"])
    currencies = sorted({o["currency"] for o in doc["opportunities"] if o.get("currency")})
    money = (currencies[0] + " {:,.0f}") if len(currencies) == 1 else "{:,.0f} (mixed currencies)"
    funnel_chart = svg.funnel("chart-ltc", [(r["stage"], r["count"], r["amount"]) for r in funnel_rows], money,
                              "LTC funnel: deals and amount per stage",
                              "; ".join(f"{r['stage']}: {r['count']} deals, {money.format(r['amount'])}"
                                        for r in funnel_rows if r["count"]))
    attention = [{"name": a["name"], "anchor": anchor(a), "tier": a["tier"], "health": a["scores"].get("health"),
                  "severity": a["findings"][0]["severity"], "code": a["findings"][0]["code"],
                  "reason": a["findings"][0]["message"], "more": len(a["findings"]) - 1}
                 for a in accounts if a["findings"]][:ATTENTION]
    return {"heatmap": Markup(heat), "matrix": matrix, "bands": cols, "severity_chart": Markup(sev_chart),
            "severity": severity, "code_chart": Markup(code_chart), "codes": [(c, n, worst.get(c)) for c, n in codes],
            "effort_chart": Markup(effort_chart), "effort": effort_rows, "ratio": ratio,
            "funnel_chart": Markup(funnel_chart), "funnel": funnel_rows, "money": money, "attention": attention}


def _target_from_findings(doc: dict[str, Any]) -> dict[str, float] | None:
    for f in doc["portfolio_findings"]:
        if f["code"] == "TIER_EFFORT_MISMATCH" and f["evidence"].get("target_share"):
            return f["evidence"]["target_share"]
    return None


def _funnel(opportunities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = {s: {"stage": s, "count": 0, "amount": 0.0} for s in LTC_STAGES}
    for o in opportunities:
        row = rows.setdefault(o["ltc_stage"], {"stage": o["ltc_stage"], "count": 0, "amount": 0.0})
        row["count"] += 1
        row["amount"] += _amount(o.get("amount"))
    return [r for r in rows.values() if r["count"] or r["stage"] in ("validate", "guide_bid", "bid", "negotiate", "contract")]


# -- one account -----------------------------------------------------------------------------


def anchor(a: dict[str, Any]) -> str:
    return "acc-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(a["remote_id"]))


def account(a: dict[str, Any], deals: list[dict[str, Any]], users: dict[str, str]) -> dict[str, Any]:
    key = anchor(a)
    detail = a.get("relationship_map") or {"contacts": [], "users": [], "pairs": [], "departure": None}
    contacts = {c["id"]: c for c in detail["contacts"]}
    p = a["personalization"]
    top = users.get(p.get("top_holder") or "", p.get("top_holder"))
    departments = sorted({c["department"] or "unknown" for c in detail["contacts"]})
    map_desc = (f"{len(detail['contacts'])} contacts in {len(departments)} department(s) "
                f"({', '.join(departments) or 'none'}); {len(detail['users'])} of our people; "
                + (f"{top} holds {p['top_share']:.0%} of the relationship strength, bus factor {p['bus_factor']}."
                   if top else "no relationship strength on our side."))
    order = list(vocab.DEPARTMENTS) + ["unknown"]
    relmap = svg.relationship_map(f"{key}-map", detail, f"Relationship map of {a['name']}", map_desc, order)
    departure = _departure(a, detail)
    if departure:
        departure["user_name"] = users.get(departure["user"], departure["user"])
        departure["lost_names"] = [contacts.get(c, {}).get("name") or c
                                   for c in departure.get("decision_makers_losing_all_coverage", [])]
    holders = [(u["name"], u["share"], svg.USER_COLOURS[min(i, len(svg.USER_COLOURS) - 1)])
               for i, u in enumerate(detail["users"]) if u["share"]]
    share_chart = svg.share_bar(f"{key}-share", holders, f"Share of relationship strength at {a['name']}",
                                ", ".join(f"{n} {s:.0%}" for n, s, _ in holders) or "nobody") if holders else ""
    history = a.get("health_history") or []
    dates = [h["date"] for h in history]
    history_chart = svg.line_chart(
        f"{key}-health", dates,
        [("health", [h["health"] for h in history], svg.OKABE_ITO["black"], 2.5),
         ("key", [h["key"] for h in history], svg.OKABE_ITO["vermillion"], 1.5),
         ("broad", [h["broad"] for h in history], svg.OKABE_ITO["blue"], 1.5),
         ("org", [h["org"] for h in history], svg.OKABE_ITO["green"], 1.5)],
        f"Health of {a['name']} month by month",
        "Health " + ", ".join(f"{h['date']}: {h['health']:.0f}" for h in history if h["health"] is not None),
    ) if history else ""
    previous = a.get("previous_scores", {}).get("health")
    health = a["scores"].get("health")
    return {"a": a, "anchor": key, "relmap": Markup(relmap), "legend": Markup(svg.map_legend(f"{key}-legend")), "contacts": detail["contacts"],
            "users": detail["users"], "user_names": users,
            "names": {**users, **{c: v["name"] for c, v in contacts.items() if v.get("name")}}, "contact_names": {c: v["name"] for c, v in contacts.items()},
            "departure": departure, "share_chart": Markup(share_chart), "history": history,
            "history_chart": Markup(history_chart), "deals": deals, "top_holder": top,
            "delta": None if previous is None or health is None else round(health - previous, 1),
            "evidence": a.get("score_evidence", {})}


def _departure(a: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any] | None:
    for f in a["findings"]:
        if f["code"] == "PERSONALIZED_RELATIONSHIP" and f["evidence"].get("departure"):
            return dict(f["evidence"]["departure"], from_finding=True)
    found = detail.get("departure")
    return dict(found, from_finding=False) if found else None


def _evidence(value: Any, names: dict[str, str] | None = None) -> str:
    """Evidence as compact, readable text; record ids in ``names`` become "Name (id)"."""
    names = names or {}
    if isinstance(value, dict):
        return "; ".join(f"{names.get(k, k).replace('_', ' ')}: {_evidence(v, names)}" for k, v in value.items())
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
