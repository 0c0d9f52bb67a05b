"""Small pieces of Graph's JSON shapes shared by mail and calendar: ids, addresses,
timestamps, etags and ``$select``."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import parseaddr
from typing import Any

from .errors import bad_property

#: A recipient as tests may give it: "a@b.c", "Ann <a@b.c>", ("Ann", "a@b.c") or Graph's dict.
AddressLike = str | tuple[str, str] | Mapping[str, Any]


def item_id(prefix: str = "AAMkAD") -> str:
    """An Exchange-looking item id (``AAMkAD...=``): URL-safe base64, stable for its item."""
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(42)).decode()


def change_key() -> str:
    return "CQAAABYAAAA" + base64.b64encode(secrets.token_bytes(12)).decode()


def etag(key: str) -> str:
    return f'W/"{key}"'


def recipient(value: AddressLike) -> dict[str, Any]:
    """``{"emailAddress": {"name", "address"}}``; the name defaults to the address, as
    Exchange shows it for senders it has no display name for."""
    if isinstance(value, Mapping):
        inner = value.get("emailAddress", value)
        name, address = inner.get("name"), inner.get("address", "")
    elif isinstance(value, tuple):
        name, address = value
    else:
        name, address = parseaddr(value)
    return {"emailAddress": {"name": name or address, "address": address}}


def recipients(values: Iterable[AddressLike]) -> list[dict[str, Any]]:
    return [recipient(v) for v in values]


def stamp(value: datetime) -> str:
    """``2024-03-01T09:00:00Z``, the form Graph gives message and audit timestamps in."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_time(value: datetime) -> dict[str, str]:
    """``{"dateTime": "2024-03-01T09:00:00.0000000", "timeZone": "UTC"}`` (event times)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    utc = value.astimezone(timezone.utc)
    return {"dateTime": utc.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def parse_time(text: str, what: str) -> datetime:
    """An ISO 8601 date-time from a query string; naive values are UTC."""
    from .errors import bad_request

    value = text.strip()
    if value[-1:] in "Zz":
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"The value '{text}' of parameter '{what}' is not a valid date-time.",
                          "ErrorInvalidParameter") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class Selector:
    """``$select`` against an entity's properties: case-insensitive names, unknown ones
    are Graph's 400; ``id`` and ``@odata.etag`` always come back."""

    def __init__(self, entity: str, default: Iterable[str], optional: Iterable[str] = ()) -> None:
        self.entity = entity
        self.default = tuple(default)
        self._names = {n.lower(): n for n in ("id", *self.default, *optional)}

    def parse(self, values: Iterable[str]) -> list[str]:
        out: list[str] = []
        for value in values:
            for part in value.split(","):
                name = part.strip()
                if not name:
                    continue
                canonical = self._names.get(name.lower())
                if canonical is None:
                    raise bad_property(name, self.entity)
                if canonical not in out:
                    out.append(canonical)
        return out

    def apply(self, data: Mapping[str, Any], selected: list[str]) -> dict[str, Any]:
        names = selected or self.default
        out: dict[str, Any] = {"@odata.etag": data["@odata.etag"], "id": data["id"]}
        for name in names:
            if name in data:
                out[name] = data[name]
        return out
