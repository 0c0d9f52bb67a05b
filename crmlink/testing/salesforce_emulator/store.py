"""In-memory org data: schema, records, ids, the settable clock, soft/hard deletes."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from . import derive
from .errors import ApiError
from .schema import FieldDef, ObjectDef, build_objects, make_object, parse_field
from .values import BadValue, coerce, to_json, to_utc

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
SYSTEM_WRITABLE = {"CreatedDate", "LastModifiedDate", "SystemModstamp", "CreatedById",
                   "LastModifiedById"}


def id18(id15: str) -> str:
    """Append Salesforce's case-safe 3-character checksum to a 15-character id."""
    out = ""
    for i in range(3):
        chunk = id15[i * 5:(i + 1) * 5]
        bits = sum(1 << j for j, c in enumerate(chunk) if c.isupper())
        out += _SUFFIX[bits]
    return id15 + out


def base62(n: int, width: int) -> str:
    chars = ""
    while n:
        n, r = divmod(n, 62)
        chars = _B62[r] + chars
    return chars.rjust(width, "0")


class Clock:
    """The emulator's notion of 'now'. Frozen unless advanced (or ``tick`` > 0 per write)."""

    def __init__(self, start: datetime | None = None, tick: float = 0.0) -> None:
        self._now = to_utc(start or datetime.now(timezone.utc))
        self.tick = tick
        self._lock = threading.Lock()

    @property
    def now(self) -> datetime:
        return self._now

    @now.setter
    def now(self, value: datetime) -> None:
        self._now = to_utc(value)

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now = self._now + timedelta(seconds=seconds)
            return self._now

    def stamp(self) -> datetime:
        """Time for a write; moves the clock on by ``tick`` seconds afterwards."""
        with self._lock:
            value = self._now
            if self.tick:
                self._now = self._now + timedelta(seconds=self.tick)
            return value


