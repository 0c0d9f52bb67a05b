"""The review's competitor and satisfaction signals (docs/evaluation.md#signals-competitors-and-satisfaction).

Per account and review period, from the store's :class:`~crmlink.Competitor` and
:class:`~crmlink.SupportCase` records whichever connector read them:

- **competitor**: the competitors on the account's deals that were open during the
  period, the deals closed in it won or lost against whom, and the competitors seen on
  the account for the first time in it (negative);
- **satisfaction**: the escalated cases still open at the period's end and the complaints
  opened in the period against the period of the same length before it.

The settings are ``config["signals"]`` (defaults in docs/evaluation.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from crmlink import Account, Competitor, Opportunity, Signal, SupportCase, hookimpl


def _moment(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


@dataclass(frozen=True)
class Window:
    """The review period as half-open UTC instants, and the period of equal length before it."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: date, end: date) -> Window:
        return cls(_moment(start), _moment(end + timedelta(days=1)))

    @property
    def previous(self) -> Window:
        return Window(self.start - (self.end - self.start), self.start)

    def holds(self, when: datetime | None) -> bool:
        return when is not None and self.start <= when < self.end


def _clamp(value: float) -> float:
    return round(max(-1.0, min(1.0, value)), 3)


@dataclass
class Rivalry:
    """The competitor record of one account: who competes on which deals, won and lost against whom."""

    names: dict[str, str] = field(default_factory=dict)          # key -> spelling first seen
    deals: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    won: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lost: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    first_seen: dict[str, datetime] = field(default_factory=dict)

    def new_in(self, window: Window) -> list[str]:
        return sorted(self.names[k] for k in self.deals if window.holds(self.first_seen.get(k)))

    def evidence(self, window: Window) -> dict[str, Any]:
        return {"competitors": {self.names[k]: {"deals": sorted(self.deals[k]), "won_against": sorted(self.won[k]),
                                                "lost_against": sorted(self.lost[k])}
                                for k in sorted(self.deals)},
                "new": self.new_in(window)}


def _deal_seen(deal: Opportunity) -> datetime | None:
    return deal.created_at or deal.close_date or deal.modified_at


def _open_during(deal: Opportunity, window: Window) -> bool:
    seen = _deal_seen(deal)
    if seen is not None and seen >= window.end:
        return False
    return not deal.is_closed or deal.close_date is None or deal.close_date >= window.start


def rivalries(deals: Mapping[str, Opportunity], competitors: Iterable[Competitor],
              window: Window) -> dict[str, Rivalry]:
    """Each account's competitor record over ``window``, by the account's remote id."""
    by_account: dict[str, Rivalry] = defaultdict(Rivalry)
    for c in competitors:
        deal = deals.get(c.opportunity_id or "")
        if deal is None or not deal.account_id:
            continue
        rivalry, key = by_account[deal.account_id], c.name.casefold()
        seen = _deal_seen(deal)
        if seen is not None and (key not in rivalry.first_seen or seen < rivalry.first_seen[key]):
            rivalry.first_seen[key] = seen
        if not _open_during(deal, window):
            continue
        rivalry.names.setdefault(key, c.name)
        rivalry.deals[key].append(deal.remote_id)
        if deal.is_closed and window.holds(deal.close_date):
            (rivalry.won if deal.is_won else rivalry.lost)[key].append(deal.remote_id)
    return {account: r for account, r in by_account.items() if r.deals}


def competitor_signal(gid: str, name: str, rivalry: Rivalry, window: Window, settings: Mapping[str, Any]) -> Signal:
    """The competitor signal: each deal won against competitors counts ``deal_weight`` up,
    each lost one down, each competitor new to the account ``new_competitor_weight`` down."""
    won = {d for deals in rivalry.won.values() for d in deals}
    lost = {d for deals in rivalry.lost.values() for d in deals}
    new = rivalry.new_in(window)
    value = _clamp(settings["deal_weight"] * (len(won) - len(lost)) - settings["new_competitor_weight"] * len(new))
    deals = {d for ds in rivalry.deals.values() for d in ds}
    parts = [f"{', '.join(sorted(rivalry.names[k] for k in rivalry.deals))} competing on {len(deals)} deal(s) "
             f"at {name}"]
    for verb, record in (("won", rivalry.won), ("lost", rivalry.lost)):
        against = sorted(rivalry.names[k] for k in record if record[k])
        if against:
            parts.append(f"{verb} {len(won if verb == 'won' else lost)} against {', '.join(against)}")
    if new:
        parts.append(f"new this period: {', '.join(new)}")
    return Signal(gid, "competitor", value, "; ".join(parts) + ".", rivalry.evidence(window))


