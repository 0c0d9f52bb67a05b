"""Trend charts from saved audits: where an account was saved in earlier audits, the
HTML report draws its history from them instead of recomputing month ends."""

from __future__ import annotations

from datetime import date, timedelta

from crmlink.core.document import AuditDocument, HistoryPoint
from crmlink.core.evaluation.saved import SavedAudits
from crmlink.core.evaluation.snapshot import AccountState

#: points a trend shows: the latest saved audits and the audit itself
POINTS = 12


def saved_trend(saved: SavedAudits, doc: AuditDocument, points: int = POINTS) -> int:
    """Replace the ``health_history`` of each account saved in at least two audits
    before ``doc``'s as-of date with those audits' scores (the latest ``points - 1``)
    and the audit's own. Returns how many accounts got a saved trend."""
    as_of = date.fromisoformat(doc.as_of)
    series: dict[str, list[tuple[date, AccountState]]] = {}
    for audit, state in saved.account_rows([a.id for a in doc.accounts], until=as_of - timedelta(days=1)):
        series.setdefault(state.id, []).append((audit.as_of, state))
    overall = doc.presentation.overall
    names = [d.name for d in doc.presentation.headline]
    done = 0
    for account in doc.accounts:
        found = _one_per_day(series.get(account.id, []))
        if len(found) < 2:
            continue
        history = [HistoryPoint(day.isoformat(), {n: state.scores.get(
            "health" if overall is not None and n == overall.name else n) for n in names})
                   for day, state in found[-(points - 1):]]
        history.append(HistoryPoint(doc.as_of, {n: account.scores.get(n) for n in names}))
        account.health_history = history
        done += 1
    return done


def _one_per_day(points: list[tuple[date, AccountState]]) -> list[tuple[date, AccountState]]:
    """The last saved state of each as-of date (audits saved under several labels)."""
    by_day: dict[date, AccountState] = {}
    for day, state in points:
        by_day[day] = state
    return sorted(by_day.items())
