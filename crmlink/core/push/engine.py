"""The push engine: plan (audit values against the CRM's current ones), then write the
changed records a batch at a time, with the sync's retry policy, recording each write.

A push is idempotent by construction: the plan compares with what the CRM holds *now*,
so a push that was killed, or stopped by its API budget, is finished by the next one
without writing anything twice; a write request retried after a temporary failure first
reads its records again and leaves out the ones the failed attempt did write.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from crmlink.core.document import AuditDocument
from crmlink.core.errors import ConfigError, CrmlinkError, RetriableError
from crmlink.core.model import Account, User
from crmlink.core.push import log, tasks
from crmlink.core.push.fields import OBJECTS, PushField, Value, desired, fields_of
from crmlink.core.push.target import Outcome, PushTarget, Update
from crmlink.core.push.tasks import ExistingTask, TaskPlan, TaskSpec
from crmlink.core.redact import Redactor
from crmlink.core.store import Store
from crmlink.core.sync import RetryPolicy

T = TypeVar("T")
Item = TypeVar("Item")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """One field of one record that the push writes: ``old`` as the CRM has it now."""

    obj: str
    record_id: str
    field: str
    old: Value
    new: Value

    def to_json(self, objects: Mapping[str, str]) -> dict[str, Any]:
        return {"object": objects[self.obj], "id": self.record_id, "field": self.field,
                "old": self.old, "new": self.new}


@dataclass
class Plan:
    """What a push would write: the changes, the records the CRM no longer has, and the
    write requests it takes."""

    changes: list[Change] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0  # records compared
    write_batch: int = 100
    #: above this many changed records of an object, one bulk job (None: never)
    bulk_threshold: int | None = None
    bulk_requests: int = 0

    def updates(self, obj: str) -> list[Update]:
        """The changes of ``obj`` grouped by record, in plan order."""
        by_record: dict[str, dict[str, Value]] = {}
        for change in self.changes:
            if change.obj == obj:
                by_record.setdefault(change.record_id, {})[change.field] = change.new
        return [Update(rid, values) for rid, values in by_record.items()]

    def bulk(self, obj: str) -> bool:
        """Whether ``obj``'s changes go through one bulk job."""
        return self.bulk_threshold is not None and len(self.updates(obj)) > self.bulk_threshold

    @property
    def write_requests(self) -> int:
        return sum(self.bulk_requests if self.bulk(obj) else math.ceil(len(self.updates(obj)) / self.write_batch)
                   for obj in OBJECTS)

    def to_json(self, objects: Mapping[str, str], task_plan: TaskPlan | None = None,
                task_batch: int = 100) -> dict[str, Any]:
        """The document ``--dry-run --format json`` prints: the changes, the tasks to create
        and close, and the write requests it takes."""
        task_requests = 0
        if task_plan is not None:
            task_requests = (math.ceil(len(task_plan.create) / task_batch)
                             + math.ceil(len(task_plan.close) / task_batch))
        return {"changes": [c.to_json(objects) for c in self.changes],
                "tasks": task_plan.to_json() if task_plan is not None else [],
                "requests": self.write_requests + task_requests}


@dataclass
class PushResult:
    run_id: int
    plan: Plan
    status: str = "running"
    written: int = 0  # records
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # object, id, message
    retries: int = 0
    requests: int = 0
    tasks_created: int = 0
    tasks_closed: int = 0


