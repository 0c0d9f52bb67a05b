"""The period review (``crmlink review``): expected against actual per account and for
the portfolio, the accounts rising and declining over the period, the signals beside
them, and the ten tasks for the next period (docs/evaluation.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from crmlink.core.analysis.audit import Audit
from crmlink.core.document import AccountEntry, AuditDocument
from crmlink.core.evaluation.changes import Move
from crmlink.core.evaluation.diff import compare, explain
from crmlink.core.evaluation.expectations import FIELDS, Expectation, expectations
from crmlink.core.evaluation.period import Period
from crmlink.core.evaluation.saved import SavedAudits
from crmlink.core.evaluation.signals import Signal
from crmlink.core.evaluation.snapshot import AccountState, Snapshot, snapshot_of
from crmlink.core.evaluation.vocab import LEVELS, STAGES, TIERS, label, rank
from crmlink.core.findings import SEVERITY_RANK
from crmlink.core.host import PluginHost
from crmlink.core.model import Account
from crmlink.core.store import Store

OUTCOMES = ("missed", "met", "exceeded")
_ORDERS = {"tier": TIERS, "stage": STAGES, "level": LEVELS}
TIER_WEIGHT = {"S": 4, "A": 3, "B": 2, "C": 1}


def judge(expected: Expectation, actual: AccountState, exceed_points: float) -> dict[str, str]:
    """Each expected field's outcome: missed, met or exceeded."""
    outcomes = {}
    for name in FIELDS:
        want = getattr(expected, name)
        if want is None:
            continue
        if name == "health":
            have = actual.scores.get("health")
            outcomes[name] = ("missed" if have is None or have < want else
                              "exceeded" if have >= want + exceed_points else "met")
        else:
            diff = rank(getattr(actual, name), _ORDERS[name]) - rank(want, _ORDERS[name])
            outcomes[name] = "missed" if diff < 0 else "exceeded" if diff > 0 else "met"
    return outcomes


def overall(outcomes: Mapping[str, str]) -> str:
    """missed when any field is, exceeded when one is and none is missed, else met."""
    if "missed" in outcomes.values():
        return "missed"
    return "exceeded" if "exceeded" in outcomes.values() else "met"


@dataclass
class AccountReview:
    state: AccountState
    expected: Expectation
    fields: dict[str, str]

    @property
    def outcome(self) -> str:
        return overall(self.fields)

    def actual(self) -> dict[str, Any]:
        return {"tier": self.state.tier, "stage": self.state.stage, "level": self.state.level,
                "health": self.state.scores.get("health")}

    def to_json(self) -> dict[str, Any]:
        return {"remote_id": self.state.remote_id, "source": self.state.source, "name": self.state.name,
                "expected": self.expected.to_json(), "actual": self.actual(), "met": self.outcome != "missed",
                "outcome": self.outcome, "fields": self.fields, "origin": self.expected.origin or {}}


@dataclass
class Trend:
    """An account rising or declining over the period."""

    state: AccountState
    moves: list[Move]
    signals: list[Signal] = field(default_factory=list)

    @property
    def change(self) -> float:
        health = next((m.change for m in self.moves if m.field == "health"), 0.0)
        steps = sum(m.change for m in self.moves if m.field in ("stage", "level"))
        return health + steps * 20.0

    def to_json(self) -> dict[str, Any]:
        health = next((m for m in self.moves if m.field == "health"), None)
        return {"remote_id": self.state.remote_id, "source": self.state.source, "name": self.state.name,
                "health_before": health.before if health else self.state.scores.get("health"),
                "health_after": self.state.scores.get("health"),
                "moves": [m.to_json() for m in self.moves],
                "reason": next((m.reason for m in self.moves if m.reason), ""),
                "signals": [s.to_json() for s in self.signals]}


@dataclass
class Task:
    account: AccountEntry
    code: str
    severity: str
    why: str
    action: str
    evidence: dict[str, Any]
    weight: float
    #: the finding code whose action this task already carries
    covers: str | None = None

    def to_json(self, rank_: int) -> dict[str, Any]:
        a = self.account
        return {"rank": rank_, "remote_id": a.remote_id, "source": a.source, "name": a.name, "tier": a.tier,
                "code": self.code, "severity": self.severity, "why": self.why, "action": self.action,
                "evidence": self.evidence}