class Store:
    """All records of the emulated org, keyed by object name then Id (insertion ordered)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.objects: dict[str, ObjectDef] = build_objects()
        self.data: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in self.objects}
        self.hidden: dict[tuple[str, str], set[str | None]] = {}
        #: fields under field-level security (made through the Metadata API): visible only
        #: to users with a permission set that grants them (see metadata.py)
        self.guarded: set[tuple[str, str]] = set()
        #: permission set name -> {(object, field): editable}, lowercase names
        self.grants: dict[str, dict[tuple[str, str], bool]] = {}
        self.counters: dict[str, int] = {}
        self.deleted_at: dict[str, datetime] = {}
        self.cascaded: dict[str, str] = {}
        self.default_user_id = ""
        self._seq = 3_000_000
        self._custom_prefix = 0

    # ---- schema -------------------------------------------------------------------------
    def obj(self, name: str) -> ObjectDef:
        found = self.objects.get(name)
        if found is None:
            found = next((o for n, o in self.objects.items() if n.lower() == name.lower()), None)
        if found is None:
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: {name}")
        return found

    def has_object(self, name: str) -> bool:
        return any(n.lower() == name.lower() for n in self.objects)

    def add_object(self, name: str, plural: str | None = None) -> ObjectDef:
        with self.lock:
            self._custom_prefix += 1
            prefix = "a0" + _B62[10 + self._custom_prefix % 52]
            specs = ["Name:string", "OwnerId:reference(User)>Owner!"]
            od = make_object(name, prefix, plural or name, specs, custom=name.endswith("__c"))
            self.objects[name] = od
            self.data[name] = {}
            return od

    def add_field(self, obj: str, name: str, ftype: str, **kw: Any) -> FieldDef:
        od = self.obj(obj)
        arg = "|".join(kw.pop("values", None) or kw.pop("reference_to", None) or [])
        spec = f"{name}:{ftype}" + (f"({arg})" if arg else "")
        if ftype == "reference":
            spec += ">" + kw.pop("relationship_name", name[:-3] + "__r" if name.endswith("__c")
                                 else name.removesuffix("Id"))
        fdef = parse_field(spec, custom=name.endswith("__c"))
        for key, value in kw.items():
            setattr(fdef, key, value)
        od.fields[name] = fdef
        return fdef

    def is_hidden(self, obj: str, field: str, username: str | None) -> bool:
        who = self.hidden.get((obj.lower(), field.lower()))
        if who is not None and (None in who or username in who):
            return True
        return self.field_access(obj, field, username) is None

    def field_access(self, obj: str, field: str, username: str | None) -> bool | None:
        """Field-level security: None (hidden), False (read only) or True (editable). Fields
        not under it are editable when their definition says so."""
        key = (obj.lower(), field.lower())
        if key not in self.guarded:
            return True
        user = next((u["Id"] for u in self.data.get("User", {}).values() if u.get("Username") == username), None)
        sets = {a["PermissionSetId"] for a in self.data.get("PermissionSetAssignment", {}).values()
                if a.get("AssigneeId") == user and not a.get("IsDeleted")}
        names = {p["Name"] for pid, p in self.data.get("PermissionSet", {}).items() if pid in sets}
        found = [self.grants.get(name, {}).get(key) for name in names]
        granted = [g for g in found if g is not None]
        return any(granted) if granted else None

    # ---- ids ----------------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        with self.lock:
            self._seq += 1
            return id18(prefix + "Dn0" + base62(self._seq * 7919, 9))

    def object_of_id(self, rid: str) -> str | None:
        for name, rows in self.data.items():
            if rid in rows:
                return name
        prefix = rid[:3]
        return next((n for n, o in self.objects.items() if o.key_prefix == prefix), None)

    def get(self, obj: str, rid: str | None) -> dict[str, Any] | None:
        if not rid:
            return None
        rows = self.data.get(self.obj(obj).name, {})
        if rid in rows or len(rid) != 15:
            return rows.get(rid)
        full = _full_id(rows, rid)
        return rows[full] if full is not None else None

    def find(self, rid: str | None) -> tuple[str, dict[str, Any]] | None:
        if not rid:
            return None
        name = self.object_of_id(rid)
        rec = self.get(name, rid) if name else None
        return (name, rec) if name and rec else None

    def next_number(self, obj: str) -> int:
        self.counters[obj] = self.counters.get(obj, 0) + 1
        return self.counters[obj]

    # ---- writes -------------------------------------------------------------------------
    def insert(self, obj: str, values: dict[str, Any], *, user_id: str | None = None,
               api: bool = False) -> str:
        od = self.obj(obj)
        with self.lock:
            clean = self.clean(od, values, api=api, creating=True)
            now = self.clock.stamp()
            user = user_id or self.default_user_id
            rid = clean.pop("Id", None) if not api else None
            rid = rid or self.new_id(od.key_prefix)
            rec: dict[str, Any] = {f: None for f in od.fields}
            rec.update({"Id": rid, "IsDeleted": False, "CreatedDate": now,
                        "LastModifiedDate": now, "SystemModstamp": now, "CreatedById": user,
                        "LastModifiedById": user})
            derive.defaults(self, od, rec)
            rec.update(clean)
            if api:
                derive.require(od, rec)
            self.data[od.name][rid] = rec
            derive.after_write(self, od, rec, None, set(clean))
            return rid

    def check_insert(self, obj: str, values: dict[str, Any]) -> None:
        """Validate a REST create without storing anything (raises ApiError)."""
        od = self.obj(obj)
        rec: dict[str, Any] = {f: None for f in od.fields}
        derive.defaults(self, od, rec, number=False)
        rec.update(self.clean(od, values, api=True, creating=True))
        derive.require(od, rec)

    def update(self, obj: str, rid: str, values: dict[str, Any], *,
               user_id: str | None = None, api: bool = False) -> dict[str, Any]:
        od = self.obj(obj)
        with self.lock:
            rec = self.get(od.name, rid)
            if rec is None or (api and rec["IsDeleted"]):
                raise ApiError(404, "ENTITY_IS_DELETED" if rec else "NOT_FOUND",
                               "entity is deleted" if rec else None)
            clean = self.clean(od, values, api=api, creating=False)
            before = dict(rec)
            now = self.clock.stamp()
            rec.update(clean)
            rec["LastModifiedById"] = clean.get("LastModifiedById", user_id or rec["LastModifiedById"])
            rec["LastModifiedDate"] = clean.get("LastModifiedDate", now)
            rec["SystemModstamp"] = clean.get("SystemModstamp", max(now, rec["SystemModstamp"]))
            derive.after_write(self, od, rec, before, set(clean))
            return rec

    def touch(self, obj: str, rid: str) -> None:
        """Bump SystemModstamp only (what background system processes do)."""
        with self.lock:
            rec = self.get(obj, rid)
            if rec is not None:
                rec["SystemModstamp"] = self.clock.stamp()

    def delete(self, obj: str, rid: str) -> None:
        """Soft delete, cascading to children the way Salesforce does (see derive.CASCADE)."""
        with self.lock:
            rec = self.get(obj, rid)
            if rec is None or rec["IsDeleted"]:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            self._soft_delete(self.obj(obj).name, rec, self.clock.stamp(), None)

    def _soft_delete(self, obj: str, rec: dict[str, Any], now: datetime, root: str | None) -> None:
        rec.update({"IsDeleted": True, "SystemModstamp": now, "LastModifiedDate": now})
        self.deleted_at[rec["Id"]] = now
        if root:
            self.cascaded[rec["Id"]] = root
        for child_obj, field in derive.CASCADE.get(obj, []):
            for child in self.rows(child_obj):
                if child.get(field) == rec["Id"] and not child["IsDeleted"]:
                    self._soft_delete(child_obj, child, now, root or rec["Id"])

    def undelete(self, obj: str, rid: str) -> None:
        """Restore a soft-deleted record and whatever its deletion cascaded to."""
        with self.lock:
            rec = self.get(obj, rid)
            if rec is None:
                raise ApiError(404, "NOT_FOUND")
            now = self.clock.stamp()
            restore = [rec["Id"]] + [k for k, v in self.cascaded.items() if v == rec["Id"]]
            for key in restore:
                found = self.find(key)
                if found:
                    found[1].update({"IsDeleted": False, "SystemModstamp": now,
                                     "LastModifiedDate": now})
                self.deleted_at.pop(key, None)
                self.cascaded.pop(key, None)

    def hard_delete(self, obj: str, rid: str) -> None:
        with self.lock:
            rec = self.get(obj, rid)
            if rec is not None:
                del self.data[self.obj(obj).name][rec["Id"]]
                self.deleted_at.pop(rec["Id"], None)

    def rows(self, obj: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            rows = list(self.data[self.obj(obj).name].values())
        return rows if include_deleted else [r for r in rows if not r["IsDeleted"]]

    def as_json(self, obj: str, rec: dict[str, Any]) -> dict[str, Any]:
        od = self.obj(obj)
        return {k: to_json(od.fields[k].type if k in od.fields else "", v) for k, v in rec.items()}

    # ---- validation ---------------------------------------------------------------------
    def clean(self, od: ObjectDef, values: dict[str, Any], *, api: bool,
               creating: bool) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for key, value in values.items():
            if key == "attributes":
                continue
            fdef = od.field(key)
            if fdef is None:
                raise ApiError(400, "INVALID_FIELD",
                               f"No such column '{key}' on sobject of type {od.name}", [key])
            if api and not (fdef.createable if creating else fdef.updateable):
                raise ApiError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                               f"Unable to create/update fields: {fdef.name}. Please check the "
                               "security settings of this field and verify that it is read/write "
                               "for your profile or permission set.", [fdef.name])
            if not api and fdef.name in ("Id", "IsDeleted") and not creating:
                continue
            try:
                clean[fdef.name] = coerce(fdef.type, value, fdef.name)
            except BadValue as exc:
                raise ApiError(400, "INVALID_TYPE_ON_FIELD_IN_RECORD", str(exc),
                               [fdef.name]) from exc
        return clean


def _full_id(rows: dict[str, dict[str, Any]], rid15: str) -> str | None:
    return next((k for k in rows if k[:15] == rid15), None)
