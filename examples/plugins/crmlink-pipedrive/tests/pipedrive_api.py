"""A fake Pipedrive API v1 for the tests: the five list endpoints the connector reads,
answering in Pipedrive's shape from the JSON files in ``fixtures/``.

What it does as Pipedrive does: the ``x-api-token`` header is checked (401 otherwise);
lists page by ``start``/``limit`` and say so in ``additional_data.pagination``
(``more_items_in_collection``, ``next_start``); ``sort=update_time ASC`` orders by last
change; deleted items (``active_flag`` false, deal ``status`` deleted) are left out; an
empty list is ``"data": null``; ``/v1/users`` is one page. What a test controls:
``page_limit`` (the most items a page holds: small, to make the connector page),
``rate_limited`` (how many of the next requests answer 429 with Retry-After) and
``deleted`` (ids to treat as deleted now).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmlink.testing.http import ApiRequest, ApiResponse

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "t0k3n-secret"
RESOURCES = ("users", "organizations", "persons", "deals", "activities")


class PipedriveApi:
    def __init__(self, token: str = TOKEN, page_limit: int = 500) -> None:
        self.token, self.page_limit = token, page_limit
        self.data = {name: json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))["data"]
                     for name in RESOURCES}
        self.rate_limited = 0
        self.retry_after = "1"
        self.deleted: set[tuple[str, int]] = set()

    def __call__(self, request: ApiRequest) -> ApiResponse:
        if request.headers.get("x-api-token") != self.token:
            return ApiResponse(401, {"success": False, "error": "unauthorized access", "errorCode": 401})
        if self.rate_limited:
            self.rate_limited -= 1
            return ApiResponse(429, {"success": False, "error": "Request over limit", "errorCode": 429},
                               {"Retry-After": self.retry_after, "x-ratelimit-limit": "20",
                                "x-ratelimit-remaining": "0", "x-ratelimit-reset": self.retry_after})
        resource = request.path.removeprefix("/v1/")
        if resource not in RESOURCES:
            return ApiResponse(404, {"success": False, "error": "Unknown method .", "errorCode": 404})
        items = [i for i in self.data[resource] if self._live(resource, i)]
        if resource == "users":
            return ApiResponse(200, {"success": True, "data": items})
        if request.query.get("sort") == "update_time ASC":
            items.sort(key=lambda item: (item["update_time"], item["id"]))
        return ApiResponse(200, self._page(items, request.query))

    def _live(self, resource: str, item: dict[str, Any]) -> bool:
        return (resource, item["id"]) not in self.deleted and item.get("active_flag", True) \
            and item.get("status") != "deleted"

    def _page(self, items: list[dict[str, Any]], query: Any) -> dict[str, Any]:
        start = int(query.get("start", 0))
        limit = min(int(query.get("limit", 100)), self.page_limit)
        page = items[start:start + limit]
        more = start + limit < len(items)
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return {"success": True, "data": page or None, "additional_data": {"pagination": pagination}}
