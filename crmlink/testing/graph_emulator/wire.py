"""The request as handlers see it, and OData paging helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

from .errors import bad_request

#: Most items one page may hold, whatever ``$top`` or ``odata.maxpagesize`` asks for.
MAX_PAGE = 1000
_MAXPAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    base_url: str = ""

    def one(self, name: str) -> str | None:
        """A query option by name, case-insensitively (OData and Graph accept any case)."""
        lowered = name.lower()
        for key, values in self.query.items():
            if key.lower() == lowered and values:
                return values[-1]
        return None

    def many(self, name: str) -> list[str]:
        lowered = name.lower()
        return [v for k, vs in self.query.items() if k.lower() == lowered for v in vs]

    def integer(self, name: str, default: int) -> int:
        value = self.one(name)
        if value is None or value == "":
            return default
        if not value.isdigit():
            raise bad_request(f"Invalid value '{value}' for query option '{name}'.",
                              "ErrorInvalidUrlQuery")
        return int(value)

    def max_page_size(self) -> int | None:
        """``Prefer: odata.maxpagesize=N``, if the request prefers one."""
        found = _MAXPAGESIZE.search(self.headers.get("prefer", ""))
        return int(found.group(1)) if found else None


def page_size(req: Request, default: int, top: bool = True) -> tuple[int, dict[str, str]]:
    """The page size a request asks for (``$top`` wins over the Prefer header), and the
    ``Preference-Applied`` header to send when the preference was honoured."""
    preferred = req.max_page_size()
    size = req.integer("$top", 0) if top else 0
    if size:
        return min(size, MAX_PAGE), {}
    if preferred:
        applied = min(preferred, MAX_PAGE)
        return applied, {"Preference-Applied": f"odata.maxpagesize={applied}"}
    return default, {}


def link(req: Request, path: str, **params: str) -> str:
    """An absolute link to ``path`` (under the API root) with OData query options."""
    query = "&".join(f"{k}={quote(v, safe=',()')}" for k, v in params.items())
    return f"{req.base_url}{path}" + (f"?{query}" if query else "")


def context(req: Request, what: str) -> str:
    return f"{req.base_url}/v1.0/$metadata#{what}"