@dataclass
class Review:
    period: Period
    as_of: date
    basis: str
    accounts: list[AccountReview]
    without_expectations: int
    rising: list[Trend]
    declining: list[Trend]
    held_back: list[Trend]
    signals: dict[str, list[Signal]]
    tasks: list[Task]

    def portfolio(self) -> dict[str, Any]:
        counts = dict.fromkeys(OUTCOMES, 0)
        by_field: dict[str, dict[str, int]] = {}
        for a in self.accounts:
            counts[a.outcome] += 1
            for name, outcome in a.fields.items():
                by_field.setdefault(name, dict.fromkeys(OUTCOMES, 0))[outcome] += 1
        expected = [a.expected.health for a in self.accounts if a.expected.health is not None]
        actual = [h for a in self.accounts if a.expected.health is not None
                  and (h := a.state.scores.get("health")) is not None]
        return {"accounts": len(self.accounts), "without_expectations": self.without_expectations, **counts,
                "by_field": by_field,
                "health_expected_mean": round(sum(expected) / len(expected), 1) if expected else None,
                "health_actual_mean": round(sum(actual) / len(actual), 1) if actual else None,
                "rising": len(self.rising), "declining": len(self.declining), "held_back": len(self.held_back)}

    def to_json(self) -> dict[str, Any]:
        return {"period": {"name": self.period.name, "start": self.period.start.isoformat(),
                           "end": self.period.end.isoformat()},
                "as_of": self.as_of.isoformat(), "basis": self.basis,
                "accounts": [a.to_json() for a in self.accounts], "portfolio": self.portfolio(),
                "rising": [t.to_json() for t in self.rising], "declining": [t.to_json() for t in self.declining],
                "held_back": [t.to_json() for t in self.held_back],
                "signals": {gid: [s.to_json() for s in found] for gid, found in sorted(self.signals.items())},
                "tasks": [t.to_json(i) for i, t in enumerate(self.tasks, start=1)]}


def _ends(store: Store, host: PluginHost, config: Mapping[str, Any], period: Period, until: date,
          end_doc: AuditDocument) -> tuple[Snapshot, Snapshot, str]:
    """The two snapshots rising and declining are measured between: saved audits (the
    one at the period's eve, else the first within the period, and the last within it),
    else audits computed at its eve and its end."""
    saved = SavedAudits(store)
    audits = saved.audits()
    within = [a for a in audits if period.start <= a.as_of <= until]
    at_eve = [a for a in audits if a.as_of == period.eve]
    ends = at_eve[-1:] + within
    if len({a.as_of for a in ends}) >= 2:
        first, last = ends[0], ends[-1]
        return (saved.load(first), saved.load(last),
                f"saved audits {first.label} ({first.as_of}) to {last.label} ({last.as_of})")
    start_doc = Audit(store, host, config, period.eve).document()
    return (snapshot_of(start_doc), snapshot_of(end_doc),
            f"audits computed as of {period.eve} and {until} (fewer than two saved within the period)")


def trends(before: Snapshot, after: Snapshot, settings: Mapping[str, Any]) -> tuple[list[Trend], list[Trend]]:
    """Accounts whose health, stage or level moved up (rising) or down (declining)."""
    changes = compare(before, after, settings)
    by_account: dict[str, list[Move]] = {}
    for move in changes.moved:
        if move.field in ("health", "stage", "level"):
            by_account.setdefault(move.account, []).append(move)
    rising, declining = [], []
    for gid, moves in by_account.items():
        trend = Trend(after.accounts[gid], moves)
        if trend.change > 0:
            rising.append(trend)
        elif trend.change < 0:
            declining.append(trend)
    rising.sort(key=lambda t: (-t.change, t.state.remote_id))
    declining.sort(key=lambda t: (t.change, t.state.remote_id))
    return rising, declining


def run_review(store: Store, host: PluginHost, config: Mapping[str, Any], period: Period, as_of: date,
               csv_path: Path | None = None) -> Review:
    """The review of ``period`` as of ``as_of`` (its end, or earlier while it runs)."""
    until = min(period.end, as_of)
    end_doc = Audit(store, host, config, until).document()
    accounts = [a for source in store.sources() for a in store.records_of(Account, source=source)]
    expected = expectations(accounts, config, period, csv_path)
    now = snapshot_of(end_doc)
    settings = config["review"]
    reviewed = [AccountReview(now.accounts[gid], e, judge(e, now.accounts[gid], settings["exceed_points"]))
                for gid, e in expected.items() if gid in now.accounts]
    reviewed.sort(key=lambda r: (OUTCOMES.index(r.outcome), r.state.remote_id))
    before, after, basis = _ends(store, host, config, period, until, end_doc)
    rising, declining = trends(before, after, config["evaluation"])
    signals: dict[str, list[Signal]] = {}
    for signal in host.review_signals(store, period.start, until, config):
        signals.setdefault(signal.account, []).append(signal)
    for trend in rising + declining:
        trend.signals = signals.get(trend.state.id, [])
    held = [t for t in rising if any(s.kind == "satisfaction" and s.value < 0 for s in t.signals)]
    rising = [t for t in rising if t not in held]
    _explain(store, host, config, before, after, rising + declining + held)
    tasks = next_tasks(end_doc, reviewed, declining + held, signals, settings)
    return Review(period, until, basis, reviewed, len(now.accounts) - len(reviewed), rising, declining, held,
                  signals, tasks)


