"""An account's strategic stage and relationship level: what the
``evaluate_relationship`` hook answers, and the CRM field that overrides it.

The built-in method derives both from the evidence in the store (docs/method.md,
"Strategic stage and relationship level"); a plugin may replace it. Whoever computes
them, a value recorded in the CRM (``stage.crm_fields``, ``level.crm_fields``) wins, and
the evidence says both what the CRM says and what the evidence alone would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from crmlink.core.evaluation.vocab import LEVELS, STAGES, label, parse

if TYPE_CHECKING:
    from crmlink.core.analysis.view import AccountView


@dataclass(frozen=True)
class Relationship:
    """An account's strategic stage and relationship level, with the reasons.

    ``stage`` is one of :data:`~crmlink.core.evaluation.vocab.STAGES` and ``level`` one
    of :data:`~crmlink.core.evaluation.vocab.LEVELS`, lowest first, or ``None`` when the
    account has not reached the first. ``evidence`` holds the numbers behind each (by
    ``"stage"`` and ``"level"``), and ``because``/``next`` one clause each per rule:
    why the account is where it is, and what it lacks for the next one."""

    stage: str | None
    level: str | None
    evidence: dict[str, Any] = field(default_factory=dict)
    stage_because: tuple[str, ...] = ()
    stage_next: tuple[str, ...] = ()
    level_because: tuple[str, ...] = ()
    level_next: tuple[str, ...] = ()
    #: where each came from: ``computed`` (the hook) or ``crm`` (a CRM field)
    stage_source: str = "computed"
    level_source: str = "computed"

    @property
    def explanation(self) -> str:
        """"stage: community of interest, because ...; to reach deep strategic
        cooperation: ... Level: friendship, because ...; to reach ...", for reports."""
        return " ".join(_sentence(kind, value, order, because, following) for kind, value, order, because, following in (
            ("Stage", self.stage, STAGES, self.stage_because, self.stage_next),
            ("Level", self.level, LEVELS, self.level_because, self.level_next)))


def _sentence(kind: str, value: str | None, order: tuple[str, ...], because: tuple[str, ...],
              following: tuple[str, ...]) -> str:
    text = f"{kind}: {label(value) if value else 'none yet'}"
    if because:
        text += ", because " + "; ".join(because)
    at = order.index(value) + 1 if value else 0
    if at < len(order) and following:
        text += f"; to reach {label(order[at])}: " + "; ".join(following)
    return text + "."


def crm_value(account_extra: Mapping[str, Any], fields: list[str], order: tuple[str, ...]
              ) -> tuple[str | None, str | None, str | None]:
    """(value, field, error) of the first of ``fields`` the account's CRM record fills."""
    for name in fields:
        raw = account_extra.get(name)
        if raw is None or str(raw).strip() == "":
            continue
        try:
            return parse(raw, order), name, None
        except ValueError as exc:
            return None, name, f"CRM field {name} = {exc}; ignored"
    return None, None, None


def with_crm_override(view: AccountView, found: Relationship | None) -> Relationship | None:
    """``found`` (the hook's answer) with the stage and level the CRM records, if any."""
    extra = view.account.extra or {}
    result = found or Relationship(None, None)
    evidence = dict(result.evidence)
    changed = False
    for kind, order in (("stage", STAGES), ("level", LEVELS)):
        value, name, error = crm_value(extra, list(view.config[kind]["crm_fields"]), order)
        if error:
            evidence[f"{kind}_crm_error"] = error
            changed = True
        if value is None:
            continue
        computed = getattr(result, kind)
        evidence[f"{kind}_crm"] = {"field": name, "value": value, "computed": computed}
        reason = (f"the CRM field {name} says so (the evidence alone gives "
                  f"{label(computed) if computed else 'none yet'})",)
        changes: dict[str, Any] = {kind: value, f"{kind}_source": "crm", f"{kind}_because": reason}
        result = replace(result, **changes)
        changed = True
    if not changed:  # nothing recorded in the CRM: the hook's answer as it is
        return found
    return replace(result, evidence=evidence)
