"""The audit: load the records of each unit (one source, or several CRM sources merged
into one portfolio: :mod:`.units`), fold the interactions, call the scoring and findings
hooks, and build the audit document (:mod:`.assemble`,
:class:`~crmlink.core.document.AuditDocument`)."""

from __future__ import annotations

import gc
import logging
from array import array
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, time, timedelta, timezone
from functools import cached_property
from typing import Any, TextIO

from crmlink.core import parallel
from crmlink.core.analysis.accumulate import AccountData, Accumulator
from crmlink.core.analysis.aggregates import FoldCounts, classifiers, fingerprint, fold_unit
from crmlink.core.analysis.aggregates import enabled as aggregates_enabled
from crmlink.core.analysis.assemble import (
    DealCounted,
    PortfolioTally,
    conflict_findings,
    deal_counted,
    merge_summary,
    opportunity_entry,
    tier_target,
)
from crmlink.core.analysis.cache import StoredDeal, StoredPair, UnitCache, unit_cache
from crmlink.core.analysis.cache import enabled as cache_enabled
from crmlink.core.analysis.chunks import (
    MERGED_WHOLE,
    Reader,
    SourceChunks,
    stage_percentiles,
    whole_reason,
)
from crmlink.core.analysis.history import month_ends
from crmlink.core.analysis.spill import (
    NUMBERS,
    Chained,
    Pickled,
    SortedNumbers,
    Spilled,
    SpilledView,
)
from crmlink.core.analysis.spool import AccountSpool
from crmlink.core.analysis.summary import (
    AccountSummary,
    OnDemand,
    OpportunitySummary,
    opportunity_summary,
)
from crmlink.core.analysis.units import MergedUnit, SourceData, Unit, units
from crmlink.core.analysis.view import AccountView, OpportunityView, PortfolioView
from crmlink.core.analysis.workers import PARALLEL_FROM, UnitWork
from crmlink.core.document import (
    SCHEMA_VERSION,
    AccountEntry,
    AuditDocument,
    Departure,
    OpportunityEntry,
    Presentation,
    account_jsonb,
)
from crmlink.core.evaluation.relationship import with_crm_override
from crmlink.core.findings import SEVERITY_RANK, Finding
from crmlink.core.host import PluginHost
from crmlink.core.identity import IdentitySettings
from crmlink.core.merge import MatchRules
from crmlink.core.progress import Progress, untold
from crmlink.core.store import Store

log = logging.getLogger(__name__)


def as_of_timestamp(day: date | None) -> float:
    """The end of ``day`` (UTC) in epoch seconds; today when ``None``."""
    day = day or datetime.now(timezone.utc).date()
    return datetime.combine(day + timedelta(days=1), time(), timezone.utc).timestamp() - 1e-3