def _explain(store: Store, host: PluginHost, config: Mapping[str, Any], before: Snapshot, after: Snapshot,
             trends_: Sequence[Trend], limit: int = 20) -> None:
    """The relationships behind the biggest trends."""
    from crmlink.core.evaluation.changes import Changes

    chosen = sorted(trends_, key=lambda t: (-abs(t.change), t.state.remote_id))[:limit]
    changes = Changes(before.name, before.as_of, after.name, after.as_of,
                      moved=[m for t in chosen for m in t.moves])
    explain(store, host, config, changes)


def next_tasks(doc: AuditDocument, reviewed: Sequence[AccountReview], worsening: Sequence[Trend],
               signals: Mapping[str, list[Signal]], settings: Mapping[str, Any]) -> list[Task]:
    """The most important tasks for the next period: missed expectations first, then the
    findings of accounts declining or with bad signals, then the most severe findings of
    the most strategic accounts; each with its account, evidence and the method's action."""
    missed = {r.state.id: r for r in reviewed if r.outcome == "missed"}
    down = {t.state.id: t for t in worsening}
    candidates: list[Task] = []
    for a in doc.accounts:
        bonus = TIER_WEIGHT.get(a.tier or "", 0) + (10 if a.id in down else 0)
        bonus += 5 if any(s.value < 0 for s in signals.get(a.id, [])) else 0
        if a.id in missed:
            candidates.append(_expectation_task(a, missed[a.id], bonus + 30))
        for f in a.findings:
            if f.action and not f.code.startswith("DATA_"):
                evidence: dict[str, Any] = {"finding": f.evidence}
                if a.id in down:
                    evidence["trend"] = down[a.id].to_json()
                if signals.get(a.id):
                    evidence["signals"] = [s.to_json() for s in signals[a.id]]
                candidates.append(Task(a, f.code, f.severity, f.message, f.action, evidence,
                                       SEVERITY_RANK[f.severity] * 5 + bonus))
    candidates.sort(key=lambda t: (-t.weight, TIER_WEIGHT.get(t.account.tier or "", 0) * -1, t.account.remote_id,
                                   t.code))
    chosen: list[Task] = []
    per_account: dict[str, int] = {}
    actions: set[tuple[str, str]] = set()
    for task in candidates:
        if per_account.get(task.account.id, 0) >= settings["tasks_per_account"]:
            continue
        if (task.account.id, task.action) in actions or (task.account.id, task.code) in actions:
            continue
        actions.add((task.account.id, task.action))
        if task.covers:
            actions.add((task.account.id, task.covers))
        chosen.append(task)
        per_account[task.account.id] = per_account.get(task.account.id, 0) + 1
        if len(chosen) >= settings["tasks"]:
            break
    return chosen


def _expectation_task(a: AccountEntry, review: AccountReview, weight: float) -> Task:
    short = [name for name, outcome in review.fields.items() if outcome == "missed"]
    actual = review.actual()
    wanted = ", ".join(f"{n} {_word(n, getattr(review.expected, n))} (is {_word(n, actual[n])})" for n in short)
    rel = a.relationship
    steps: list[str] = []
    if rel is not None and "stage" in short:
        steps += rel.stage_next
    if rel is not None and "level" in short:
        steps += rel.level_next
    worst = None
    if not steps:
        worst = next((f for f in a.findings if f.action and not f.code.startswith("DATA_")), None)
        steps = [worst.action] if worst else ["Agree with the account team what would bring the relationship "
                                              "to the expected level, and meet their decision makers."]
        if "health" in short:
            steps[0] = f"Raise health from {_word('health', actual['health'])} to " \
                       f"{_word('health', review.expected.health)}: {steps[0]}"
    action = "; ".join(steps)
    if rel is not None and "stage" in short and rel.stage_next:
        action = f"To reach {label(_next(a.stage, STAGES))}: {action}."
    return Task(a, "EXPECTATION_MISSED", "high",
                f"{a.name or a.remote_id} missed its expectations: {wanted}.", action,
                {"expected": review.expected.to_json(), "actual": actual, "fields": review.fields}, weight,
                worst.code if worst else None)


def _next(value: str | None, order: tuple[str, ...]) -> str:
    at = order.index(value) + 1 if value in order else 0
    return order[min(at, len(order) - 1)]


def _word(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name == "health":
        return f"{float(value):.0f}"
    return str(value) if name == "tier" else label(value)
