"""The audit's accounts in worker processes (``[audit] workers``, ``--workers``).

The parent loads a unit's records and folds its interactions once; forked workers then
each take a contiguous slice of its accounts (by key, the order of the audit), build the
views, call the scoring, relationship and findings hooks, judge the accounts' deals, make
each entry and its JSON text (into a spool file of the worker's own), and send back what
the parent needs: the account's place among those that need attention, its entry (slim
when the audit is), its deals' entries, and what the portfolio's hooks read
(:class:`Seed`). The parent builds each :class:`~.view.AccountView` of the portfolio from
the records and folded data it holds and seeds it with what the worker computed; anything
else a portfolio plugin reads is computed lazily from the same data, so it is the same.

With one worker (small portfolios, or no ``fork``) the same steps run in this process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crmlink.core import parallel
from crmlink.core.analysis.assemble import account_entry, attention_key, slim_entry
from crmlink.core.analysis.coverage import Coverage
from crmlink.core.analysis.history import account_history, month_ends
from crmlink.core.analysis.people import UnknownPerson, unknown_people
from crmlink.core.analysis.spool import AccountSpool, Span
from crmlink.core.analysis.tiers import assign_tier
from crmlink.core.analysis.view import AccountView, forget_derived
from crmlink.core.document import AccountEntry, OpportunityEntry
from crmlink.core.errors import ConfigError
from crmlink.core.evaluation.relationship import Relationship
from crmlink.core.findings import Finding

if TYPE_CHECKING:
    from crmlink.core.analysis.audit import Audit, _UnitDeals
    from crmlink.core.analysis.units import Unit

log = logging.getLogger(__name__)

#: below this many accounts a unit is audited in one process: forking and sending the
#: results back cost more than the workers save (measured: docs/scaling.md)
PARALLEL_FROM = 500
#: accounts a worker sends back at a time
BATCH = 32


def workers_setting(config: Any) -> int | str:
    """``[audit] workers``: ``"auto"`` or a number of processes (at least 1)."""
    value = config.get("audit", {}).get("workers", "auto")
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value  # type: ignore[no-any-return]
    raise ConfigError(f"[audit] workers = {value!r} in the config file: give \"auto\" (one process per "
                      f"usable CPU for a large portfolio) or a whole number of processes, at least 1")


@dataclass
class Judged:
    """What the audit keeps of one account once it is judged."""

    key: str  #: the account's key in the unit's records
    attention: tuple[int, int, bool, float, str]  #: :func:`~.assemble.attention_key`
    entry: AccountEntry  #: slim when the audit is (:func:`~.assemble.slim_entry`)
    span: Span | None  #: where the spool has the entry's JSON text
    deals: list[tuple[int, OpportunityEntry]]  #: the account's deals' entries, by position


@dataclass
class Seed:
    """What a worker computed of an account's view that the parent's view is given
    instead of computing it again: the scores of both periods, the relationship and the
    findings (hooks' answers, set on the view, not derived from it), and the coverage
    and personalisation (the summary and the portfolio read them)."""

    scores: dict[str, float | None]
    evidence: dict[str, dict[str, Any]]
    previous_scores: dict[str, float | None]
    previous_evidence: dict[str, dict[str, Any]]
    findings: list[Finding]
    relationship: Relationship | None
    coverage: Coverage
    personalization: dict[str, Any]

    @classmethod
    def of(cls, view: AccountView) -> Seed:
        previous = view.previous
        assert previous is not None, "the audit's views have a previous period"
        return cls(view.scores, view.score_evidence, previous.scores, previous.score_evidence, view.findings,
                   view.relationship, view.coverage, view.personalization)

    def apply(self, view: AccountView) -> None:
        previous = view.previous
        assert previous is not None, "the audit's views have a previous period"
        view.scores, view.score_evidence = self.scores, self.evidence
        previous.scores, previous.score_evidence = self.previous_scores, self.previous_evidence
        view.findings, view.relationship = self.findings, self.relationship
        view.__dict__["coverage"] = self.coverage  # what the cached properties would compute
        view.__dict__["personalization"] = self.personalization


class UnitWork:
    """One unit's accounts, folded, to be judged in this process or in workers."""

    def __init__(self, audit: Audit, unit: Unit, deals: _UnitDeals | None, overall: str | None,
                 spool: AccountSpool | None, slim: bool, history: Sequence[str] | None = None) -> None:
        """``history``: the scores each entry's ``health_history`` gives at each month
        end (:mod:`.history`), folded here too; ``None`` leaves it empty."""
        self.audit, self.unit, self.deals, self.overall = audit, unit, deals, overall
        self.spool, self.slim, self.history = spool, slim, history
        data = unit.data
        self.keys = sorted(data.accounts)
        for key in self.keys:  # before any view, and before forking: the workers' views read it
            assign_tier(data.accounts[key], audit.config["tiers"])
        self.now, self.before = audit.fold(unit)
        self.people_now = unknown_people(unit.correspondents(audit.as_of))
        self.people_before = unknown_people(unit.correspondents(audit.previous))
        self.ends = month_ends(audit.as_of_date)
        self.past = audit.fold_keys(unit, self.ends[:-1]) if history is not None else {}

    # -- one account ---------------------------------------------------------------------------

    def view(self, key: str) -> AccountView:
        """The account ``key``'s view (and its previous period's), not yet scored."""
        data = self.unit.data
        args = (data.contacts_by_account.get(key, []), data.users, data.opps_by_account.get(key, []),
                self.audit.config)
        previous = AccountView(data.accounts[key], self.before[key], *args,
                               unknown_people=self._people(self.people_before, key))
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

    def judged(self, key: str, part: int = 0) -> tuple[Judged, AccountView]:
        """Score and judge the account ``key``, its deals, and make its entry (its text
        written to the spool's file ``part``)."""
        view = self.scored(key)
        unit = self.unit
        joins = (unit.merged_from(view), unit.contacts_from(view)) if unit.merged else (None, None)
        entry = account_entry(view, self.audit.departure(view), None, *joins)
        if self.history is not None:
            entry.health_history = account_history(view, self.past[key], self.ends, self.history, self.audit.score)
        assert self.deals is not None, "made with the unit's deals"
        deals = self.deals.judge(unit.key(view), view)
        span = self.spool.write(entry, part) if self.spool is not None else None
        slim = slim_entry(entry) if self.slim else entry
        return Judged(key, attention_key(view, self.overall), slim, span, deals), view

    # -- every account -------------------------------------------------------------------------

    def results(self, workers: int) -> Iterator[tuple[Judged, AccountView]]:
        """Each account judged, in key order, with its view as the portfolio sees it;
        the deals and spool texts of each adopted as it comes."""
        if workers > 1:
            log.info("scoring the %d account(s) of %s in %d processes", len(self.keys),
                     "+".join(self.unit.sources), workers)
        found: Iterator[tuple[Judged, Any]] = (
            self._here(0, len(self.keys)) if workers <= 1
            else parallel.forked(len(self.keys), workers, self._in_worker(workers), self._here))
        for judged, view in found:
            if isinstance(view, Seed):  # from a worker
                seed, view = view, self.view(judged.key)
                seed.apply(view)
            if self.spool is not None and judged.span is not None:
                self.spool.adopt(judged.span)
            assert self.deals is not None, "made with the unit's deals"
            self.deals.adopt(self.unit.key(view), view, judged.deals)
            yield judged, view

    def _here(self, low: int, high: int) -> Iterator[tuple[Judged, AccountView]]:
        for key in self.keys[low:high]:
            judged, view = self.judged(key)
            forget_derived(view)
            yield judged, view

    def _in_worker(self, workers: int) -> Callable[[int, int], Iterator[list[tuple[Judged, Seed]]]]:
        """What each of ``workers`` workers runs over its slice: judge each account,
        write its text to the worker's own spool file, send it back with its seed."""
        parts = [self.spool.part() if self.spool is not None else 0 for _ in range(workers)]
        if self.spool is not None:
            self.spool.flush()
        starts = [low for low, _ in parallel.slices(len(self.keys), workers)]

        def work(low: int, high: int) -> Iterator[list[tuple[Judged, Seed]]]:
            part = parts[starts.index(low)]
            batch: list[tuple[Judged, Seed]] = []
            for key in self.keys[low:high]:
                judged, view = self.judged(key, part)
                batch.append((judged, Seed.of(view)))
                if len(batch) == BATCH:
                    yield self._sent(batch, part)
                    batch = []
            if batch:
                yield self._sent(batch, part)

        return work

    def _sent(self, batch: list[tuple[Judged, Seed]], part: int) -> list[tuple[Judged, Seed]]:
        if self.spool is not None:
            self.spool.flush(part)  # the parent reads the texts once the worker is done
        return batch


__all__ = ["PARALLEL_FROM", "Judged", "Seed", "UnitWork", "workers_setting"]