class Audit:
    """Runs the audit of one store as of one date; ``merge=False`` audits several CRM
    sources side by side even when ``identity.match.enabled`` would merge them."""

    def __init__(self, store: Store, host: PluginHost, config: Mapping[str, Any],
                 as_of: date | None = None, *, merge: bool = True, progress: Progress | None = None) -> None:
        self.store, self.host, self.config, self.merge = store, host, config, merge
        #: told of each unit's accounts as they are done (:data:`~crmlink.core.progress.Progress`:
        #: the unit's source, or its sources joined by "+"; after the last account of the
        #: last unit the portfolio's findings and the document remain)
        self.progress = progress
        self.as_of_date = as_of or datetime.now(timezone.utc).date()
        self.as_of = as_of_timestamp(self.as_of_date)
        self.previous = self.as_of - config["findings"]["previous_period_days"] * 86400.0
        #: where the folded accounts came from, over every fold of this audit
        self.fold_counts = FoldCounts()
        #: accounts whose entries came from the audit's cache (:mod:`.cache`), not judged again
        self.from_cache = 0
        self._fingerprint: str | None = None
        #: the store readers of the units audited in chunks, open until the document is done
        self._readers = ExitStack()
        #: the units whose cache is being stored, in a thread of its own (:meth:`_stored`)
        self._storing: list[UnitCache] = []

    # -- folding interactions ---------------------------------------------------------------

    def fold(self, unit: Unit) -> tuple[dict[str, AccountData], dict[str, AccountData]]:
        """Each account's aggregates now and at the previous period."""
        folded = self._fold(unit, [self.as_of, self.previous])
        return {a: found[0] for a, found in folded.items()}, {a: found[1] for a, found in folded.items()}

    def fold_at(self, unit: Unit, views: Sequence[AccountView], days: Sequence[date]) -> list[list[AccountData]]:
        """Each account's aggregates as of the end of each of ``days`` (ascending), in the
        order of ``views``."""
        folded = self.fold_keys(unit, days)
        return [folded[unit.key(v)] for v in views]

    def fold_keys(self, unit: Unit, days: Sequence[date]) -> dict[str, list[AccountData]]:
        """Each account's aggregates as of the end of each of ``days`` (ascending), by
        its key in the unit."""
        return self._fold(unit, [as_of_timestamp(day) for day in days])

    def _aggregates_print(self) -> str | None:
        """The fingerprint the audit's folds read the aggregates with (worked out once),
        ``None`` with the aggregates off: every row is folded."""
        if not aggregates_enabled(self.config):
            return None
        self._fingerprint = self._fingerprint or fingerprint(self.config, classifiers(self.host))
        return self._fingerprint

    def _fold(self, unit: Unit, stamps: list[float]) -> dict[str, list[AccountData]]:
        """Each account of ``unit`` as of each of ``stamps``: from the aggregates the
        store keeps where they are fresh, else from the interactions
        (:func:`.aggregates.fold_unit`); :attr:`fold_counts` adds up where they came from."""
        data = unit.data
        acc = Accumulator(self.config, data.users, data.contacts, self.host.interaction_method)
        print_ = self._aggregates_print()
        with self.store.engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # one snapshot for the marks, aggregates and rows
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                folded, counts = fold_unit(conn, unit, acc, stamps, print_)
        log.info("folded %s as of %d date(s): %d account(s) from aggregates, %d from interactions%s",
                 "+".join(unit.sources), len(stamps), counts.aggregated, counts.raw,
                 f" ({'; '.join(counts.reasons)})" if counts.reasons else "")
        self.fold_counts.add(counts)
        return folded

    # -- scoring ----------------------------------------------------------------------------

    def score(self, view: AccountView) -> None:
        """Fill ``view.scores`` (rounded to 0.1) and ``view.score_evidence`` from every plugin."""
        merged = self.host.score_account(view)
        view.scores = {name: None if s.value is None else round(s.value, 1) for name, s in merged.items()}
        view.score_evidence = {name: s.evidence for name, s in merged.items()}

    def judge(self, view: AccountView) -> None:
        """Score ``view`` and its previous period's, then ask for its stage, level and
        findings."""
        assert view.previous is not None, "the audit's views have a previous period"
        self.score(view.previous)
        self.score(view)
        view.relationship = with_crm_override(view, self.host.evaluate_relationship(view))
        view.findings = _by_severity(self.host.account_findings(view))

    def account_views(self, unit: Unit) -> list[AccountView]:
        """Every account of ``unit``, scored and judged (:meth:`scored_views`)."""
        return list(self.scored_views(unit))

    def scored_views(self, unit: Unit) -> Iterator[AccountView]:
        """Each account of ``unit`` by remote id, scored, with its stage, level and
        findings, one at a time (its view of the previous period in ``previous``)."""
        work = UnitWork(self, unit, None, None, None, False)
        for key in work.keys:
            yield work.scored(key)

    def workers(self, accounts: int) -> int:
        """The processes to audit a unit of ``accounts`` accounts with (``[audit] workers``)."""
        return parallel.worker_count(accounts, PARALLEL_FROM, parallel.workers_setting(self.config))

    def opportunity_views(self, data: SourceData, views: Mapping[str, AccountView], *,
                          whole: tuple[dict[str, float], int] | None = None) -> list[OpportunityView]:
        """The deals of ``data`` by remote id, each with its account's view in ``views``
        (by the deal's account id) and its LTC stage. What each reads of its source's
        deals (the typical days in each stage, the count of contact roles) is worked out
        from ``data``, or given as ``whole`` when ``data`` is a chunk of the source."""
        result = []
        for opp in sorted(data.opportunities.values(), key=lambda o: o.remote_id):
            stage = data.stages.get(opp.stage_id or "") or data.stages.get(opp.stage_label or "")
            ltc = opp.ltc_stage or self.host.ltc_stage(
                opp, stage, self.config["ltc"], data.execution.of(opp)) or "unmapped"
            result.append(OpportunityView(
                opp, views.get(opp.account_id or ""), stage, ltc, data.roles.get(opp.remote_id, []),
                sorted(data.history.get(opp.remote_id, []), key=lambda h: (h.entered_at, h.remote_id)),
                self.config, self.as_of))
        typical, roles = whole or (typical_days_in_stage(result), sum(len(found) for found in data.roles.values()))
        for view in result:
            view.typical_days_in_stage = typical
            view.source_contact_roles = roles
        return result

    def departure(self, view: AccountView) -> Departure | None:
        """The departure simulation for the account's top holder, if a plugin offers one."""
        top = view.personalization.get("top_holder")
        return self.host.simulate_departure(view, top) if top else None

    # -- in chunks of accounts -----------------------------------------------------------------

    def _chunked(self, unit: Unit, history: bool) -> SourceChunks | None:
        """How the audit reads ``unit``: in chunks of accounts (:mod:`.chunks`), on one
        snapshot held until the document is done, or whole (``None``) where chunks cannot
        work; ``crmlink -v audit`` says which, and why."""
        name = "+".join(unit.sources)
        reader, reason = None, MERGED_WHOLE if unit.merged else None
        if reason is None:
            reader = self._readers.enter_context(Reader(self.store))
            reason = whole_reason(reader.here, unit, self.as_of)
        if reason is not None or reader is None:
            if reader is not None:
                reader.close()
            log.info("auditing %s whole: %s", name, reason)
            return None
        print_ = self._aggregates_print()
        ends = [as_of_timestamp(day) for day in month_ends(self.as_of_date)[:-1]] if history else []
        chunks = SourceChunks(reader, unit.sources[0], self.config, self.host.interaction_method, print_,
                              [self.as_of, self.previous], ends)
        counts = chunks.counts()
        log.info("auditing %s in chunks of %d accounts: %d account(s) from aggregates, %d from interactions%s",
                 name, chunks.size, counts.aggregated, counts.raw, f" ({'; '.join(counts.reasons)})" if counts.reasons else "")
        for _ in range(2 if history else 1):  # as many folds as the whole unit's: the dates, the history
            self.fold_counts.add(counts)
        return chunks

    # -- the document ------------------------------------------------------------------------

    def units(self, source: str | None, *, only: set[str] | None = None) -> Iterator[Unit]:
        """What the audit scores together (:func:`.units.units`): ``source`` alone, or every
        source, several CRM sources merged into one unit when merging is on; ``only``
        skips the sources audited on their own that are not in it."""
        names = [source] if source else self.store.sources()
        return units(self.store, names, IdentitySettings.from_config(self.config),
                     MatchRules.from_config(self.config), self.merge, only)

    def document(self, source: str | None = None, *, history: bool = False) -> AuditDocument:
        """The audit document of ``source`` (every source when ``None``); ``history`` adds
        each account's ``health_history`` (one more fold, for the formats that draw it)."""
        from crmlink import __version__

        with _without_cycle_collection(), self._readers:
            return self._document(source, history, __version__)

    def stream(self, source: str | None = None, out: TextIO | None = None, *,
               indent: int | None = None) -> AuditDocument:
        """The audit of :meth:`document` for a large portfolio: each account's entry is
        made as soon as the account is judged and is not kept, so the audit never holds
        every account's relationship map. With ``out``, the document's JSON is written
        there (exactly ``document(source).dumps(indent)``: each entry's text goes to a
        temporary file, then out in the document's order). Returns the document with
        each account's ``relationship_map`` and ``score_evidence`` left empty (what the
        table and Markdown reports, saving and ``--fail-on`` read is all there); no
        ``health_history``. Without ``out`` the texts are made all the same while the
        audit's cache is on (:mod:`.cache`): it stores them for the next audit, a table's
        or a JSON document's, and takes its hits from it."""
        from crmlink import __version__

        with _without_cycle_collection(), self._readers:
            if out is None and not cache_enabled(self.config):
                return self._audit(source, False, __version__, slim=True)[0]
            with AccountSpool(indent) as spool:
                try:
                    document, order, deal_texts = self._audit(source, False, __version__, spool, slim=True)
                    if out is not None:
                        document.write_json(out, indent, spool.datas(order), deal_texts)
                finally:  # the cache's store reads the spool's texts beside the writing
                    self._stored()
                return document

    def run(self, source: str | None = None, *, history: bool = True) -> dict[str, Any]:
        """The audit document as JSON data (see :meth:`document`)."""
        return self.document(source, history=history).to_json()

    def _document(self, source: str | None, history: bool, version: str) -> AuditDocument:
        return self._audit(source, history, version)[0]

    def _audit(self, source: str | None, history: bool, version: str, spool: AccountSpool | None = None,
               *, slim: bool = False) -> tuple[AuditDocument, Sequence[int], Sequence[bytes] | None]:
        """The document, and the order of its accounts as numbered in the order they were
        audited (and added to ``spool``, when given, as each is done); ``slim`` keeps
        each account's entry without its map and score evidence (:func:`.assemble.slim_entry`).
        With ``spool``, the deals' JSON texts too (with its indentation, in the
        document's order), each made as its deal is judged, not when the document is
        written (:meth:`_UnitDeals.texted`)."""
        presentation = Presentation(self.host.score_definitions(),
                                    self.config["findings"]["previous_period_days"])
        overall = presentation.overall.name if presentation.overall else None
        # every account's and deal's entry and summary on disk past spill.KEEP, and its
        # place in the document's order: what stays in memory is a few numbers an account (:mod:`.spill`)
        summaries: Spilled[AccountSummary] = Spilled()
        entries: Spilled[AccountEntry] = Spilled()
        order: SortedNumbers[tuple[int, int, bool, float, str]] = SortedNumbers()
        opportunities: Chained[OpportunityEntry] = Chained()
        deal_summaries: Chained[OpportunitySummary] = Chained()
        deal_texts: Chained[bytes] | None = None if spool is None else Chained()
        # the summary's counts, added up as each account and deal comes: the portfolio
        # step reads the summaries back from disk only for the plugins' hooks
        tally = PortfolioTally(self.config["coverage"])
        works: list[tuple[UnitWork, Sequence[AccountSummary]]] = []
        merged: MergedUnit | None = None
        for unit in self.units(source):
            # the previous unit's store done before this one's workers fork: a fork while
            # the store's thread holds a lock (the connection pool's, logging's) would
            # leave that lock held forever in the workers
            self._stored()
            chunks = self._chunked(unit, history)
            cache = unit_cache(self, chunks, spool, overall, slim, history)  # takes its hits out of chunks
            deals = _UnitDeals(self, unit) if chunks is None else _ChunkedDeals(self, chunks)
            if spool is not None:
                deals.texted(spool.indent)
            work = UnitWork(self, unit, deals, overall, spool, slim,
                            [s.name for s in presentation.headline] if history else None, chunks,
                            cached=cache is not None)
            first = len(summaries)
            # every account of the unit: those the cache has are not among the work's keys
            name, total = "+".join(unit.sources), len(chunks.keys if chunks is not None else work.keys)
            tell = self.progress or untold
            tell(name, 0, total)
            found = work.results(self.workers(len(work.keys))) if cache is None else cache.judged(work, deals)
            try:
                for done, judged in enumerate(found, 1):
                    summaries.append(judged.summary, judged.summary_form)
                    tally.add_account(judged.summary, judged.counted)
                    order.add(judged.attention, len(entries))
                    entries.append(judged.entry)
                    tell(name, done, total)
                deals.judge_rest()
                work.done()
            except BaseException:
                if cache is not None:  # its writer ends after the batch under way; waited for before the spool closes
                    cache.abandon()
                    self._storing.append(cache)
                raise
            if cache is not None:
                cache.store()
                self._storing.append(cache)
            works.append((work, summaries.view(range(first, len(summaries)))))
            # the unit's deals as it kept them, not copied (the document reads them there)
            numbers = deals.numbers()
            opportunities.add(deals.judged.field(numbers, 0))
            deal_summaries.add(deals.judged.field(numbers, 1))
            for counted in deals.counted(numbers):
                tally.add_counted_deal(counted)
            if deal_texts is not None:
                deal_texts.add(deals.texts(numbers))
            if isinstance(unit, MergedUnit):
                merged = unit
        portfolio = self._portfolio(works, summaries, deal_summaries)
        portfolio_findings = _by_severity(self.host.portfolio_findings(portfolio)
                                          + (conflict_findings(merged.conflicts) if merged else []))
        numbers = order.numbers()
        accounts = entries.view(numbers)
        document = AuditDocument(
            crmlink_version=version, schema_version=SCHEMA_VERSION,
            generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            as_of=self.as_of_date.isoformat(),
            summary=tally.summary(portfolio_findings),
            # a slim document (:meth:`stream`) reads its entries from disk; a whole one
            # (:meth:`document`) has them in lists, to be changed like any document
            accounts=accounts if slim else list(accounts),
            opportunities=opportunities if slim else list(opportunities), portfolio_findings=portfolio_findings,
            tier_target=tier_target(self.config), merge=merge_summary(merged) if merged else None,
            presentation=presentation, urgent_deal_findings=tally.urgent_deal_findings)
        return document, numbers, deal_texts

    def _stored(self) -> None:
        """Wait for the stores of the audit's cache under way (:meth:`.UnitCache.store`)."""
        while self._storing:
            self._storing.pop(0).wait()

    def _portfolio(self, works: Sequence[tuple[UnitWork, Sequence[AccountSummary]]],
                   summaries: Sequence[AccountSummary], deals: Sequence[OpportunitySummary]) -> PortfolioView:
        """The portfolio's view: the summaries, and the full views built only if a plugin
        reads ``accounts`` or ``opportunities`` (:class:`_FullViews`)."""
        full = _FullViews(self, works)
        return PortfolioView(OnDemand(lambda: full.views[0]), self.config, self.as_of,
                             OnDemand(lambda: full.views[1]), summaries, deals)


