"""describeGlobal, describeSObject and the version resource list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .schema import ObjectDef

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

READ_ONLY_OBJECTS = {"OpportunityHistory", "OpportunityStage", "Profile"}


def resources(version: str) -> dict[str, str]:
    base = f"/services/data/v{version}"
    names = ["sobjects", "query", "queryAll", "limits", "composite", "jobs"]
    return {name: f"{base}/{name}" for name in names}


def _urls(od: ObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{od.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def summary(od: ObjectDef, version: str) -> dict[str, Any]:
    """One entry of describeGlobal (also ``objectDescribe`` of ``sobjects/X``)."""
    writable = od.name not in READ_ONLY_OBJECTS
    label = od.name[:-3].replace("_", " ") if od.custom else od.name
    return {
        "activateable": False, "createable": writable, "custom": od.custom,
        "customSetting": False, "deletable": writable, "deprecatedAndHidden": False,
        "feedEnabled": False, "hasSubtypes": False, "isSubtype": False,
        "keyPrefix": od.key_prefix, "label": label, "labelPlural": od.label_plural,
        "layoutable": writable, "mergeable": od.name in ("Account", "Contact", "Lead"),
        "mruEnabled": writable, "name": od.name, "queryable": True, "replicateable": True,
        "retrieveable": True, "searchable": writable, "triggerable": writable,
        "undeletable": writable, "updateable": writable, "urls": _urls(od, version),
    }


def global_describe(emu: SalesforceEmulator, version: str) -> dict[str, Any]:
    return {"encoding": "UTF-8", "maxBatchSize": 200,
            "sobjects": [summary(od, version) for od in emu.store.objects.values()]}


def child_relationships(emu: SalesforceEmulator, od: ObjectDef) -> list[dict[str, Any]]:
    out = []
    for child in emu.store.objects.values():
        for fdef in child.fields.values():
            if od.name in fdef.reference_to:
                rel = None
                if fdef.name == f"{od.name}Id" or fdef.name in ("WhoId", "WhatId"):
                    rel = child.label_plural.replace(" ", "")
                out.append({"cascadeDelete": False, "childSObject": child.name,
                            "deprecatedAndHidden": False, "field": fdef.name,
                            "relationshipName": rel, "restrictedDelete": False})
    return out


def describe_object(emu: SalesforceEmulator, od: ObjectDef, version: str,
                    username: str | None) -> dict[str, Any]:
    fields = []
    for f in od.fields.values():
        if emu.store.is_hidden(od.name, f.name, username):
            continue
        entry = f.describe()
        if not emu.store.field_access(od.name, f.name, username):  # read only through a permission set
            entry.update(createable=False, updateable=False)
        fields.append(entry)
    out = summary(od, version)
    out.update({
        "fields": fields, "childRelationships": child_relationships(emu, od),
        "recordTypeInfos": [{"active": True, "available": True, "defaultRecordTypeMapping": True,
                             "developerName": "Master", "master": True, "name": "Master",
                             "recordTypeId": "012000000000000AAA"}],
        "namedLayoutInfos": [], "networkScopeFieldName": None, "sobjectDescribeOption": "FULL",
        "supportedScopes": [{"label": "All " + od.label_plural.lower(), "name": "everything"}],
    })
    out["urls"] = dict(out["urls"], layouts=f"{out['urls']['sobject']}/describe/layouts")
    return out
