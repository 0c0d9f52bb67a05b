"""``crmlink doctor`` for Salesforce: log in, describe every object the connector reads
(is it there, may the user query it, which of the wanted fields it can see) and read the
org's daily API limit from ``/limits``. One login, one describe per object, one request
for the limits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmlink import Check

from .auth import API_VERSION
from .client import Client
from .mapping import FIELDS, custom_fields
from .streams import STREAMS, OptionalStream

#: Below this share of the daily limit left, the budget is a warning.
LOW_BUDGET = 0.1

_FLOWS = {"direct": "a session id", "jwt": "OAuth JWT bearer", "oauth_password": "OAuth username-password",
          "soap": "username, password and security token", "client_credentials": "OAuth client credentials"}


def diagnose(client: Client, config: Mapping[str, Any]) -> Iterator[Check]:
    """The checks of one org; a failed login raises (the caller classifies it)."""
    session = client.sf
    how = (f"the Salesforce CLI login {config['target_org']!r}" if client.flow == "sf_cli"
           else _FLOWS.get(client.flow, client.flow))
    yield Check("connect", "ok", f"logged in with {how} to {session.sf_instance} (API v{API_VERSION})")
    yield from _objects(client, config)
    yield _budget(client.call(lambda sf: sf.limits()))


def _objects(client: Client, config: Mapping[str, Any]) -> Iterator[Check]:
    readable: list[str] = []
    for stream in STREAMS:
        obj = stream.obj
        described = _describe(client, obj)
        if described is None:
            if issubclass(stream, OptionalStream):
                yield Check("read", "warn", f"{obj}: not in this org or not visible to the user (optional; "
                            "skipped)", f"give the user read access to {obj} if the org uses it")
            else:
                yield Check("read", "fail", f"{obj}: not visible to the user",
                            f"give the user read access to {obj} (profile or permission set), or 'View All Data'")
            continue
        if not described.get("queryable", True):
            yield Check("read", "fail", f"{obj}: the user may not query it",
                        f"give the user read access to {obj} (profile or permission set)")
            continue
        seen = {f["name"].lower() for f in described.get("fields", [])}
        asked = custom_fields(obj, config)
        lost = [f for f in asked if f.lower() not in seen]
        if lost:
            yield Check("read", "fail", f"{obj}: cannot read the configured field(s) {', '.join(lost)}",
                        "check the API names, or grant the user read access to them (field-level security)")
        hidden = [f for f in FIELDS[obj] if f.lower() not in seen and f not in asked]
        if hidden:
            yield Check("read", "warn", f"{obj}: {len(hidden)} standard field(s) not visible: {', '.join(hidden[:6])}"
                        + (" ..." if len(hidden) > 6 else ""),
                        "they are synced as empty; grant read access (field-level security) if you need them")
        readable.append(obj)
    if readable:
        yield Check("read", "ok", f"{len(readable)} objects: {', '.join(readable)}")


def _describe(client: Client, obj: str) -> dict[str, Any] | None:
    try:
        return client.describe(obj)
    except SalesforceMalformedRequest:
        return None
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            return None
        raise


def _budget(limits: Mapping[str, Any]) -> Check:
    daily = limits.get("DailyApiRequests") or {}
    total, left = int(daily.get("Max") or 0), int(daily.get("Remaining") or 0)
    if not total:
        return Check("API budget", "warn", "the org reports no daily API request limit")
    detail = f"{left:,} of {total:,} API requests left today (DailyApiRequests)"
    if left <= 0:
        return Check("API budget", "fail", detail, "syncs stop with exit 5 until the 24-hour window frees "
                     "requests; wait, or ask Salesforce for a higher limit")
    if left < total * LOW_BUDGET:
        return Check("API budget", "warn", detail, "a large sync may stop early (exit 5) and resume on the "
                     "next run; use --api-budget to leave room for other integrations")
    return Check("API budget", "ok", detail)


__all__ = ["diagnose"]
