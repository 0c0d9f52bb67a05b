"""Saving audits in the store and reading them back (:mod:`.tables` has the layout).

``SavedAudits(store).save(snapshot)`` keeps one audit under its label; saving a label
again replaces that audit whole (and says so), so re-running a weekly job is safe.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import sqlalchemy as sa

from crmlink.core.document import ASSESSMENTS
from crmlink.core.errors import ConfigError
from crmlink.core.evaluation.snapshot import SCORE_NAMES, AccountState, FindingState, Snapshot
from crmlink.core.evaluation.tables import (
    saved_accounts,
    saved_audits,
    saved_codes,
    saved_findings,
    saved_subjects,
)
from crmlink.core.evaluation.vocab import LEVELS, STAGES
from crmlink.core.findings import SEVERITIES, SEVERITY_RANK
from crmlink.core.store import Store


@dataclass(frozen=True)
class SavedAudit:
    """One saved audit's header."""

    id: int
    label: str
    as_of: date
    saved_at: datetime
    accounts: int


@dataclass(frozen=True)
class Subject:
    gid: str
    kind: str
    remote_id: str
    name: str | None
    account: int | None


def _tenths(value: float | None, scale: int = 10) -> int | None:
    return None if value is None else int(round(value * scale))


def _code(value: str | None, order: Sequence[str]) -> int | None:
    return order.index(value) + 1 if value in order else None


def _decode(value: int | None, order: Sequence[str]) -> str | None:
    return order[value - 1] if value else None


