"""Ground-truth state: objects, property schema, pipelines, associations and owners."""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .associations import Associations
from .clock import Clock, iso_ms, to_ms
from .owners import Owners
from .pipelines import Pipeline, Pipelines
from .schema import (
    ENGAGEMENTS,
    FIELD_TYPES,
    OBJECT_TYPE_IDS,
    PropertyDef,
    created_property,
    default_schema,
    modified_property,
    normalize_type,
    normalize_value,
)

#: object type -> (pipeline property, stage property)
_PIPELINE_PROPERTIES = {"deals": ("pipeline", "dealstage"), "tickets": ("hs_pipeline", "hs_pipeline_stage")}


@dataclass
class CrmObject:
    id: int
    object_type: str
    properties: dict[str, str | None]
    created_ms: int
    updated_ms: int
    archived: bool = False
    archived_ms: int | None = None
    history: dict[str, list[tuple[str | None, int]]] = field(default_factory=dict)

    def to_json(self, names: Iterable[str] | None = None,
                with_history: Iterable[str] = ()) -> dict[str, Any]:
        """The API shape; ``names=None`` means every stored property."""
        if names is None:
            props = dict(self.properties)
        else:
            props = {n: self.properties.get(n) for n in names}
        body: dict[str, Any] = {
            "id": str(self.id), "properties": props,
            "createdAt": iso_ms(self.created_ms), "updatedAt": iso_ms(self.updated_ms),
            "archived": self.archived,
        }
        if self.archived_ms is not None and self.archived:
            body["archivedAt"] = iso_ms(self.archived_ms)
        history = {n: self._history_json(n) for n in with_history}
        if history:
            body["propertiesWithHistory"] = history
        return body

    def _history_json(self, name: str) -> list[dict[str, Any]]:
        return [{"value": value or "", "timestamp": iso_ms(ms), "sourceType": "API",
                 "sourceId": "emulator"} for value, ms in reversed(self.history.get(name, []))]


def require_type(name: str) -> str:
    object_type = normalize_type(name)
    if object_type is None:
        raise ValueError(f"unknown object type {name!r}; use one of {', '.join(OBJECT_TYPE_IDS)}")
    return object_type


