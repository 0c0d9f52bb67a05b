"""A crmlink connector for Pipedrive, as a separately installed plugin.

This example reads JSON files shaped exactly like the responses of Pipedrive's
``GET /v1/{organizations,persons,deals,activities,users}`` so it runs offline; the
bundled ``fixtures/`` folder is the default. A connector for the live API would replace
:meth:`PipedriveConnector.fetch` with paged HTTP calls and keep everything else.

crmlink finds it through the entry point in pyproject.toml::

    [project.entry-points.crmlink]
    pipedrive = "crmlink_pipedrive"
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import crmlink
from crmlink import (
    Account,
    AuthError,
    Contact,
    FatalError,
    Interaction,
    Opportunity,
    Record,
    RetriableError,
    Setting,
    Stream,
    User,
)

__version__ = "0.1.0"

FIXTURES = Path(__file__).parent / "fixtures"
#: Pipedrive names custom fields by a 40-character hash; these are the fixture's.
TIER_FIELD = "5f1c2a9e0b7d4c3e8a6f1b2d9c0e7a4f3b8d6c1e"
STANCE_FIELD = "c4e8a1f7b3d9e2c6a0f5b8d1e7c3a9f2b6d0e4c8"
#: Pipedrive activity types -> crmlink interaction kinds
ACTIVITY_KINDS = {"meeting": "meeting", "lunch": "meeting", "call": "call", "email": "email",
                  "task": "task", "deadline": "task"}


class PipedriveAPIError(Exception):
    """What the HTTP client of a live connector would raise."""

    def __init__(self, status: int, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.retry_after = status, retry_after


def _ref(value: Any) -> str | None:
    """Pipedrive embeds references as ``{"value": 1, ...}`` or ``{"id": 1, ...}`` or a bare id."""
    if isinstance(value, dict):
        value = value.get("value", value.get("id"))
    return None if value in (None, "") else str(value)


def _when(text: str | None) -> datetime | None:
    """Pipedrive's ``2026-10-01 09:00:00`` (UTC) or an ISO timestamp, as an aware datetime."""
    if not text:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _minutes(duration: str | None) -> float | None:
    if not duration:
        return None
    hours, _, minutes = duration.partition(":")
    return int(hours) * 60 + int(minutes or 0)


def _primary_email(emails: Any) -> str | None:
    for item in emails or ():
        if item.get("primary"):
            return item.get("value")
    return None


def organization(item: dict[str, Any], cfg: Mapping[str, Any]) -> Record:
    return Account(remote_id=item["id"], name=item.get("name"), tier=item.get(cfg["tier_field"]),
                   tier_source="crm" if item.get(cfg["tier_field"]) else None,
                   owner_id=_ref(item.get("owner_id")), created_at=item.get("add_time"),
                   modified_at=item["update_time"], deleted=not item.get("active_flag", True),
                   extra={"address": item["address"]} if item.get("address") else {})


def person(item: dict[str, Any], cfg: Mapping[str, Any]) -> Record:
    return Contact(remote_id=item["id"], account_id=_ref(item.get("org_id")), name=item.get("name"),
                   email=_primary_email(item.get("email")), title=item.get("job_title"),
                   stance=item.get(cfg["stance_field"]), modified_at=item["update_time"],
                   deleted=not item.get("active_flag", True))


def deal(item: dict[str, Any], cfg: Mapping[str, Any]) -> Record:
    status = item.get("status")
    return Opportunity(remote_id=item["id"], account_id=_ref(item.get("org_id")), name=item.get("title"),
                       amount=item.get("value"), currency=item.get("currency"),
                       pipeline=_ref(item.get("pipeline_id")), stage_id=_ref(item.get("stage_id")),
                       probability=item.get("probability"), is_closed=status in ("won", "lost"),
                       is_won=status == "won", created_at=item.get("add_time"),
                       close_date=item.get("close_time") or item.get("expected_close_date"),
                       stage_entered_at=item.get("stage_change_time"),
                       owner_id=_ref(item.get("user_id")), modified_at=item["update_time"],
                       deleted=status == "deleted")


