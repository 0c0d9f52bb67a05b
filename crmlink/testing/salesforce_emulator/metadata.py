"""The Metadata API calls ``crmlink push --setup`` makes (SOAP at ``/services/Soap/m/NN.N``:
readMetadata, createMetadata, upsertMetadata of CustomField and PermissionSet), the
PermissionSet and PermissionSetAssignment objects, and field-level security: a field
created through the Metadata API is hidden from every user until a permission set that
grants it is assigned to them, as in an org where no profile grants the new field.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from .errors import Response
from .schema import make_object

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator

NS = "http://soap.sforce.com/2006/04/metadata"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
#: Metadata field types -> the describe types the emulator stores.
FIELD_TYPES = {"Number": "double", "Percent": "percent", "Text": "string", "Date": "date",
               "Checkbox": "boolean", "TextArea": "textarea", "DateTime": "datetime",
               "Currency": "currency", "LongTextArea": "textarea"}
MAX_COMPONENTS = 10


def bootstrap(emu: SalesforceEmulator) -> None:
    """Add the permission set objects to a fresh org."""
    store = emu.store
    store.objects["PermissionSet"] = make_object("PermissionSet", "0PS", "Permission Sets", [
        "Name:string!", "Label:string!", "Description:string", "IsOwnedByProfile:boolean~"])
    store.objects["PermissionSetAssignment"] = make_object("PermissionSetAssignment", "0Pa",
                                                           "Permission Set Assignments", [
        "AssigneeId:reference(User)>Assignee!", "PermissionSetId:reference(PermissionSet)>PermissionSet!"])
    for name in ("PermissionSet", "PermissionSetAssignment"):
        store.data[name] = {}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse(element: ET.Element) -> Any:
    """An XML element as a dict (repeated children become lists) or its text."""
    children = list(element)
    if not children:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in children:
        key, value = _local(child.tag), _parse(child)
        if key in out:
            out[key] = out[key] if isinstance(out[key], list) else [out[key]]
            out[key].append(value)
        else:
            out[key] = value
    return out


def _listed(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def soap(emu: SalesforceEmulator, body: bytes) -> Response:
    """One Metadata API SOAP call."""
    from .auth import soap_fault

    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return soap_fault("INVALID_REQUEST", "Unable to parse the SOAP request body")
    session = next((el.text for el in root.iter() if _local(el.tag) == "sessionId"), "") or ""
    username = emu.sessions.get(session.strip())
    if username is None:
        return soap_fault("sf:INVALID_SESSION_ID", "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: "
                          "Illegal Session. Session not found, missing session hash")
    if not emu.consume_api_call():
        return soap_fault("sf:REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    body_el = next(el for el in root if _local(el.tag) == "Body")
    call = list(body_el)[0]
    operation = _local(call.tag)
    handler = {"readMetadata": _read, "createMetadata": _create,
               "upsertMetadata": _upsert}.get(operation)
    if handler is None:
        return soap_fault("sf:UNKNOWN_EXCEPTION", f"the emulator does not implement {operation}")
    items = [child for child in call if _local(child.tag) == "metadata"]
    if len(items) > MAX_COMPONENTS:
        return soap_fault("sf:LIMIT_EXCEEDED", f"LIMIT_EXCEEDED: {operation} takes at most 10 components")
    with emu.store.lock:
        results = handler(emu, call, items)
    return Response(200, _envelope(f"{operation}Response", results).encode(), "text/xml;charset=UTF-8")


def _kind(element: ET.Element) -> str:
    value = element.get(f"{{{XSI}}}type") or ""
    return value.rsplit(":", 1)[-1]


def _envelope(response: str, inner: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            f'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="{NS}" '
            f'xmlns:xsi="{XSI}"><soapenv:Body><{response}>{inner}</{response}>'
            f'</soapenv:Body></soapenv:Envelope>')


def _xml(value: Any, tag: str) -> str:
    if isinstance(value, list):
        return "".join(_xml(v, tag) for v in value)
    if isinstance(value, dict):
        return f"<{tag}>" + "".join(_xml(v, k) for k, v in value.items()) + f"</{tag}>"
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _result(full_name: str, ok: bool, code: str = "", message: str = "", created: bool | None = None) -> str:
    parts = [] if created is None else [f"<created>{str(created).lower()}</created>"]
    if not ok:
        parts.append(f"<errors><message>{escape(message)}</message><statusCode>{code}</statusCode></errors>")
    parts += [f"<fullName>{escape(full_name)}</fullName>", f"<success>{str(ok).lower()}</success>"]
    return "<result>" + "".join(parts) + "</result>"


# -- readMetadata ----------------------------------------------------------------------------
def _read(emu: SalesforceEmulator, call: ET.Element, _items: list[ET.Element]) -> str:
    kind = next((el.text or "" for el in call if _local(el.tag) == "type"), "")
    names = [el.text or "" for el in call if _local(el.tag) == "fullNames"]
    records = []
    for name in names:
        found = _lookup(emu, kind, name) or {}  # a missing component: an empty record
        records.append(f'<records xsi:type="{kind}">' + "".join(
            _xml(v, k) for k, v in found.items()) + "</records>")
    return "<result>" + "".join(records) + "</result>"


def _lookup(emu: SalesforceEmulator, kind: str, full_name: str) -> dict[str, Any] | None:
    stored = emu.metadata.get(kind, {}).get(full_name)
    if stored is not None:
        return stored
    if kind != "CustomField" or "." not in full_name:
        return None
    obj, name = full_name.split(".", 1)
    obj = _objects(obj)[0]
    if not emu.store.has_object(obj):
        return None
    fdef = emu.store.obj(obj).field(name)
    if fdef is None or not fdef.custom:
        return None
    # a field made some other way (emu.add_field): no description, as if an admin made it
    kinds = {v: k for k, v in FIELD_TYPES.items()}
    return {"fullName": full_name, "label": fdef.label, "type": kinds.get(fdef.type, "Text")}


# -- createMetadata --------------------------------------------------------------------------
def _create(emu: SalesforceEmulator, _call: ET.Element, items: list[ET.Element]) -> str:
    out = []
    for item in items:
        kind, values = _kind(item), _parse(item)
        name = str(values.get("fullName") or "") if isinstance(values, dict) else ""
        if kind != "CustomField":
            out.append(_result(name, False, "UNKNOWN_EXCEPTION", f"the emulator cannot create {kind}"))
            continue
        out.append(_create_field(emu, name, values))
    return "".join(out)


#: The Metadata API defines Task and Event custom fields on the Activity object.
ACTIVITY = ("Task", "Event")


def _objects(obj: str) -> tuple[str, ...]:
    return ACTIVITY if obj.lower() == "activity" else (obj,)


def _create_field(emu: SalesforceEmulator, full_name: str, values: dict[str, Any]) -> str:
    obj, _, name = full_name.partition(".")
    if obj.lower() == "activity":
        for each in ACTIVITY:
            answer = _create_field(emu, f"{each}.{name}", values)
            if "<success>false" in answer:
                return answer.replace(f"{each}.{name}", full_name)
        emu.metadata["CustomField"][f"Activity.{name}"] = values
        for each in ACTIVITY:
            emu.metadata["CustomField"].pop(f"{each}.{name}", None)
        return _result(full_name, True)
    if not emu.store.has_object(obj):
        return _result(full_name, False, "INVALID_CROSS_REFERENCE_KEY", f"In field: fullName - no CustomObject named {obj} found")
    if not name.endswith("__c") or "__" in name[:-3]:
        return _result(full_name, False, "FIELD_INTEGRITY_EXCEPTION", f"invalid custom field name {name}")
    if emu.store.obj(obj).field(name) is not None:
        return _result(full_name, False, "DUPLICATE_DEVELOPER_NAME",
                       f"There is already a field named {name[:-3]} on {obj}.")
    kind = FIELD_TYPES.get(str(values.get("type") or ""))
    if kind is None:
        return _result(full_name, False, "FIELD_INTEGRITY_EXCEPTION", f"unsupported field type {values.get('type')}")
    od = emu.store.obj(obj)
    emu.store.add_field(od.name, name, kind, label=str(values.get("label") or name))
    for row in emu.store.data[od.name].values():
        row.setdefault(name, None)
    emu.store.guarded.add((od.name.lower(), name.lower()))
    emu.metadata.setdefault("CustomField", {})[f"{od.name}.{name}"] = values
    return _result(full_name, True)


# -- upsertMetadata --------------------------------------------------------------------------
def _upsert(emu: SalesforceEmulator, _call: ET.Element, items: list[ET.Element]) -> str:
    out = []
    for item in items:
        kind, values = _kind(item), _parse(item)
        name = str(values.get("fullName") or "") if isinstance(values, dict) else ""
        if kind != "PermissionSet":
            out.append(_result(name, False, "UNKNOWN_EXCEPTION", f"the emulator cannot upsert {kind}", created=False))
            continue
        out.append(_upsert_permission_set(emu, name, values))
    return "".join(out)


def _upsert_permission_set(emu: SalesforceEmulator, name: str, values: dict[str, Any]) -> str:
    grants: dict[tuple[str, str], bool] = {}
    for grant in _listed(values.get("fieldPermissions")):
        obj, _, field = str(grant.get("field") or "").partition(".")
        for each in _objects(obj):
            if not emu.store.has_object(each) or emu.store.obj(each).field(field) is None:
                return _result(name, False, "FIELD_INTEGRITY_EXCEPTION",
                               f"In field: field - no CustomField named {grant.get('field')} found", created=False)
            if str(grant.get("readable")).lower() == "true" or str(grant.get("editable")).lower() == "true":
                grants[(each.lower(), field.lower())] = str(grant.get("editable")).lower() == "true"
    created = name not in emu.metadata.get("PermissionSet", {})
    emu.metadata.setdefault("PermissionSet", {})[name] = values
    emu.store.grants[name] = grants
    existing = next((r for r in emu.store.rows("PermissionSet") if r["Name"] == name), None)
    label = str(values.get("label") or name)
    if existing is None:
        emu.store.insert("PermissionSet", {"Name": name, "Label": label,
                                           "Description": str(values.get("description") or "")})
    else:
        emu.store.update("PermissionSet", existing["Id"], {"Label": label})
    return _result(name, True, created=created)
