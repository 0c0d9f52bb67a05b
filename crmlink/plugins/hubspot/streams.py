"""The HubSpot streams: full loads through the list API, incremental runs through search.

Incremental search uses ``modprop >= since`` and ``modprop <= upper`` (fixed when the run
starts), sorted ascending by the modification property. Search stops at 10,000 results per
query, so a capped window is followed by a query for exactly the last timestamp seen,
sorted by ``hs_object_id`` (itself windowed by id), and then by ``modprop > last``: every
record is read once, whatever the ties.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import quote

from crmlink import (
    Competitor,
    ConfigError,
    InvalidRecord,
    Opportunity,
    OpportunityContact,
    Record,
    Stage,
    StageChange,
    Stream,
    SupportCase,
    User,
    chunked,
)
from crmlink.plugins.hubspot import mapping
from crmlink.plugins.hubspot.client import MAX_URL, HubSpotApi, lacks_scope

SEARCH_CAP = 10_000
SEARCH_PAGE = 200
ASSOCIATION_BATCH = 1000
#: Association types each object type is read with: to-type list.
LINKS: dict[str, tuple[str, ...]] = {
    "companies": (), "contacts": ("companies",), "deals": ("companies", "contacts"),
    "tickets": ("companies", "contacts"),
    **{kind: ("contacts", "companies", "deals") for kind in mapping.ENGAGEMENTS},
}


def to_ms(value: Any) -> int:
    from crmlink.core.model import parse_datetime

    parsed = parse_datetime(value)
    assert parsed is not None
    return int(parsed.timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


class Session:
    """What the streams of one run share: the API, settings, property lists, pipelines.

    ``notice`` prints one line for the user; ``stored(entity)`` reads this source's live
    records of ``entity`` from the store (the competitors a deal had before this run)."""

    def __init__(self, api: HubSpotApi, config: Mapping[str, Any],
                 notice: Callable[[str], None] = lambda message: None,
                 stored: Callable[[str], Iterable[Record]] = lambda entity: ()) -> None:
        self.api, self.config = api, config
        self.notice, self.stored = notice, stored
        self.page_size = max(1, min(100, int(config.get("page_size") or 100)))
        self.started_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
        self._schemas: dict[str, list[dict[str, Any]]] = {}
        self._props: dict[str, list[str]] = {}
        self._pipelines: mapping.Pipelines | None = None
        self._ticket_stages: dict[str, mapping.TicketStage] | None = None

    @property
    def pipelines(self) -> mapping.Pipelines:
        if self._pipelines is None:
            self._pipelines = mapping.Pipelines.from_json(self.api.call("pipelines", "get_all", "deals"))
        return self._pipelines

    @property
    def ticket_stages(self) -> dict[str, mapping.TicketStage]:
        if self._ticket_stages is None:
            self._ticket_stages = mapping.ticket_stages(self.api.call("pipelines", "get_all", "tickets"))
        return self._ticket_stages

    def schema(self, object_type: str) -> list[dict[str, Any]]:
        """The portal's property definitions of ``object_type`` (read once a run)."""
        if object_type not in self._schemas:
            self._schemas[object_type] = self.api.call("properties", "get_all", object_type).get("results") or []
        return self._schemas[object_type]

    def properties(self, object_type: str) -> list[str]:
        """Mapped and useful properties that exist in the portal, plus every custom property."""
        if object_type not in self._props:
            schema = self.schema(object_type)
            names = {p["name"] for p in schema}
            custom = [p["name"] for p in schema if not p.get("hubspotDefined")]
            wanted = list(mapping.PROPERTIES[object_type])
            tier = self.config.get("tier_property")
            if object_type == "companies" and tier:
                wanted.append(tier)
            if object_type == "deals":
                wanted += [mapping.ENTERED + s for s in self.pipelines.stages]
                if self.config.get("competitor_property"):
                    wanted.append(self.competitor_property()[0])
            chosen = [p for p in wanted if p in names or p.startswith(mapping.ENTERED)]
            self._props[object_type] = list(dict.fromkeys(chosen + sorted(custom)))
        return self._props[object_type]

    def competitor_property(self) -> tuple[str, dict[str, str]]:
        """The ``competitor_property`` setting's deal property and its option labels by
        value; a :class:`ConfigError` (exit 2) when deals have no such property."""
        name = str(self.config.get("competitor_property") or "")
        schema = self.schema("deals")
        found = next((p for p in schema if p.get("name") == name), None)
        if found is None:
            raise ConfigError(unknown_property(name, schema))
        return name, {str(o.get("value")): str(o.get("label") or o.get("value"))
                      for o in found.get("options") or [] if o.get("value") not in (None, "")}