class PushEngine:
    """One push of one source's audit values through one target."""

    def __init__(self, store: Store, target: PushTarget, source: str, *,
                 policy: RetryPolicy | None = None, notice: Callable[[str], None] | None = None,
                 redact: Redactor | None = None) -> None:
        self.store, self.target, self.source = store, target, source
        self.policy = policy or RetryPolicy()
        self.notice = notice or (lambda message: None)
        self.redact = redact or Redactor(target.crm.secrets)
        self.retries = 0

    # -- ownership ---------------------------------------------------------------------------
    def require_owned(self, tasks: bool = False) -> None:
        """Refuse to write a field crmlink did not create for this source (with ``tasks``,
        also the task key field)."""
        owned = log.owned(self.store, self.source)
        if tasks and self.target.task_object and ("task", self.target.task_key_field) not in owned:
            raise ConfigError(f"crmlink did not create {self.target.task_object}.{self.target.task_key_field} in "
                              f"{self.source}; run 'crmlink push {self.source} --setup' before --tasks")
        for spec in self.target.fields:
            name = self.target.field_name(spec)
            if (spec.obj, name) not in owned:
                raise ConfigError(
                    f"crmlink did not create {self.target.objects[spec.obj]}.{name} in {self.source} "
                    f"and writes only fields it created: run 'crmlink push {self.source} --setup' first, "
                    f"or name another field with [push.{self.source}.fields] {spec.key} = \"...\" in the "
                    "config file")

    # -- planning ----------------------------------------------------------------------------
    def plan(self, document: AuditDocument) -> Plan:
        """Compare the audit's values with the CRM's current ones (read back, a batch at a
        time); only differing fields become changes."""
        self.call("check the fields", self.target.check)
        plan = Plan(write_batch=self.target.write_batch, bulk_requests=self.target.bulk_requests,
                    bulk_threshold=self.target.bulk_threshold if self.target.bulk_requests else None)
        wanted: dict[str, dict[str, dict[str, Value]]] = {obj: {} for obj in OBJECTS}
        for obj, rid, values in desired(document, self.source):
            wanted[obj][rid] = values
        for obj in OBJECTS:
            specs = fields_of(obj)
            ids = list(wanted[obj])
            for start in range(0, len(ids), self.target.read_batch):
                chunk = ids[start:start + self.target.read_batch]
                current = self.call(f"read {self.target.objects[obj]}",
                                    lambda o=obj, c=chunk: self.target.read(o, c))  # type: ignore[misc]
                for rid in chunk:
                    plan.records += 1
                    if rid not in current:
                        plan.missing.append((obj, rid))
                        continue
                    plan.changes.extend(self._diff(obj, rid, specs, wanted[obj][rid], current[rid]))
        return plan

    def _diff(self, obj: str, rid: str, specs: Iterable[PushField], want: Mapping[str, Value],
              have: Mapping[str, Value]) -> list[Change]:
        changes = []
        for spec in specs:
            name = self.target.field_name(spec)
            old, new = spec.normalize(have.get(name)), want[spec.key]
            if old != new:
                changes.append(Change(obj, rid, name, old, new))
        return changes

    # -- applying ----------------------------------------------------------------------------
    def apply(self, plan: Plan, run_id: int) -> PushResult:
        """Write the plan's changes; a refused record is reported and the push goes on."""
        result = PushResult(run_id, plan)
        by_key = {(c.obj, c.record_id): [] for c in plan.changes}  # type: dict[tuple[str, str], list[Change]]
        for change in plan.changes:
            by_key[(change.obj, change.record_id)].append(change)
        missing = [(obj, rid, "not found in the CRM (deleted, merged, or not visible to this user)")
                   for obj, rid in plan.missing]
        result.refused.extend((self.target.objects[o], r, m) for o, r, m in missing)
        for obj in OBJECTS:
            updates = plan.updates(obj)
            size = len(updates) if plan.bulk(obj) else self.target.write_batch
            for start in range(0, len(updates), max(1, size)):
                batch = updates[start:start + size]
                outcomes = self._write(obj, batch, bulk=plan.bulk(obj))
                rows = []
                for outcome in outcomes:
                    status = "written" if outcome.ok else "refused"
                    for change in by_key.get((obj, outcome.record_id), []):
                        rows.append((self.target.objects[obj], change.record_id, change.field,
                                     change.old, change.new, status, outcome.message))
                    if outcome.ok:
                        result.written += 1
                    else:
                        result.refused.append((self.target.objects[obj], outcome.record_id,
                                               self.redact(outcome.message)))
                log.writes(self.store, run_id, rows)
        result.retries = self.retries
        return result

    def _write(self, obj: str, batch: Sequence[Update], bulk: bool = False) -> list[Outcome]:
        """One write request (or bulk job), retried; a retry first drops what the failed
        try wrote."""
        def landed(pending: Sequence[Update]) -> dict[str, Outcome]:
            already = self._already_written(obj, pending)
            return {u.record_id: Outcome(u.record_id, True) for u in pending if u.record_id in already}

        def send(pending: list[Update]) -> list[Outcome]:
            return self.target.write_bulk(obj, pending) if bulk else self.target.write(obj, pending)

        return self._once_each(f"write {self.target.objects[obj]}", batch, lambda u: u.record_id, landed, send)

    def _already_written(self, obj: str, updates: Sequence[Update]) -> set[str]:
        ids = [u.record_id for u in updates]
        current: dict[str, dict[str, Value]] = {}
        for start in range(0, len(ids), self.target.read_batch):
            current.update(self.target.read(obj, ids[start:start + self.target.read_batch]))
        specs = {self.target.field_name(s): s for s in fields_of(obj)}
        return {u.record_id for u in updates if u.record_id in current and all(
            specs[name].normalize(current[u.record_id].get(name)) == value for name, value in u.values.items())}

    # -- tasks -------------------------------------------------------------------------------
    def plan_tasks(self, document: AuditDocument, severities: set[str]) -> TaskPlan:
        """The tasks to create and close (``--tasks``)."""
        if not self.target.task_object:
            raise ConfigError(f"the {self.target.connector} push target does not make tasks; leave out --tasks")
        accounts = {a.remote_id: a for a in self.store.records_of(Account, source=self.source)}
        users = {u.remote_id: u for u in self.store.records_of(User, source=self.source)}
        want = tasks.wanted(document, self.source, severities, accounts, users)
        existing = self.call("read crmlink's tasks", self.target.read_tasks)
        return tasks.reconcile(want, existing, log.recorded_tasks(self.store, self.source),
                               tasks.present_keys(document, self.source),
                               tasks.audited_records(document, self.source))

    def apply_tasks(self, plan: TaskPlan, result: PushResult) -> None:
        """Create and close the plan's tasks, recording each in the store."""
        kind = self.target.task_object
        for task, spec in plan.adopt:
            log.task_created(self.store, self.source, spec.key, task.id, spec.subject, spec.owner)
        by_key = {t.key: t for t in plan.create}
        for start in range(0, len(plan.create), self.target.task_batch):
            batch = plan.create[start:start + self.target.task_batch]
            rows = []
            for outcome in self._create_tasks(batch):
                spec = by_key[outcome.record_id]
                if outcome.ok:
                    result.tasks_created += 1
                    log.task_created(self.store, self.source, spec.key, outcome.created_id, spec.subject, spec.owner)
                else:
                    result.refused.append((kind, spec.key, self.redact(outcome.message)))
                rows.append((kind, outcome.created_id or spec.key, "(created)", None, spec.subject,
                             "written" if outcome.ok else "refused", outcome.message))
            log.writes(self.store, result.run_id, rows)
        for start in range(0, len(plan.close), self.target.task_batch):
            closing = plan.close[start:start + self.target.task_batch]
            outcomes = self.call(f"close {kind}", lambda c=closing: self.target.close_tasks(c))  # type: ignore[misc]
            keys = {t.id: t.key for t in closing}
            rows = []
            for outcome in outcomes:
                if outcome.ok:
                    result.tasks_closed += 1
                    log.task_closed(self.store, self.source, keys[outcome.record_id])
                else:
                    result.refused.append((kind, outcome.record_id, self.redact(outcome.message)))
                rows.append((kind, outcome.record_id, "(closed)", None, keys[outcome.record_id],
                             "written" if outcome.ok else "refused", outcome.message))
            log.writes(self.store, result.run_id, rows)

    def _create_tasks(self, batch: Sequence[TaskSpec]) -> list[Outcome]:
        """Create tasks; a retry first looks them up by key, so none is made twice."""
        def landed(pending: Sequence[TaskSpec]) -> dict[str, Outcome]:
            found: dict[str, ExistingTask] = {t.key: t for t in self.target.read_tasks([s.key for s in pending])}
            return {s.key: Outcome(s.key, True, created_id=found[s.key].id) for s in pending if s.key in found}

        return self._once_each(f"create {self.target.task_object}", batch, lambda s: s.key, landed,
                               self.target.create_tasks)

    def _once_each(self, what: str, batch: Sequence[Item], key: Callable[[Item], str],
                   landed: Callable[[Sequence[Item]], dict[str, Outcome]],
                   send: Callable[[list[Item]], list[Outcome]]) -> list[Outcome]:
        """``send(batch)`` under the retry policy, each item applied once: before a retry,
        ``landed`` gives the outcomes (by ``key``) of the items the failed try applied
        anyway, and only the others are sent again."""
        pending = list(batch)
        done: list[Outcome] = []
        attempt = 0

        def once() -> list[Outcome]:
            nonlocal pending, attempt
            attempt += 1
            if attempt > 1:
                found = landed(pending)
                done.extend(found.values())
                pending = [item for item in pending if key(item) not in found]
            return send(pending) if pending else []

        return done + self.call(what, once)

    # -- retries -----------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` under the retry policy; the connector classifies its exceptions."""
        def log_retry(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0
            self.retries += 1
            message = (f"{what}: {self.redact(str(exc))}; retry {state.attempt_number} of "
                       f"{self.policy.attempts - 1} in {wait:.1f}s")
            logger.info("%s", message)
            self.notice(message)

        def classified() -> T:
            try:
                return fn()
            except CrmlinkError:
                raise
            except Exception as exc:
                found = self.target.crm.classify_error(exc)
                if found is None:
                    raise
                raise found from exc

        retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(RetriableError),
                                     wait=self.policy.wait, stop=self.policy.stop,
                                     before_sleep=log_retry, reraise=True)
        try:
            return retrying(classified)
        except RetriableError as exc:
            exc.args = (f"{what}: {exc}; gave up after {self.policy.attempts} tries; push again "
                        "later: it writes only what is still different",)
            raise
