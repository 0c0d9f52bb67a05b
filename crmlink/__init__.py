"""crmlink: audit customer relationships across the CRMs you already run.

This module is the public API for plugin authors; everything else is internal and may
change. docs/plugins/README.md is the plugin author's guide; docs/hooks.md, docs/records.md
and docs/views.md are the reference.
"""

from __future__ import annotations

__version__ = "0.1.0"

from crmlink.core.activity import (
    ActivityMapper,
    Address,
    Attendee,
    CalendarEvent,
    MailMessage,
    UnknownPeopleStream,
    message_key,
)
from crmlink.core.analysis.coverage import Coverage
from crmlink.core.analysis.summary import AccountSummary, OpportunitySummary
from crmlink.core.analysis.view import AccountView, ContactStat, OpportunityView, PortfolioView
from crmlink.core.classify import Classification
from crmlink.core.classify import classify as classify_title
from crmlink.core.connector import Check, Connector, Setting, Stream, SyncContext
from crmlink.core.document import Departure
from crmlink.core.errors import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    ConnectorError,
    CrmlinkError,
    FatalError,
    InvalidRecord,
    RetriableError,
    SkippableRecordError,
)
from crmlink.core.evaluation.relationship import Relationship
from crmlink.core.evaluation.signals import Signal
from crmlink.core.evaluation.vocab import LEVELS, STAGES
from crmlink.core.findings import SEVERITIES, URGENT_SEVERITIES, Finding, Score, ScoreDefinition
from crmlink.core.hookspecs import hookimpl
from crmlink.core.identity import (
    PUBLIC_MAIL_DOMAINS,
    Directory,
    IdentityResolver,
    IdentitySettings,
    Match,
    canonical_address,
    normalize_address,
    normalize_domain,
)
from crmlink.core.ltc import LTC_STAGES, OPEN_STAGES, WON_STAGES, phase_of
from crmlink.core.ltc_execution import advance_won_stage
from crmlink.core.mailheaders import MAIL_HEADERS, MalformedMessage, parse_headers
from crmlink.core.model import (
    Account,
    Competitor,
    Contact,
    Correspondent,
    ExecutionRecord,
    Interaction,
    Lead,
    Opportunity,
    OpportunityContact,
    Record,
    Stage,
    StageChange,
    SupportCase,
    User,
    chunked,
    normalize_competitor,
)
from crmlink.core.push import FIELDS as PUSH_FIELDS
from crmlink.core.push import (
    OWNER_MARK,
    ExistingTask,
    Outcome,
    PushField,
    PushTarget,
    SetupReport,
    TaskSpec,
    Update,
)
from crmlink.core.rest import CursorPaginator, NextLinkPaginator, OffsetPaginator, RestStream
from crmlink.core.rows import RowBatch, fields_of
from crmlink.core.vocab import normalize as normalize_vocabulary

__all__ = [
    "__version__",
    "hookimpl",
    "Connector", "Setting", "Stream", "Check", "SyncContext",
    "RestStream", "OffsetPaginator", "CursorPaginator", "NextLinkPaginator",
    "chunked",
    "Record", "Account", "Contact", "User", "Interaction", "Opportunity",
    "OpportunityContact", "StageChange", "Stage", "Lead", "ExecutionRecord", "Correspondent",
    "Competitor", "SupportCase", "normalize_competitor", "RowBatch", "fields_of",
    "IdentityResolver", "IdentitySettings", "Directory", "Match", "PUBLIC_MAIL_DOMAINS",
    "normalize_address", "canonical_address", "normalize_domain",
    "ActivityMapper", "MailMessage", "CalendarEvent", "Attendee", "Address", "UnknownPeopleStream",
    "message_key", "parse_headers", "MalformedMessage", "MAIL_HEADERS",
    "AccountView", "ContactStat", "Coverage", "OpportunityView", "PortfolioView",
    "AccountSummary", "OpportunitySummary",
    "LTC_STAGES", "OPEN_STAGES", "WON_STAGES", "phase_of", "advance_won_stage",
    "Classification", "classify_title", "normalize_vocabulary", "Finding", "Score", "SEVERITIES", "URGENT_SEVERITIES",
    "ScoreDefinition", "Departure", "Relationship", "STAGES", "LEVELS", "Signal",
    "PushTarget", "PushField", "PUSH_FIELDS", "OWNER_MARK", "Update", "Outcome", "SetupReport",
    "TaskSpec", "ExistingTask",
    "CrmlinkError", "ConfigError", "ConnectorError", "AuthError", "RetriableError",
    "FatalError", "BudgetExhausted", "InvalidRecord", "SkippableRecordError",
]
