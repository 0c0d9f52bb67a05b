"""Pipelines and stages (``/crm/v3/pipelines/{objectType}``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from .clock import iso_ms

# HubSpot's default "Sales Pipeline" (research 2.2): id, label, probability, closed?
DEFAULT_DEAL_STAGES: tuple[tuple[str, str, float, bool], ...] = (
    ("appointmentscheduled", "Appointment Scheduled", 0.2, False),
    ("qualifiedtobuy", "Qualified To Buy", 0.4, False),
    ("presentationscheduled", "Presentation Scheduled", 0.6, False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
    ("contractsent", "Contract Sent", 0.9, False),
    ("closedwon", "Closed Won", 1.0, True),
    ("closedlost", "Closed Lost", 0.0, True),
)
# HubSpot's default ticket "Support Pipeline" (id "0"): stage id, label, closed?
DEFAULT_TICKET_STAGES: tuple[tuple[str, str, bool], ...] = (
    ("1", "New", False),
    ("2", "Waiting on contact", False),
    ("3", "Waiting on us", False),
    ("4", "Closed", True),
)


@dataclass
class Stage:
    id: str
    label: str
    display_order: int
    probability: float | None
    is_closed: bool
    created_ms: int
    archived: bool = False
    #: ticket stages say OPEN or CLOSED in ``metadata.ticketState`` (no probability)
    ticket: bool = False

    def to_json(self) -> dict[str, Any]:
        metadata = {"isClosed": "true" if self.is_closed else "false"}
        if self.ticket:
            metadata = {"ticketState": "CLOSED" if self.is_closed else "OPEN"}
        elif self.probability is not None:
            metadata["probability"] = _prob(self.probability)
        return {
            "id": self.id, "label": self.label, "displayOrder": self.display_order,
            "metadata": metadata, "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.created_ms), "archived": self.archived,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }

    @property
    def is_won(self) -> bool:
        return self.is_closed and (self.probability or 0) >= 1.0


def _prob(value: float) -> str:
    return f"{value:.1f}" if round(value, 1) == value else str(value)


@dataclass
class Pipeline:
    id: str
    label: str
    display_order: int
    created_ms: int
    stages: list[Stage] = field(default_factory=list)
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        stages = sorted((s for s in self.stages if not s.archived),
                        key=lambda s: (s.display_order, s.id))
        return {
            "id": self.id, "label": self.label, "displayOrder": self.display_order,
            "stages": [s.to_json() for s in stages], "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.created_ms), "archived": self.archived,
        }

    def stage(self, stage_id: str) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)


class Pipelines:
    """Pipelines per object type. Custom pipeline and stage ids are numeric strings."""

    def __init__(self, created_ms: int) -> None:
        self._created_ms = created_ms
        self._by_type: dict[str, list[Pipeline]] = {}
        self._ids = itertools.count(3482933986)
        self._install_default()

    def _install_default(self) -> None:
        pipeline = Pipeline("default", "Sales Pipeline", 0, self._created_ms)
        for order, (sid, label, prob, closed) in enumerate(DEFAULT_DEAL_STAGES):
            pipeline.stages.append(Stage(sid, label, order, prob, closed, self._created_ms))
        self._by_type["deals"] = [pipeline]
        support = Pipeline("0", "Support Pipeline", 0, self._created_ms)
        for order, (sid, label, closed) in enumerate(DEFAULT_TICKET_STAGES):
            support.stages.append(Stage(sid, label, order, None, closed, self._created_ms, ticket=True))
        self._by_type["tickets"] = [support]

    def ordered(self, object_type: str) -> list[Pipeline]:
        items = self._by_type.get(object_type, [])
        return sorted(items, key=lambda p: (p.display_order, p.label))

    def get(self, object_type: str, pipeline_id: str) -> Pipeline | None:
        return next((p for p in self._by_type.get(object_type, []) if p.id == pipeline_id), None)

    def find_stage(self, object_type: str, stage_id: str) -> tuple[Pipeline, Stage] | None:
        for pipeline in self._by_type.get(object_type, []):
            stage = pipeline.stage(stage_id)
            if stage is not None:
                return pipeline, stage
        return None

    def all_stages(self, object_type: str) -> list[Stage]:
        return [s for p in self.ordered(object_type) for s in p.stages]

    def add_pipeline(self, object_type: str, label: str, *, pipeline_id: str | None = None,
                     display_order: int | None = None, created_ms: int | None = None) -> str:
        items = self._by_type.setdefault(object_type, [])
        pid = pipeline_id or str(next(self._ids))
        if any(p.id == pid for p in items):
            raise ValueError(f"pipeline {pid!r} already exists for {object_type}")
        order = len(items) if display_order is None else display_order
        items.append(Pipeline(pid, label, order, created_ms or self._created_ms))
        return pid

    def add_stage(self, object_type: str, pipeline_id: str, label: str, *,
                  probability: float | None = None, is_closed: bool = False,
                  stage_id: str | None = None, display_order: int | None = None,
                  created_ms: int | None = None) -> str:
        pipeline = self.get(object_type, pipeline_id)
        if pipeline is None:
            raise KeyError(f"no {object_type} pipeline {pipeline_id!r}")
        sid = stage_id or str(next(self._ids))
        if self.find_stage(object_type, sid) is not None:
            raise ValueError(f"stage {sid!r} already exists for {object_type}")
        if probability is None and object_type == "deals":
            probability = 0.0 if is_closed else 0.1
        order = len(pipeline.stages) if display_order is None else display_order
        stage = Stage(sid, label, order, probability, is_closed, created_ms or self._created_ms,
                      ticket=object_type == "tickets")
        pipeline.stages.append(stage)
        return sid
