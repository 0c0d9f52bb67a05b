"""A generated two-year history (2025 and 2026, from December 2024) with a planted
decline and recovery.

Three accounts of one source, each met every week by the same small team:

- ``STEADY`` (tier A): the same cadence for both years;
- ``DIP`` (tier A): the same, except that nobody of ours speaks with its people from
  ``SILENCE_FROM`` to ``SILENCE_UNTIL`` (the second half of 2025): it declines through
  2025-Q3 and Q4 and recovers in 2026;
- ``LATE`` (tier B): first met on ``LATE_FROM`` (2026-01-05), then weekly: it rises in 2026.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from crmlink import Account, Contact, Interaction, Opportunity, Record, User
from crmlink.core.store import Store

START = datetime(2024, 12, 2, 10, tzinfo=timezone.utc)   # a year of tenure by 2025-Q4
END = datetime(2026, 12, 31, 10, tzinfo=timezone.utc)
SILENCE_FROM = datetime(2025, 7, 1, tzinfo=timezone.utc)
SILENCE_UNTIL = datetime(2026, 1, 1, tzinfo=timezone.utc)
LATE_FROM = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
QUARTER_ENDS = [date(2025, 3, 31), date(2025, 6, 30), date(2025, 9, 30), date(2025, 12, 31),
                date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30), date(2026, 12, 31)]


def _team(account: str) -> list[Record]:
    return [Contact(remote_id=f"{account}-dm", account_id=account, name=f"{account.title()} Chief",
                    title="Chief Executive Officer", seniority="c_suite", department="executive",
                    buying_role="decision_maker", stance=2),
            Contact(remote_id=f"{account}-eng", account_id=account, name=f"{account.title()} Engineer",
                    title="Engineering Manager", seniority="manager", department="engineering",
                    buying_role="technical_evaluator"),
            Contact(remote_id=f"{account}-ops", account_id=account, name=f"{account.title()} Operator",
                    title="Operations Manager", seniority="manager", department="operations",
                    buying_role="user")]


def _silent(account: str, when: datetime) -> bool:
    if account == "DIP":
        return SILENCE_FROM <= when < SILENCE_UNTIL
    return account == "LATE" and when < LATE_FROM


def records() -> list[Record]:
    out: list[Record] = [
        User(remote_id="u1", name="Ana Reyes", team_role="AR", seniority="director"),
        User(remote_id="u2", name="Sam Ortiz", team_role="SR", seniority="manager"),
        User(remote_id="u3", name="Fay Lin", team_role="FR", seniority="manager"),
        Account(remote_id="STEADY", name="Steady Telecom", tier="A", owner_id="u1"),
        Account(remote_id="DIP", name="Dip Energy", tier="A", owner_id="u1"),
        Account(remote_id="LATE", name="Late Logistics", tier="B", owner_id="u1"),
    ]
    serial = 0
    for account in ("STEADY", "DIP", "LATE"):
        out += _team(account)
        when = START
        while when <= END:
            if not _silent(account, when):
                for days, user, contact, kind in ((0, "u1", "dm", "meeting"), (1, "u2", "eng", "call"),
                                                  (2, "u3", "ops", "meeting")):
                    serial += 1
                    out.append(Interaction(remote_id=f"i{serial}", account_id=account, kind=kind,
                                           direction="two_way", occurred_at=when + timedelta(days=days),
                                           user_ids=(user,), contact_ids=(f"{account}-{contact}",)))
            when += timedelta(days=7)
    out.append(Opportunity(remote_id="O-DIP", account_id="DIP", name="Dip grid upgrade", stage_id="Prospecting",
                           stage_label="Prospecting", created_at=START, is_closed=False))
    return out


def write(url: str) -> Store:
    store = Store(url)
    by_entity: dict[str, list[Record]] = {}
    for record in records():
        record.source = "crm"
        by_entity.setdefault(record.entity, []).append(record)
    with store.transaction() as conn:
        for batch in by_entity.values():
            store.upsert(conn, batch)
    return store
