"""Signals beside the relationships that a review weighs: customer satisfaction (support
cases, complaints, escalations) and competitors on deals. Plugins that read them from a
CRM answer the ``review_signals`` hook; the review shows them per account, and a
negative satisfaction signal holds back an account that would otherwise be rising."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SIGNAL_KINDS = ("satisfaction", "competitor")


@dataclass(frozen=True)
class Signal:
    """One signal about one account over the review period.

    ``account`` is the account's global id (``source:remote_id``); ``kind`` is
    ``satisfaction`` or ``competitor``; ``value`` runs from -1 (bad for us: open
    escalations, a rising complaint trend, a new competitor winning) to 1 (good);
    ``message`` says it in one sentence and ``evidence`` holds the records behind it."""

    account: str
    kind: str
    value: float
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in SIGNAL_KINDS:
            raise ValueError(f"signal kind {self.kind!r} is not one of {', '.join(SIGNAL_KINDS)}")
        if not -1.0 <= self.value <= 1.0:
            raise ValueError(f"signal value {self.value} is outside -1..1")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "message": self.message, "evidence": self.evidence}