class SavedAudits:
    """The saved audits of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writing ----------------------------------------------------------------------------

    def save(self, snap: Snapshot, version: str = "") -> SavedAudit | None:
        """Keep ``snap`` under its label (its as-of date when it has none). Returns the
        audit it replaced, if one had that label."""
        label = snap.name
        with self.store.transaction() as conn:
            replaced = self._header(conn, saved_audits.c.label == label)
            if replaced is not None:
                self._delete(conn, replaced.id)
            audit_id = _new_id(conn.execute(saved_audits.insert().values(
                label=label, as_of=snap.as_of.isoformat(), saved_at=datetime.fromtimestamp(time.time(), timezone.utc),
                crmlink_version=version, accounts=len(snap.accounts))))
            ids = self._subject_ids(conn, snap)
            codes = self._code_ids(conn, {f.code for f in snap.findings.values()})
            self._insert(conn, saved_accounts, [_account_row(audit_id, ids[a.id], a) for a in snap.accounts.values()])
            self._insert(conn, saved_findings, [
                {"audit": audit_id, "subject": ids[f.subject] if f.subject else 0, "code": codes[f.code],
                 "severity": SEVERITY_RANK[f.severity]} for f in snap.findings.values()])
        return replaced

    @staticmethod
    def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), 5000):
            conn.execute(table.insert(), rows[start:start + 5000])

    @staticmethod
    def _delete(conn: sa.Connection, audit_id: int) -> None:
        conn.execute(saved_accounts.delete().where(saved_accounts.c.audit == audit_id))
        conn.execute(saved_findings.delete().where(saved_findings.c.audit == audit_id))
        conn.execute(saved_audits.delete().where(saved_audits.c.id == audit_id))

    def delete(self, label: str) -> bool:
        """Forget the audit saved as ``label``; False when there is none."""
        with self.store.transaction() as conn:
            found = self._header(conn, saved_audits.c.label == label)
            if found is not None:
                self._delete(conn, found.id)
            return found is not None

    def _subject_ids(self, conn: sa.Connection, snap: Snapshot) -> dict[str, int]:
        """The numbers of the snapshot's accounts and deals, numbering new ones (and
        keeping each account's latest name)."""
        t = saved_subjects
        known = {gid: (pk, name) for pk, gid, name in conn.execute(sa.select(t.c.id, t.c.gid, t.c.name))}
        new: list[dict[str, Any]] = [
            {"gid": a.id, "kind": "a", "remote_id": a.remote_id, "name": a.name, "account": None}
            for a in snap.accounts.values() if a.id not in known]
        self._insert(conn, t, new)
        renamed = [a for a in snap.accounts.values() if a.id in known and known[a.id][1] != a.name]
        for a in renamed:
            conn.execute(t.update().where(t.c.id == known[a.id][0]).values(name=a.name))
        ids = {gid: pk for gid, (pk, _) in known.items()}
        if new:
            ids.update(self._ids_of(conn, [row["gid"] for row in new]))
        deals = {f.subject: f for f in snap.findings.values()
                 if f.opportunity is not None and f.subject not in ids}
        rows: list[dict[str, Any]] = [{"gid": gid, "kind": "o", "remote_id": f.opportunity, "name": None,
                                       "account": ids.get(f.account or "")} for gid, f in deals.items()]
        self._insert(conn, t, rows)
        if rows:
            ids.update(self._ids_of(conn, list(deals)))
        return ids

    @staticmethod
    def _ids_of(conn: sa.Connection, gids: list[str]) -> dict[str, int]:
        t = saved_subjects
        found: dict[str, int] = {}
        for start in range(0, len(gids), 900):
            found.update((gid, pk) for pk, gid in conn.execute(
                sa.select(t.c.id, t.c.gid).where(t.c.gid.in_(gids[start:start + 900]))))
        return found

    def _code_ids(self, conn: sa.Connection, codes: set[str]) -> dict[str, int]:
        t = saved_codes
        known = {code: pk for pk, code in conn.execute(sa.select(t.c.id, t.c.code))}
        missing = sorted(codes - set(known))
        if missing:
            conn.execute(t.insert(), [{"code": code} for code in missing])
            known = {code: pk for pk, code in conn.execute(sa.select(t.c.id, t.c.code))}
        return known

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def _header(conn: sa.Connection, where: Any) -> SavedAudit | None:
        row = conn.execute(sa.select(saved_audits).where(where)).first()
        return None if row is None else _header_of(row)

    def audits(self) -> list[SavedAudit]:
        """Every saved audit, oldest as-of date first (then the earlier saved)."""
        t = saved_audits
        with self.store.engine.connect() as conn:
            return [_header_of(row) for row in conn.execute(sa.select(t).order_by(t.c.as_of, t.c.saved_at, t.c.id))]

    def finding_counts(self) -> dict[int, int]:
        """Findings kept per saved audit id."""
        t = saved_findings
        with self.store.engine.connect() as conn:
            return {int(a): int(n) for a, n in conn.execute(sa.select(t.c.audit, sa.func.count()).group_by(t.c.audit))}

    def find(self, ref: str) -> SavedAudit:
        """The audit saved with label ``ref``, else (``ref`` a date) the latest saved as of
        that day or earlier. A clear error naming the saved labels otherwise."""
        audits = self.audits()
        for audit in audits:
            if audit.label == ref:
                return audit
        try:
            day = date.fromisoformat(ref)
        except ValueError:
            day = None
        if day is not None:
            earlier = [a for a in audits if a.as_of <= day]
            if earlier:
                return earlier[-1]
        known = ", ".join(a.label for a in audits[-10:]) or "none (run crmlink audit --save)"
        raise ConfigError(f"no saved audit is labelled {ref!r}" + (f" or as of {ref} or earlier" if day else "")
                          + f"; saved audits: {known}")

    def latest(self, before: date | None = None) -> SavedAudit | None:
        """The latest saved audit (as of a day before ``before``, when given)."""
        audits = [a for a in self.audits() if before is None or a.as_of < before]
        return audits[-1] if audits else None

    def previous(self, audit: SavedAudit) -> SavedAudit | None:
        """The saved audit just before ``audit`` (by as-of date, then saving time)."""
        audits = self.audits()
        at = next(i for i, a in enumerate(audits) if a.id == audit.id)
        return audits[at - 1] if at > 0 else None

    def _subjects(self, conn: sa.Connection) -> dict[int, Subject]:
        t = saved_subjects
        return {pk: Subject(gid, kind, rid, name, account) for pk, gid, kind, rid, name, account in conn.execute(
            sa.select(t.c.id, t.c.gid, t.c.kind, t.c.remote_id, t.c.name, t.c.account))}

    def load(self, audit: SavedAudit) -> Snapshot:
        """The snapshot kept as ``audit``."""
        snap = Snapshot(audit.as_of, audit.label, audit.saved_at)
        with self.store.engine.connect() as conn:
            subjects = self._subjects(conn)
            codes = {pk: code for pk, code in conn.execute(sa.select(saved_codes.c.id, saved_codes.c.code))}
            t = saved_accounts
            for row in conn.execute(sa.select(t).where(t.c.audit == audit.id)):
                subject = subjects[row.subject]
                snap.accounts[subject.gid] = _state(subject, row)
            f = saved_findings
            for subject_id, code, severity in conn.execute(
                    sa.select(f.c.subject, f.c.code, f.c.severity).where(f.c.audit == audit.id)):
                snap.add_finding(_finding(subjects, subject_id, codes[code], SEVERITIES[severity]), SEVERITY_RANK)
        return snap

    def finding_keys(self, audit: SavedAudit) -> set[tuple[str, str]]:
        """(subject global id, code) of the findings kept as ``audit``."""
        with self.store.engine.connect() as conn:
            subjects = self._subjects(conn)
            codes = {pk: code for pk, code in conn.execute(sa.select(saved_codes.c.id, saved_codes.c.code))}
            f = saved_findings
            return {(subjects[s].gid if s else "", codes[c])
                    for s, c in conn.execute(sa.select(f.c.subject, f.c.code).where(f.c.audit == audit.id))}

    def account_rows(self, gids: Iterable[str], until: date | None = None
                     ) -> Iterator[tuple[SavedAudit, AccountState]]:
        """Each saved state of the accounts ``gids`` (as of ``until`` or earlier), in the
        order of :meth:`audits`."""
        wanted = set(gids)
        headers = {a.id: a for a in self.audits() if until is None or a.as_of <= until}
        with self.store.engine.connect() as conn:
            subjects = {pk: s for pk, s in self._subjects(conn).items() if s.gid in wanted}
            if not subjects or not headers:
                return
            t = saved_accounts
            rows: list[Any] = []
            ids = list(subjects)
            for start in range(0, len(ids), 900):
                rows += conn.execute(sa.select(t).where(t.c.subject.in_(ids[start:start + 900]))).all()
        order = {audit_id: at for at, audit_id in enumerate(headers)}
        rows = [r for r in rows if r.audit in headers]
        rows.sort(key=lambda r: order[r.audit])
        for row in rows:
            yield headers[row.audit], _state(subjects[row.subject], row)

    def account_findings(self, gid: str) -> dict[int, list[tuple[str, str]]]:
        """(code, severity) of the findings about account ``gid`` itself, by saved audit id,
        most severe first."""
        t, f, c = saved_subjects, saved_findings, saved_codes
        query = (sa.select(f.c.audit, c.c.code, f.c.severity).join(t, t.c.id == f.c.subject)
                 .join(c, c.c.id == f.c.code).where(t.c.gid == gid))
        found: dict[int, list[tuple[str, str]]] = {}
        with self.store.engine.connect() as conn:
            for audit, code, severity in conn.execute(query):
                found.setdefault(int(audit), []).append((code, SEVERITIES[severity]))
        for items in found.values():
            items.sort(key=lambda item: (-SEVERITY_RANK[item[1]], item[0]))
        return found

    def accounts_named(self, ref: str) -> list[str]:
        """Global ids of the saved accounts whose global id, remote id or name is ``ref``."""
        with self.store.engine.connect() as conn:
            found = [s.gid for s in self._subjects(conn).values()
                     if s.kind == "a" and ref in (s.gid, s.remote_id, s.name)]
        return sorted(found)


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every dialect crmlink supports reports it
        raise ConfigError("the database did not report the id of the saved audit")
    return int(key[0])


