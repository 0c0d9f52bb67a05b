"""Comparing two audits: findings new, resolved and persisting (since which saved
audit), and the accounts whose scores, tier, stage or level moved most, with the
relationships that cooled or grew (docs/evaluation.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from crmlink.core.analysis.accumulate import AccountData
from crmlink.core.analysis.audit import Audit, as_of_timestamp
from crmlink.core.analysis.view import AccountView
from crmlink.core.evaluation.changes import Changes, FindingChange, Move, PairChange
from crmlink.core.evaluation.saved import SavedAudit, SavedAudits
from crmlink.core.evaluation.snapshot import SCORE_NAMES, AccountState, FindingState, Snapshot
from crmlink.core.evaluation.vocab import LEVELS, STAGES, TIERS, rank
from crmlink.core.findings import SEVERITY_RANK
from crmlink.core.host import PluginHost
from crmlink.core.store import Store

#: The fields a move can be in, in the order a tie lists them.
FIELDS = (*SCORE_NAMES, "tier", "stage", "level")
_ORDERS = {"tier": TIERS, "stage": STAGES, "level": LEVELS}


def _entry(snap: Snapshot, f: FindingState, **more: Any) -> FindingChange:
    account = snap.accounts.get(f.account or "")
    source, _, remote_id = (f.account or "").partition(":")
    return FindingChange(f.code, f.severity, remote_id or None, source or None,
                         account.name if account else None, f.opportunity, **more)


def _finding_order(f: FindingChange) -> tuple[int, str, str, str]:
    return (-SEVERITY_RANK[f.severity], f.remote_id or "", f.opportunity or "", f.code)


def compare(before: Snapshot, after: Snapshot, settings: Mapping[str, Any]) -> Changes:
    """Findings and moves from ``before`` to ``after`` (``persisting`` entries say
    ``since`` = ``before``; :func:`persisting_since` looks further back)."""
    changes = Changes(before.name, before.as_of, after.name, after.as_of)
    for key, f in after.findings.items():
        kept = before.findings.get(key)
        if kept is None:
            changes.new.append(_entry(after, f))
        else:
            changes.persisting.append(_entry(after, f, since=before.name, since_as_of=before.as_of,
                                             severity_before=kept.severity))
    changes.resolved = [_entry(before, f) for key, f in before.findings.items() if key not in after.findings]
    for findings in (changes.new, changes.resolved, changes.persisting):
        findings.sort(key=_finding_order)
    for gid, now in after.accounts.items():
        then = before.accounts.get(gid)
        if then is not None:
            changes.moved += moves(then, now, settings)
    changes.moved.sort(key=lambda m: (-m.size, m.remote_id, FIELDS.index(m.field)))
    return changes


def moves(then: AccountState, now: AccountState, settings: Mapping[str, Any]) -> list[Move]:
    """The fields of one account that moved (a score by ``move_points`` or more; tier,
    stage or level by a step, which counts ``step_points``). A score that gained or lost
    its evidence (null at one end) moves by its value at the other."""
    found = []
    for name in SCORE_NAMES:
        a, b = then.scores.get(name), now.scores.get(name)
        if a is None and b is None:
            continue
        change = (b or 0.0) - (a or 0.0)
        if abs(change) >= settings["move_points"] or (a is None) != (b is None):
            found.append(Move(now.remote_id, now.source, now.name, name, a, b, change, abs(change), now.id))
    for name, order in _ORDERS.items():
        a, b = getattr(then, name), getattr(now, name)
        if a != b:
            steps = rank(b, order) - rank(a, order)
            found.append(Move(now.remote_id, now.source, now.name, name, a, b, steps,
                              abs(steps) * settings["step_points"], now.id))
    return found


def persisting_since(saved: SavedAudits, changes: Changes, before: SavedAudit) -> None:
    """Move each persisting finding's ``since`` back to the first saved audit of its
    unbroken run that ends at ``before``."""
    if not changes.persisting:
        return
    audits = saved.audits()
    earlier = [a for a in audits[:next(i for i, a in enumerate(audits) if a.id == before.id)]]
    key_of = {id(f): (_subject(f), f.code) for f in changes.persisting}
    since: dict[tuple[str, str], SavedAudit] = {}
    open_keys = set(key_of.values())
    for audit in reversed(earlier):
        held = saved.finding_keys(audit) & open_keys
        for key in held:
            since[key] = audit
        open_keys = held
        if not open_keys:
            break
    changes.persisting = [_since(f, since.get(key_of[id(f)])) for f in changes.persisting]


def _subject(f: FindingChange) -> str:
    if f.remote_id is None:
        return ""
    return f"{f.source}:{f.opportunity}" if f.opportunity else f"{f.source}:{f.remote_id}"


def _since(f: FindingChange, audit: SavedAudit | None) -> FindingChange:
    if audit is None:
        return f
    return FindingChange(f.code, f.severity, f.remote_id, f.source, f.name, f.opportunity, audit.label,
                         audit.as_of, f.severity_before)


def explain(store: Store, host: PluginHost, config: Mapping[str, Any], changes: Changes,
            limit: int | None = None) -> None:
    """Give the first ``limit`` moved accounts (every one when None) their reasons: the
    ``evaluation.reasons`` relationships whose strength changed most between the two
    dates (contacts and people as the store holds them now)."""
    accounts: list[str] = []
    for move in changes.moved:
        if move.account not in accounts:
            accounts.append(move.account)
    chosen = accounts if limit is None else accounts[:limit]
    found = pair_changes(store, host, config, chosen, changes.since_as_of, changes.until_as_of)
    for move in changes.moved:
        move.reasons = found.get(move.account, [])


def pair_changes(store: Store, host: PluginHost, config: Mapping[str, Any], accounts: Sequence[str],
                 before: date, after: date) -> dict[str, list[PairChange]]:
    """The relationships of each account (global ids) whose strength changed most from
    ``before`` to ``after``, biggest change first."""
    wanted = set(accounts)
    audit = Audit(store, host, config, after)
    result: dict[str, list[PairChange]] = {}
    sources = {gid.partition(":")[0] for gid in wanted}
    for unit in audit.units(None, only=sources):  # several CRM sources merged as the audit merges them
        data = unit.data
        views = [AccountView(account, AccountData(as_of_timestamp(after)), data.contacts_by_account.get(key, []),
                             data.users, [], config)
                 for key, account in sorted(data.accounts.items()) if account.id in wanted]
        for view, series in zip(views, audit.fold_at(unit, views, sorted({before, after})), strict=True):
            then, now = (AccountView(view.account, d, view.contacts, view.users, [], config) for d in
                         (series[0], series[-1]))
            result[view.account.id] = _biggest(then, now, int(config["evaluation"]["reasons"]))
    return result


def _biggest(then: AccountView, now: AccountView, limit: int) -> list[PairChange]:
    a, b = then.pair_strengths, now.pair_strengths
    deltas = sorted(((b.get(k, 0.0) - a.get(k, 0.0), k) for k in set(a) | set(b)),
                    key=lambda item: (-abs(item[0]), item[1]))
    contacts = {c.remote_id: c for c in now.contacts}
    out = []
    for delta, (user, contact) in deltas[:limit]:
        if abs(delta) < 1.0:
            break
        person = contacts.get(contact)
        who = now.users.get(user)
        out.append(PairChange(user, (who.name if who else None) or user, contact,
                              (person.name if person else None) or contact, a.get((user, contact), 0.0),
                              b.get((user, contact), 0.0)))
    return out


def saved_changes(store: Store, host: PluginHost, config: Mapping[str, Any], since: str | None,
                  until: str | None, explain_limit: int | None = None) -> Changes:
    """What changed between two saved audits (``crmlink diff``): ``until`` defaults to the
    latest, ``since`` to the one before it; each is a label or a date (the latest saved
    as of that day)."""
    from crmlink.core.errors import ConfigError

    saved = SavedAudits(store)
    audits = saved.audits()
    if not audits:
        raise ConfigError("no saved audits to compare: run crmlink audit --save (or set evaluation.save = true)")
    last = saved.find(until) if until else audits[-1]
    first = saved.find(since) if since else saved.previous(last)
    if first is None:
        raise ConfigError(f"only one saved audit ({last.label!r}) is as of {last.as_of} or earlier: save another, "
                          "or give --since")
    if (first.as_of, first.saved_at) > (last.as_of, last.saved_at):
        raise ConfigError(f"--since {first.label!r} ({first.as_of}) is later than --until {last.label!r} "
                          f"({last.as_of}); swap them")
    changes = compare(saved.load(first), saved.load(last), config["evaluation"])
    persisting_since(saved, changes, first)
    explain(store, host, config, changes, explain_limit)
    return changes


def changes_since_saved(store: Store, host: PluginHost, config: Mapping[str, Any], as_of: date,
                        now: Callable[[], Snapshot], explain_limit: int | None = 10) -> Changes | None:
    """What changed since the latest audit saved before ``as_of`` (the reports' "What
    changed" section); None when there is none. ``now`` makes the snapshot of the audit
    of ``as_of``, only when there is one to compare it with (it reads every account and
    deal of the document)."""
    saved = SavedAudits(store)
    before = saved.latest(before=as_of)
    if before is None:
        return None
    earlier, current = saved.load(before), now()
    sources = {a.source for a in current.accounts.values()}
    if sources and sources != {a.source for a in earlier.accounts.values()}:
        earlier = earlier.only_sources(sources)   # an audit of some sources: compare those alone
    changes = compare(earlier, current, config["evaluation"])
    persisting_since(saved, changes, before)
    explain(store, host, config, changes, explain_limit)
    return changes
