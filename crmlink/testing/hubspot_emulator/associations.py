"""Associations v4: typed, labelled, bidirectional edges between objects."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from .schema import SINGULAR

# HubSpot-defined unlabeled association type ids (research 2.2, hubspot/crm/association_type.py).
DEFAULT_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279, ("companies", "contacts"): 280,
    ("deals", "contacts"): 3, ("contacts", "deals"): 4,
    ("deals", "companies"): 341, ("companies", "deals"): 342,
    ("contacts", "calls"): 193, ("calls", "contacts"): 194,
    ("contacts", "emails"): 197, ("emails", "contacts"): 198,
    ("contacts", "meetings"): 199, ("meetings", "contacts"): 200,
    ("contacts", "notes"): 201, ("notes", "contacts"): 202,
    ("contacts", "tasks"): 203, ("tasks", "contacts"): 204,
    ("companies", "calls"): 181, ("calls", "companies"): 182,
    ("companies", "emails"): 185, ("emails", "companies"): 186,
    ("companies", "meetings"): 187, ("meetings", "companies"): 188,
    ("companies", "notes"): 189, ("notes", "companies"): 190,
    ("companies", "tasks"): 191, ("tasks", "companies"): 192,
    ("deals", "calls"): 205, ("calls", "deals"): 206,
    ("deals", "emails"): 209, ("emails", "deals"): 210,
    ("deals", "meetings"): 211, ("meetings", "deals"): 212,
    ("deals", "notes"): 213, ("notes", "deals"): 214,
    ("deals", "tasks"): 215, ("tasks", "deals"): 216,
    ("tickets", "companies"): 26, ("companies", "tickets"): 25,
    ("tickets", "contacts"): 16, ("contacts", "tickets"): 15,
    ("tickets", "deals"): 28, ("deals", "tickets"): 27,
}
# HubSpot-defined "Primary" labels.
PRIMARY_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1, ("companies", "contacts"): 2,
    ("deals", "companies"): 5, ("companies", "deals"): 6,
    ("tickets", "companies"): 339, ("companies", "tickets"): 340,
}
HUBSPOT_DEFINED = "HUBSPOT_DEFINED"
USER_DEFINED = "USER_DEFINED"


@dataclass(frozen=True)
class AssocType:
    category: str
    type_id: int
    label: str | None

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "typeId": self.type_id, "label": self.label}


def v3_type_name(from_type: str, to_type: str, atype: AssocType) -> str:
    """The ``type`` string v3 list responses use for an association."""
    base = f"{SINGULAR[from_type]}_to_{SINGULAR[to_type]}"
    if atype.category != HUBSPOT_DEFINED:
        return re.sub(r"[^a-z0-9]+", "_", (atype.label or str(atype.type_id)).lower()).strip("_")
    if (from_type, to_type) in PRIMARY_TYPE_IDS and atype.label is None:
        return base + "_unlabeled"
    return base


class Associations:
    def __init__(self) -> None:
        self._edges: dict[tuple[str, int, str], dict[int, list[AssocType]]] = {}
        self._labels: dict[tuple[str, str, str], AssocType] = {}
        self._inverse: dict[AssocType, AssocType] = {}
        self._custom_ids = itertools.count(1001, 2)

    # --- label registry -------------------------------------------------------------------
    def define_label(self, from_type: str, to_type: str, label: str, *,
                     type_id: int | None = None, inverse_label: str | None = None) -> AssocType:
        """Create (or return) a USER_DEFINED label; the reverse direction gets its own id."""
        existing = self._labels.get((from_type, to_type, label))
        if existing is not None:
            return existing
        forward_id = type_id if type_id is not None else next(self._custom_ids)
        forward = AssocType(USER_DEFINED, forward_id, label)
        back_label = inverse_label or label
        inverse = self._labels.get((to_type, from_type, back_label))
        if inverse is None:
            inverse = AssocType(USER_DEFINED, forward_id + 1, back_label)
            self._labels[(to_type, from_type, back_label)] = inverse
        self._labels[(from_type, to_type, label)] = forward
        self._inverse[forward] = inverse
        self._inverse.setdefault(inverse, forward)
        return forward

    def labels(self, from_type: str, to_type: str) -> list[AssocType]:
        """All association types defined from ``from_type`` to ``to_type``."""
        out: list[AssocType] = []
        if (from_type, to_type) in DEFAULT_TYPE_IDS:
            out.append(AssocType(HUBSPOT_DEFINED, DEFAULT_TYPE_IDS[(from_type, to_type)], None))
        if (from_type, to_type) in PRIMARY_TYPE_IDS:
            out.append(AssocType(HUBSPOT_DEFINED, PRIMARY_TYPE_IDS[(from_type, to_type)],
                                 "Primary"))
        out.extend(t for (f, to, _), t in self._labels.items() if f == from_type and to == to_type)
        return out

    def resolve(self, from_type: str, to_type: str, label: str | None,
                type_id: int | None) -> tuple[AssocType, AssocType]:
        """(forward, inverse) association type for an associate() call."""
        pair, back = (from_type, to_type), (to_type, from_type)
        if pair not in DEFAULT_TYPE_IDS:
            raise ValueError(f"HubSpot has no association from {from_type} to {to_type}")
        if label is None and type_id is None:
            return (AssocType(HUBSPOT_DEFINED, DEFAULT_TYPE_IDS[pair], None),
                    AssocType(HUBSPOT_DEFINED, DEFAULT_TYPE_IDS[back], None))
        if pair in PRIMARY_TYPE_IDS and (label == "Primary" or type_id == PRIMARY_TYPE_IDS[pair]):
            return (AssocType(HUBSPOT_DEFINED, PRIMARY_TYPE_IDS[pair], "Primary"),
                    AssocType(HUBSPOT_DEFINED, PRIMARY_TYPE_IDS[back], "Primary"))
        if label is None:
            found = [t for t in self.labels(from_type, to_type) if t.type_id == type_id]
            if not found:
                raise ValueError(f"unknown association typeId {type_id} for {from_type}->{to_type}")
            label = found[0].label
            if found[0].category == HUBSPOT_DEFINED:
                return self.resolve(from_type, to_type, None, None)
        forward = self.define_label(from_type, to_type, label or "", type_id=type_id)
        return forward, self._inverse[forward]

    # --- edges ----------------------------------------------------------------------------
    def add(self, from_type: str, from_id: int, to_type: str, to_id: int,
            label: str | None = None, type_id: int | None = None) -> None:
        forward, inverse = self.resolve(from_type, to_type, label, type_id)
        self._link(from_type, from_id, to_type, to_id, forward)
        self._link(to_type, to_id, from_type, from_id, inverse)
        if forward.label is not None:  # a labelled edge always carries the unlabeled one too
            plain_f, plain_i = self.resolve(from_type, to_type, None, None)
            self._link(from_type, from_id, to_type, to_id, plain_f)
            self._link(to_type, to_id, from_type, from_id, plain_i)

    def _link(self, from_type: str, from_id: int, to_type: str, to_id: int,
              atype: AssocType) -> None:
        targets = self._edges.setdefault((from_type, from_id, to_type), {})
        types = targets.setdefault(to_id, [])
        if atype not in types:
            types.append(atype)
            types.sort(key=lambda t: (t.category != HUBSPOT_DEFINED, t.label is not None,
                                      t.type_id))

    def remove(self, from_type: str, from_id: int, to_type: str, to_id: int) -> None:
        self._edges.get((from_type, from_id, to_type), {}).pop(to_id, None)
        self._edges.get((to_type, to_id, from_type), {}).pop(from_id, None)

    def targets(self, from_type: str, from_id: int, to_type: str) -> list[tuple[int, list[AssocType]]]:
        """Associated ids (ascending) with their association types."""
        targets = self._edges.get((from_type, from_id, to_type), {})
        return sorted((k, list(v)) for k, v in targets.items() if v)
