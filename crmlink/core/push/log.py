"""The store's record of pushes: runs, every write (or refusal), and the fields crmlink
created in each CRM (``push_runs``, ``push_writes``, ``push_fields``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from crmlink.core import schema
from crmlink.core.store import Store

INTERRUPTED = "the push stopped before it finished (killed?); the next push writes what is still different"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start(store: Store, source: str, connector: str, as_of: str) -> int:
    runs = schema.push_runs
    with store.transaction() as conn:
        conn.execute(runs.update().where(runs.c.source == source, runs.c.status == "running")
                     .values(status="interrupted", error=INTERRUPTED))
        result = conn.execute(runs.insert().values(source=source, connector=connector, as_of=as_of,
                                                   started_at=_now(), status="running"))
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def finish(store: Store, run_id: int, status: str, counts: dict[str, Any], error: str | None = None) -> None:
    with store.transaction() as conn:
        conn.execute(schema.push_runs.update().where(schema.push_runs.c.id == run_id).values(
            finished_at=_now(), status=status, counts=counts, error=error))


def writes(store: Store, run_id: int, rows: Iterable[tuple[str, str, str, Any, Any, str, str]]) -> None:
    """Record writes: (object, record id, field, old, new, status, message) each."""
    now = _now()
    values = [{"run_id": run_id, "object": obj, "record_id": rid, "field": name,
               "old": _text(old), "new": _text(new), "status": status, "message": message or None,
               "at": now} for obj, rid, name, old, new, status, message in rows]
    if values:
        with store.transaction() as conn:
            conn.execute(schema.push_writes.insert(), values)


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def applied_before(store: Store, source: str) -> bool:
    """Whether a push has written to ``source``'s CRM before (no dry run on default)."""
    runs = schema.push_runs
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(runs.c.id).where(
            runs.c.source == source, runs.c.status.in_(("ok", "partial", "stopped", "interrupted"))
        ).limit(1)).first()
    return found is not None


def runs(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.push_runs).order_by(
            schema.push_runs.c.id.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]


def run_writes(store: Store, run_id: int) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.push_writes).where(
            schema.push_writes.c.run_id == run_id).order_by(schema.push_writes.c.id)).mappings().all()
        return [dict(r) for r in rows]


def owned(store: Store, source: str) -> set[tuple[str, str]]:
    """(object, CRM field name) of every field crmlink created for ``source``."""
    table = schema.push_fields
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.object, table.c.name).where(table.c.source == source)).all()
    return {(str(o), str(n)) for o, n in rows}


def own(store: Store, source: str, fields: Sequence[tuple[str, str, str]]) -> None:
    """Record fields crmlink created (or found carrying its mark): (object, name, key)."""
    table = schema.push_fields
    have = owned(store, source)
    rows = [{"source": source, "object": o, "name": n, "key": k, "created_at": _now()}
            for o, n, k in fields if (o, n) not in have]
    if rows:
        with store.transaction() as conn:
            conn.execute(table.insert(), rows)


def recorded_tasks(store: Store, source: str) -> dict[str, dict[str, Any]]:
    """What crmlink wrote on each of its tasks for ``source``, by key."""
    table = schema.push_tasks
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.source == source)).mappings().all()
    return {str(r["key"]): dict(r) for r in rows}


def task_created(store: Store, source: str, key: str, task_id: str, subject: str, owner: str | None) -> None:
    table = schema.push_tasks
    with store.transaction() as conn:
        conn.execute(table.delete().where(table.c.source == source, table.c.key == key))
        conn.execute(table.insert().values(source=source, key=key, task_id=task_id, subject=subject,
                                           owner=owner, created_at=_now()))


def task_closed(store: Store, source: str, key: str) -> None:
    table = schema.push_tasks
    with store.transaction() as conn:
        conn.execute(table.update().where(table.c.source == source, table.c.key == key).values(closed_at=_now()))
