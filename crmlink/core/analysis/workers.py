"""The audit's accounts in worker processes (``[audit] workers``, ``--workers``).

The audit's process and forked workers share a unit's accounts a part at a time
(:func:`~crmlink.core.parallel.shared`: each takes the next part in key order that no one
has taken; a part is one chunk of a unit audited in chunks, read and folded where it is
judged, else a slice of the unit the parent loaded and folded before forking). Each
builds the views, calls the scoring, relationship and findings hooks, judges the
accounts' deals, makes each entry and its JSON text (into a spool file of its own), and
hands on what the parent needs: the account's place among those that need attention, its entry (slim
when the audit is), its deals' entries, and the account's and deals' summaries
(:class:`~.summary.AccountSummary`, :class:`~.summary.OpportunitySummary`), all the
portfolio step reads. No account's view comes back: a portfolio plugin that reads
``PortfolioView.accounts`` has them built again (:meth:`UnitWork.rebuilt`).

With one worker (small portfolios, or no ``fork``) the same steps run in this process,
and each view is dropped once its summary is made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from crmlink.core import parallel
from crmlink.core.analysis.assemble import account_entry, attention_key, slim_entry
from crmlink.core.analysis.cache import StoredDeal, read_form, storable, stored_pickled
from crmlink.core.analysis.history import account_history, month_ends
from crmlink.core.analysis.people import UnknownPerson, unknown_people
from crmlink.core.analysis.spill import Pickled
from crmlink.core.analysis.spool import AccountSpool, Span
from crmlink.core.analysis.summary import AccountSummary, OpportunitySummary, account_summary
from crmlink.core.analysis.tiers import assign_tier
from crmlink.core.analysis.units import SourceData
from crmlink.core.analysis.view import AccountView, OpportunityView
from crmlink.core.document import AccountEntry, OpportunityEntry, account_jsonb

if TYPE_CHECKING:
    from crmlink.core.analysis.audit import Audit, _UnitDeals
    from crmlink.core.analysis.chunks import Chunk, SourceChunks
    from crmlink.core.analysis.units import Unit

log = logging.getLogger(__name__)

#: below this many accounts a unit is audited in one process: forking and sending the
#: results back cost more than the workers save (measured: docs/scaling.md)
PARALLEL_FROM = 500
#: accounts a part of a unit audited whole (the chunked audit's parts are its chunks)
CHUNK = 100
#: from this many accounts to judge, an audit that takes the others from its cache judges
#: them in forked workers (with ``[audit] workers = "auto"``) while its own process
#: reads the others (:meth:`.cache.UnitCache.judged`): below it, forking costs more
BESIDE_FROM = 16


@dataclass
class Judged:
    """What the audit keeps of one account once it is judged.

    One with :attr:`stored` (the audit's cache's form of it) pickles as that form alone,
    so a worker pickles the account once, for the cache and for the way back to the
    audit's process together; the audit's process reads the form's first part again
    and leaves the entry pickled (:func:`_from_stored`)."""

    key: str  #: the account's key in the unit's records
    attention: tuple[int, int, bool, float, str]  #: :func:`~.assemble.attention_key`
    #: slim when the audit is (:func:`~.assemble.slim_entry`); from the audit's cache, still pickled
    entry: AccountEntry | Pickled[AccountEntry]
    span: Span | None  #: where the spool has the entry's JSON text
    #: the account's deals' entries and summaries, by position (:meth:`.audit._UnitDeals.judge`)
    deals: list[tuple[int, OpportunityEntry, OpportunitySummary]]
    summary: AccountSummary  #: what the portfolio step reads of the account
    #: the account as the audit's cache stores it (:func:`.cache.stored_pickled`), when it
    #: is to be stored
    stored: bytes | None = None
    #: the JSON texts of :attr:`deals` as UTF-8, in their order, when the audit writes JSON
    #: (made where the account is judged)
    deal_texts: list[bytes] | None = None
    #: the severity and code of each of the account's findings, when its summary comes
    #: from its stored form (:class:`.cache.StoredSummary`, which reads them only when asked)
    counted: tuple[tuple[str, str], ...] | None = None
    #: its deals as its stored form gives them (in place of :attr:`deals` and
    #: :attr:`deal_texts`: :meth:`.audit._UnitDeals.adopt_stored`)
    stored_deals: list[StoredDeal] | None = None
    #: :attr:`summary` as the audit's cache stores it, when it has a stored form: what
    #: goes to disk if the audit spills the summary (:meth:`.spill.Spilled.append`)
    summary_form: Pickled[AccountSummary] | None = None

    def __reduce_ex__(self, protocol: Any) -> str | tuple[Any, ...]:
        if self.stored is None:
            return super().__reduce_ex__(protocol)
        return _from_stored, (self.key, self.span, [position for position, _, _ in self.deals], self.stored)


def _from_stored(key: str, span: Span | None, positions: list[int], stored: bytes) -> Judged:
    """A :class:`Judged` as a worker sent it: its stored form and the places of its deals
    (read as a hit of the audit's cache is: what the portfolio reads, the rest left pickled)."""
    form = read_form(stored)
    placed: list[StoredDeal] = [(position, pair, counted, text)
                                for position, (_, text, counted, pair) in zip(positions, form.deals, strict=True)]
    return Judged(key, form.attention, form.entry, span, [], form.summary, stored, counted=form.counted,
                  stored_deals=placed, summary_form=form.summary_form)


class UnitWork:
    """One unit's accounts, folded, to be judged in this process or in workers."""

    def __init__(self, audit: Audit, unit: Unit, deals: _UnitDeals | None, overall: str | None,
                 spool: AccountSpool | None, slim: bool, history: Sequence[str] | None = None,
                 chunks: SourceChunks | None = None, *, cached: bool = False) -> None:
        """``history``: the scores each entry's ``health_history`` gives at each month
        end (:mod:`.history`), folded here too; ``None`` leaves it empty. ``chunks``:
        read and fold the unit a chunk of accounts at a time, where they are judged
        (:mod:`.chunks`), instead of all of it here and now. ``cached``: the audit's
        cache keeps the accounts judged (:mod:`.cache`): each one it can store is given
        its stored form where it is judged."""
        self.audit, self.unit, self.deals, self.overall = audit, unit, deals, overall
        self.spool, self.slim, self.history, self.chunks = spool, slim, history, chunks
        self.cached = cached
        #: the accounts of the chunk at hand the audit's cache can store (:func:`.cache.storable`)
        self.storable: frozenset[str] = frozenset()
        self.ends = month_ends(audit.as_of_date)
        if chunks is not None:
            self.keys: Sequence[str] = chunks.todo
            self._take(None)
            return
        self.data = data = unit.data
        self.keys = sorted(data.accounts)
        for key in self.keys:  # before any view, and before forking: the workers' views read it
            assign_tier(data.accounts[key], audit.config["tiers"])
        self.now, self.before = audit.fold(unit)
        self.people_now = unknown_people(unit.correspondents(audit.as_of))
        self.people_before = unknown_people(unit.correspondents(audit.previous))
        self.past = audit.fold_keys(unit, self.ends[:-1]) if history is not None else {}

    def _take(self, chunk: Chunk | None) -> None:
        """Judge the accounts of ``chunk`` from now on (``None``: let the last one go)."""
        empty: dict[str, Any] = {}
        self.data = chunk.data if chunk is not None else SourceData()
        self.data_keys = chunk.keys if chunk is not None else []
        self.now, self.before = (chunk.now, chunk.before) if chunk is not None else (empty, empty)
        self.people_now = chunk.people_now if chunk is not None else empty
        self.people_before = chunk.people_before if chunk is not None else empty
        self.past = chunk.past if chunk is not None else empty
        if chunk is None:
            self.storable = frozenset()
            return
        if self.cached and self.chunks is not None:
            self.storable = storable(chunk, self.chunks.plan)
        for key in chunk.keys:
            assign_tier(chunk.data.accounts[key], self.audit.config["tiers"])
        if self.deals is not None:
            self.deals.add(chunk.data)

    def _keys(self, low: int, high: int, keys: Sequence[str] | None = None) -> Iterator[str]:
        """The keys ``keys[low:high]`` in order (:attr:`keys` when ``None``); with chunks,
        each chunk read and folded before its first key, and let go after its last."""
        if self.chunks is None:
            yield from self.keys[low:high]
            return
        for chunk in self.chunks.chunks(low, high, keys=keys):
            self._take(chunk)
            yield from chunk.keys
        self._take(None)

    # -- one account ---------------------------------------------------------------------------

    def view(self, key: str) -> AccountView:
        """The account ``key``'s view (and its previous period's), not yet scored."""
        data = self.data
        args = (data.contacts_by_account.get(key, []), data.users, data.opps_by_account.get(key, []),
                self.audit.config)
        previous = AccountView(data.accounts[key], self.before[key], *args,  # its scores' values alone are kept
                               unknown_people=self._people(self.people_before, key), wants_evidence=False)
        return AccountView(data.accounts[key], self.now[key], *args, previous=previous,
                           unknown_people=self._people(self.people_now, key))

    @staticmethod
    def _people(found: dict[str, list[UnknownPerson]], key: str) -> Sequence[UnknownPerson]:
        return found.get(key, ())

    def scored(self, key: str) -> AccountView:
        """The account ``key``'s view, scored and judged (:meth:`.Audit.judge`)."""
        view = self.view(key)
        self.audit.judge(view)
        return view

    def judged(self, key: str, part: int = 0) -> Judged:
        """Score and judge the account ``key``, its deals, and make its entry (its text
        written to the spool's file ``part``) and its summary; the view is not kept."""
        view = self.scored(key)
        unit = self.unit
        joins = (unit.merged_from(view), unit.contacts_from(view)) if unit.merged else (None, None)
        entry = account_entry(view, self.audit.departure(view), None, *joins)
        if self.history is not None:
            entry.health_history = account_history(view, self.past[key], self.ends, self.history, self.audit.score)
        assert self.deals is not None, "made with the unit's deals"
        deals = self.deals.judge(key, view)
        span = texts = None
        if self.spool is not None:
            span = self.spool.write(entry, part)
            texts = [account_jsonb(deal, self.spool.indent) for _, deal, _ in deals]
        judged = Judged(key, attention_key(view, self.overall), slim_entry(entry) if self.slim else entry, span,
                        deals, account_summary(view, key), deal_texts=texts)
        if key in self.storable and span is not None:
            judged.stored, pickled, judged.summary_form = stored_pickled(judged)
            if self.slim:  # kept as a worker's come back: the JSON document does not read it
                judged.entry = pickled
        return judged

    def rebuilt(self, summaries: Sequence[AccountSummary]) -> list[AccountView]:
        """The views of the accounts of ``summaries`` (of this unit), judged as they were:
        each built again from the unit's records and folded interactions, with the
        scores, stage and level and findings of its summary, and its score evidence from
        the scoring hooks (for ``PortfolioView.accounts``)."""
        return self.full_views(summaries)[0]

    def full_views(self, summaries: Sequence[AccountSummary]) -> tuple[list[AccountView], list[OpportunityView]]:
        """:meth:`rebuilt`, and the unit's deals as :meth:`.Audit.opportunity_views`
        gives them, each with its account's view among those. A unit audited in chunks
        is read again from the store, a chunk at a time (its reader's snapshot)."""
        if self.chunks is None:
            views = [self._rebuilt(summary) for summary in summaries]
            by_key = {summary.key: view for summary, view in zip(summaries, views, strict=True)}
            return views, [deal for deals in self.unit.deal_sets() for deal in self.audit.opportunity_views(deals, by_key)]
        found = {summary.key: summary for summary in summaries}
        views, deals = [], []
        whole = (self.chunks.typical, self.chunks.roles)
        with self.chunks.reader.reading():
            every = self.chunks.keys  # also those the audit took from its cache
            for key in self._keys(0, len(every), every):
                views.append(self._rebuilt(found[key]))
                if key == self.data_keys[-1]:  # the chunk's last account: its deals, with their accounts' views
                    by_key = {view.account.remote_id: view for view in views[-len(self.data_keys):]}
                    deals.extend(self.audit.opportunity_views(self.data, by_key, whole=whole))
            deals.extend(self.audit.opportunity_views(self.chunks.outside(), {}, whole=whole))
        listed = self.chunks.deal_ids  # not those written after the audit listed them
        return views, sorted((d for d in deals if d.opportunity.remote_id in listed),
                             key=lambda d: d.opportunity.remote_id)

    def _rebuilt(self, summary: AccountSummary) -> AccountView:
        view = self.view(summary.key)
        previous = view.previous
        assert previous is not None, "the audit's views have a previous period"
        self.audit.score(previous)
        self.audit.score(view)
        previous.scores, view.scores = dict(summary.previous_scores), dict(summary.scores)
        view.relationship, view.findings = summary.relationship, list(summary.findings)
        return view

    def done(self) -> None:
        """Drop what only judging needed (the month ends' folds, the deals' views): the
        audit keeps this unit's work for :meth:`rebuilt` alone."""
        self.past, self.deals = {}, None

    # -- every account -------------------------------------------------------------------------

    def results(self, workers: int, idle: Callable[[], bool] | None = None) -> Iterator[Judged]:
        """Each account judged, in key order; the deals and spool texts of each adopted
        as it comes. With ``workers`` processes, this one and forked ones take the unit's
        accounts a part at a time (:func:`.parallel.shared`; a part is one chunk, when
        the unit is read in chunks); ``idle``: this process's own work beside them
        (``shared``'s), which it does first while the others judge."""
        if workers > 1:
            log.info("scoring the %d account(s) of %s in %d processes", len(self.keys),
                     "+".join(self.unit.sources), workers)
        found: Iterator[Judged] = (
            self._here(0, len(self.keys)) if workers <= 1
            else parallel.shared(parallel.parts(len(self.keys), workers, self.chunks.size if self.chunks else CHUNK),
                                 workers, self._part(workers), self._worker_done, idle))
        accounts = self.unit.data.accounts if self.chunks is None else None  # in chunks: the only copy
        for judged in found:
            if accounts is not None and judged.summary.account is not accounts[judged.key]:
                judged.summary = replace(judged.summary, account=accounts[judged.key])  # a worker's copy: keep one
            if self.spool is not None and judged.span is not None:
                self.spool.adopt(judged.span)
            assert self.deals is not None, "made with the unit's deals"
            if judged.stored_deals is not None:
                self.deals.adopt_stored(judged.key, judged.stored_deals)
            else:
                self.deals.adopt(judged.key, judged.deals, judged.deal_texts)
            yield judged

    def _here(self, low: int, high: int) -> Iterator[Judged]:
        for key in self._keys(low, high):
            yield self.judged(key)

    def _part(self, workers: int) -> Callable[[int, int, int], Iterator[Judged]]:
        """What each process of :func:`.parallel.shared` runs over a part: judge each
        account, write its text to the process's own spool file (this process's: the
        spool's own), and hand it on with its summary."""
        files = [0, *(self.spool.part() if self.spool is not None else 0 for _ in range(1, workers))]
        if self.spool is not None:
            self.spool.flush()  # before forking: no worker holds a copy of unwritten text

        def work(low: int, high: int, process: int) -> Iterator[Judged]:
            for key in self._keys(low, high):
                yield self.judged(key, files[process])
            if process and self.spool is not None:
                self.spool.flush(files[process])  # this process reads the texts once the audit is done

        return work

    def _worker_done(self) -> None:
        """In a worker, once it has no part left: end its transaction."""
        if self.chunks is not None:
            self.chunks.reader.close_worker()


__all__ = ["BESIDE_FROM", "PARALLEL_FROM", "Judged", "UnitWork"]