def unknown_property(name: str, schema: list[dict[str, Any]]) -> str:
    """The error for a ``competitor_property`` that deals do not have, with a guess."""
    by_label = {str(p.get("label") or "").casefold(): p["name"] for p in schema}
    guess = by_label.get(name.casefold()) or next(iter(difflib.get_close_matches(
        name, [p["name"] for p in schema], n=1)), None)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return (f"hubspot: the setting competitor_property names the deal property {name!r}, but deals in "
            f"this portal have no property with that internal name{hint}. Set competitor_property "
            "(--competitor-property) to the internal name HubSpot shows under the property in "
            "Settings > Properties > Deal properties, or remove the setting")


def split_for_url(props: list[str], budget: int = MAX_URL - 300) -> tuple[list[str], list[str]]:
    """Properties that fit in a GET URL (``&properties=x`` each), and the rest."""
    used = 0
    fits: list[str] = []
    for index, name in enumerate(props):
        used += len("&properties=") + len(quote(name))
        if used > budget:
            return fits, props[index:]
        fits.append(name)
    return fits, []


#: how far HubSpot's clock (``archivedAt``) may be behind ours (the saved ``since``)
#: without an archived record being skipped that the previous run did not see: those
#: archived in the margin before ``since`` are stored again, which changes nothing
CLOCK_MARGIN_MS = 3_600_000


def _archived_before(obj: Mapping[str, Any], since: int) -> bool:
    """Whether the archived object was archived well before ``since`` (epoch ms), by
    :data:`CLOCK_MARGIN_MS`; one without ``archivedAt`` is not."""
    archived = obj.get("archivedAt")
    return bool(archived) and to_ms(archived) < since - CLOCK_MARGIN_MS