class _FullViews:
    """Every account's and deal's full view, for ``PortfolioView.accounts`` and
    ``opportunities``, made on first read: each unit's accounts built again from its
    work, then its deals as :meth:`Audit.opportunity_views` gives them, each with its
    account's view among those (:meth:`.UnitWork.full_views`)."""

    def __init__(self, audit: Audit, works: Sequence[tuple[UnitWork, Sequence[AccountSummary]]]) -> None:
        self.audit, self.works = audit, works

    @cached_property
    def views(self) -> tuple[list[AccountView], list[OpportunityView]]:
        accounts: list[AccountView] = []
        opportunities: list[OpportunityView] = []
        for work, judged in self.works:
            views, deals = work.full_views(judged)
            accounts.extend(views)
            opportunities.extend(deals)
        return accounts, opportunities


class _UnitDeals:
    """The deals of one unit, judged as their accounts are: each deal's findings are
    asked for as soon as its account's view is scored (so the view's derived values are
    used while they are at hand; in the worker that has the account, when there are
    workers), the deals of accounts outside the unit at the end; the entries and
    summaries keep the order of :meth:`Audit.opportunity_views` over ``deal_sets()``,
    each deal's position. No deal view keeps its account's view once judged."""

    def __init__(self, audit: Audit, unit: Unit) -> None:
        self.audit = audit
        self.sets = [(deals, audit.opportunity_views(deals, {})) for deals in unit.deal_sets()]
        self.waiting: dict[str, list[tuple[SourceData, OpportunityView, int]]] = defaultdict(list)
        for position, (deals, view) in enumerate((d, v) for d, views in self.sets for v in views):
            self.waiting[view.opportunity.account_id or ""].append((deals, view, position))
        self.positions = array(NUMBERS)  # each judged deal's position, by its number in :attr:`judged`
        #: each judged deal's entry and summary (a pair still pickled, from the audit's cache)
        self.judged: Spilled[StoredPair] = Spilled()
        self._texts: Spilled[bytes] | None = None
        self._counted: list[DealCounted] = []  # what the tally counts of each, by number
        self._same: dict[DealCounted, DealCounted] = {}  # each value once: a deal's is one of a few

    def add(self, data: SourceData) -> None:
        """Take the deals of a chunk of the unit's accounts (:class:`_ChunkedDeals`):
        the whole unit's deals are all here from the start."""

    def judge(self, key: str, account: AccountView) -> list[tuple[int, OpportunityEntry, OpportunitySummary]]:
        """The entries and summaries of the deals of the account ``key`` (its view
        ``account``), by position."""
        judged = []
        for deals, view, position in self.waiting.get(key, ()):
            view.account = account
            judged.append((position, *self._judge(deals, view)))
            view.account = None
        return judged

    def adopt(self, key: str, judged: Sequence[tuple[int, OpportunityEntry, OpportunitySummary]],
              texts: Sequence[bytes] | None = None) -> None:
        """Keep what :meth:`judge` made for the account ``key`` (here or in a worker),
        with the deals' JSON texts when they were made there too (or stored by the
        audit's cache: :mod:`.cache`)."""
        self.waiting.pop(key, None)
        for number, (position, entry, deal) in enumerate(judged):
            self.keep(position, entry, deal, None if texts is None else texts[number])

    def adopt_stored(self, key: str, stored: Sequence[StoredDeal]) -> None:
        """:meth:`adopt` the deals of the account ``key`` as the audit's cache gives them
        (:data:`.cache.StoredDeal`): each deal's entry and summary still pickled, read
        only when something reads them (the JSON document reads its text, the built-in
        ``ltc`` plugin its summary)."""
        self.waiting.pop(key, None)
        for position, pair, counted, text in stored:
            self._keep(position, pair, counted, text)

    def texted(self, indent: int | None) -> None:
        """Make each deal's JSON text (with ``indent``) as it is kept, for :meth:`texts`:
        while the workers judge the accounts, not after them, when the document is written."""
        self.indent, self._texts = indent, Spilled()

    def keep(self, position: int, entry: OpportunityEntry, deal: OpportunitySummary, text: bytes | None = None) -> None:
        """Keep the deal at ``position``'s entry and summary (on disk: :mod:`.spill`),
        and its JSON text (``text``, when it was made already)."""
        if self._texts is not None and text is None:
            text = account_jsonb(entry, self.indent)
        self._keep(position, (entry, deal), deal_counted(deal), text)

    def _keep(self, position: int, pair: StoredPair | Pickled[StoredPair], counted: DealCounted,
              text: bytes | None) -> None:
        self.positions.append(position)
        self.judged.append(pair)
        if self._texts is not None:
            assert text is not None, "a deal's text is made or stored when the audit writes JSON"
            self._texts.append(text)
        self._counted.append(self._same.setdefault(counted, counted))  # most deals count the same

    def judge_rest(self) -> None:
        """Judge the deals whose account is not in the unit."""
        for waiting in self.waiting.values():
            for deals, view, position in waiting:
                self.keep(position, *self._judge(deals, view))
        self.waiting.clear()

    def _judge(self, deals: SourceData, view: OpportunityView) -> tuple[OpportunityEntry, OpportunitySummary]:
        findings = _by_severity(self.audit.host.opportunity_findings(view))
        return opportunity_entry(view, findings, deals.entry_ids(view.opportunity)), opportunity_summary(view, findings)

    def texts(self, numbers: Sequence[int]) -> SpilledView[bytes]:
        """The JSON texts as UTF-8 of the deals numbered ``numbers`` (:meth:`numbers`),
        in that order (:meth:`texted` first)."""
        assert self._texts is not None, "texted() was called"
        return self._texts.view(numbers)

    def counted(self, numbers: Sequence[int]) -> list[DealCounted]:
        """What the portfolio's tally counts of the deals numbered ``numbers`` (:meth:`numbers`)."""
        return [self._counted[number] for number in numbers]

    def numbers(self) -> array[int]:
        """The judged deals' numbers in :attr:`judged` (and their texts'), by position
        (of a deal kept twice, the later)."""
        positions = self.positions
        last = array(NUMBERS, [-1]) * (max(positions, default=-1) + 1)  # a slot per position: no sort, no list
        for number, position in enumerate(positions):
            last[position] = number
        return array(NUMBERS, (number for number in last if number >= 0))