@dataclass
class CaseTally:
    """One account's support cases over the review period and the one before."""

    escalated: list[str] = field(default_factory=list)   # escalated and open at the period's end
    complaints: list[str] = field(default_factory=list)  # complaints opened in the period
    before: list[str] = field(default_factory=list)      # complaints opened in the previous period
    opened: int = 0                                       # cases opened in the period

    def any(self) -> bool:
        return bool(self.escalated or self.complaints or self.before or self.opened)


def tallies(cases: Iterable[SupportCase], window: Window, settings: Mapping[str, Any]) -> dict[str, CaseTally]:
    """Each account's case tally, by the account's remote id."""
    complaint_types = {str(t).casefold() for t in settings["complaint_types"]}
    last = window.end - timedelta(microseconds=1)
    by_account: dict[str, CaseTally] = defaultdict(CaseTally)
    for case in cases:
        if not case.account_id:
            continue
        tally = by_account[case.account_id]
        if case.escalated and case.open_at(last):
            tally.escalated.append(case.remote_id)
        tally.opened += window.holds(case.opened_at)
        if (case.type or "") in complaint_types:
            if window.holds(case.opened_at):
                tally.complaints.append(case.remote_id)
            elif window.previous.holds(case.opened_at):
                tally.before.append(case.remote_id)
    return {account: t for account, t in by_account.items() if t.any()}


def satisfaction_signal(gid: str, name: str, tally: CaseTally, settings: Mapping[str, Any]) -> Signal:
    """The satisfaction signal: ``escalations`` or more open escalations lower it by
    ``escalation_weight`` each; complaints ``complaint_rise`` or more above (below) the
    previous period's lower (raise) it by ``complaint_weight``."""
    value = 0.0
    parts = [f"{tally.opened} case(s) opened at {name}"]
    if tally.escalated:
        parts.append(f"{len(tally.escalated)} escalation(s) open")
        if len(tally.escalated) >= settings["escalations"]:
            value -= settings["escalation_weight"] * len(tally.escalated)
    change = len(tally.complaints) - len(tally.before)
    trend = "rising" if change >= settings["complaint_rise"] else (
        "falling" if -change >= settings["complaint_rise"] else "steady")
    value += {"rising": -1.0, "falling": 1.0, "steady": 0.0}[trend] * settings["complaint_weight"]
    parts.append(f"complaints {trend}: {len(tally.complaints)} this period against {len(tally.before)} before")
    evidence = {"open_escalations": sorted(tally.escalated), "complaints": sorted(tally.complaints),
                "complaints_before": sorted(tally.before), "trend": trend, "opened": tally.opened}
    return Signal(gid, "satisfaction", _clamp(value), "; ".join(parts) + ".", evidence)


def signals_of(store: Any, source: str, window: Window, settings: Mapping[str, Any]) -> list[Signal]:
    """Both signals for every account of one source that has competitors or cases."""
    names = {a.remote_id: a.name or a.remote_id for a in store.records_of(Account, source=source)}
    deals = {d.remote_id: d for d in store.records_of(Opportunity, source=source)}
    found: list[Signal] = []
    for account, rivalry in sorted(rivalries(deals, store.records_of(Competitor, source=source), window).items()):
        found.append(competitor_signal(f"{source}:{account}", names.get(account, account), rivalry, window, settings))
    for account, tally in sorted(tallies(store.records_of(SupportCase, source=source), window, settings).items()):
        found.append(satisfaction_signal(f"{source}:{account}", names.get(account, account), tally, settings))
    return found


@hookimpl
def review_signals(store: Any, start: date, end: date, config: Mapping[str, Any]) -> list[Signal]:
    settings = config["signals"]
    window = Window.of(start, end)
    sources = sorted(set(store.sources_of(Competitor.entity)) | set(store.sources_of(SupportCase.entity)))
    return [s for source in sources for s in signals_of(store, source, window, settings)]
