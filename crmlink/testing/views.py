"""Build the views scoring and findings hooks receive from records, for unit tests.

``account_view`` gives a scoring plugin's tests the :class:`~crmlink.AccountView` the audit
would pass its ``score_account`` and ``account_findings`` hooks, without a CSV export, a
store or a full audit: the interactions go through the audit's own fold
(:mod:`crmlink.core.analysis.accumulate`), as of the end of ``as_of`` and of the previous
period. docs/plugins/testing.md shows it in use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from crmlink.core import clock
from crmlink.core.analysis.accumulate import AccountData, Accumulator
from crmlink.core.analysis.config import DEFAULTS, merge
from crmlink.core.analysis.tiers import assign_tier
from crmlink.core.analysis.view import AccountView
from crmlink.core.host import PluginHost, get_plugin_host
from crmlink.core.model import Account, Contact, Interaction, Opportunity, User
from crmlink.core.store import INTERACTION_COLUMNS


def account_view(account: Account, *, contacts: Iterable[Contact] = (), users: Iterable[User] = (),
                 interactions: Iterable[Interaction] = (), opportunities: Iterable[Opportunity] = (),
                 as_of: date | None = None, config: Mapping[str, Any] | None = None,
                 host: PluginHost | None = None) -> AccountView:
    """The audit's view of ``account`` as of the end of ``as_of`` (UTC; today if ``None``).

    ``contacts`` and ``opportunities`` are the account's: an ``account_id`` left blank is
    taken as this account's. ``users`` are our people (interactions name them in
    ``user_ids``). ``interactions`` are folded exactly as the audit folds stored ones:
    deleted ones and those after ``as_of`` do not count, one without an ``account_id``
    counts for the account of its contacts, a blank ``method`` is asked of the
    ``classify_interaction`` hook. ``config`` holds settings to change, as tables of a
    ``crmlink.toml`` (``{"strength": {"engaged_threshold": 40}}``), over the defaults.
    ``host`` answers ``classify_interaction``; the default has the built-in plugins only
    (the ``plugin_host`` fixture is one).

    As in the audit the account gets its computed tier when it has none, and
    ``view.previous`` is the account at the previous period
    (``findings.previous_period_days`` earlier), whose score evidence nothing reads
    (``wants_evidence`` is ``False``). ``view.scores`` is empty: call your
    hooks, or fill it with what other plugins would have scored. Records are used as
    given; the sync would also fill a contact's blank seniority and department from its
    title, so set them when your plugin reads them. The records passed in are not changed.
    """
    settings = merge(DEFAULTS, dict(config or {}))
    account = dataclasses.replace(account)
    assign_tier(account, settings["tiers"])
    owned = [_owned(account, c) for c in contacts if not c.deleted]
    deals = [_owned(account, o) for o in opportunities]
    people = {u.remote_id: u for u in users}
    now = clock.end_of_day(as_of)
    previous = now - clock.seconds(settings["findings"]["previous_period_days"])
    current, before = AccountData(now), AccountData(previous)
    by_id = {c.remote_id: c for c in owned}
    plugins = host or get_plugin_host(load_entrypoints=False)
    fold = Accumulator(settings, people, by_id, plugins.interaction_method)
    rows = [_row(account, i) for i in interactions if not i.deleted]  # the fold skips later ones
    fold.fold(rows, {account.remote_id: (current, before)},
              lambda ids: account.remote_id if any(c in by_id for c in ids) else None)
    args = (owned, people, deals, settings)
    return AccountView(account, current, *args,
                       previous=AccountView(account, before, *args, wants_evidence=False))


def _owned(account: Account, record: Any) -> Any:
    """A copy of ``record`` that belongs to ``account``; another account's is an error."""
    if record.account_id not in (None, account.remote_id):
        raise ValueError(f"{record.entity} {record.remote_id!r} belongs to account "
                         f"{record.account_id!r}, not {account.remote_id!r}")
    return dataclasses.replace(record, account_id=account.remote_id)


def _row(account: Account, interaction: Interaction) -> tuple[Any, ...]:
    """``interaction`` as :meth:`Store.interaction_rows` gives it to the fold."""
    if interaction.account_id not in (None, account.remote_id):
        raise ValueError(f"interaction {interaction.remote_id!r} belongs to account "
                         f"{interaction.account_id!r}, not {account.remote_id!r}")
    values = []
    for column in INTERACTION_COLUMNS:
        value = getattr(interaction, column)
        if isinstance(value, datetime):
            value = value.timestamp()
        elif isinstance(value, tuple):
            value = ";".join(value)
        values.append(value)
    return tuple(values)


__all__ = ["account_view"]