class _ChunkedDeals(_UnitDeals):
    """The deals of a source audited in chunks: each chunk's deals are added when the
    chunk is read (:meth:`add`, in the process that judges its accounts) and let go once
    judged, each at its place among the source's deals by remote id; the deals whose
    account is not one of the source's live accounts are read and judged at the end."""

    def __init__(self, audit: Audit, chunks: SourceChunks) -> None:
        self.audit, self.chunks = audit, chunks
        self.sets = []
        self.waiting = defaultdict(list)
        self.positions, self.judged = array(NUMBERS), Spilled()
        self._texts = None
        self._counted, self._same = [], {}

    def add(self, data: SourceData) -> None:
        ids = self.chunks.deal_ids
        for view in self.audit.opportunity_views(data, {}, whole=(self.chunks.typical, self.chunks.roles)):
            deal = view.opportunity.remote_id
            position = ids.position(deal)
            if position < len(ids) and ids[position] == deal:  # else written after the audit listed the deals
                self.waiting[view.opportunity.account_id or ""].append((data, view, position))

    def judge(self, key: str, account: AccountView) -> list[tuple[int, OpportunityEntry, OpportunitySummary]]:
        judged = super().judge(key, account)
        self.waiting.pop(key, None)
        return judged

    def judge_rest(self) -> None:
        self.add(self.chunks.outside())
        super().judge_rest()



@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector: the audit makes millions of small objects and
    no cycles worth collecting, and full collections over a heap this size made the fold
    grow faster than the data (half the audit's time at 1M interactions)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():
                # what the audit made meanwhile goes to the oldest generation unexamined (the
                # first young collection after it looked at all of it: a tenth of an audit
                # that takes its accounts from its cache); a caller's own freeze is left as it is
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def typical_days_in_stage(views: list[OpportunityView]) -> dict[str, float]:
    """The 75th percentile of days won deals spent in each native stage, from history."""
    return stage_percentiles(list(view.stage_history) for view in views if view.opportunity.is_won)


def _by_severity(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code))
