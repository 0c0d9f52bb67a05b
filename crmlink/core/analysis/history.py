"""Health month by month: the headline scores of each account at the last month ends.

The audit folds the interactions once more, into the aggregates of every month end
(``fold``), and scores each past view with the same hooks as the audit date (``score``).
Contacts, opportunities and the tier are today's: records carry no history.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from crmlink.core.analysis.accumulate import AccountData
from crmlink.core.analysis.view import AccountView
from crmlink.core.document import HistoryPoint

#: folds one unit's interactions into the aggregates of each of its accounts (in the order
#: given) at each month end
Fold = Callable[[Any, Sequence[AccountView], Sequence[date]], list[list[AccountData]]]


def month_ends(as_of: date, months: int = 12) -> list[date]:
    """The last day of each of the ``months - 1`` months before ``as_of``'s, then ``as_of``."""
    ends = [as_of]
    year, month = as_of.year, as_of.month
    for _ in range(months - 1):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        ends.append(date(year, month, calendar.monthrange(year, month)[1]))
    return sorted(ends)


def health_history(groups: Sequence[tuple[Any, Sequence[AccountView]]], as_of: date, names: Sequence[str],
                   fold: Fold, score: Callable[[AccountView], None], months: int = 12) -> dict[str, list[HistoryPoint]]:
    """The scores ``names`` of each account at each month end, keyed by the account's id;
    ``groups`` are the audit's units (a source, or merged sources) with their accounts."""
    ends = month_ends(as_of, months)
    result: dict[str, list[HistoryPoint]] = {}
    for unit, group in groups:
        folded = fold(unit, group, ends[:-1])  # the audit date is the view itself
        for view, past_data in zip(group, folded, strict=True):
            result[view.account.id] = account_history(view, past_data, ends, names, score)
    return result


def account_history(view: AccountView, past: Sequence[AccountData], ends: Sequence[date], names: Sequence[str],
                    score: Callable[[AccountView], None]) -> list[HistoryPoint]:
    """The scores ``names`` of one account at each of ``ends`` (:func:`month_ends`): from
    its data ``past`` at each but the last, scored with ``score``, then from ``view``."""
    series = []
    for day, data in zip(ends[:-1], past, strict=True):
        then = AccountView(view.account, data, view.contacts, view.users, view.opportunities, view.config,
                           wants_evidence=False)  # its scores' values alone are kept
        score(then)
        series.append(_point(day, then, names))
    series.append(_point(ends[-1], view, names))
    return series


def _point(day: date, view: AccountView, names: Sequence[str]) -> HistoryPoint:
    return HistoryPoint(day.isoformat(), {name: view.scores.get(name) for name in names})
