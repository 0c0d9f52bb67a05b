"""What the audit scores together: one CRM source on its own, or several CRM sources
merged into one portfolio (:mod:`crmlink.core.merge` decides which records are one).

A unit gives the audit the records it scores (:class:`SourceData`, keyed by the unit's
ids), the interaction rows of its sources in those ids, the unknown people of its
accounts, and its deals source by source (stages, contact roles and stage history stay
with the CRM that has them).

In a merged unit an account's key is the global id (``source:remote_id``) of its primary
record, and the merged account is a copy of that record whose empty fields the other
records fill in; a contact's, user's or deal's id is its remote id in the primary source
that has it, written ``SOURCE:ID`` where another record of the unit has the same id. A
single source keeps its remote ids everywhere, so its audit is exactly what it was
before merging existed.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import sqlalchemy as sa

from crmlink.core import schema
from crmlink.core.analysis.accumulate import interaction_rows
from crmlink.core.analysis.sortedkeys import SortedKeys
from crmlink.core.identity import IdentitySettings, canonical_address, domain_of, normalize_address
from crmlink.core.ltc import ExecutionIndex
from crmlink.core.merge import (
    ACCOUNT,
    CONTACT,
    USER,
    Conflict,
    Joined,
    MatchRules,
    MergePlan,
    Ref,
    SourceRecords,
    plan_merge,
    source_order,
)
from crmlink.core.model import (
    Account,
    Contact,
    ExecutionRecord,
    Opportunity,
    OpportunityContact,
    Record,
    Stage,
    StageChange,
    User,
)

if TYPE_CHECKING:
    from crmlink.core.analysis.view import AccountView
    from crmlink.core.store import Store

T = TypeVar("T", bound=Record)


class Execution(Protocol):
    """The execution records of a deal (:class:`~crmlink.core.ltc.ExecutionIndex`)."""

    def of(self, opportunity: Opportunity) -> list[ExecutionRecord]: ...


@dataclass
class SourceData:
    """Everything but the interactions, keyed by the unit's ids: of one source, or (for
    a merged unit) the merged records, or one source's deals."""

    accounts: dict[str, Account] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    opportunities: dict[str, Opportunity] = field(default_factory=dict)
    stages: dict[str, Stage] = field(default_factory=dict)
    execution: Execution = field(default_factory=lambda: ExecutionIndex(()))
    roles: dict[str, list[OpportunityContact]] = field(default_factory=lambda: defaultdict(list))
    history: dict[str, list[StageChange]] = field(default_factory=lambda: defaultdict(list))
    #: a merged unit's deals: each deal's key -> the record as its source has it
    origin: dict[str, Opportunity] = field(default_factory=dict)
    contacts_by_account: dict[str, list[Contact]] = field(init=False)
    opps_by_account: dict[str, list[Opportunity]] = field(init=False)

    def __post_init__(self) -> None:
        self.contacts_by_account = defaultdict(list)
        for contact in self.contacts.values():
            if contact.account_id:
                self.contacts_by_account[contact.account_id].append(contact)
        self.opps_by_account = defaultdict(list)
        for opp in self.opportunities.values():
            self.opps_by_account[opp.account_id or ""].append(opp)

    @classmethod
    def load(cls, store: Store, source: str) -> SourceData:
        """One source's records as the store has them."""
        def load(kind: type[T]) -> dict[str, T]:
            return {r.remote_id: r for r in store.records_of(kind, source=source)}

        roles: dict[str, list[OpportunityContact]] = defaultdict(list)
        for role in store.records_of(OpportunityContact, source=source):
            roles[role.opportunity_id or ""].append(role)
        history: dict[str, list[StageChange]] = defaultdict(list)
        for change in store.records_of(StageChange, source=source):
            history[change.opportunity_id or ""].append(change)
        return cls(load(Account), {r.remote_id: r for r in store.records_of(User, source=source, include_deleted=True)},
                   load(Contact), load(Opportunity), load(Stage),
                   ExecutionIndex(store.records_of(ExecutionRecord, source=source)), roles, history)

    @classmethod
    def load_chunk(cls, conn: sa.Connection, source: str, accounts: Sequence[str], users: dict[str, User],
                   stages: dict[str, Stage]) -> SourceData:
        """The records of :meth:`load` that belong to ``accounts`` (remote ids) of
        ``source``, read on ``conn`` (its snapshot): those accounts (also one marked
        deleted since they were listed), their contacts and deals, and the deals' contact
        roles, stage history and execution records; ``users`` and ``stages`` are the
        source's, whole. Each account's contacts and deals, and each deal's roles and
        history, are those of :meth:`load`, in the same order."""
        from crmlink.core.store import records_in

        found = {r.remote_id: r for r in records_in(conn, Account, source, "remote_id", accounts,
                                                    include_deleted=True)}
        contacts = {r.remote_id: r for r in records_in(conn, Contact, source, "account_id", accounts)}
        deals = {r.remote_id: r for r in records_in(conn, Opportunity, source, "account_id", accounts)}
        return cls._with_deals(conn, source, found, users, contacts, deals, stages)

    @classmethod
    def load_deals(cls, conn: sa.Connection, source: str, stages: dict[str, Stage]) -> SourceData:
        """The deals of ``source`` whose account is not one of its live accounts (none,
        or deleted, or unknown), with their roles, history and execution records, read
        on ``conn``: the deals a chunked audit judges at the end."""
        from crmlink.core.store import records_where

        table, accounts = schema.TABLES["opportunity"], schema.TABLES["account"]
        live = sa.select(accounts.c.remote_id).where(accounts.c.source == source, accounts.c.deleted.is_(False))
        outside = sa.or_(table.c.account_id.is_(None), table.c.account_id.not_in(live))
        deals = {r.remote_id: r for r in records_where(conn, Opportunity, source, outside)}
        return cls._with_deals(conn, source, {}, {}, {}, deals, stages)

    @classmethod
    def _with_deals(cls, conn: sa.Connection, source: str, accounts: dict[str, Account], users: dict[str, User],
                    contacts: dict[str, Contact], deals: dict[str, Opportunity],
                    stages: dict[str, Stage]) -> SourceData:
        from crmlink.core.store import records_in

        roles: dict[str, list[OpportunityContact]] = defaultdict(list)
        for role in records_in(conn, OpportunityContact, source, "opportunity_id", deals):
            roles[role.opportunity_id or ""].append(role)
        history: dict[str, list[StageChange]] = defaultdict(list)
        for change in records_in(conn, StageChange, source, "opportunity_id", deals):
            history[change.opportunity_id or ""].append(change)
        return cls(accounts, users, contacts, deals, stages, execution_of(conn, source, deals.values()),
                   roles, history)

    def entry_ids(self, opp: Opportunity) -> tuple[str, str, str, str | None]:
        """The deal's global id, source and remote id as its CRM has them, and its
        account's global id in the audit."""
        original = self.origin.get(opp.remote_id)
        if original is None:
            return opp.id, opp.source, opp.remote_id, f"{opp.source}:{opp.account_id}" if opp.account_id else None
        return original.id, original.source, original.remote_id, opp.account_id


