"""``crmlink doctor`` for HubSpot: one small request per object type the connector reads
(a 403 ``MISSING_SCOPES`` names the scope to add; tickets are optional, so theirs is a
warning), the deal and ticket pipelines, the property schemas, the ``competitor_property``
setting, and the daily limit from the ``X-HubSpot-RateLimit-Daily*`` headers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from crmlink import AuthError, Check, CrmlinkError, RetriableError

from .client import HubSpotApi, classify
from .streams import unknown_property

#: (what, scope it needs, request) for each thing the connector reads, owners first: that
#: request is also the connection check.
PROBES: tuple[tuple[str, str, Callable[[HubSpotApi], Any]], ...] = (
    ("owners", "crm.objects.owners.read", lambda api: api.call("owners", "get_page", limit=1)),
    *((kind, scope, lambda api, kind=kind: api.call("objects.basic", "get_page", kind, limit=1))
      for kind, scope in (("companies", "crm.objects.companies.read"), ("contacts", "crm.objects.contacts.read"),
                          ("deals", "crm.objects.deals.read"), ("calls", "crm.objects.contacts.read"),
                          ("meetings", "crm.objects.contacts.read"), ("emails", "crm.objects.contacts.read"),
                          ("notes", "crm.objects.contacts.read"), ("tasks", "crm.objects.contacts.read"))),
    ("deal pipelines", "crm.objects.deals.read", lambda api: api.call("pipelines", "get_all", "deals")),
    *((f"{kind} properties", f"crm.schemas.{kind}.read",
       lambda api, kind=kind: api.call("properties", "get_all", kind))
      for kind in ("companies", "contacts", "deals")),
    ("tickets", "tickets", lambda api: api.call("objects.basic", "get_page", "tickets", limit=1)),
    ("ticket pipelines", "tickets", lambda api: api.call("pipelines", "get_all", "tickets")),
)
#: What a sync skips, with a notice, when the token may not read it.
OPTIONAL = frozenset({"tickets", "ticket pipelines"})
#: Below this share of the daily limit left, the budget is a warning.
LOW_BUDGET = 0.1


def diagnose(api: HubSpotApi, config: dict[str, Any]) -> Iterator[Check]:
    readable: list[str] = []
    for index, (what, scope, probe) in enumerate(PROBES):
        try:
            probe(api)
        except Exception as exc:
            error = classify(exc) or CrmlinkError(f"{type(exc).__name__}: {exc}")
            if index == 0 and isinstance(error, (AuthError, RetriableError)):
                yield Check("connect", "fail", str(error))
                return
            optional = what in OPTIONAL
            yield Check("read", "warn" if optional else "fail",
                        f"{what}: {error}{' (optional: a sync skips them)' if optional else ''}",
                        f"add the {scope} scope to the private app (Settings > Integrations > "
                        "Private Apps > Scopes) or the OAuth app")
            continue
        if index == 0:
            how = "a private-app token" if config.get("access_token") else "OAuth (refresh token)"
            yield Check("connect", "ok", f"reached {api.base_url} with {how}")
        readable.append(what)
    if readable:
        yield Check("read", "ok", f"{len(readable)} of {len(PROBES)}: {', '.join(readable)}")
    if config.get("competitor_property") and "deals properties" in readable:
        yield _competitor_property(api, str(config["competitor_property"]))
    yield _budget(api.last_headers, config)


def _competitor_property(api: HubSpotApi, name: str) -> Check:
    schema = api.call("properties", "get_all", "deals").get("results") or []
    if any(p.get("name") == name for p in schema):
        return Check("settings", "ok", f"competitor_property: deals have the property {name!r}")
    return Check("settings", "fail", unknown_property(name, schema),
                 "name a deal property that exists, or remove competitor_property")


def _budget(headers: dict[str, str], config: dict[str, Any]) -> Check:
    found = {k.lower(): v for k, v in headers.items()}
    total, left = found.get("x-hubspot-ratelimit-daily"), found.get("x-hubspot-ratelimit-daily-remaining")
    burst = found.get("x-hubspot-ratelimit-max")
    if total is None or left is None:
        per = f"; the burst limit is {burst} requests per 10 s" if burst else ""
        return Check("API budget", "ok", f"HubSpot reports no daily limit for this app{per}")
    daily, remaining = int(total), int(left)
    detail = f"{remaining:,} of {daily:,} API requests left today (X-HubSpot-RateLimit-Daily)"
    if remaining <= 0:
        return Check("API budget", "fail", detail, "syncs stop with exit 5 until midnight in the portal's "
                     "time zone; wait, or buy the API limit increase")
    if remaining < daily * LOW_BUDGET:
        return Check("API budget", "warn", detail, "a large sync may stop early (exit 5) and resume on the "
                     "next run; --daily-budget leaves room for other integrations")
    return Check("API budget", "ok", detail)


__all__ = ["diagnose", "PROBES"]
