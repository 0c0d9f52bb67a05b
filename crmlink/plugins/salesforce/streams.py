"""Streams: one per Salesforce object, read incrementally by ``SystemModstamp``.

``SELECT <fields> FROM <Obj> WHERE SystemModstamp >= :since AND SystemModstamp < :run_start
ORDER BY SystemModstamp, Id`` through ``queryAll`` (so soft-deleted rows come back and are
yielded with ``deleted=True``), paged by ``nextRecordsUrl``. The lower bound is the saved
checkpoint (inclusive: rows sharing the last timestamp are read again, which is harmless);
the upper bound is fixed when the run starts, so a retried stream reads the same window.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmlink import (
    Account,
    Competitor,
    Contact,
    ExecutionRecord,
    Interaction,
    InvalidRecord,
    Lead,
    Opportunity,
    OpportunityContact,
    Record,
    Stage,
    StageChange,
    Stream,
    SupportCase,
    User,
)

from .client import Client
from .mapping import FIELDS, MAPPERS, SYSTEM, custom_fields

#: Activity ids per TaskRelation/EventRelation query (keeps the GET URL well under 16 KB).
RELATION_CHUNK = 200
#: Records per page of the id listing (--reconcile): the largest page the REST API serves.
ID_PAGE = 2000


def soql_datetime(value: datetime | str) -> str:
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectStream(Stream):
    """One Salesforce object, incrementally."""

    is_sorted = True
    obj: ClassVar[str] = ""
    incremental: ClassVar[bool] = True

    def __init__(self, client: Client, config: Mapping[str, Any], run_start: datetime) -> None:
        self.client, self.config, self.run_start = client, config, run_start

    def soql(self, state: Mapping[str, Any] | None) -> str:
        wanted = [*SYSTEM, *FIELDS[self.obj], *custom_fields(self.obj, self.config)]
        fields = self.client.fields(self.obj, wanted)
        query = f"SELECT {', '.join(fields)} FROM {self.obj}"
        if not self.incremental:
            return query + " ORDER BY Id"
        where = [f"SystemModstamp < {soql_datetime(self.run_start)}"]
        since = (state or {}).get("since")
        if since:
            where.insert(0, f"SystemModstamp >= {soql_datetime(since)}")
        return f"{query} WHERE {' AND '.join(where)} ORDER BY SystemModstamp, Id"

    def rows(self, state: Mapping[str, Any] | None) -> Iterator[list[dict[str, Any]]]:
        return self._query(self.soql(state))

    def _query(self, soql: str, page_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows: REST, or one Bulk 2.0 job when the result is above bulk_threshold."""
        threshold = self.config.get("bulk_threshold")
        include_deleted = self.incremental
        for total, page in self.client.pages(soql, include_deleted=include_deleted, page_size=page_size):
            if threshold and total > int(threshold):
                # totalSize of the first page is the COUNT(): switch to Bulk 2.0 (the
                # abandoned cursor expires on its own).
                batch: list[dict[str, Any]] = []
                for row in self.client.bulk_rows(self.obj, soql, include_deleted=include_deleted):
                    batch.append(row)
                    if len(batch) >= 2000:
                        yield batch
                        batch = []
                if batch:
                    yield batch
                return
            yield page

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        mapper = MAPPERS[self.obj]
        for page in self.rows(state):
            for row in page:
                try:
                    yield mapper(row, self.config)
                except InvalidRecord as exc:
                    yield exc

    def remote_ids(self) -> list[str] | None:
        """With --reconcile: every live Id (``queryAll ... WHERE IsDeleted = false``, so
        archived activities count as present), 2000 a page, Bulk 2.0 above the threshold."""
        if not self.config.get("reconcile") or not self.incremental:
            return None
        soql = f"SELECT Id FROM {self.obj} WHERE IsDeleted = false"
        return [str(row["Id"]) for page in self._query(soql, page_size=ID_PAGE) for row in page]

    def owns(self, remote_id: str) -> bool:
        """Ids start with the object's key prefix (Task 00T, Event 00U share one entity)."""
        prefix = self.client.describe(self.obj).get("keyPrefix")
        return not prefix or remote_id.startswith(prefix)


