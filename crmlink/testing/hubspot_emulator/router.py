"""Route table: path patterns, handlers, auth, required scopes and search flag."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import meta_api, objects_api, write_api
from .schema import ENGAGEMENTS, normalize_type
from .wire import Context, Request

Handler = Callable[..., Any]
# Tickets have one scope, ``tickets``, for their records, properties and pipelines alike.
_OBJECT_SCOPE = {"contacts": "crm.objects.contacts.read", "companies": "crm.objects.companies.read",
                 "deals": "crm.objects.deals.read", "tickets": "tickets"}
_SCHEMA_SCOPE = {"contacts": "crm.schemas.contacts.read", "companies": "crm.schemas.companies.read",
                 "deals": "crm.schemas.deals.read", "tickets": "tickets"}


def _write_scopes(kind: str) -> Callable[[dict[str, str]], list[str]]:
    """``crm.objects.<type>.write`` or ``crm.schemas.<type>.write`` of the path's type."""
    def scopes(params: dict[str, str]) -> list[str]:
        otype = normalize_type(params.get("type", ""))
        if otype == "tickets":
            return ["tickets"]
        return [f"crm.{kind}.{otype}.write"] if otype in _OBJECT_SCOPE else []
    return scopes


def _object_scopes(*names: str) -> Callable[[dict[str, str]], list[str]]:
    def scopes(params: dict[str, str]) -> list[str]:
        out = []
        for name in names:
            otype = normalize_type(params.get(name, ""))
            if otype in ENGAGEMENTS:  # engagements are read with the contacts scope
                otype = "contacts"
            if otype in _OBJECT_SCOPE:
                out.append(_OBJECT_SCOPE[otype])
        return list(dict.fromkeys(out))
    return scopes


def _schema_scopes(params: dict[str, str]) -> list[str]:
    otype = normalize_type(params.get("type", ""))
    return [_SCHEMA_SCOPE[otype]] if otype in _SCHEMA_SCOPE else _object_scopes("type")(params)


def _fixed(*scopes: str) -> Callable[[dict[str, str]], list[str]]:
    return lambda params: list(scopes)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    scopes: Callable[[dict[str, str]], list[str]] = _fixed()
    search: bool = False
    auth: bool = True


def _r(method: str, pattern: str, handler: Handler, **kw: Any) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
    return Route(method, re.compile(f"^{regex}$"), handler, **kw)


def _oauth_token(ctx: Context, req: Request) -> dict[str, Any]:
    form = req.body if isinstance(req.body, dict) else {}
    return ctx.auth.grant({k: str(v) for k, v in form.items()})


def _token_info(ctx: Context, req: Request, token: str) -> dict[str, Any]:
    return ctx.auth.token_info(token, ctx.options.portal_id)


_OBJ = "/crm/v3/objects/{type}"
_PIPE = "/crm/v3/pipelines/{type}"
ROUTES: tuple[Route, ...] = (
    _r("POST", "/oauth/v1/token", _oauth_token, auth=False),
    _r("GET", "/oauth/v1/access-tokens/{token}", _token_info, auth=False),
    _r("GET", _OBJ, objects_api.list_objects, scopes=_object_scopes("type")),
    _r("POST", _OBJ + "/batch/read", objects_api.batch_read, scopes=_object_scopes("type")),
    _r("POST", _OBJ + "/search", objects_api.search_objects, scopes=_object_scopes("type"),
       search=True),
    _r("GET", _OBJ + "/{object_id}", objects_api.get_object, scopes=_object_scopes("type")),
    _r("POST", "/crm/v4/associations/{from_type}/{to_type}/batch/read",
       meta_api.associations_batch_read, scopes=_object_scopes("from_type", "to_type")),
    _r("GET", "/crm/v4/associations/{from_type}/{to_type}/labels", meta_api.association_labels,
       scopes=_object_scopes("from_type", "to_type")),
    _r("GET", "/crm/v4/objects/{type}/{object_id}/associations/{to_type}",
       meta_api.associations_page, scopes=_object_scopes("type", "to_type")),
    _r("GET", "/crm/v3/owners", meta_api.owners_page, scopes=_fixed("crm.objects.owners.read")),
    _r("GET", "/crm/v3/owners/{owner_id}", meta_api.owner,
       scopes=_fixed("crm.objects.owners.read")),
    _r("GET", _PIPE, meta_api.pipelines, scopes=_object_scopes("type")),
    _r("GET", _PIPE + "/{pipeline_id}", meta_api.pipeline, scopes=_object_scopes("type")),
    _r("GET", _PIPE + "/{pipeline_id}/stages", meta_api.pipeline_stages,
       scopes=_object_scopes("type")),
    _r("POST", _OBJ + "/batch/update", write_api.batch_update, scopes=_write_scopes("objects")),
    _r("POST", _OBJ + "/batch/create", write_api.batch_create, scopes=_write_scopes("objects")),
    _r("PATCH", _OBJ + "/{object_id}", write_api.object_update, scopes=_write_scopes("objects")),
    _r("GET", "/crm/v3/properties/{type}/groups", write_api.groups_list, scopes=_schema_scopes),
    _r("POST", "/crm/v3/properties/{type}/groups", write_api.group_create, scopes=_write_scopes("schemas")),
    _r("POST", "/crm/v3/properties/{type}/batch/create", write_api.properties_batch_create,
       scopes=_write_scopes("schemas")),
    _r("GET", "/crm/v3/properties/{type}", meta_api.properties, scopes=_schema_scopes),
    _r("GET", "/crm/v3/properties/{type}/{name}", meta_api.property_one, scopes=_schema_scopes),
)


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None | bool:
    """(route, params); False when the path exists with another method; None if unknown."""
    clean = path.rstrip("/") or "/"
    seen_path = False
    for route in ROUTES:
        found = route.pattern.match(clean)
        if found is None:
            continue
        if route.method == method:
            return route, found.groupdict()
        seen_path = True
    return False if seen_path else None


def is_search_path(path: str) -> bool:
    return path.rstrip("/").endswith("/search")
