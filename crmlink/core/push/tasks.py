"""Next actions as CRM tasks (``crmlink push --tasks SEVERITY``).

Each finding at or above the severity becomes one task for the account owner (or, when
the owner is inactive, for the most involved active member of the account team), linked
to the deal for a deal finding and to the account otherwise. A task carries a stable key
(``FINDING_CODE:record id``) in a field crmlink created, never in its subject, so a
task a person retitled is still found. Re-running never creates a task twice; a finding
that is gone closes its task, unless a person changed or closed that task: then crmlink
leaves it alone. The store keeps what crmlink wrote on each task (``push_tasks``) to tell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmlink.core.document import AuditDocument
from crmlink.core.findings import SEVERITY_RANK, Finding
from crmlink.core.model import Account, User
from crmlink.core.push.fields import cut, members

SUBJECT_LENGTH = 255


@dataclass(frozen=True)
class TaskSpec:
    """A task crmlink wants: its key, the record it is about (``what``: a deal for a deal
    finding, else the account) and the account, who it is for, and what it says."""

    key: str
    what: str
    what_object: str  # account | opportunity
    account: str
    deal: str | None
    owner: str | None
    subject: str
    body: str
    severity: str
    note: str = ""  # why it is not for the account owner, when it is not

    def to_json(self) -> dict[str, Any]:
        return {"action": "create", "key": self.key, "what": self.what, "account": self.account,
                "deal": self.deal, "owner": self.owner, "subject": self.subject,
                "severity": self.severity, "note": self.note or None}


@dataclass(frozen=True)
class ExistingTask:
    """A task crmlink finds in the CRM by its key field."""

    id: str
    key: str
    subject: str | None
    owner: str | None
    closed: bool


@dataclass
class TaskPlan:
    create: list[TaskSpec] = field(default_factory=list)
    close: list[ExistingTask] = field(default_factory=list)
    #: tasks found in the CRM with crmlink's key that the store had not recorded (a push
    #: killed after creating them): recorded now, so they are known next time
    adopt: list[tuple[ExistingTask, TaskSpec]] = field(default_factory=list)
    left_alone: list[tuple[ExistingTask, str]] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        return [*(t.to_json() for t in self.create),
                *({"action": "close", "key": t.key, "id": t.id, "subject": t.subject} for t in self.close)]


def threshold(name: str) -> set[str]:
    """``high`` -> the severities from high up (high, critical)."""
    return {s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[name]}


def wanted(document: AuditDocument, source: str, severities: set[str], accounts: Mapping[str, Account],
           users: Mapping[str, User]) -> dict[str, TaskSpec]:
    """The tasks the audit asks for, by key."""
    out: dict[str, TaskSpec] = {}
    teams: dict[str, list[tuple[str, bool, float]]] = {}
    in_source: dict[str, str] = {}  # an account's global id -> its id in this source
    for entry in document.accounts:
        for rid in members(entry, source):
            in_source.setdefault(entry.id, rid)
            teams[rid] = [(u.id, u.active, u.share) for u in entry.relationship_map.users]
            owner, note = assignee(accounts.get(rid), teams[rid], users)
            for finding in entry.findings:
                if finding.severity in severities:
                    spec = _spec(finding, "account", rid, rid, None, owner, note)
                    out.setdefault(spec.key, spec)
    for deal in document.opportunities:
        if deal.source != source or not deal.account_id:
            continue
        account = in_source.get(deal.account_id) or deal.account_id.split(":", 1)[-1]
        owner, note = assignee(accounts.get(account), teams.get(account, []), users)
        for finding in deal.findings:
            if finding.severity in severities:
                spec = _spec(finding, "opportunity", deal.remote_id, account, deal.remote_id, owner, note)
                out.setdefault(spec.key, spec)
    return out


def present_keys(document: AuditDocument, source: str) -> set[str]:
    """Keys of every finding of the audit, whatever its severity (a finding below the
    threshold is not resolved)."""
    keys = {f"{f.code}:{rid}" for a in document.accounts for rid in members(a, source) for f in a.findings}
    keys |= {f"{f.code}:{o.remote_id}" for o in document.opportunities if o.source == source for f in o.findings}
    return keys


def audited_records(document: AuditDocument, source: str) -> set[str]:
    return {rid for a in document.accounts for rid in members(a, source)} | {
        o.remote_id for o in document.opportunities if o.source == source}


def assignee(account: Account | None, team: Sequence[tuple[str, bool, float]],
             users: Mapping[str, User]) -> tuple[str | None, str]:
    """The account owner; when the owner is inactive, the active team member with the
    largest share of the relationship (and a note saying so)."""
    owner_id = account.owner_id if account is not None else None
    owner = users.get(owner_id) if owner_id else None
    if owner_id and (owner is None or owner.active):
        return owner_id, ""
    active = sorted(((share, uid) for uid, is_active, share in team
                     if is_active and uid in users and users[uid].active), reverse=True)
    who = _name(owner, owner_id)
    if not active:
        return owner_id, (f"The account owner {who} is inactive and nobody active in the account team "
                          "holds a relationship; please reassign." if owner_id else "")
    chosen = active[0][1]
    return chosen, (f"The account owner {who} is inactive; assigned to {_name(users[chosen], chosen)}, "
                    "the most involved active member of the account team.")


def _name(user: User | None, fallback: str | None) -> str:
    return (user.name if user is not None and user.name else None) or fallback or "(none)"


def _spec(finding: Finding, what_object: str, what: str, account: str, deal: str | None, owner: str | None,
          note: str) -> TaskSpec:
    lines = [finding.message]
    if finding.evidence:
        lines.append("Evidence: " + "; ".join(f"{k}: {_text(v)}" for k, v in finding.evidence.items()))
    if finding.action:
        lines.append("Action: " + finding.action)
    if note:
        lines.append(note)
    lines.append(f"Written by crmlink push ({finding.code}, {finding.severity}).")
    return TaskSpec(key=f"{finding.code}:{what}", what=what, what_object=what_object, account=account, deal=deal,
                    owner=owner, subject=cut(f"{finding.code}: {finding.message}", SUBJECT_LENGTH),
                    body="\n\n".join(lines), severity=finding.severity, note=note)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def reconcile(want: Mapping[str, TaskSpec], existing: Iterable[ExistingTask], recorded: Mapping[str, dict[str, Any]],
              present: set[str], audited: set[str]) -> TaskPlan:
    """What to create and close. ``recorded`` is what the store says crmlink wrote on each
    task, by key; ``present`` the keys of every finding of the audit; ``audited`` the
    records the audit covers."""
    plan = TaskPlan()
    found = {t.key: t for t in existing}
    for key, spec in want.items():
        if key in found:
            task = found[key]
            if key not in recorded and task.subject == spec.subject and task.owner == spec.owner:
                plan.adopt.append((task, spec))
        elif key in recorded:
            plan.left_alone.append((ExistingTask(str(recorded[key]["task_id"]), key, None, None, True),
                                    "deleted in the CRM: not made again"))
        else:
            plan.create.append(spec)
    for key, task in found.items():
        record = key.split(":", 1)[-1]
        if key in present or record not in audited or task.closed:
            continue
        mine = recorded.get(key)
        if mine is None or mine["subject"] != task.subject or mine["owner"] != task.owner or mine.get("closed_at"):
            plan.left_alone.append((task, "changed by a person: left alone"))
            continue
        plan.close.append(task)
    return plan
