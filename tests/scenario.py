"""Build small stores from canonical records and audit them: the test bench for the method."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from crmlink import Account, Contact, Interaction, Opportunity, User
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import DEFAULTS, merge
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store

AS_OF = date(2026, 6, 30)
NOW = datetime(2026, 6, 30, 12, tzinfo=timezone.utc)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


class Scenario:
    """One account "A" (tier S by default) with a small team and contacts; more accounts
    with :meth:`add_account` and the ``account=`` arguments."""

    def __init__(self, tier: str | None = "S", **account: Any) -> None:
        self.records: list[Any] = []
        self.serial = 0
        self.add_account("A", tier, **{"name": "Acme", **account})

    def add_account(self, rid: str, tier: str | None, name: str | None = None, owner: str = "u1",
                    **fields: Any) -> Scenario:
        self.records.append(Account(remote_id=rid, name=name or rid, tier=tier, owner_id=owner, **fields))
        return self

    def user(self, rid: str, role: str = "AR", seniority: str = "manager", active: bool = True) -> Scenario:
        self.records.append(User(remote_id=rid, name=rid.upper(), team_role=role, seniority=seniority, active=active))
        return self

    def contact(self, rid: str, role: str | None = None, seniority: str | None = "manager",
                department: str | None = "technical", stance: int | None = None, title: str | None = "t",
                assessed_days_ago: float | None = None, active: bool = True, account: str = "A") -> Scenario:
        assessed = None if assessed_days_ago is None else ago(assessed_days_ago)
        self.records.append(Contact(remote_id=rid, account_id=account, name=rid.upper(), title=title,
                                    buying_role=role, seniority=seniority, department=department,
                                    stance=stance, stance_assessed_at=assessed, active=active))
        return self

    def meet(self, users: str, contacts: str, days_ago: float, kind: str = "meeting", direction: str = "two_way",
             subject: str | None = None, method: str | None = None, opportunity: str | None = None,
             campaign: str | None = None, recipients: int | None = None, account: str = "A") -> Scenario:
        self.serial += 1
        self.records.append(Interaction(remote_id=f"i{self.serial}", account_id=account, kind=kind,
                                        direction=direction, occurred_at=ago(days_ago), user_ids=users,
                                        contact_ids=contacts, subject=subject, method=method,
                                        opportunity_id=opportunity, campaign=campaign,
                                        recipient_count=recipients))
        return self

    def deal(self, rid: str, stage: str, **fields: Any) -> Scenario:
        self.records.append(Opportunity(remote_id=rid, account_id="A", name=rid, stage_id=stage, stage_label=stage,
                                        **fields))
        return self

    def audit(self, as_of: date = AS_OF, **overrides: Any) -> dict[str, Any]:
        store = Store("sqlite://")
        for record in self.records:
            record.source = "t"
        with store.transaction() as conn:
            by_entity: dict[str, list[Any]] = {}
            for record in self.records:
                by_entity.setdefault(record.entity, []).append(record)
            for records in by_entity.values():
                store.upsert(conn, records)
        config = merge(DEFAULTS, overrides) | {"sources": {}}
        return Audit(store, get_plugin_host(load_entrypoints=False), config, as_of).run()

    def account(self, as_of: date = AS_OF, rid: str = "A", **overrides: Any) -> dict[str, Any]:
        return next(a for a in self.audit(as_of, **overrides)["accounts"] if a["remote_id"] == rid)

    def codes(self, as_of: date = AS_OF, **overrides: Any) -> set[str]:
        return {f["code"] for f in self.account(as_of, **overrides)["findings"]}

    def finding(self, code: str, as_of: date = AS_OF, **overrides: Any) -> dict[str, Any] | None:
        """Account A's finding with ``code``, or ``None``."""
        return next((f for f in self.account(as_of, **overrides)["findings"] if f["code"] == code), None)

    def portfolio_codes(self, as_of: date = AS_OF, **overrides: Any) -> set[str]:
        return {f["code"] for f in self.audit(as_of, **overrides)["portfolio_findings"]}


def healthy() -> Scenario:
    """A strategic account with the iron triangle, executives and weekly contact."""
    s = Scenario("S")
    s.user("u1", "AR").user("u2", "SR").user("u3", "FR").user("u4", "executive", "vp")
    s.contact("ceo", "economic_buyer", "c_suite", "executive", 2)
    s.contact("cto", "decision_maker", "c_suite", "technical", 1)
    s.contact("buyer", "procurement", "manager", "procurement")
    s.contact("eng", "technical_evaluator", "senior", "engineering")
    s.contact("ops", "user", "entry", "operations")
    s.contact("fin", "approver", "director", "finance")
    for week in range(30):
        d = week * 7 + 1
        s.meet("u1;u4", "ceo", d).meet("u1", "cto;buyer", d + 1).meet("u2", "eng;cto", d + 2)
        s.meet("u3", "ops", d + 3).meet("u1;u4", "fin", d + 4, kind="call").meet("u2", "cto", d + 5, kind="call")
    s.meet("u1;u2", "cto;eng", 40, kind="event", subject="Technical exchange on 5G core")
    return s
