"""The evaluation cycle's settings and their defaults (docs/method.md explains each)."""

from __future__ import annotations

from typing import Any

EVALUATION_DEFAULTS: dict[str, Any] = {
    "save": False,            # crmlink audit saves every audit, as if --save were given
    "move_points": 5.0,       # a score change smaller than this is not a move (diff, review)
    "step_points": 20.0,      # one step of tier, stage or level counts as this many points of move
    "reasons": 3,             # relationships named per moved account (the pairs that changed most)
}

#: The strategic stage's rules (the method plugin's, docs/method.md); ``crm_fields`` are
#: the account fields whose value overrides it (whoever computes it).
STAGE_DEFAULTS: dict[str, Any] = {
    "crm_fields": ["strategic_stage", "Strategic_Stage__c"],
    "window_days": 365.0,          # recent contact and the five methods count within this
    "order_days": 730.0,           # won deals (orders) count within this
    "interest_orders": 2,          # won deals for a community of interest (repeat business)
    "service_methods": ["tech_exchange", "management_research"],  # services that raise their profit
    "joint_keywords": ["joint development", "joint innovation", "joint lab", "joint programme",
                       "joint program", "co-development", "联合创新", "联合开发", "联合实验室"],
    "exec_periods": 2,             # executive meetings in each of this many recent periods ...
    "exec_period_days": 90.0,      # ... of this length: regular top-to-top contact
    "deep_tenure_days": 730.0,     # the relationship's age (first two-way contact) for deep cooperation
}

#: The relationship level's rules; ``crm_fields`` as for the stage.
LEVEL_DEFAULTS: dict[str, Any] = {
    "crm_fields": ["relationship_level", "Relationship_Level__c"],
    "friendship_contacts": 1,      # decision makers who are friends of ours for friendship ...
    "friendship_strength": 60.0,   # ... each with at least this team strength ...
    "friendship_stance": 1,        # ... and at least this stance (1 supporter)
    "friendship_tenure_days": 365.0,
    "partnership_contacts": 2,     # such decision makers for a strategic partnership ...
    "partnership_health": 70.0,    # ... with at least this health, at deep strategic cooperation
}

#: The review's competitor and satisfaction signals (the ``signals`` plugin, docs/evaluation.md).
SIGNALS_DEFAULTS: dict[str, Any] = {
    "escalations": 1,           # open escalations at the period's end that make satisfaction negative
    "escalation_weight": 0.3,   # each of them lowers the satisfaction signal by this (to -1 at most)
    "complaint_rise": 2,        # this many more complaints than in the previous period: a rising trend
    "complaint_weight": 0.4,    # a rising trend lowers satisfaction by this, a falling one raises it
    "complaint_types": ["complaint"],  # case types counted as complaints
    "new_competitor_weight": 0.5,  # each competitor new to the account this period lowers its signal by this
    "deal_weight": 0.25,        # each deal won against competitors raises it, each lost lowers it
}

#: The period review (``crmlink review``).
REVIEW_DEFAULTS: dict[str, Any] = {
    "tasks": 10,                # tasks for the next period
    "tasks_per_account": 2,     # at most this many of them about one account
    "exceed_points": 10.0,      # health this far above the expected exceeds it
    # account fields (CRM) holding each expectation; a CSV or the config file wins over them
    "expected_fields": {"tier": ["expected_tier", "Expected_Tier__c"],
                        "stage": ["expected_stage", "Expected_Stage__c"],
                        "level": ["expected_level", "Expected_Level__c"],
                        "health": ["expected_health", "Expected_Health__c"]},
}
