"""A crmlink connector for Pipedrive, as a separately installed plugin.

It reads Pipedrive's REST API v1 (``GET /v1/users``, ``/v1/organizations``,
``/v1/persons``, ``/v1/deals`` and ``/v1/activities``) and is mostly declarations on
:class:`crmlink.RestStream`: the endpoint, the token header, the ``start``/``limit``
pagination of ``additional_data.pagination``, the ``update_time`` cursor, and one
function per object that maps a Pipedrive item to a canonical record. Retries (a 429
with Retry-After, a 5xx) are the sync engine's.

crmlink finds it through the entry point in pyproject.toml::

    [project.entry-points.crmlink]
    pipedrive = "crmlink_pipedrive"
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import crmlink
from crmlink import (
    Account,
    Contact,
    Interaction,
    OffsetPaginator,
    Opportunity,
    Record,
    RestStream,
    Setting,
    Stream,
    User,
)

__version__ = "0.1.0"

#: Pipedrive names custom fields by a 40-character hash; these are the defaults of
#: --tier-field and --stance-field (the ones of the bundled test data).
TIER_FIELD = "5f1c2a9e0b7d4c3e8a6f1b2d9c0e7a4f3b8d6c1e"
STANCE_FIELD = "c4e8a1f7b3d9e2c6a0f5b8d1e7c3a9f2b6d0e4c8"
#: Pipedrive activity types -> crmlink interaction kinds
ACTIVITY_KINDS = {"meeting": "meeting", "lunch": "meeting", "call": "call", "email": "email",
                  "task": "task", "deadline": "task"}


def _ref(value: Any) -> str | None:
    """Pipedrive embeds references as ``{"value": 1, ...}`` or ``{"id": 1, ...}`` or a bare id."""
    if isinstance(value, dict):
        value = value.get("value", value.get("id"))
    return None if value in (None, "") else str(value)


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


def _fraction(percent: Any) -> float | None:
    """Pipedrive's deal probability is a percentage (0-100); crmlink's a fraction (0-1)."""
    return None if percent in (None, "") else float(percent) / 100.0


class PipedriveStream(RestStream):
    """What every Pipedrive list endpoint shares."""

    url_base = "https://api.pipedrive.com"
    auth_header = "x-api-token"
    records_path = "data"
    paginator = OffsetPaginator(offset_param="start", limit_param="limit", page_size=500,
                                more_path="additional_data.pagination.more_items_in_collection",
                                next_path="additional_data.pagination.next_start")
    replication_key = "update_time"   # "2026-09-01 10:00:00", UTC
    rate_limit_window = 2.0           # Pipedrive counts requests per 2-second window


class Users(PipedriveStream):
    name, entity, path = "users", User, "/v1/users"
    paginator = RestStream.paginator  # one answer holds every user
    replication_key = "modified"

    def to_record(self, item: dict[str, Any]) -> Record:
        return User(remote_id=item["id"], name=item.get("name"), email=item.get("email"),
                    active=item.get("active_flag", True))


class Organizations(PipedriveStream):
    name, entity, path = "organizations", Account, "/v1/organizations"
    params = {"sort": "update_time ASC"}
    is_sorted = True

    def to_record(self, item: dict[str, Any]) -> Record:
        tier = item.get(self.config["tier_field"])
        return Account(remote_id=item["id"], name=item.get("name"), tier=tier,
                       tier_source="crm" if tier else None, owner_id=_ref(item.get("owner_id")),
                       created_at=item.get("add_time"), deleted=not item.get("active_flag", True),
                       extra={"address": item["address"]} if item.get("address") else {})


class Persons(PipedriveStream):
    name, entity, path = "persons", Contact, "/v1/persons"
    params = {"sort": "update_time ASC"}
    is_sorted = True

    def to_record(self, item: dict[str, Any]) -> Record:
        return Contact(remote_id=item["id"], account_id=_ref(item.get("org_id")), name=item.get("name"),
                       email=_primary_email(item.get("email")), title=item.get("job_title"),
                       stance=item.get(self.config["stance_field"]),
                       deleted=not item.get("active_flag", True))


class Deals(PipedriveStream):
    name, entity, path = "deals", Opportunity, "/v1/deals"
    params = {"sort": "update_time ASC"}
    is_sorted = True

    def to_record(self, item: dict[str, Any]) -> Record:
        status = item.get("status")
        return Opportunity(remote_id=item["id"], account_id=_ref(item.get("org_id")), name=item.get("title"),
                           amount=item.get("value"), currency=item.get("currency"),
                           pipeline=_ref(item.get("pipeline_id")), stage_id=_ref(item.get("stage_id")),
                           probability=_fraction(item.get("probability")),
                           is_closed=status in ("won", "lost"), is_won=status == "won",
                           created_at=item.get("add_time"),
                           close_date=item.get("close_time") or item.get("expected_close_date"),
                           stage_entered_at=item.get("stage_change_time"),
                           owner_id=_ref(item.get("user_id")), deleted=status == "deleted")


class Activities(PipedriveStream):
    """Done activities; ``user_id=0`` asks for every user's. Not sorted by change: the
    base keeps the newest ``update_time`` read as the next run's cursor."""

    name, entity, path = "activities", Interaction, "/v1/activities"
    params = {"user_id": 0}

    def to_record(self, item: dict[str, Any]) -> Record | None:
        if not item.get("done"):
            return None  # a planned activity is not an interaction yet
        people = [_ref(p.get("person_id")) for p in item.get("participants") or ()]
        return Interaction(remote_id=item["id"], kind=ACTIVITY_KINDS.get(item.get("type"), "note"),
                           occurred_at=f"{item['due_date']}T{item.get('due_time') or '00:00'}:00Z",
                           subject=item.get("subject"), account_id=_ref(item.get("org_id")),
                           opportunity_id=_ref(item.get("deal_id")), user_ids=[_ref(item.get("user_id"))],
                           contact_ids=[p for p in people if p],
                           duration_minutes=_minutes(item.get("duration")))


class PipedriveConnector(crmlink.Connector):
    """Reads Pipedrive users, organizations, persons, deals and activities."""

    name = "pipedrive"
    description = "Pipedrive CRM (REST API v1)."
    settings = (
        Setting("api_token", "Pipedrive API token (Personal preferences > API).", required=True,
                secret=True),
        Setting("base_url", "API address: https://api.pipedrive.com or https://COMPANY.pipedrive.com/api.",
                default=PipedriveStream.url_base),
        Setting("tier_field", "Key of the organization custom field holding the tier.",
                default=TIER_FIELD),
        Setting("stance_field", "Key of the person custom field holding the stance (-2..3).",
                default=STANCE_FIELD),
        Setting("reconcile", "Also list every id and mark records deleted in Pipedrive as deleted "
                "(its lists leave deleted items out).", is_flag=True, type=bool),
    )

    def streams(self) -> Iterator[Stream]:
        for stream in (Users, Organizations, Persons, Deals, Activities):
            yield stream(self.config)


@crmlink.hookimpl
def register_connectors(register: Callable[[type[crmlink.Connector]], None]) -> None:
    register(PipedriveConnector)