class Store:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.created_ms = clock.now_ms()
        self.schema: dict[str, dict[str, PropertyDef]] = default_schema()
        self.pipelines = Pipelines(clock.now_ms())
        self.associations = Associations()
        self.owners = Owners()
        #: property groups made through the API, by object type and name (write_api.py)
        self.groups: dict[str, dict[str, dict[str, Any]]] = {}
        #: (object type, id) -> the message a batch update of it is refused with
        self.refused: dict[tuple[str, str], str] = {}
        self._objects: dict[str, dict[int, CrmObject]] = {t: {} for t in OBJECT_TYPE_IDS}
        self._order: dict[str, list[int]] = {t: [] for t in OBJECT_TYPE_IDS}
        self._ids = itertools.count(1001)
        for stage in self.pipelines.all_stages("deals"):
            self._add_stage_properties(stage.id, stage.label)

    # --- schema ---------------------------------------------------------------------------
    def add_property(self, object_type: str, name: str, type: str, options: list[str] | None,
                     *, label: str | None = None, field_type: str | None = None,
                     group_name: str | None = None) -> None:
        object_type = require_type(object_type)
        if type not in FIELD_TYPES:
            raise ValueError(f"property type must be one of {', '.join(FIELD_TYPES)}")
        if name in self.schema[object_type]:
            raise ValueError(f"{object_type} already has a property named {name!r}")
        ft = field_type or FIELD_TYPES[type]
        self.schema[object_type][name] = PropertyDef(
            name, type, ft, label or name.replace("_", " ").title(), list(options or []),
            hubspot_defined=False, group_name=group_name or f"{object_type[:-1]}information")

    def property_defs(self, object_type: str) -> list[PropertyDef]:
        defs = list(self.schema[object_type].values())
        names = _PIPELINE_PROPERTIES.get(object_type)
        if names is None:
            return defs
        pipeline_prop, stage_prop = names
        out = []
        for d in defs:  # the pipeline and stage options follow the pipelines
            if d.name == stage_prop:
                stages = self.pipelines.all_stages(object_type)
                d = PropertyDef(d.name, d.type, d.field_type, d.label, [s.id for s in stages],
                                {s.id: s.label for s in stages}, group_name=d.group_name)
            elif d.name == pipeline_prop:
                pipes = self.pipelines.ordered(object_type)
                d = PropertyDef(d.name, d.type, d.field_type, d.label, [p.id for p in pipes],
                                {p.id: p.label for p in pipes}, group_name=d.group_name)
            out.append(d)
        return out

    def _add_stage_properties(self, stage_id: str, label: str) -> None:
        for prefix, verb in (("hs_date_entered_", "entered"), ("hs_date_exited_", "exited")):
            self.schema["deals"][prefix + stage_id] = PropertyDef(
                prefix + stage_id, "datetime", "date", f"Date {verb} \"{label}\"",
                group_name="dealstages", read_only=True)

    def add_pipeline(self, object_type: str, label: str, stages: Iterable[Any] = (),
                     **kwargs: Any) -> str:
        object_type = require_type(object_type)
        pid = self.pipelines.add_pipeline(object_type, label, created_ms=self.clock.now_ms(),
                                          **kwargs)
        for stage in stages:
            spec = {"label": stage} if isinstance(stage, str) else dict(stage)
            self.add_stage(object_type, pid, spec.pop("label"), **spec)
        return pid

    def add_stage(self, object_type: str, pipeline_id: str, label: str, **kwargs: Any) -> str:
        object_type = require_type(object_type)
        sid = self.pipelines.add_stage(object_type, pipeline_id, label,
                                       created_ms=self.clock.now_ms(), **kwargs)
        if object_type == "deals":
            self._add_stage_properties(sid, label)
        return sid

    # --- objects --------------------------------------------------------------------------
    def add(self, object_type: str, properties: Mapping[str, Any], at_ms: int | None = None) -> str:
        object_type = require_type(object_type)
        now = self.clock.now_ms() if at_ms is None else at_ms
        values = self._normalize(object_type, properties)
        created_prop, modified_prop = created_property(object_type), modified_property(object_type)
        created = to_ms(values[created_prop]) if values.get(created_prop) else now
        modified = to_ms(values[modified_prop]) if values.get(modified_prop) else max(now, created)
        obj = CrmObject(next(self._ids), object_type, {}, created, modified)
        values[created_prop] = iso_ms(created)
        values[modified_prop] = iso_ms(modified)
        values["hs_object_id"] = str(obj.id)
        if object_type in ENGAGEMENTS and not values.get("hs_timestamp"):
            values["hs_timestamp"] = values.get("hs_meeting_start_time") or iso_ms(created)
        if object_type == "deals":
            self._deal_rules(obj, values, created)
        elif object_type == "tickets":
            self._ticket_rules(obj, values, created)
        self._apply(obj, values, created)
        self._objects[object_type][obj.id] = obj
        self._order[object_type].append(obj.id)
        return str(obj.id)

    def update(self, object_type: str, object_id: str, properties: Mapping[str, Any],
               at_ms: int | None = None) -> None:
        object_type = require_type(object_type)
        obj = self._require(object_type, object_id)
        now = self.clock.now_ms() if at_ms is None else at_ms
        values = self._normalize(object_type, properties)
        modified_prop = modified_property(object_type)
        modified = to_ms(values[modified_prop]) if values.get(modified_prop) else now
        values[modified_prop] = iso_ms(modified)
        if object_type == "deals":
            self._deal_rules(obj, values, now)
        elif object_type == "tickets":
            self._ticket_rules(obj, values, now)
        self._apply(obj, values, now)
        obj.updated_ms = modified

    def archive(self, object_type: str, object_id: str, at_ms: int | None = None) -> None:
        obj = self._require(require_type(object_type), object_id)
        now = self.clock.now_ms() if at_ms is None else at_ms
        obj.archived, obj.archived_ms, obj.updated_ms = True, now, now

    def restore(self, object_type: str, object_id: str) -> None:
        obj = self._require(require_type(object_type), object_id)
        obj.archived, obj.archived_ms = False, None
        obj.updated_ms = self.clock.now_ms()

    def get(self, object_type: str, object_id: str) -> CrmObject | None:
        if not str(object_id).isdigit():
            return None
        return self._objects[object_type].get(int(object_id))

    def find_by(self, object_type: str, prop: str, value: str) -> CrmObject | None:
        needle = value.lower()
        return next((o for o in self.iter(object_type, None)
                     if (o.properties.get(prop) or "").lower() == needle), None)

    def iter(self, object_type: str, archived: bool | None) -> Iterator[CrmObject]:
        table = self._objects[object_type]
        for oid in self._order[object_type]:
            obj = table[oid]
            if archived is None or obj.archived == archived:
                yield obj

    def page(self, object_type: str, after: int, limit: int,
             archived: bool) -> tuple[list[CrmObject], int | None]:
        """Objects with id >= after, ascending; next cursor is the following id or None."""
        order, table = self._order[object_type], self._objects[object_type]
        out: list[CrmObject] = []
        for oid in itertools.islice(order, bisect.bisect_left(order, after), None):
            obj = table[oid]
            if obj.archived != archived:
                continue
            if len(out) == limit:
                return out, obj.id
            out.append(obj)
        return out, None

    def _require(self, object_type: str, object_id: str) -> CrmObject:
        obj = self.get(object_type, object_id)
        if obj is None:
            raise KeyError(f"no {object_type} with id {object_id}")
        return obj

    def _normalize(self, object_type: str, properties: Mapping[str, Any]) -> dict[str, str | None]:
        schema = self.schema[object_type]
        out: dict[str, str | None] = {}
        for name, value in properties.items():
            prop = schema.get(name)
            if prop is None:
                raise ValueError(f"Property {name!r} does not exist on {object_type}; "
                                 f"add it first with add_property()")
            out[name] = normalize_value(prop, value)
        return out

    def _apply(self, obj: CrmObject, values: dict[str, str | None], now: int) -> None:
        for name, value in values.items():
            if name in obj.properties and obj.properties[name] == value:
                continue
            obj.properties[name] = value
            obj.history.setdefault(name, []).append((value, now))

    def _pipeline(self, kind: str, field: str, default: str, values: dict[str, str | None],
                  current: dict[str, str | None]) -> tuple[str, Pipeline]:
        """The pipeline an object of ``kind`` is in once ``values`` apply (``field`` names
        it; ``default`` when neither says), written into ``values``; a ValueError for an
        unknown one, as HubSpot refuses it."""
        pipeline_id = values.get(field) or current.get(field) or default
        values.setdefault(field, pipeline_id)
        pipeline = self.pipelines.get(kind, pipeline_id)
        if pipeline is None:
            raise ValueError(f"{pipeline_id!r} is not a {kind} pipeline")
        return pipeline_id, pipeline

    def _deal_rules(self, obj: CrmObject, values: dict[str, str | None], now: int) -> None:
        """Default pipeline, stage validation, closed flags and hs_date_entered_<stage>."""
        current = obj.properties
        pipeline_id, pipeline = self._pipeline("deals", "pipeline", "default", values, current)
        stage_id = values.get("dealstage", current.get("dealstage"))
        if not stage_id:
            return
        stage = pipeline.stage(stage_id)
        if stage is None:
            raise ValueError(f"{stage_id!r} is not a valid stage of pipeline {pipeline_id!r}")
        old = current.get("dealstage")
        if old != stage_id:
            values[f"hs_date_entered_{stage_id}"] = iso_ms(now)
            if old:
                values[f"hs_date_exited_{old}"] = iso_ms(now)
        values["hs_is_closed"] = "true" if stage.is_closed else "false"
        values["hs_is_closed_won"] = "true" if stage.is_won else "false"
        if stage.probability is not None:
            values["hs_deal_stage_probability"] = normalize_value(
                self.schema["deals"]["hs_deal_stage_probability"], stage.probability)

    def _ticket_rules(self, obj: CrmObject, values: dict[str, str | None], now: int) -> None:
        """Default pipeline and first stage, stage validation, and ``closed_date``: set when
        the ticket enters a CLOSED stage (unless given), cleared when it is reopened."""
        current = obj.properties
        pipeline_id, pipeline = self._pipeline("tickets", "hs_pipeline", "0", values, current)
        stage_id = values.get("hs_pipeline_stage") or current.get("hs_pipeline_stage")
        if not stage_id:
            stage_id = values["hs_pipeline_stage"] = pipeline.to_json()["stages"][0]["id"]
        stage = pipeline.stage(stage_id)
        if stage is None:
            raise ValueError(f"{stage_id!r} is not a valid stage of ticket pipeline {pipeline_id!r}")
        was = self.pipelines.find_stage("tickets", current.get("hs_pipeline_stage") or "")
        was_closed = was is not None and was[1].is_closed
        if stage.is_closed and not was_closed and not values.get("closed_date"):
            values["closed_date"] = iso_ms(now)
        elif not stage.is_closed and was_closed:
            values["closed_date"] = ""
            values["hs_ticket_reopened_at"] = iso_ms(now)
