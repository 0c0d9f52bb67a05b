"""What changed between two audits, as data: the JSON of ``crmlink diff`` and the
"What changed" section of every report (built by :mod:`.diff`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class FindingChange:
    """A finding new, resolved or persisting between the two audits."""

    code: str
    severity: str
    remote_id: str | None     # the account's remote id; None for a portfolio finding
    source: str | None
    name: str | None
    opportunity: str | None = None   # the deal's remote id, for a deal's finding
    since: str | None = None         # persisting: the first saved audit of its unbroken run
    since_as_of: date | None = None
    severity_before: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"remote_id": self.remote_id, "source": self.source, "name": self.name,
                                "code": self.code, "severity": self.severity, "opportunity": self.opportunity}
        if self.since is not None:
            data |= {"since": self.since, "since_as_of": self.since_as_of.isoformat() if self.since_as_of else None,
                     "severity_before": self.severity_before}
        return data


@dataclass(frozen=True)
class PairChange:
    """How one relationship (one of our people and one of theirs) changed."""

    user: str
    user_name: str
    contact: str
    contact_name: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before

    def text(self) -> str:
        return f"{self.user_name} – {self.contact_name} {self.before:.0f} → {self.after:.0f}"

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "user_name": self.user_name, "contact": self.contact,
                "contact_name": self.contact_name, "before": round(self.before, 1), "after": round(self.after, 1)}


@dataclass
class Move:
    """One account's field that moved: a score by ``evaluation.move_points`` or more, or
    tier, stage or level by a step or more."""

    remote_id: str
    source: str
    name: str | None
    field: str
    before: float | str | None
    after: float | str | None
    #: points for a score (after - before); steps up (+) or down (-) for tier, stage, level
    change: float
    #: how big the move is, in points (a step counts evaluation.step_points)
    size: float
    account: str = ""   # global id
    reasons: list[PairChange] = dataclasses.field(default_factory=list)

    @property
    def reason(self) -> str:
        """"cooled: A – B 62 → 18; grew: C – D 10 → 45", or "" when unknown."""
        cooled = [p.text() for p in self.reasons if p.change < 0]
        grew = [p.text() for p in self.reasons if p.change > 0]
        parts = ([f"cooled: {', '.join(cooled)}"] if cooled else []) + ([f"grew: {', '.join(grew)}"] if grew else [])
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"remote_id": self.remote_id, "source": self.source, "name": self.name, "field": self.field,
                "before": self.before, "after": self.after, "change": round(self.change, 1),
                "size": round(self.size, 1), "reason": self.reason,
                "relationships": [p.to_json() for p in self.reasons]}


@dataclass
class Changes:
    """What changed from the audit ``since`` to the audit ``until``."""

    since: str
    since_as_of: date
    until: str
    until_as_of: date
    new: list[FindingChange] = dataclasses.field(default_factory=list)
    resolved: list[FindingChange] = dataclasses.field(default_factory=list)
    persisting: list[FindingChange] = dataclasses.field(default_factory=list)
    moved: list[Move] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"since": {"label": self.since, "as_of": self.since_as_of.isoformat()},
                "until": {"label": self.until, "as_of": self.until_as_of.isoformat()},
                "new": [f.to_json() for f in self.new], "resolved": [f.to_json() for f in self.resolved],
                "persisting": [f.to_json() for f in self.persisting], "moved": [m.to_json() for m in self.moved]}