def _header_of(row: Any) -> SavedAudit:
    return SavedAudit(int(row.id), row.label, date.fromisoformat(row.as_of), row.saved_at, int(row.accounts))


def _account_row(audit_id: int, subject: int, a: AccountState) -> dict[str, Any]:
    return {"audit": audit_id, "subject": subject,
            **{name: _tenths(a.scores.get(name)) for name in SCORE_NAMES},
            "tier": a.tier, "ratio": _tenths(a.ratio, 1000), "assessment": _code(a.assessment, ASSESSMENTS),
            "stage": _code(a.stage, STAGES), "level": _code(a.level, LEVELS)}


def _state(subject: Subject, row: Any) -> AccountState:
    source, _, _ = subject.gid.partition(":")
    scores = {name: None if getattr(row, name) is None else getattr(row, name) / 10 for name in SCORE_NAMES}
    return AccountState(subject.gid, source, subject.remote_id, subject.name, scores, row.tier,
                        None if row.ratio is None else row.ratio / 1000, _decode(row.assessment, ASSESSMENTS),
                        _decode(row.stage, STAGES), _decode(row.level, LEVELS))


def _finding(subjects: dict[int, Subject], subject_id: int, code: str, severity: str) -> FindingState:
    if not subject_id:
        return FindingState("", None, code, severity)
    subject = subjects[subject_id]
    if subject.kind == "a":
        return FindingState(subject.gid, subject.gid, code, severity)
    account = subjects.get(subject.account or 0)
    return FindingState(subject.gid, account.gid if account else None, code, severity, subject.remote_id)