class ObjectStream(Stream):
    """One CRM object type; yields its records, then its archived ones as deleted.

    The cursor is a position, not a ``modified_at`` (a first run lists in id order and
    the archived come last), so the stream is resumable rather than sorted: a
    checkpoint after each stored batch names the list page or search time to go on
    from, and the final ``since`` is saved only once the archived are read. An
    incremental run skips the archived ones archived before its ``since``: the run that
    saved it stored them (with a margin for the two clocks: :data:`CLOCK_MARGIN_MS`)."""

    resumable: ClassVar[bool] = True

    def __init__(self, session: Session, object_type: str, name: str, entity: type[Record]) -> None:
        self.session, self.object_type = session, object_type
        self.name, self.entity = name, entity
        self.modprop = mapping.modified_property(object_type)
        self._marker: dict[str, Any] | None = None
        self._max_seen: int | None = None

    # --- state -----------------------------------------------------------------------------
    def checkpoint(self, last: Record, state: Mapping[str, Any] | None) -> dict[str, Any]:
        return dict(self._marker or state or {})

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return dict(self._marker) if self._marker else None

    # --- reading -----------------------------------------------------------------------------
    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        props = self.session.properties(self.object_type)
        state = dict(state or {})
        since: int | None = None
        if state.get("since") and state.get("mode") != "list":
            since = to_ms(state["since"])
            source = self._search(props, since, self.session.started_ms)
            final_since = since
        else:
            upper = to_ms(state["upper"]) if state.get("upper") else self.session.started_ms
            source = self._list(props, state.get("after"), upper)
            final_since = upper
        for chunk in chunked(source, ASSOCIATION_BATCH):
            links = self._links([obj["id"] for obj, _ in chunk])
            for obj, marker in chunk:
                self._marker = marker
                if "since" in marker:
                    final_since = max(final_since, to_ms(marker["since"]))
                yield from self._safe(obj, {k: v.get(obj["id"], []) for k, v in links.items()})
        for obj in self._pages(props, None, archived=True):
            if since is None or not _archived_before(obj, since):
                yield from self._safe(obj, {})
        self._marker = {"since": iso(final_since)}

    def _safe(self, obj: dict[str, Any], links: Mapping[str, list[str]]) -> Iterator[Record | InvalidRecord]:
        try:
            yield from self.map(obj, links)
        except InvalidRecord as exc:
            yield exc

    def map(self, obj: dict[str, Any], links: Mapping[str, list[str]]) -> Iterator[Record | InvalidRecord]:
        raise NotImplementedError

    def _list(self, props: list[str], after: str | None, upper: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for obj, page_after in self._pages(props, after, archived=False, with_cursor=True):
            yield obj, {"mode": "list", "after": page_after, "upper": iso(upper)}

    def _pages(self, props: list[str], after: str | None, *, archived: bool,
               with_cursor: bool = False) -> Iterator[Any]:
        in_url, rest = split_for_url(props)
        api = self.session.api
        while True:
            page = api.call("objects.basic", "get_page", self.object_type, limit=self.session.page_size,
                            after=after, properties=in_url, archived=archived)
            results = page.get("results") or []
            if rest and results:
                self._fill(results, rest, archived)
            for obj in results:
                yield (obj, after) if with_cursor else obj
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def _fill(self, results: list[dict[str, Any]], props: list[str], archived: bool) -> None:
        """Read the properties that did not fit in the URL through batch read (a POST)."""
        body = {"inputs": [{"id": o["id"]} for o in results], "properties": props,
                "propertiesWithHistory": []}
        answer = self.session.api.call("objects.batch", "read", self.object_type,
                                       batch_read_input_simple_public_object_id=body, archived=archived)
        more = {o["id"]: o.get("properties") or {} for o in answer.get("results") or []}
        for obj in results:
            obj.setdefault("properties", {}).update(more.get(obj["id"], {}))

    # --- incremental search ------------------------------------------------------------------
    def _search(self, props: list[str], since: int, upper: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        lower_op = "GTE"
        while True:
            seen_at_last: set[str] = set()
            last_ts: int | None = None
            capped = False
            filters = [self._f(self.modprop, lower_op, since), self._f(self.modprop, "LTE", upper)]
            for obj, cap in self._query(filters, self.modprop, props):
                capped = capped or cap
                if obj is None:
                    continue
                ts = to_ms((obj.get("properties") or {}).get(self.modprop) or obj.get("updatedAt"))
                if ts != last_ts:
                    last_ts, seen_at_last = ts, set()
                seen_at_last.add(obj["id"])
                yield obj, {"since": iso(ts)}
            if not capped or last_ts is None:
                return
            # drain the last timestamp by id, so ties across the cap are neither lost nor repeated
            after_id: str | None = None
            while True:
                filters = [self._f(self.modprop, "EQ", last_ts)]
                if after_id is not None:
                    filters.append(self._f("hs_object_id", "GT", after_id))
                drained_cap = False
                for obj, cap in self._query(filters, "hs_object_id", props):
                    drained_cap = drained_cap or cap
                    if obj is None:
                        continue
                    after_id = obj["id"]
                    if obj["id"] not in seen_at_last:
                        yield obj, {"since": iso(last_ts)}
                if not drained_cap:
                    break
            since, lower_op = last_ts, "GT"

    @staticmethod
    def _f(prop: str, op: str, value: Any) -> dict[str, Any]:
        return {"propertyName": prop, "operator": op, "value": str(value)}

    def _query(self, filters: list[dict[str, Any]], sort: str,
               props: list[str]) -> Iterator[tuple[dict[str, Any] | None, bool]]:
        """Page one search; the final ``(None, True)`` says the 10,000 cap cut it short."""
        offset = 0
        while True:
            body = {"filterGroups": [{"filters": filters}], "properties": props,
                    "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                    "limit": SEARCH_PAGE, "after": str(offset) if offset else None}
            page = self.session.api.call("objects.search", "do_search", self.object_type,
                                         public_object_search_request=body, search=True)
            results = page.get("results") or []
            for obj in results:
                yield obj, False
            nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not nxt or not results:
                return
            offset = int(nxt)
            if offset + SEARCH_PAGE > SEARCH_CAP:
                yield None, True
                return

    # --- associations --------------------------------------------------------------------------
    def _links(self, ids: list[str]) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        self._labels: dict[tuple[str, str], list[str]] = {}
        for to_type in LINKS[self.object_type]:
            out[to_type] = self._associations(ids, to_type)
        return out

    def _associations(self, ids: list[str], to_type: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        inputs: list[dict[str, Any]] = [{"id": i} for i in ids]
        while inputs:
            body = {"inputs": inputs}
            answer = self.session.api.call(
                "associations", "get_page", self.object_type, to_type,
                batch_input_public_fetch_associations_batch_request=body)
            inputs = []
            for result in answer.get("results") or []:
                source = str(result["from"]["id"])
                targets = found.setdefault(source, [])
                for target in result.get("to") or []:
                    tid = str(target["toObjectId"])
                    types = target.get("associationTypes") or []
                    labels = [t.get("label") for t in types if t.get("label")]
                    if any(str(x).lower() == "primary" for x in labels):
                        targets.insert(0, tid)
                    else:
                        targets.append(tid)
                    self._labels[(source, tid)] = labels
                nxt = ((result.get("paging") or {}).get("next") or {}).get("after")
                if nxt:
                    inputs.append({"id": source, "after": nxt})
        return {k: list(dict.fromkeys(v)) for k, v in found.items()}


class CompanyStream(ObjectStream):
    def map(self, obj: dict[str, Any], links: Mapping[str, list[str]]) -> Iterator[Record]:
        yield mapping.account(obj, None, self.session.config.get("tier_property"))


class ContactStream(ObjectStream):
    def map(self, obj: dict[str, Any], links: Mapping[str, list[str]]) -> Iterator[Record]:
        companies = links.get("companies") or []
        yield mapping.contact(obj, companies[0] if companies else None)


class DealStream(ObjectStream):
    """Deals, their stage history (``hs_date_entered_*``) and their contacts' roles, and,
    with ``competitor_property`` set, one competitor per value of that property.

    A competitor no longer on a deal read again is stored deleted. The saved state names
    the competitor property it was read with: when the setting names another one, the
    deals are listed again in full so every deal's competitors are read."""

    companions: ClassVar[tuple[type[Record], ...]] = (StageChange, OpportunityContact, Competitor)

    def __init__(self, session: Session, object_type: str, name: str, entity: type[Record]) -> None:
        super().__init__(session, object_type, name, entity)
        self.competitor = session.config.get("competitor_property") or None
        self._labels_by_value: dict[str, str] = {}
        self._had: dict[str, dict[str, Competitor]] | None = None

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        if self.competitor:
            self._labels_by_value = self.session.competitor_property()[1]
            if state and state.get("competitor_property") != self.competitor:
                self.session.notice(f"hubspot: competitor_property is now {self.competitor!r}: reading "
                                    "every deal again for its competitors")
                state = None
        yield from super().records(state)

    def checkpoint(self, last: Record, state: Mapping[str, Any] | None) -> dict[str, Any]:
        return self._tagged(super().checkpoint(last, state))

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        found = super().next_state(state)
        return self._tagged(found) if found is not None else None

    def _tagged(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "competitor_property": self.competitor} if self.competitor else state

    def map(self, obj: dict[str, Any], links: Mapping[str, list[str]]) -> Iterator[Record]:
        pipelines = self.session.pipelines
        companies = links.get("companies") or []
        yield mapping.opportunity(obj, companies[0] if companies else None, pipelines)
        yield from mapping.stage_changes(obj, pipelines)
        for contact_id in links.get("contacts") or []:
            labels = getattr(self, "_labels", {}).get((str(obj["id"]), contact_id), [])
            yield mapping.opportunity_contact(obj, contact_id, labels)
        if self.competitor:
            yield from self._competitors(obj)

    def _competitors(self, deal: dict[str, Any]) -> Iterator[Competitor]:
        assert self.competitor is not None
        now = list(mapping.competitors(deal, self.competitor, self._labels_by_value))
        yield from now
        if self._had is None:  # this source's stored competitors, by deal (read once a run)
            self._had = {}
            for record in self.session.stored(Competitor.entity):
                if isinstance(record, Competitor) and record.opportunity_id:
                    self._had.setdefault(record.opportunity_id, {})[record.remote_id] = record
        before = self._had.get(str(deal["id"]), {})
        kept = {c.remote_id for c in now if not c.deleted}
        modified = (deal.get("properties") or {}).get("hs_lastmodifieddate") or deal.get("updatedAt")
        for remote_id, record in before.items():
            if remote_id not in kept:
                yield dataclasses.replace(record, deleted=True, modified_at=modified)
        self._had[str(deal["id"])] = {c.remote_id: c for c in now if not c.deleted}


class TicketStream(ObjectStream):
    """Tickets as support cases. Optional: without the ``tickets`` scope the stream is
    skipped with one notice, and a later run with the scope reads them all."""

    skipped = False
    stages: dict[str, mapping.TicketStage] = {}

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        try:
            self.session.properties(self.object_type)
            self.stages = self.session.ticket_stages
        except Exception as exc:
            if not lacks_scope(exc):
                raise
            self.session.notice("hubspot: tickets skipped: the token lacks the 'tickets' scope; add it "
                                "to the private app (Settings > Integrations > Private Apps > Scopes) "
                                "to read support tickets")
            self.skipped = True
            return
        yield from super().records(state)

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return None if self.skipped else super().next_state(state)

    def map(self, obj: dict[str, Any], links: Mapping[str, list[str]]) -> Iterator[Record | InvalidRecord]:
        yield mapping.support_case(obj, links, self.stages)


class EngagementStream(ObjectStream):
    def map(self, obj: dict[str, Any], links: Mapping[str, list[str]]) -> Iterator[Record | InvalidRecord]:
        yield mapping.interaction(obj, self.object_type, links)


class OwnerStream(Stream):
    """Owners (our people); archived owners come back as inactive users."""

    name, entity, snapshot = "owners", User, True

    def __init__(self, session: Session) -> None:
        self.session = session

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record]:
        for archived in (False, True):
            after = None
            while True:
                page = self.session.api.call("owners", "get_page", limit=500, after=after, archived=archived)
                for owner in page.get("results") or []:
                    yield mapping.user(owner, archived)
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return {"complete": True}


class StageStream(Stream):
    """Deal pipelines' stages, with labels, order, probability and closed/won flags."""

    name, entity, snapshot = "deal_stages", Stage, True

    def __init__(self, session: Session) -> None:
        self.session = session

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record]:
        yield from self.session.pipelines.records()

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return {"complete": True}


def build(session: Session) -> list[Stream]:
    from crmlink import Account, Contact, Interaction

    streams: list[Stream] = [OwnerStream(session), StageStream(session),
                             CompanyStream(session, "companies", "companies", Account),
                             ContactStream(session, "contacts", "contacts", Contact),
                             DealStream(session, "deals", "deals", Opportunity)]
    streams += [EngagementStream(session, kind, kind, Interaction) for kind in mapping.ENGAGEMENTS]
    streams.append(TicketStream(session, "tickets", "support_cases", SupportCase))
    return streams
