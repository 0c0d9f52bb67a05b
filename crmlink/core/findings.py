"""Findings and scores: what the analysis hooks return, and how plugins declare scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmlink.core.typedjson import JsonObject, prop

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
#: the severities the reports put first ("what needs attention first", "deals at risk")
#: and the built-in push plugins give a CRM task's high priority
URGENT_SEVERITIES = frozenset({"critical", "high"})


@dataclass(frozen=True)
class Finding(JsonObject):
    """Something a sales leader should know or act on.

    ``code`` is stable (documented in docs/method.md), ``message`` is one sentence in
    plain words, ``evidence`` holds the numbers and record ids behind it, and ``action``
    is what the method suggests doing about it.
    """

    code: str = prop("Stable code of the rule that found it (UPPER_SNAKE_CASE).")
    severity: str = prop("How urgent it is.", enum=SEVERITIES)
    message: str = prop("What was found, in one plain sentence.")
    evidence: dict[str, Any] = prop("The numbers and record ids behind it (the rule decides the keys).",
                                    default_factory=dict)
    action: str = prop("What to do about it; left out when the rule suggests nothing.",
                       default="", omit_empty=True)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")


@dataclass(frozen=True)
class Score:
    """A named score on 0..100 for one account, with the parts that make it up.

    ``value`` is ``None`` when the account has no evidence for what the score measures
    (see ``AccountView.coverage``): reports show it as "–" and the audit JSON as
    ``null``, never as 0. Say why in ``evidence`` (the built-in method uses the key
    ``no_evidence``)."""

    name: str
    value: float | None
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.value is not None and not 0 <= self.value <= 100:
            raise ValueError(f"score {self.name!r} = {self.value} is outside 0..100")


@dataclass(frozen=True)
class ScoreDefinition:
    """What a plugin says about one of its scores (the ``score_definitions`` hook).

    ``label`` is the column heading in reports (the name when empty). ``headline`` is
    the score's place among the scores reports show (0 first); ``None`` keeps it in the
    JSON only. One score may be ``overall``: the account's health as a whole, which
    orders the accounts, places them in the health bands and is what the departure
    simulation measures.
    """

    name: str
    label: str = ""
    description: str = ""
    headline: int | None = None
    overall: bool = False

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)
