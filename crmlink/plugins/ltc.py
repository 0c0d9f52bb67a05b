"""Built-in LTC stage mapping and deal cross-checks (docs/ltc.md).

Order of decision for one deal: a config override for its source and pipeline, then the
default maps for Salesforce's and HubSpot's standard stages, then the stage's own flags
(won -> contract, closed and lost -> lost), then its probability. Anything left is
``unmapped`` and reported, never guessed silently. A won deal then moves on to deliver,
collect or closed by its execution records (:func:`crmlink.advance_won_stage`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmlink import (
    OPEN_STAGES,
    ConfigError,
    ExecutionRecord,
    Finding,
    Opportunity,
    OpportunitySummary,
    OpportunityView,
    PortfolioView,
    Stage,
    advance_won_stage,
    hookimpl,
)

#: Default map, by lower-cased stage label or id (Salesforce labels, HubSpot ids and labels).
DEFAULT_MAP: dict[str, str] = {
    "prospecting": "validate", "qualification": "validate",
    "needs analysis": "guide_bid", "value proposition": "guide_bid",
    "id. decision makers": "guide_bid", "perception analysis": "guide_bid",
    "proposal/price quote": "bid", "negotiation/review": "negotiate",
    "closed won": "contract", "closed lost": "lost",
    "appointmentscheduled": "validate", "qualifiedtobuy": "guide_bid",
    "presentationscheduled": "guide_bid", "decisionmakerboughtin": "bid",
    "contractsent": "negotiate", "closedwon": "contract", "closedlost": "lost",
    "appointment scheduled": "validate", "qualified to buy": "guide_bid",
    "presentation scheduled": "guide_bid", "decision maker bought-in": "bid",
    "contract sent": "negotiate",
}
#: probability (0..1) bands used when a stage has no other rule: (lowest, ltc stage)
PROBABILITY_BANDS = ((0.9, "negotiate"), (0.6, "bid"), (0.3, "guide_bid"), (0.0, "validate"))
#: Days within which a contact counts as engaged for LTC_SINGLE_THREADED (``[ltc] single_thread_days``).
SINGLE_THREAD_DAYS = 90
LTC_VALUES = {"lead", "validate", "guide_bid", "bid", "negotiate", "contract", "deliver",
              "collect", "closed", "lost"}


def _override(opp: Opportunity, config: Mapping[str, Any]) -> str | None:
    overrides = config.get("overrides", {})
    for scope in (overrides.get(opp.source, {}), overrides.get("*", {})):
        table = scope.get(opp.pipeline or "default", {}) if isinstance(scope, dict) else {}
        merged = {**{k: v for k, v in scope.items() if isinstance(v, str)}, **table}
        for key in (opp.stage_id, opp.stage_label):
            if key and key in merged:
                return merged[key]
            if key and key.lower() in {k.lower() for k in merged}:
                return next(v for k, v in merged.items() if k.lower() == key.lower())
    return None


def _by_probability(probability: float | None) -> str | None:
    if probability is None:
        return None
    p = probability / 100.0 if probability > 1 else probability
    if p >= 1.0 or p <= 0.0:
        return None  # 100 % or 0 % without closed flags is ambiguous
    return next(stage for low, stage in PROBABILITY_BANDS if p >= low)


def map_stage(opp: Opportunity, stage: Stage | None, config: Mapping[str, Any]) -> tuple[str, str]:
    """The LTC stage and the rule that chose it (override, default, flags, probability, none)."""
    found = _override(opp, config)
    if found:
        return found, "override"
    for key in (opp.stage_id, opp.stage_label):
        if key and key.strip().lower() in DEFAULT_MAP:
            return DEFAULT_MAP[key.strip().lower()], "default"
    won = stage.is_won if stage and stage.is_won is not None else opp.is_won
    closed = stage.is_closed if stage and stage.is_closed is not None else opp.is_closed
    if closed and won:
        return "contract", "flags"
    if closed and won is False:
        return "lost", "flags"
    probability = stage.probability if stage and stage.probability is not None else opp.probability
    by_probability = None if closed else _by_probability(probability)
    if by_probability:
        return by_probability, "probability"
    return "unmapped", "none"


@hookimpl(trylast=True)
def ltc_stage(opportunity: Opportunity, stage: Stage | None, config: Mapping[str, Any],
              execution: Sequence[ExecutionRecord]) -> str:
    # No default for ``execution``: pluggy does not pass hook arguments to parameters
    # that have one (pluggy 1.6 made that strict), so a default would always win.
    return advance_won_stage(map_stage(opportunity, stage, config)[0], opportunity, execution, config)


def _power_engaged(view: OpportunityView, days: float) -> list[str]:
    if view.account is None:
        return []
    engaged = view.engaged_contacts(days)
    stats = view.account.contact_stats
    return [c for c in engaged if c in stats and stats[c].is_power]


@hookimpl
def opportunity_findings(view: OpportunityView) -> list[Finding]:
    opp = view.opportunity
    name = opp.name or opp.remote_id
    found: list[Finding] = []
    if view.ltc_stage == "unmapped":
        found.append(Finding("LTC_STAGE_UNMAPPED", "low",
                             f"Deal {name!r} is in stage {opp.stage_label or opp.stage_id!r}, which no rule maps to an LTC stage.",
                             {"stage": opp.stage_label or opp.stage_id, "pipeline": opp.pipeline},
                             "Map the stage in the [ltc.overrides] table of the config file."))
    if opp.is_closed or view.ltc_stage not in OPEN_STAGES:
        return found
    stalled = _stalled(view)
    if stalled:
        found.append(stalled)
    if not has_relationship_data(view):
        return found  # DATA_NO_CONTACT_ROLES (portfolio) says it once for the whole CRM
    days = view.config["ltc"]["power_days"]
    if view.ltc_stage in ("bid", "negotiate") and not _power_engaged(view, days):
        found.append(Finding("LTC_NO_POWER", "high",
                             f"Deal {name!r} is at {view.ltc_stage} but no decision maker engaged with us in {days} days.",
                             {"ltc_stage": view.ltc_stage, "window_days": days, "amount": str(opp.amount)},
                             "Get to the decision maker before the bid is decided; a deal without power is a hope."))
    window = view.config["ltc"].get("single_thread_days", SINGLE_THREAD_DAYS)
    engaged = view.engaged_contacts(window)
    if len(engaged) <= 1:
        found.append(Finding("LTC_SINGLE_THREADED", "medium",
                             f"Deal {name!r} rests on {len(engaged)} engaged contact(s).",
                             {"engaged_contacts": sorted(engaged), "window_days": window},
                             "Multi-thread the deal: engage the technical evaluator, procurement and users too."))
    return found + role_gate_findings(view)


def has_relationship_data(deal: OpportunityView | OpportunitySummary) -> bool:
    """Whether the deal's people can be judged at all: its CRM records contact roles on
    some deal, or interactions linked to this deal name a contact. Without either, "no
    decision maker engaged" says nothing about the deal, only about the data. Of a deal's
    view or its summary (``contact_roles`` is the roles there, their count here)."""
    return deal.source_contact_roles != 0 or bool(deal.contact_roles) or deal.linked_contacts


@hookimpl
def portfolio_findings(view: PortfolioView) -> list[Finding]:
    """One finding for the CRMs that record no contact roles on any deal, with the open
    deals whose relationship checks were skipped for it (from the deals' summaries)."""
    skipped: dict[str, list[str]] = {}
    for deal in view.deal_summaries:
        if deal.opportunity.is_closed or deal.ltc_stage not in OPEN_STAGES or has_relationship_data(deal):
            continue
        skipped.setdefault(deal.opportunity.source, []).append(deal.opportunity.remote_id)
    if not skipped:
        return []
    sources = sorted(skipped)
    deals = sum(len(ids) for ids in skipped.values())
    where = f"source {sources[0]!r}" if len(sources) == 1 else "sources " + ", ".join(repr(s) for s in sources)
    return [Finding(
        "DATA_NO_CONTACT_ROLES", "low",
        f"No deal in {where} records its contacts (contact roles), and no activity linked to a deal "
        f"names one: the power, multi-threading and buying-role checks of {deals} open "
        f"deal{'s' if deals != 1 else ''} were skipped.",
        {"sources": sources, "open_deals_skipped": {s: sorted(ids) for s, ids in skipped.items()}},
        "Record contact roles on deals (Salesforce Opportunity Contact Roles, HubSpot deal-contact "
        "associations), or link meetings and calls to the deal, so each deal's decision makers can be checked.")]


#: Who must be engaged by which LTC stage (``[ltc.role_gates]``; "" switches a gate off).
ROLE_GATES = {"technical_evaluator": "bid", "economic_buyer": "negotiate", "procurement": "negotiate"}
#: Two-way contact within this many days counts as engaged (``[ltc] role_days``).
ROLE_DAYS = 90
GATE_FINDINGS = {
    "technical_evaluator": ("LTC_NO_TECHNICAL_EVALUATOR", "medium", "a technical evaluator",
                            "Run a technical exchange with their evaluators before the bid is shaped without you."),
    "economic_buyer": ("LTC_NO_ECONOMIC_BUYER", "high", "the economic buyer",
                       "Meet the person who owns the budget before terms are settled; bring an executive."),
    "procurement": ("LTC_NO_PROCUREMENT", "medium", "procurement",
                    "Engage procurement now: the contract goes through them, and late surprises cost margin."),
}


def role_gate_findings(view: OpportunityView) -> list[Finding]:
    """One finding per buying role whose gate the (open) deal has reached with nobody in
    that role engaged two-way within ``role_days``."""
    config = view.config["ltc"]
    gates = {**ROLE_GATES, **(config.get("role_gates") or {})}
    days = float(config.get("role_days", ROLE_DAYS))
    found = []
    for role, gate in gates.items():
        _check_gate(role, gate)
        if not gate:
            continue
        if OPEN_STAGES.index(view.ltc_stage) < OPEN_STAGES.index(gate) or engaged_in_role(view, role, days):
            continue
        code, severity, who, action = GATE_FINDINGS[role]
        name = view.opportunity.name or view.opportunity.remote_id
        found.append(Finding(code, severity,
                             f"Deal {name!r} is at {view.ltc_stage} but {who} has not engaged with us in "
                             f"{days:.0f} days; the method wants them engaged by {gate}.",
                             {"role": role, "gate": gate, "ltc_stage": view.ltc_stage, "window_days": days,
                              "known_in_role": known_in_role(view, role)}, action))
    return found


def _check_gate(role: str, gate: Any) -> None:
    if role not in GATE_FINDINGS:
        raise ConfigError(f"[ltc.role_gates] in the config file names role {role!r}; the gated roles are "
                          + ", ".join(GATE_FINDINGS))
    if gate and gate not in OPEN_STAGES:
        raise ConfigError(f"[ltc.role_gates] {role} = {gate!r} is not an open LTC stage; use one of "
                          + ", ".join(OPEN_STAGES) + ', or "" to switch the check off')


def known_in_role(view: OpportunityView, role: str) -> list[str]:
    """Contacts in ``role`` on this deal (its contact roles) or at its account."""
    ids = {r.contact_id for r in view.contact_roles if r.role == role and r.contact_id}
    if view.account is not None:
        ids |= {cid for cid, stat in view.account.contact_stats.items() if stat.role == role}
    return sorted(ids)


def engaged_in_role(view: OpportunityView, role: str, days: float) -> list[str]:
    if view.account is None:
        return []
    stats = view.account.contact_stats
    return [c for c in known_in_role(view, role)
            if c in stats and (since := stats[c].days_since_two_way) is not None and since <= days]


def _stalled(view: OpportunityView) -> Finding | None:
    days = view.days_in_stage
    label = view.opportunity.stage_label or view.opportunity.stage_id or ""
    limits = view.config["ltc"]["stall_days"]
    limit = limits.get(label) or limits.get(view.ltc_stage)
    source = "configured"
    if limit is None and label in view.typical_days_in_stage:
        limit = view.typical_days_in_stage[label] * view.config["ltc"]["stall_factor"]
        source = "75th percentile of won deals"
    if limit is None:
        limit = view.config["ltc"]["default_stall_days"].get(view.ltc_stage)
        source = "default for the LTC stage"
    if days is None or limit is None or days <= limit:
        return None
    return Finding("LTC_STALLED", "medium",
                   f"Deal {view.opportunity.name!r} has been in {label!r} for {days:.0f} days; usually {limit:.0f}.",
                   {"days_in_stage": round(days, 1), "limit_days": round(limit, 1), "limit_from": source},
                   "Find what blocks the next step, and who on their side can unblock it.")
