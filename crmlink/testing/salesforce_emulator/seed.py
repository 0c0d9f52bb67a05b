"""Loading Salesforce sObject Tree JSON files (``sf data import tree`` format) and data plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .values import infer_type

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

PLAN_NAMES = ("data-plan.json", "sample-data-plan.json", "Plan2.json")


class SeedError(ValueError):
    """Bad seed file: unknown object, unresolved @Ref, malformed tree."""


def read_json(path: Path) -> Any:
    # utf-8-sig: some real exports start with a byte-order mark
    return json.loads(path.read_text(encoding="utf-8-sig"))


def load_tree(emu: SalesforceEmulator, path: Path, refs: dict[str, str]) -> list[str]:
    """Insert every record of one tree file; returns the new Ids in file order."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise SeedError(f"{path}: not an sObject Tree file (no top-level 'records' list)")
    ids: list[str] = []
    for rec in data["records"]:
        ids.extend(_insert_tree(emu, rec, refs, parent=None))
    return ids


def _insert_tree(emu: SalesforceEmulator, rec: dict[str, Any], refs: dict[str, str],
                 parent: tuple[str, str] | None) -> list[str]:
    attrs = rec.get("attributes") or {}
    obj = attrs.get("type")
    if not obj:
        raise SeedError(f"record without attributes.type: {rec}")
    _ensure_object(emu, obj)
    values: dict[str, Any] = {}
    children: list[dict[str, Any]] = []
    for key, value in rec.items():
        if key == "attributes":
            continue
        if isinstance(value, dict) and isinstance(value.get("records"), list):
            children.extend(value["records"])
            continue
        values[key] = _resolve(value, refs)
        _ensure_field(emu, obj, key, values[key])
    if parent is not None:
        link = _parent_field(emu, obj, parent[0])
        if link:
            values.setdefault(link, parent[1])
    rid = emu.insert(obj, values)
    if attrs.get("referenceId"):
        refs[attrs["referenceId"]] = rid
    ids = [rid]
    for child in children:
        ids.extend(_insert_tree(emu, child, refs, parent=(emu.store.obj(obj).name, rid)))
    return ids


def _resolve(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("@"):
        if value[1:] not in refs:
            raise SeedError(f"unresolved reference {value} (load the file that defines it first)")
        return refs[value[1:]]
    return value


def _ensure_object(emu: SalesforceEmulator, obj: str) -> None:
    if not emu.store.has_object(obj):
        if not obj.endswith("__c"):
            raise SeedError(f"unknown standard object {obj}")
        emu.add_object(obj)


def _ensure_field(emu: SalesforceEmulator, obj: str, name: str, value: Any) -> None:
    """Unknown fields in seed data become fields of an inferred type (mostly custom ones)."""
    od = emu.store.obj(obj)
    if od.field(name) is None:
        ftype = infer_type(value)
        if isinstance(value, str) and len(value) in (15, 18) and emu.store.find(value):
            ftype = "reference"
        emu.add_field(od.name, name, ftype)


def _parent_field(emu: SalesforceEmulator, obj: str, parent_obj: str) -> str | None:
    od = emu.store.obj(obj)
    fields = [f for f in od.fields.values() if parent_obj in f.reference_to and f.createable]
    preferred = [f for f in fields if f.name == f"{parent_obj}Id"]
    chosen = preferred or fields
    return chosen[0].name if chosen else None


def find_plan(path: Path) -> Path | None:
    if path.is_file():
        return path
    for name in PLAN_NAMES:
        if (path / name).is_file():
            return path / name
    found = sorted(path.glob("*plan*.json"))
    return found[0] if found else None


def load_plan(emu: SalesforceEmulator, path: Path, refs: dict[str, str]) -> dict[str, int]:
    """Follow a data plan (or load every tree file in a directory); missing files are skipped."""
    plan_path = find_plan(path)
    counts: dict[str, int] = {}
    if plan_path is None:
        files = [p for p in sorted(path.glob("*.json"))]
    else:
        steps = read_json(plan_path)
        files = [plan_path.parent / f for step in steps for f in step.get("files", [])]
    for file in files:
        if not file.is_file():
            counts.setdefault("_missing_files", 0)
            counts["_missing_files"] += 1
            continue
        data = read_json(file)
        if not (isinstance(data, dict) and "records" in data):
            continue
        for rid in load_tree(emu, file, refs):
            name = emu.store.object_of_id(rid) or "?"
            counts[name] = counts.get(name, 0) + 1
    return counts
