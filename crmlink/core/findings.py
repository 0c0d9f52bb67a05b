"""Findings and scores: what the analysis hooks return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Finding:
    """Something a sales leader should know or act on.

    ``code`` is stable (documented in docs/method.md), ``message`` is one sentence in
    plain words, ``evidence`` holds the numbers and record ids behind it, and ``action``
    is what the method suggests doing about it.
    """

    code: str
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    action: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")

    def to_json(self) -> dict[str, Any]:
        data = {"code": self.code, "severity": self.severity, "message": self.message,
                "evidence": self.evidence}
        if self.action:
            data["action"] = self.action
        return data


@dataclass(frozen=True)
class Score:
    """A named score on 0..100 for one account, with the parts that make it up."""

    name: str
    value: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.value <= 100:
            raise ValueError(f"score {self.name!r} = {self.value} is outside 0..100")