class OptionalStream(ObjectStream):
    """An object not every org has (Orders must be enabled in Setup; Contracts can be
    hidden from the user): skipped, not fatal, when describe does not know it."""

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        if self.client.has_object(self.obj):
            yield from super().records(state)

    def remote_ids(self) -> list[str] | None:
        return super().remote_ids() if self.client.has_object(self.obj) else None


class ActivityStream(ObjectStream):
    """Task or Event; contacts come from WhoId plus TaskRelation/EventRelation."""

    relation: ClassVar[str] = ""
    parent_field: ClassVar[str] = ""
    _relations_available = True

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        mapper = MAPPERS[self.obj]
        for page in self.rows(state):
            related = self._relations([str(r["Id"]) for r in page if not _is_deleted(r)])
            for row in page:
                try:
                    yield mapper(row, self.config, tuple(related.get(str(row["Id"]), ())))
                except InvalidRecord as exc:
                    yield exc

    def _relations(self, ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if not self._relations_available:
            return found
        for start in range(0, len(ids), RELATION_CHUNK):
            chunk = ", ".join(f"'{i}'" for i in ids[start:start + RELATION_CHUNK])
            soql = (f"SELECT {self.parent_field}, RelationId FROM {self.relation} "
                    f"WHERE IsWhat = false AND {self.parent_field} IN ({chunk})")
            try:
                for _total, page in self.client.pages(soql, include_deleted=False):
                    for rel in page:
                        found.setdefault(str(rel[self.parent_field]), []).append(str(rel["RelationId"]))
            except SalesforceMalformedRequest:
                # The org has no shared activities (no TaskRelation/EventRelation): WhoId only.
                self._relations_available = False
                return found
        return found


def _is_deleted(row: Mapping[str, Any]) -> bool:
    return row.get("IsDeleted") in (True, "true", "True")


class UserStream(ObjectStream):
    name, entity, obj = "users", User, "User"


class AccountStream(ObjectStream):
    name, entity, obj = "accounts", Account, "Account"


class ContactStream(ObjectStream):
    name, entity, obj = "contacts", Contact, "Contact"


class StageStream(ObjectStream):
    """OpportunityStage: a small table read whole every run (a snapshot)."""

    name, entity, obj = "stages", Stage, "OpportunityStage"
    is_sorted, snapshot, incremental = False, True, False

    def checkpoint(self, last: Record, state: Mapping[str, Any] | None) -> dict[str, Any]:
        return {}

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return {}


class OpportunityStream(ObjectStream):
    name, entity, obj = "opportunities", Opportunity, "Opportunity"


class ContactRoleStream(ObjectStream):
    name, entity, obj = "opportunity_contacts", OpportunityContact, "OpportunityContactRole"


class HistoryStream(ObjectStream):
    name, entity, obj = "stage_changes", StageChange, "OpportunityHistory"


class TaskStream(ActivityStream):
    name, entity, obj = "tasks", Interaction, "Task"
    relation, parent_field = "TaskRelation", "TaskId"


class EventStream(ActivityStream):
    name, entity, obj = "events", Interaction, "Event"
    relation, parent_field = "EventRelation", "EventId"


class LeadStream(ObjectStream):
    name, entity, obj = "leads", Lead, "Lead"


class ContractStream(OptionalStream):
    name, entity, obj = "contracts", ExecutionRecord, "Contract"


class OrderStream(OptionalStream):
    name, entity, obj = "orders", ExecutionRecord, "Order"


class CompetitorStream(OptionalStream):
    """OpportunityCompetitor (a user without access to it is not an error)."""

    name, entity, obj = "competitors", Competitor, "OpportunityCompetitor"


class CaseStream(OptionalStream):
    """Case (an org or user without Service Cloud access skips it)."""

    name, entity, obj = "support_cases", SupportCase, "Case"


STREAMS: tuple[type[ObjectStream], ...] = (
    UserStream, AccountStream, ContactStream, StageStream, OpportunityStream, ContactRoleStream,
    HistoryStream, TaskStream, EventStream, LeadStream, ContractStream, OrderStream, CompetitorStream,
    CaseStream,
)
