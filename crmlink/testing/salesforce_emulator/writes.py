"""How the org refuses API writes record by record, for rehearsing ``crmlink push``:
field-level security (a hidden field is ``INVALID_FIELD``, a read-only one
``INVALID_FIELD_FOR_INSERT_UPDATE``), validation rules (``FIELD_CUSTOM_VALIDATION_EXCEPTION``)
and locked records (``UNABLE_TO_LOCK_ROW``). Deleted records (``ENTITY_IS_DELETED``) are
refused by the collections handler itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ApiError

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator


@dataclass
class ValidationRule:
    obj: str
    name: str
    fails: Callable[[dict[str, Any]], bool]
    message: str
    field: str | None = None


@dataclass
class Rules:
    validations: list[ValidationRule] = field(default_factory=list)
    #: record id -> API writes still refused (None: every one)
    locks: dict[str, int | None] = field(default_factory=dict)


def check_update(emu: SalesforceEmulator, username: str | None, obj: str, record: dict[str, Any],
                 values: dict[str, Any]) -> None:
    """Raise the ApiError Salesforce gives for this update of ``record``, if any."""
    store = emu.store
    od = store.obj(obj)
    for key in values:
        fdef = od.field(key)
        if fdef is None:
            continue
        access = store.field_access(od.name, fdef.name, username)
        if access is None:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {od.name}", [key])
        if access is False:
            raise ApiError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                           f"Unable to create/update fields: {fdef.name}. Please check the security settings "
                           "of this field and verify that it is read/write for your profile or permission set.",
                           [fdef.name])
    _check_lock(emu, record["Id"])
    after = dict(record)
    for key, value in values.items():
        fdef = od.field(key)
        after[fdef.name if fdef is not None else key] = value
    for rule in emu.rules.validations:
        if rule.obj == od.name and rule.fails(after):
            raise ApiError(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message,
                           [rule.field] if rule.field else [])


def _check_lock(emu: SalesforceEmulator, record_id: str) -> None:
    locks = emu.rules.locks
    if record_id not in locks:
        return
    left = locks[record_id]
    if left is not None:
        if left <= 1:
            del locks[record_id]
        else:
            locks[record_id] = left - 1
    raise ApiError(400, "UNABLE_TO_LOCK_ROW",
                   f"unable to obtain exclusive access to this record or 1 records: {record_id}", [])