def execution_of(conn: sa.Connection, source: str, deals: Iterable[Opportunity]) -> ExecutionIndex:
    """The execution index of ``source`` restricted to what :meth:`ExecutionIndex.of
    <crmlink.core.ltc.ExecutionIndex.of>` finds for ``deals``: the records naming them,
    the contracts they or those records name, and the records under those contracts."""
    from crmlink.core.ltc import CONTRACT_LINK_FIELDS
    from crmlink.core.store import records_in

    deals = list(deals)
    found = {r.remote_id: r for r in records_in(conn, ExecutionRecord, source, "opportunity_id",
                                                [d.remote_id for d in deals])}
    contracts = {r.contract_id for r in found.values() if r.contract_id}
    contracts |= {str(d.extra[k]) for d in deals for k in CONTRACT_LINK_FIELDS if d.extra.get(k)}
    for column in ("remote_id", "contract_id"):
        for record in records_in(conn, ExecutionRecord, source, column, sorted(contracts)):
            found.setdefault(record.remote_id, record)
    return ExecutionIndex(found.values())


def account_keys(conn: sa.Connection, source: str) -> SortedKeys:
    """The remote ids of the live accounts of ``source``, sorted (the audit's order)."""
    table = schema.TABLES["account"]
    return SortedKeys(sorted(conn.execute(sa.select(table.c.remote_id).where(
        table.c.source == source, table.c.deleted.is_(False))).scalars()))


def small_tables(conn: sa.Connection, source: str) -> tuple[dict[str, User], dict[str, Stage]]:
    """The users (deleted ones too) and the stages of ``source``, whole, as :meth:`SourceData.load`
    has them."""
    from crmlink.core.store import records_where

    users = {r.remote_id: r for r in records_where(conn, User, source, include_deleted=True)}
    return users, {r.remote_id: r for r in records_where(conn, Stage, source)}


