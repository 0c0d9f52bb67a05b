"""Request/response types and query-string helpers shared by the handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .auth import Auth
from .errors import validation
from .schema import normalize_type
from .store import Store


@dataclass
class Options:
    """Behaviour knobs of the API layer (settable on the emulator)."""

    search_lag: float = 0.0  # seconds before a created/updated object shows in search
    list_association_cap: int = 100  # associations per type inlined on v3 list/read
    association_page_size: int = 500  # v4 to-list page size
    portal_id: int = 62515
    #: how a batch update reports failed inputs: "207" (per input, with the others written)
    #: or "400" (the first failure fails the whole batch, nothing is written)
    batch_errors: str = "207"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any = None
    base_url: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def many(self, name: str) -> list[str]:
        """Repeated (``a=1&a=2``) and comma-separated (``a=1,2``) values."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v.strip() for v in value.split(",") if v.strip())
        return out

    def flag(self, name: str) -> bool:
        return (self.one(name) or "").strip().lower() == "true"

    def integer(self, name: str, default: int) -> int:
        value = self.one(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise validation(f"Invalid input: {name} must be an integer; got {value!r}.") from None

    def cursor(self, name: str = "after") -> int:
        value = self.one(name) if self.method == "GET" else None
        if value is None or value == "":
            return 0
        if not value.isdigit():
            raise validation(f"Invalid paging cursor after={value!r}.")
        return int(value)

    def link(self, after: int | str) -> str:
        """``paging.next.link``: this request with ``after`` replaced."""
        query = [(k, v) for k, vs in self.query.items() if k != "after" for v in vs]
        query.append(("after", str(after)))
        return f"{self.base_url}{self.path}?{urlencode(query)}"


@dataclass
class Context:
    store: Store
    options: Options
    auth: Auth


def object_type(name: str) -> str:
    """Path segment -> object type, or the real 400 for an unknown type."""
    resolved = normalize_type(name)
    if resolved is None:
        raise validation(f"Unable to infer object type from: {name}")
    return resolved


def paging(req: Request, next_after: int | str | None) -> dict[str, Any]:
    """``{"paging": ...}`` to merge into a body; empty on the last page (no key at all)."""
    if next_after is None:
        return {}
    return {"paging": {"next": {"after": str(next_after), "link": req.link(next_after)}}}
