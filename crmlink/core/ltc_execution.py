"""Contract execution: what moves a won deal from ``contract`` to ``deliver``, ``collect``
and ``closed`` (docs/ltc.md, "Contract execution").

A rule names the stage it proves, what it looks at (``on``: the deal itself, or one kind
of its execution records) and optionally a field and the values that count::

    [[ltc.execution.rules]]
    stage = "collect"
    on = "opportunity"
    field = "Invoice_Status__c"
    values = ["Invoiced", "Partially Paid"]

The built-in rules come first (``[ltc.execution] builtin_rules = false`` drops them); a
deal goes to the furthest stage any rule proves, never back. The built-in ``ltc_stage``
hook applies them through :func:`advance_won_stage`, which the public API exports for any
plugin that maps stages its own way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from crmlink.core.errors import ConfigError
from crmlink.core.ltc import WON_STAGES
from crmlink.core.model import ExecutionRecord, Opportunity, Record

Rule = Mapping[str, Any]
BUILTIN_RULES: tuple[Rule, ...] = (
    {"stage": "contract", "on": "contract", "field": "active", "values": [True]},
    {"stage": "deliver", "on": "order", "field": "active", "values": [True]},
    {"stage": "collect", "on": "invoice"},
    {"stage": "closed", "on": "payment", "paid_in_full": True},
)
TARGETS = ("opportunity", "contract", "order", "invoice", "payment")
RULE_KEYS = {"stage", "on", "field", "values", "paid_in_full"}


def rules(config: Mapping[str, Any]) -> list[Rule]:
    """The built-in rules (unless switched off) and the configured ones, checked."""
    table = config.get("execution") or {}
    configured = list(table.get("rules") or [])
    for index, rule in enumerate(configured):
        _check(rule, index)
    builtin = list(BUILTIN_RULES) if table.get("builtin_rules", True) else []
    return builtin + configured


def _check(rule: Any, index: int) -> None:
    where = f"[[ltc.execution.rules]] number {index + 1}"
    if not isinstance(rule, Mapping):
        raise ConfigError(f"{where} in the config file is not a table; write stage = ..., on = ...")
    unknown = sorted(set(rule) - RULE_KEYS)
    if unknown:
        raise ConfigError(f"{where} has an unknown key {unknown[0]!r}; it takes {', '.join(sorted(RULE_KEYS))}")
    if rule.get("stage") not in WON_STAGES:
        raise ConfigError(f"{where} has stage {rule.get('stage')!r}; use one of {', '.join(WON_STAGES)}")
    if rule.get("on", "opportunity") not in TARGETS:
        raise ConfigError(f"{where} has on = {rule.get('on')!r}; use one of {', '.join(TARGETS)}")
    if "values" in rule and not isinstance(rule["values"], list):
        raise ConfigError(f"{where}: values must be a list, e.g. values = [\"Paid\"]")


def advance_won_stage(stage: str, opportunity: Opportunity, execution: Sequence[ExecutionRecord],
            config: Mapping[str, Any]) -> str:
    """``stage`` moved on by the rules when it is a won stage; any other stage unchanged."""
    if stage not in WON_STAGES:
        return stage
    furthest = WON_STAGES.index(stage)
    for rule in rules(config):
        reach = WON_STAGES.index(rule["stage"])
        if reach > furthest and matches(rule, opportunity, execution):
            furthest = reach
    return WON_STAGES[furthest]


def matches(rule: Rule, opportunity: Opportunity, execution: Sequence[ExecutionRecord]) -> bool:
    on = rule.get("on", "opportunity")
    candidates: list[Record] = [opportunity] if on == "opportunity" else [r for r in execution if r.kind == on]
    if rule.get("paid_in_full"):
        return paid_in_full(opportunity, [r for r in candidates if isinstance(r, ExecutionRecord)])
    name = rule.get("field")
    if name is None:
        return bool(candidates)
    wanted = {_text(v) for v in rule.get("values", [])}
    for record in candidates:
        value = field_value(record, name)
        if (_text(value) in wanted) if "values" in rule else value not in (None, "", False):
            return True
    return False


def paid_in_full(opportunity: Opportunity, payments: Sequence[ExecutionRecord]) -> bool:
    """Payments add up to the deal's amount (a deal without an amount: any payment)."""
    paid = [p.amount for p in payments if p.amount is not None]
    if not payments:
        return False
    if opportunity.amount is None:
        return True
    return sum(paid, Decimal(0)) >= opportunity.amount


def field_value(record: Record, name: str) -> Any:
    """A canonical field of the record, else a native one from ``extra`` (any case)."""
    if name in record.__dataclass_fields__ and name not in ("extra", "raw"):
        return getattr(record, name)
    for bag in (record.extra, record.raw):
        if name in bag:
            return bag[name]
        lowered = {k.lower(): v for k, v in bag.items()}
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()