class Unit:
    """One CRM source audited on its own (and the mail and calendar sources linked to it).
    Its records (:attr:`data`) are loaded when first read: a chunked audit
    (:mod:`.chunks`) never reads them whole."""

    merged = False

    def __init__(self, store: Store, source: str) -> None:
        self.store = store
        self.sources: tuple[str, ...] = (source,)

    @cached_property
    def data(self) -> SourceData:
        """Every record of the source (:meth:`SourceData.load`)."""
        return SourceData.load(self.store, self.sources[0])

    def rows(self, conn: sa.Connection, until: float) -> Iterator[tuple[Any, ...]]:
        """The unit's interaction rows up to ``until``, in the unit's ids."""
        return interaction_rows(conn, self.sources[0], until)

    def rows_of(self, conn: sa.Connection, until: float, accounts: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """The rows of :meth:`rows` of ``accounts`` alone, and those naming no account
        (which belong to the account of their contacts), through the account index."""
        from crmlink.core.aggregate_store import account_rows

        return account_rows(conn, self.sources[0], accounts, until, accountless=True)

    def correspondents(self, until: float) -> list[tuple[str, str, str | None, float, bool]]:
        """The unknown people's rows up to ``until``, keyed by the unit's account keys."""
        return self.store.correspondent_rows(self.sources[0], until)

    def deal_sets(self) -> list[SourceData]:
        """The deals with their stages, roles and history, one source at a time."""
        return [self.data]

    def key(self, view: AccountView) -> str:
        """The key of ``view``'s account in :attr:`data`."""
        return view.account.remote_id

    def merged_from(self, view: AccountView) -> list[tuple[Joined, bool]] | None:
        """The source records of a merged account with how each was joined (and whether
        it is the primary one); ``None`` for an account of one record."""
        return None

    def contacts_from(self, view: AccountView) -> dict[str, list[tuple[Joined, bool]]]:
        """The same for each merged contact of the account, by contact id."""
        return {}


class MergedUnit(Unit):
    """Several CRM sources as one portfolio, joined by a :class:`~crmlink.core.merge.MergePlan`."""

    merged = True

    def __init__(self, store: Store, sources: Sequence[str], settings: IdentitySettings,
                 rules: MatchRules) -> None:
        self.store = store
        raw = {source: SourceData.load(store, source) for source in sources}
        order = source_order(sources, rules.source_order, last_synced(store))
        self.sources = tuple(order)
        self.plan = plan_merge({s: SourceRecords(list(d.accounts.values()), list(d.contacts.values()),
                                                 [u for u in d.users.values() if not u.deleted])
                                for s, d in raw.items()}, settings, rules, order, our_domains(raw, settings))
        self.rank = {source: i for i, source in enumerate(order)}
        self.ids = _Ids(self.plan, raw)
        self.data = self._merged(raw)
        self.known_addresses = {_canonical(c.email) for c in self.data.contacts.values()} - {None}
        self.contact_groups = {self.ids.contact(g[0][1], g[0][2]): g for g in self.plan.groups.get(CONTACT, [])}
        self.raw = raw

    @property
    def conflicts(self) -> list[Conflict]:
        return self.plan.conflicts

    # -- the merged records ------------------------------------------------------------------

    def _merged(self, raw: Mapping[str, SourceData]) -> SourceData:
        ids = self.ids
        accounts = {ids.account(s, rid): self._merge(ACCOUNT, s, rec, raw) for s, d in raw.items()
                    for rid, rec in d.accounts.items() if ids.primary(ACCOUNT, s, rid)}
        contacts = {ids.contact(s, rid): self._merge(CONTACT, s, rec, raw) for s, d in raw.items()
                    for rid, rec in d.contacts.items() if ids.primary(CONTACT, s, rid)}
        users = {ids.user(s, rid): self._merge(USER, s, rec, raw) for s, d in raw.items()
                 for rid, rec in d.users.items() if ids.primary(USER, s, rid)}
        opportunities = {ids.deal(s, rid): self._deal(s, opp) for s, d in raw.items()
                         for rid, opp in d.opportunities.items()}
        return SourceData(dict(sorted(accounts.items())), users, contacts, opportunities)

    def _merge(self, kind: str, source: str, record: T, raw: Mapping[str, SourceData]) -> T:
        """A copy of the primary ``record`` in the unit's ids, its empty fields filled
        from the group's other records in source order."""
        merged = copy.copy(record)
        members = self.ids.group(kind, source, record.remote_id)
        others = [_record(raw, ref) for ref in members[1:]]
        filled_from = {name: source for name in _fields(record)}
        for other in others:
            for name in _fields(record):
                if getattr(merged, name) is None and getattr(other, name) is not None:
                    setattr(merged, name, getattr(other, name))
                    filled_from[name] = other.source
        if isinstance(merged, Account):
            merged.remote_id = record.remote_id
            if merged.tier is not None and isinstance(record, Account) and record.tier is None:
                # the tier's source comes with it
                merged.tier_source = next(o.tier_source for o in others if isinstance(o, Account) and o.tier)
            merged.owner_id = self.ids.user_ref(filled_from["owner_id"], merged.owner_id)
            merged.parent_id = self.ids.account_ref(filled_from["parent_id"], merged.parent_id)
        elif isinstance(merged, Contact):
            merged.remote_id = self.ids.contact(source, record.remote_id)
            merged.account_id = self.ids.account_ref(filled_from["account_id"], merged.account_id)
            merged.reports_to_id = self.ids.contact_ref(filled_from["reports_to_id"], merged.reports_to_id)
        else:
            merged.remote_id = self.ids.user(source, record.remote_id)
        return merged

    def _deal(self, source: str, opp: Opportunity) -> Opportunity:
        deal = copy.copy(opp)
        deal.remote_id = self.ids.deal(source, opp.remote_id)
        deal.account_id = self.ids.account_ref(source, opp.account_id)
        deal.owner_id = self.ids.user_ref(source, opp.owner_id)
        return deal

    def deal_sets(self) -> list[SourceData]:
        result = []
        for source in sorted(self.raw):
            data, ids = self.raw[source], self.ids
            deals = {ids.deal(source, rid): self.data.opportunities[ids.deal(source, rid)] for rid in data.opportunities}
            roles: dict[str, list[OpportunityContact]] = defaultdict(list)
            for opp_id, found in data.roles.items():
                for role in found:
                    copied = copy.copy(role)
                    copied.opportunity_id = ids.deal(source, opp_id) if opp_id else role.opportunity_id
                    copied.contact_id = ids.contact_ref(source, role.contact_id)
                    roles[copied.opportunity_id or ""].append(copied)
            history = {ids.deal(source, opp_id): changes for opp_id, changes in data.history.items() if opp_id}
            origin = {ids.deal(source, rid): opp for rid, opp in data.opportunities.items()}
            result.append(SourceData(
                {}, {}, {}, deals, data.stages, _Execution(data.execution, origin), roles,
                defaultdict(list, history), origin))
        return result

    # -- interactions --------------------------------------------------------------------------

    def rows(self, conn: sa.Connection, until: float) -> Iterator[tuple[Any, ...]]:
        """Each source's own interactions, then those of the mail and calendar sources
        linked to them: one message or meeting linked to two merged sources (an
        interaction for each CRM that knows the people) is one interaction, naming the
        people either CRM found."""
        for source in self.sources:
            translate = self._translator(source)
            for row in _interactions(conn, until, own=source):
                yield translate(row[:-2])
        linked: dict[tuple[str, str, str | None], list[Any]] = {}
        for source in self.sources:
            translate = self._translator(source)
            for row in _interactions(conn, until, linked_to=source):
                mail_source, remote_id = row[-2], row[-1]
                item = translate(row[:-2])
                key = (mail_source, remote_id.split(f"|{source}|", 1)[0], item[0])
                found = linked.get(key)
                if found is None:
                    linked[key] = list(item)
                    continue
                found[5] = _union(found[5], item[5])
                found[6] = _union(found[6], item[6])
        yield from (tuple(row) for row in linked.values())

    def _translator(self, source: str) -> Any:
        accounts, contacts = self.ids.accounts[source], self.ids.contacts[source]
        users, deals = self.ids.users[source], self.ids.deals[source]
        prefix = f"{source}:"

        def translate(row: Sequence[Any]) -> tuple[Any, ...]:
            (account_id, kind, direction, method, at, user_ids, contact_ids, recipients, opportunity,
             subject, campaign) = row
            return (accounts.get(account_id) or prefix + account_id if account_id else None, kind, direction,
                    method, at, _translate(user_ids, users, prefix), _translate(contact_ids, contacts, prefix),
                    recipients, deals.get(opportunity) or prefix + opportunity if opportunity else None,
                    subject, campaign)

        return translate

    def correspondents(self, until: float) -> list[tuple[str, str, str | None, float, bool]]:
        """Unknown people of every source, less those another source has as a contact."""
        known = self.known_addresses
        rows: dict[tuple[str, str, float, bool], str | None] = {}  # one message linked to two sources: once
        for source in self.sources:
            accounts = self.ids.accounts[source]
            for a, address, name, at, sent in self.store.correspondent_rows(source, until):
                if _canonical(address) not in known:
                    rows.setdefault((accounts.get(a) or f"{source}:{a}", address, at, sent), name)
        return [(a, address, name, at, sent) for (a, address, at, sent), name in rows.items()]

    def key(self, view: AccountView) -> str:
        return view.account.id

    def merged_from(self, view: AccountView) -> list[tuple[Joined, bool]] | None:
        account = view.account
        members = self.ids.group(ACCOUNT, account.source, account.remote_id)
        if len(members) < 2:
            return None
        joined = self.plan.joined[ACCOUNT]
        return [(joined[ref], i == 0) for i, ref in enumerate(members)]

    def contacts_from(self, view: AccountView) -> dict[str, list[tuple[Joined, bool]]]:
        joined = self.plan.joined[CONTACT]
        return {c.remote_id: [(joined[ref], i == 0) for i, ref in enumerate(self.contact_groups[c.remote_id])]
                for c in view.contacts if c.remote_id in self.contact_groups}


class _Ids:
    """Each source's remote ids -> the unit's keys, by kind."""

    def __init__(self, plan: MergePlan, raw: Mapping[str, SourceData]) -> None:
        self.groups = {kind: plan.group_of(kind) for kind in (ACCOUNT, CONTACT, USER)}
        self.accounts = {s: {rid: f"{self._primary(ACCOUNT, s, rid)[1]}:{self._primary(ACCOUNT, s, rid)[2]}"
                             for rid in d.accounts} for s, d in raw.items()}
        self.contacts = self._keys(CONTACT, {s: list(d.contacts) for s, d in raw.items()})
        self.users = self._keys(USER, {s: list(d.users) for s, d in raw.items()})
        self.deals = self._keys("deal", {s: list(d.opportunities) for s, d in raw.items()})

    def _primary(self, kind: str, source: str, rid: str) -> Ref:
        ref = (kind, source, rid)
        group = self.groups.get(kind, {}).get(ref)
        return group[0] if group else ref

    def _keys(self, kind: str, ids: Mapping[str, Iterable[str]]) -> dict[str, dict[str, str]]:
        """Each record's key: its primary's remote id, ``SOURCE:ID`` when two merged
        records would have the same one."""
        primaries = {s: {rid: self._primary(kind, s, rid) for rid in rids} for s, rids in ids.items()}
        taken: dict[str, set[Ref]] = defaultdict(set)
        for found in primaries.values():
            for ref in found.values():
                taken[ref[2]].add(ref)
        return {s: {rid: ref[2] if len(taken[ref[2]]) == 1 else f"{ref[1]}:{ref[2]}" for rid, ref in found.items()}
                for s, found in primaries.items()}

    def group(self, kind: str, source: str, rid: str) -> list[Ref]:
        ref = (kind, source, rid)
        return self.groups[kind].get(ref, [ref])

    def primary(self, kind: str, source: str, rid: str) -> bool:
        return self._primary(kind, source, rid) == (kind, source, rid)

    def account(self, source: str, rid: str) -> str:
        return self.accounts[source][rid]

    def contact(self, source: str, rid: str) -> str:
        return self.contacts[source][rid]

    def user(self, source: str, rid: str) -> str:
        return self.users[source][rid]

    def deal(self, source: str, rid: str) -> str:
        return self.deals[source][rid]

    def account_ref(self, source: str, rid: str | None) -> str | None:
        return None if rid is None else self.accounts[source].get(rid) or f"{source}:{rid}"

    def contact_ref(self, source: str, rid: str | None) -> str | None:
        return None if rid is None else self.contacts[source].get(rid) or f"{source}:{rid}"

    def user_ref(self, source: str, rid: str | None) -> str | None:
        return None if rid is None else self.users[source].get(rid) or f"{source}:{rid}"


class _Execution:
    """A source's execution index asked with the deal as its source has it."""

    def __init__(self, index: Execution, origin: Mapping[str, Opportunity]) -> None:
        self.index, self.origin = index, origin

    def of(self, opportunity: Opportunity) -> list[ExecutionRecord]:
        return self.index.of(self.origin.get(opportunity.remote_id, opportunity))


def _interactions(conn: sa.Connection, until: float, *, own: str | None = None,
                  linked_to: str | None = None) -> Iterator[tuple[Any, ...]]:
    """The live interactions up to ``until`` of the source ``own``, or of other sources
    linked to ``linked_to``: the columns of :data:`~crmlink.core.store.INTERACTION_COLUMNS`
    as stored (epoch seconds, ``;``-joined ids), then the interaction's source and remote id."""
    from crmlink.core.store import INTERACTION_COLUMNS

    table = schema.TABLES["interaction"]
    columns = [*INTERACTION_COLUMNS, "source", "remote_id"]
    query = sa.select(*[sa.type_coerce(table.c[c], _stored(table.c[c].type)) for c in columns]).where(
        table.c.deleted == sa.false(), sa.type_coerce(table.c.occurred_at, sa.Float()) <= until)
    if own is not None:
        query = query.where(table.c.source == own)
    else:
        query = query.where(table.c.link_source == linked_to, table.c.source != linked_to)
    for row in conn.execute(query.execution_options(yield_per=5000)):
        yield tuple(row)


def _stored(kind: Any) -> Any:
    return kind.impl_instance if isinstance(kind, sa.types.TypeDecorator) else kind


def _union(a: str | None, b: str | None) -> str | None:
    if not a or not b:
        return a or b
    return ";".join(dict.fromkeys([*a.split(";"), *b.split(";")]))


def _canonical(email: str | None) -> str | None:
    address = normalize_address(email)
    return canonical_address(address) if address else None


def _translate(ids: str | None, mapping: Mapping[str, str], prefix: str) -> str | None:
    if not ids:
        return ids
    keys = [mapping.get(rid) or prefix + rid for rid in ids.split(";")]
    return ";".join(dict.fromkeys(keys))


def _fields(record: Record) -> tuple[str, ...]:
    """The fields a merged record takes from its group (its own id, source and
    bookkeeping stay)."""
    names = _FIELDS.get(record.entity)
    if names is None:
        skip = {"remote_id", "source", "modified_at", "deleted", "extra", "raw"}
        names = _FIELDS[record.entity] = tuple(f.name for f in dataclasses.fields(record) if f.name not in skip)
    return names


_FIELDS: dict[str, tuple[str, ...]] = {}


def _record(raw: Mapping[str, SourceData], ref: Ref) -> Record:
    kind, source, rid = ref
    data = raw[source]
    if kind == ACCOUNT:
        return data.accounts[rid]
    return data.contacts[rid] if kind == CONTACT else data.users[rid]


def our_domains(raw: Mapping[str, SourceData], settings: IdentitySettings) -> set[str]:
    """Our mail domains: the configured ones and those of our users' addresses."""
    ours = set(settings.internal_domains)
    for data in raw.values():
        for user in data.users.values():
            address = normalize_address(user.email)
            if address and domain_of(address) not in settings.public_domains:
                ours.add(domain_of(address))
    return ours


def last_synced(store: Store) -> dict[str, datetime | None]:
    """When each source last finished a sync that stored records (ok or partial)."""
    runs = schema.sync_runs
    query = sa.select(runs.c.source, sa.func.max(runs.c.finished_at)).where(
        runs.c.status.in_(("ok", "partial"))).group_by(runs.c.source)
    with store.engine.connect() as conn:
        return {source: _as_datetime(at) for source, at in conn.execute(query)}


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    from datetime import timezone

    return datetime.fromtimestamp(float(value), timezone.utc)


def units(store: Store, sources: Sequence[str], settings: IdentitySettings, rules: MatchRules,
          merge: bool = True, only: set[str] | None = None) -> Iterator[Unit]:
    """The units to audit ``sources`` in: one merged unit for two or more CRM sources
    when merging is on, else one unit per source (loaded one at a time; with ``only``,
    just those in it)."""
    if merge and rules.enabled and len(sources) > 1:
        yield MergedUnit(store, sources, settings, rules)
        return
    for source in sources:
        if only is None or source in only:
            yield Unit(store, source)


__all__ = ["SourceData", "Unit", "MergedUnit", "units", "last_synced", "our_domains"]
