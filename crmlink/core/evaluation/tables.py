"""The store tables of saved audits, in the store's one :data:`~crmlink.core.schema.metadata`.

Compact by design, so that a weekly audit of 10,000 accounts kept for years stays small:
accounts, deals and finding codes are numbered once (``saved_subjects``,
``saved_codes``) and each saved audit adds one row of small integers per account
(scores x 10, the coverage ratio x 1000, codes for tier, assessment, stage and level)
and one per finding (subject, code, severity). On SQLite both per-audit tables are
``WITHOUT ROWID``: the primary key is the row.
"""

from __future__ import annotations

import sqlalchemy as sa

from crmlink.core.schema import EpochSeconds, metadata

saved_audits = sa.Table(
    "saved_audits", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("label", sa.String(200), nullable=False, unique=True),
    sa.Column("as_of", sa.String(10), nullable=False, index=True),   # YYYY-MM-DD
    sa.Column("saved_at", EpochSeconds(), nullable=False),
    sa.Column("crmlink_version", sa.String(40)),
    sa.Column("accounts", sa.Integer, nullable=False),
)

#: Accounts and deals findings name, numbered once for every saved audit.
saved_subjects = sa.Table(
    "saved_subjects", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gid", sa.Text, nullable=False, unique=True),          # source:remote_id
    sa.Column("kind", sa.String(1), nullable=False),                 # a: account, o: deal
    sa.Column("remote_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("account", sa.Integer),                                # a deal's account subject
)

saved_codes = sa.Table(
    "saved_codes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(100), nullable=False, unique=True),
)

saved_accounts = sa.Table(
    "saved_accounts", metadata,
    sa.Column("audit", sa.Integer, primary_key=True),
    sa.Column("subject", sa.Integer, primary_key=True),
    sa.Column("health", sa.SmallInteger),   # score x 10; null: no evidence
    sa.Column("key", sa.SmallInteger),
    sa.Column("broad", sa.SmallInteger),
    sa.Column("org", sa.SmallInteger),
    sa.Column("tier", sa.String(1)),
    sa.Column("ratio", sa.SmallInteger),    # coverage ratio x 1000
    sa.Column("assessment", sa.SmallInteger),
    sa.Column("stage", sa.SmallInteger),    # 1.. along STAGES; null: none
    sa.Column("level", sa.SmallInteger),    # 1.. along LEVELS; null: none
    sqlite_with_rowid=False,
)

saved_findings = sa.Table(
    "saved_findings", metadata,
    sa.Column("audit", sa.Integer, primary_key=True),
    sa.Column("subject", sa.Integer, primary_key=True),   # 0: the portfolio
    sa.Column("code", sa.Integer, primary_key=True),
    sa.Column("severity", sa.SmallInteger, nullable=False),
    sqlite_with_rowid=False,
)

TABLES = (saved_audits, saved_subjects, saved_codes, saved_accounts, saved_findings)
