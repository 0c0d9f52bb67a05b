"""Analysis settings: every weight and threshold, with documented defaults.

Users override any of them in a TOML file (``--config FILE``, ``$CRMLINK_CONFIG``, or
``crmlink.toml`` in the current directory); the tables and keys are the ones below and
docs/method.md explains each.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

from crmlink.core.errors import ConfigError
from crmlink.core.evaluation.settings import (
    EVALUATION_DEFAULTS,
    LEVEL_DEFAULTS,
    REVIEW_DEFAULTS,
    SIGNALS_DEFAULTS,
    STAGE_DEFAULTS,
)
from crmlink.core.identity import IDENTITY_DEFAULTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULTS: dict[str, Any] = {
    "weights": {  # base weight of one interaction, by kind (and direction for email)
        "visit": 3.0, "meeting": 2.5, "event": 1.5, "call": 2.0,
        "email_inbound": 1.0, "email_outbound": 0.5, "email_two_way": 1.0,
        "note": 0.5, "task": 0.25,
    },
    "strength": {
        "half_life_days": 90.0,       # decay of an interaction's weight
        "k": 4.0,                     # saturation: strength = 100 * (1 - exp(-A / k)) ...
        "one_way_cap": 15.0,          # no reply in a year: at most this strength
        "reciprocity_days": 365.0,
        "holder_threshold": 40.0,     # pair strength that makes one of us a "holder"
        "engaged_threshold": 30.0,    # team strength that counts a contact as engaged
        "mass_email_limit": 50,       # emails to more recipients are ignored
        "meeting_group_size": 5,      # meetings and events are divided by their people / this
        "freshness_grace_days": 30.0,  # no loss of freshness within this many days ...
        "freshness_half_life_days": 60.0,  # ... then halves every this many days of silence
    },
    "key": {
        "role_weights": {"power": 3.0, "technical_evaluator": 2.0, "procurement": 1.5,
                          "approver": 1.0, "user": 1.0},
        "stance_factor": {"3": 1.0, "2": 0.9, "1": 0.75, "0": 0.4, "-1": 0.1, "-2": 0.0,
                          "unknown": 0.5},
    },
    "broad": {
        "expected_departments": ["executive", "procurement", "engineering", "technical",
                                  "operations", "finance"],
        "window_days": 180.0,
        "active_contacts_scale": 8.0,
        "parts": {"departments": 0.5, "levels": 0.3, "contacts": 0.2},  # weights of broad's parts
    },
    "org": {
        "window_days": 180.0, "program_days": 365.0, "team_target": 3,
        "methods_target": 3,                      # distinct five methods for full marks
        "executive_link_values": [0.0, 0.6, 1.0],  # for 0, 1, 2+ executive links
        "parts": {"executive": 0.4, "people": 0.2, "iron_triangle": 0.2, "programs": 0.2},
    },
    "health": {  # weight of key, broad, org in health, by tier ("none" = no tier)
        "S": [0.45, 0.30, 0.25], "A": [0.45, 0.30, 0.25], "B": [0.60, 0.30, 0.10],
        "C": [0.80, 0.20, 0.0], "none": [0.60, 0.30, 0.10],
    },
    "findings": {
        "strategic_tiers": ["S", "A"],  # tiers the layer findings (BROAD_*, ORG_*) judge
        "cold_days": 90,
        "personalized_share": 0.70,
        "personalized_tiers": ["S", "A", "B"],  # cash-flow C accounts are not flagged
        "single_holder_tiers": ["S", "A"],
        "orphaned_share": 0.10,
        "decline_points": 10.0,
        "previous_period_days": 90,
        "min_departments": 3,
        "cadence_per_week": 5.0,
        "cadence_weeks": 4,
        "exec_link_days": 180,
        "thin_team": 3,
        "program_days": 365,
        "program_tiers": ["S"],
        "opponent_days": 90,
        # days after which a decision maker's stance assessment is stale, by tier
        "stance_stale_days": {"S": 60, "A": 90, "B": 180, "C": 180, "none": 180},
        "rank_min_band": "manager",  # lowest band of ours that may hold a customer executive
        "tier_effort_tolerance": 0.15,
        "data_quality_min_titled": 0.5,
        "data_quality_min_linked": 0.5,
    },
    "coverage": {  # the evidence an account's scores rest on (docs/method.md, "Evidence coverage")
        "window_days": 365.0,      # interactions within this many days count as evidence
        "min_contacts": 3,         # fewer active contacts: thin evidence
        "min_interactions": 12,    # fewer interactions in the window: thin evidence
        "min_linked_share": 0.5,   # a smaller share naming a contact and one of ours: thin
        "min_classified_share": 0.5,  # a smaller share of contacts with a title, level or role: thin
        "fix_first": 5,            # accounts listed under "what to fix first"
    },
    "tiers": {
        "target": {"S": 7, "A": 3, "B": 0, "C": 0},
        # computed tier when the CRM has none: annual revenue (in the account's currency)
        # and growth. S: revenue >= s_revenue or (>= a_revenue and growth >= s_growth) ...
        "s_revenue": 1_000_000_000, "a_revenue": 100_000_000, "b_revenue": 10_000_000,
        "s_growth": 0.2,
    },
    # how the audit reads the interactions (crmlink.core.analysis.aggregates, docs/scaling.md)
    "audit": {
        "aggregates": True,  # from the aggregates syncs keep; false folds every interaction
        # processes that score the accounts: "auto" = one per usable CPU from 500 accounts
        # (one below that, or where fork is not available), or a number (crmlink audit --workers);
        # also the processes that build the aggregates (auto: from 200 accounts to rebuild)
        "workers": "auto",
        # reuse the entries of accounts nothing changed in since an audit with the same
        # settings (crmlink.core.analysis.cache; crmlink audit --no-cache)
        "cache": True,
    },
    # the sync engine's retry policy (crmlink.core.sync.RetryPolicy; env CRMLINK_RETRY_*)
    "retry": {"attempts": 6, "initial": 1.0, "maximum": 60.0, "total": 600.0},
    "ltc": {
        "stall_factor": 1.0,      # x the 75th percentile of won deals' days in the stage
        "stall_days": {},         # fixed limits by native stage label or LTC stage
        # used when neither a configured limit nor won-deal history exists
        "default_stall_days": {"validate": 60, "guide_bid": 90, "bid": 60, "negotiate": 45},
        "power_days": 30,
        "overrides": {},
    },
    # who an address is, and what mail and calendar sources keep (crmlink.core.identity)
    "identity": IDENTITY_DEFAULTS,
    # the evaluation cycle: saved audits, what changed (crmlink.core.evaluation)
    "evaluation": EVALUATION_DEFAULTS,
    # strategic stage and relationship level (the method plugin's rules)
    "stage": STAGE_DEFAULTS,
    "level": LEVEL_DEFAULTS,
    # the period review, and each account's expectations by remote id (crmlink review)
    "review": REVIEW_DEFAULTS,
    # the review's competitor and satisfaction signals (the signals plugin)
    "signals": SIGNALS_DEFAULTS,
    "expectations": {},
    # crmlink push: [push.<source or connector>.fields] renames a field (docs/push.md)
    "push": {},
}
#: Tables whose keys are the user's own (names, ids, addresses), not settings.
_OPEN_TABLES = ("ltc.", "tiers.", "sources.", "identity.overrides.", "expectations.", "push.")


def merge(base: dict[str, Any], override: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; unknown keys are an error."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        path = f"{where}{key}"
        if key not in merged and not where.startswith(_OPEN_TABLES):
            raise ConfigError(f"unknown setting {path!r} in the config file; see docs/method.md")
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = merge(merged[key], value, path + ".")
        else:
            merged[key] = value
    return merged


def config_path(explicit: str | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("CRMLINK_CONFIG")
    if env:
        return Path(env)
    local = Path("crmlink.toml")
    return local if local.is_file() else None


def load_config(explicit: str | None = None) -> dict[str, Any]:
    """Defaults merged with the config file's settings (``[sources]`` kept aside)."""
    path = config_path(explicit)
    if path is None:
        return copy.deepcopy(DEFAULTS) | {"sources": {}}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    sources = data.pop("sources", {})
    return merge(DEFAULTS, data) | {"sources": sources, "config_file": str(path)}