def activity(item: dict[str, Any], cfg: Mapping[str, Any]) -> Record:
    people = [_ref(p.get("person_id")) for p in item.get("participants") or ()]
    return Interaction(remote_id=item["id"], kind=ACTIVITY_KINDS.get(item.get("type"), "note"),
                       occurred_at=f"{item['due_date']}T{item.get('due_time') or '00:00'}:00Z",
                       subject=item.get("subject"), account_id=_ref(item.get("org_id")),
                       opportunity_id=_ref(item.get("deal_id")), user_ids=[_ref(item.get("user_id"))],
                       contact_ids=[p for p in people if p], duration_minutes=_minutes(item.get("duration")),
                       modified_at=item["update_time"])


def user(item: dict[str, Any], cfg: Mapping[str, Any]) -> Record:
    return User(remote_id=item["id"], name=item.get("name"), email=item.get("email"),
                active=item.get("active_flag", True), modified_at=item["modified"])


Convert = Callable[[dict[str, Any], Mapping[str, Any]], Record]
#: stream name -> (Pipedrive resource, entity, converter, field that orders changes)
RESOURCES: dict[str, tuple[str, type[Record], Convert, str]] = {
    "users": ("users", User, user, "modified"),
    "organizations": ("organizations", Account, organization, "update_time"),
    "persons": ("persons", Contact, person, "update_time"),
    "deals": ("deals", Opportunity, deal, "update_time"),
    "activities": ("activities", Interaction, activity, "update_time"),
}


class PipedriveStream(Stream):
    """One Pipedrive resource, oldest change first, resuming from ``since`` (inclusive)."""

    is_sorted = True

    def __init__(self, connector: PipedriveConnector, name: str) -> None:
        self.connector = connector
        self.name = name
        self.resource, self.entity, self.convert, self.order_by = RESOURCES[name]

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record]:
        since = _when((state or {}).get("since"))
        items = self.connector.fetch(self.resource)
        items.sort(key=lambda item: (self._stamp(item), str(item["id"])))
        for item in items:
            if since is not None and self._stamp(item) < since:
                continue
            if self.resource == "activities" and not item.get("done"):
                continue  # a planned activity is not an interaction yet
            yield self.convert(item, self.connector.config)

    def _stamp(self, item: dict[str, Any]) -> datetime:
        return _when(item[self.order_by]) or datetime.min.replace(tzinfo=timezone.utc)


class PipedriveConnector(crmlink.Connector):
    """Reads Pipedrive organizations, persons, deals, activities and users."""

    name = "pipedrive"
    description = "Pipedrive CRM (this example reads API-shaped JSON files)."
    settings = (
        Setting("path", "Folder of API-shaped JSON files [default: the bundled fixtures].",
                default=str(FIXTURES)),
        Setting("api_token", "Pipedrive API token (unused by the file-based example).", secret=True),
        Setting("tier_field", "Key of the organization custom field holding the tier.",
                default=TIER_FIELD),
        Setting("stance_field", "Key of the person custom field holding the stance (-2..3).",
                default=STANCE_FIELD),
    )

    def streams(self) -> Iterator[Stream]:
        for name in RESOURCES:
            yield PipedriveStream(self, name)

    def fetch(self, resource: str) -> list[dict[str, Any]]:
        path = Path(self.config["path"]) / f"{resource}.json"
        if not path.is_file():
            raise crmlink.ConfigError(f"{path} does not exist; --path must hold {resource}.json")
        body = json.loads(path.read_text(encoding="utf-8"))
        if not body.get("success"):
            raise FatalError(f"Pipedrive refused {resource}: {body.get('error', 'no reason given')}")
        return list(body.get("data") or [])

    def classify_error(self, exc: BaseException) -> crmlink.CrmlinkError | None:
        if not isinstance(exc, PipedriveAPIError):
            return None
        if exc.status == 429 or exc.status >= 500:
            return RetriableError(str(exc), retry_after=exc.retry_after)
        if exc.status == 401:
            return AuthError("Pipedrive rejected the API token; set PIPEDRIVE_API_TOKEN to a valid one")
        return FatalError(str(exc))


@crmlink.hookimpl
def register_connectors(register: Callable[[type[crmlink.Connector]], None]) -> None:
    register(PipedriveConnector)
