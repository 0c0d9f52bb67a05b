"""Value conversion between Python, Salesforce JSON and Bulk CSV representations."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
    "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double",
    "date": "xsd:date", "datetime": "xsd:dateTime",
}
NUMERIC = {"int", "double", "currency", "percent"}

_DT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_D = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class BadValue(ValueError):
    """A value that does not fit the field type (message is Salesforce-like)."""


def parse_datetime(text: str) -> datetime | None:
    """Parse ``2024-01-01T00:00:00Z``, ``...00.000+0000``, ``...+01:00`` (naive = UTC)."""
    m = _DT.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    offset = timedelta(0)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    naive = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro)
    return (naive - offset).replace(tzinfo=timezone.utc)


def parse_date(text: str) -> date | None:
    m = _D.match(text.strip())
    return date(int(m[1]), int(m[2]), int(m[3])) if m else None


def to_utc(value: datetime) -> datetime:
    """Normalise to aware UTC with millisecond precision (Salesforce stores milliseconds)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_datetime(value: datetime) -> str:
    """``2013-05-20T20:49:32.000+0000`` (the REST API's datetime format)."""
    v = to_utc(value)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}+0000"


def format_csv_datetime(value: datetime) -> str:
    """``2013-05-20T20:49:32.000Z`` (Bulk API 2.0 CSV datetime format)."""
    v = to_utc(value)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


def coerce(ftype: str, value: Any, fname: str = "") -> Any:
    """Convert an incoming JSON/Python value to the stored Python value for ``ftype``."""
    if value is None or (isinstance(value, str) and value == "" and ftype not in ("string",)):
        return None
    if ftype == "datetime":
        return _coerce_datetime(value, fname)
    if ftype == "date":
        return _coerce_date(value, fname)
    if ftype == "boolean":
        return _coerce_bool(value, fname)
    if ftype in NUMERIC:
        return _coerce_number(ftype, value, fname)
    return value if isinstance(value, str) else str(value)


def _coerce_datetime(value: Any, fname: str) -> datetime:
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    parsed = parse_datetime(str(value))
    if parsed is None:
        d = parse_date(str(value))
        if d is None:
            raise BadValue(f"{fname}: value not of required type: {value}")
        return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
    return to_utc(parsed)


def _coerce_date(value: Any, fname: str) -> date:
    if isinstance(value, datetime):
        return to_utc(value).date()
    if isinstance(value, date):
        return value
    text = str(value)
    d = parse_date(text)
    if d is None:
        dt = parse_datetime(text)
        if dt is None:
            raise BadValue(f"{fname}: value not of required type: {value}")
        d = dt.date()
    return d


def _coerce_bool(value: Any, fname: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise BadValue(f"{fname}: value not of required type: {value}")


def _coerce_number(ftype: str, value: Any, fname: str) -> int | float:
    if isinstance(value, bool):
        raise BadValue(f"{fname}: value not of required type: {value}")
    try:
        num = float(value)
    except (TypeError, ValueError) as exc:
        raise BadValue(f"{fname}: value not of required type: {value}") from exc
    if ftype == "int":
        return int(num)
    return num


def to_json(ftype: str, value: Any) -> Any:
    """Stored Python value -> REST JSON value."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if ftype == "int" and isinstance(value, float):
        return int(value)
    return value


def to_csv(value: Any) -> str:
    """Stored Python value -> Bulk 2.0 CSV cell text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_csv_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def infer_type(value: Any) -> str:
    """Guess a field type for an unknown field found in seed data."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        if parse_date(value):
            return "date"
        if parse_datetime(value):
            return "datetime"
        if len(value) > 255:
            return "textarea"
    return "string"
