"""The audit document: everything ``crmlink audit`` found, as typed classes.

:class:`AuditDocument` is built once, by :mod:`crmlink.core.analysis.assemble`, and every
report is drawn from it: ``to_json()`` is the ``--format json`` output (and what plugin
formats receive), the table, Markdown and HTML reports read its attributes, and
``crmlink audit --schema`` prints :func:`audit_schema`, the JSON Schema derived from these
classes. docs/audit.md describes every field; tests keep it and docs/audit-schema.json
equal to what the classes say.

To add a field: declare it here with :func:`~crmlink.core.typedjson.prop` (its
description is the schema's and the reference page's), fill it in ``assemble.py``,
regenerate the docs (``python -m crmlink.core.document_docs``), and raise
:data:`SCHEMA_VERSION` (minor for an added field, major for a removed or changed one).

Scores are ``float | None``: ``None`` means the plugin had no evidence to score on, and
every report shows it as "–", never as 0.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any, TextIO

from crmlink.core.evaluation.changes import Changes
from crmlink.core.evaluation.vocab import LEVELS, STAGES
from crmlink.core.findings import Finding, ScoreDefinition
from crmlink.core.jsondump import dumpb, dumps
from crmlink.core.typedjson import JsonObject, json_schema, prop

#: The version of the document's shape (``schema_version`` in the JSON).
SCHEMA_VERSION = "1.4"
SCHEMA_ID = f"urn:crmlink:audit-document:{SCHEMA_VERSION}"

Scores = dict[str, float | None]


@dataclass(slots=True)
class Personalization(JsonObject):
    """How concentrated the account's relationship strength is on our side."""

    top_holder: str | None = prop("Remote id of the user who holds the largest share, or null when nobody holds any.")
    top_share: float = prop("That user's share of the account's relationship strength (0..1).")
    effective_holders: float = prop("Effective number of holders: 1 / sum of squared shares (0 when nobody).")
    bus_factor: int = prop("How few users together hold at least half of the strength.")
    inactive_share: float = prop("Share held by users who are inactive or deleted (0..1).")


@dataclass(slots=True)
class MergedRecord(JsonObject):
    """One CRM record a merged account or contact was built from (several CRM sources
    audited as one portfolio; docs/method.md, "Auditing several CRMs as one portfolio")."""

    source: str = prop("The record's source.")
    remote_id: str = prop("The record's id in that source.")
    primary: bool = prop("True for the primary record: the merged record's id and fields are its (empty "
                         "ones filled from the others).")
    rule: str = prop("The rule that joined it: domain, name, email or override.",
                     enum=("domain", "name", "email", "override"))
    value: str = prop("What it matched on: the domain, the normalised name, the email, or the record the "
                      "override names.")


@dataclass(slots=True)
class MapContact(JsonObject):
    """One of the customer's contacts on the relationship map."""

    id: str = prop("The contact's remote id.")
    name: str | None = prop("The contact's name.")
    title: str | None = prop("Job title as the CRM has it.")
    department: str | None = prop("Canonical department.")
    seniority: str | None = prop("Canonical seniority.")
    role: str | None = prop("Buying role: the CRM's, or inferred from seniority and department.")
    stance: int | None = prop("Stance towards us, -2 (opponent) .. 3 (coach); null when never assessed.")
    active: bool = prop("False when the contact left the customer.")
    power: bool = prop("True for a contact with decision power over a deal.")
    team_strength: float = prop("Our team's combined relationship strength with the contact (0..100).")
    holders: list[str] = prop("Remote ids of our users whose pair strength reaches the holder threshold.")
    days_since_two_way: float | None = prop("Days since the last two-way interaction; null when never.")
    merged_from: list[MergedRecord] | None = prop(
        "The records of several CRM sources this contact was merged from, primary first (added in 1.4; "
        "only on merged contacts).", default=None, omit_empty=True)


@dataclass(slots=True)
class MapUser(JsonObject):
    """One of our people with a relationship at the account."""

    id: str = prop("The user's remote id.")
    name: str = prop("The user's name (the id when the CRM has none).")
    title: str | None = prop("Job title.")
    team_role: str | None = prop("Role in the account team (AR, SR, FR, executive ...).")
    active: bool = prop("False when the user is inactive or deleted.")
    share: float = prop("Share of the account's relationship strength this user holds (0..1).")
    strength: float = prop("Sum of this user's pair strengths at the account.")


@dataclass(slots=True)
class Pair(JsonObject):
    """The relationship strength between one of our users and one contact."""

    user: str = prop("The user's remote id.")
    contact: str = prop("The contact's remote id.")
    strength: float = prop("Pair strength (0..100); pairs under 1 are left out.")


@dataclass(slots=True)
class Departure(JsonObject):
    """What the account would lose if one of our people left: the answer of the
    ``simulate_departure`` hook for the account's top holder. ``health_*`` is the
    overall score (the one a plugin declares ``overall``)."""

    user: str = prop("Remote id of the user who leaves.")
    health_before: float = prop("The overall score as it is.")
    health_after: float = prop("The overall score without the user's relationships.")
    health_drop: float = prop("health_before - health_after.")
    decision_makers_losing_all_coverage: list[str] = prop(
        "Remote ids of decision makers nobody else holds a relationship with.")
    sentence: str = prop("The result in one sentence, for a report.")


@dataclass(slots=True)
class RelationshipMap(JsonObject):
    """The customer's contacts, our people and the pairs between them."""

    contacts: list[MapContact] = prop("Contacts, strongest team relationship first.")
    users: list[MapUser] = prop("Our people with a relationship or a share, largest share first.")
    pairs: list[Pair] = prop("Every pair of at least strength 1, by user then contact id.")
    departure: Departure | None = prop("The departure simulation for the top holder; null when nobody "
                                       "holds any strength or no plugin simulates departures.")


@dataclass(slots=True)
class HistoryPoint(JsonObject):
    """The headline scores at one month end (or one saved audit)."""

    date: str = prop("The month end, or the saved audit's date (the audit date for the last point), YYYY-MM-DD.")
    scores: Scores = prop("Each headline score by name (null when it could not be scored).", flatten=True)


ASSESSMENTS = ("assessable", "partial", "not_assessable")


@dataclass(slots=True)
class AccountCoverage(JsonObject):
    """The evidence behind one account, counted before any score: contacts are the
    account's active ones; interactions are those of the coverage window that are not
    internal-only. docs/method.md ("Evidence coverage") has the rules."""

    assessment: str = prop("assessable (every score has evidence), partial (some scores are null for want "
                           "of evidence) or not_assessable (none has).", enum=ASSESSMENTS)
    ratio: float = prop("How much evidence, 0..1: the mean of contacts against the minimum, the share of "
                        "contacts classified, interactions against the minimum and the share paired.")
    window_days: float = prop("The coverage window: interactions within this many days count.")
    contacts: int = prop("Active contacts recorded at the account.")
    classified_contacts: int = prop("Of those, contacts with a title, seniority, department or buying role.")
    titled_contacts: int = prop("Contacts with a job title.")
    contacts_with_department: int = prop("Contacts with a canonical department.")
    contacts_with_seniority: int = prop("Contacts with a canonical seniority.")
    contacts_with_buying_role: int = prop("Contacts with a buying role recorded in the CRM.")
    interactions: int = prop("Interactions in the window (mass mailings included, internal-only ones not).")
    interactions_with_contact: int = prop("Of those, interactions naming one of the account's contacts.")
    interactions_with_our_people: int = prop("Interactions naming one of our people.")
    interactions_paired: int = prop("Counted interactions naming both: the relationship evidence.")
    contacts_reached: int = prop("Distinct contacts named by an interaction in the window.")
    our_people: int = prop("Distinct people of ours named by a counted interaction in the window.")
    opportunities: int = prop("Deals of the account.")
    open_opportunities: int = prop("Open deals.")
    open_pipeline: float = prop("Sum of the open deals' amounts, each in its own currency (not converted).")
    gaps: list[str] = prop("Evidence missing altogether: no_contacts, no_classified_contacts, no_activity, "
                           "no_linked_activity, no_user_activity, no_paired_activity.")
    thin: list[str] = prop("Evidence below a [coverage] minimum: few_contacts, few_classified_contacts, "
                           "few_interactions, low_linked_share.")


@dataclass(slots=True)
class FixFirst(JsonObject):
    """An account whose evidence to improve first."""

    id: str = prop("Global id, source:remote_id.")
    source: str = prop("The account's source.")
    remote_id: str = prop("The account's id in its CRM.")
    name: str | None = prop("The account's name.")
    assessment: str = prop("Its assessment.", enum=ASSESSMENTS)
    ratio: float = prop("Its coverage ratio (0..1).")
    open_pipeline: float = prop("Sum of its open deals' amounts.")
    gaps: list[str] = prop("Its evidence gaps.")
    thin: list[str] = prop("Its thin evidence.")


@dataclass(slots=True)
class PortfolioCoverage(JsonObject):
    """The data coverage of the whole portfolio: how far its scores can be trusted."""

    window_days: float = prop("The coverage window in days.")
    accounts: dict[str, int] = prop("Accounts per assessment: assessable, partial, not_assessable.")
    contacts: int = prop("Active contacts of all accounts.")
    classified_share: float | None = prop("Share of contacts classified (null without contacts).")
    titled_share: float | None = prop("Share of contacts with a title (null without contacts).")
    interactions: int = prop("Interactions in the window, all accounts.")
    linked_to_contact_share: float | None = prop("Share naming a contact (null without interactions).")
    linked_to_our_people_share: float | None = prop("Share naming one of our people.")
    paired_share: float | None = prop("Share naming both (the relationship evidence).")
    opportunities: int = prop("Deals audited.")
    opportunities_with_contact_roles: int = prop("Deals with at least one contact role recorded.")
    fix_first: list[FixFirst] = prop("What to fix first: accounts not fully assessable or with thin "
                                     "evidence, most open pipeline first, then least evidence.")


@dataclass(slots=True)
class UnknownPersonEntry(JsonObject):
    """Someone at the account we corresponded or met with (mail and calendar sources) who
    is not a contact in the CRM."""

    address: str = prop("Their email address.")
    name: str | None = prop("The display name last seen with it; null when none.")
    messages: int = prop("Messages and meetings with them up to the audit date.")


RELATIONSHIP_SOURCES = ("computed", "crm")


@dataclass(slots=True)
class RelationshipEntry(JsonObject):
    """Why the account is at its strategic stage and relationship level, and what the
    next of each needs (docs/method.md, "Strategic stage and relationship level")."""

    stage_source: str = prop("Where the stage came from: computed from the evidence, or a CRM field.",
                             enum=RELATIONSHIP_SOURCES)
    level_source: str = prop("Where the level came from: computed or crm.", enum=RELATIONSHIP_SOURCES)
    explanation: str = prop("The stage and the level in words: because ..., and what reaching the next needs.")
    stage_because: list[str] = prop("Why the account is at its stage, one clause per rule met.")
    stage_next: list[str] = prop("What the next stage needs that the account lacks (empty at the last).")
    level_because: list[str] = prop("Why the account is at its level.")
    level_next: list[str] = prop("What the next level needs that the account lacks.")
    evidence: dict[str, Any] = prop("The numbers behind the stage and level (the rule decides the keys).")


@dataclass(slots=True)
class AccountEntry(JsonObject):
    """One account: its scores now and at the previous period, findings and map."""

    id: str = prop("Global id, source:remote_id.")
    source: str = prop("The source (named connection) the account came from.")
    remote_id: str = prop("The account's id in its CRM.")
    name: str | None = prop("The account's name.")
    tier: str | None = prop("Tier S, A, B or C; null when unknown.", enum=("S", "A", "B", "C", None))
    tier_source: str | None = prop("Where the tier came from: crm or computed.", enum=("crm", "computed", None))
    owner: str | None = prop("The account owner's name (their remote id when the CRM has no name); null "
                             "when the account has no owner.")
    scores: Scores = prop("Every score by name (0..100, rounded to 0.1; null: no evidence to score).")
    previous_scores: Scores = prop("The same scores as of the previous period.")
    score_evidence: dict[str, dict[str, Any]] = prop("The parts that make up each score, by score name.")
    personalization: Personalization = prop("Concentration of the relationship on our side.")
    findings: list[Finding] = prop("Findings about the account, most severe first.")
    coverage: AccountCoverage = prop("The evidence its scores rest on, and its assessment.")
    relationship_map: RelationshipMap = prop("Contacts, our people and the pairs between them.")
    unknown_people: list[UnknownPersonEntry] = prop(
        "People at the account we correspond or meet with who are not contacts in the CRM, most "
        "messages first (added in 1.1; empty without mail or calendar sources).")
    health_history: list[HistoryPoint] | None = prop(
        "The headline scores at the last 11 month ends (or, where the account was saved in at least two "
        "earlier audits, at the latest 11 of them) and the audit date; only in the "
        "documents of formats that draw it (html and plugin formats).", default=None, omit_empty=True)
    stage: str | None = prop("The strategic stage (added in 1.3): perceptual_recognition, community_of_interest "
                             "or deep_strategic_cooperation; null before the first or when no plugin judges it.",
                             enum=(*STAGES, None), default=None)
    level: str | None = prop("The relationship level (added in 1.3): ordinary_cooperation, friendship or "
                             "strategic_partnership; null before the first or when no plugin judges it.",
                             enum=(*LEVELS, None), default=None)
    relationship: RelationshipEntry | None = prop(
        "Why the stage and level are what they are (added in 1.3); null when no plugin judges them.",
        default=None)
    merged_from: list[MergedRecord] | None = prop(
        "The records of several CRM sources this account was merged from, primary first (added in 1.4; "
        "only on merged accounts).", default=None, omit_empty=True)


@dataclass(slots=True)
class OpportunityEntry(JsonObject):
    """One deal with its LTC stage and findings."""

    id: str = prop("Global id, source:remote_id.")
    source: str = prop("The source the deal came from.")
    remote_id: str = prop("The deal's id in its CRM.")
    account_id: str | None = prop("Global id of its account.")
    name: str | None = prop("The deal's name.")
    amount: str | None = prop("Amount as a decimal string, exactly as stored.")
    currency: str | None = prop("ISO 4217 currency code.")
    stage: str | None = prop("The CRM's stage (label, or id when there is no label).")
    ltc_stage: str = prop("Canonical Lead-to-Cash stage, or unmapped.")
    ltc_phase: str | None = prop("The LTC phase of that stage; null for lost and unmapped.")
    days_in_stage: float | None = prop("Days since the deal entered its stage; null when unknown.")
    findings: list[Finding] = prop("Findings about the deal, most severe first.")


@dataclass(slots=True)
class Summary(JsonObject):
    """Counts over the whole audit."""

    accounts: int = prop("Number of accounts audited.")
    opportunities: int = prop("Number of deals.")
    findings_by_severity: dict[str, int] = prop("Findings (account, deal and portfolio) per severity, critical first.")
    findings_by_code: dict[str, int] = prop("Findings per code, by code.")
    effort_share_by_tier: dict[str, float] = prop(
        "Share of the decayed interaction effort spent on each tier (none: accounts without a tier).")
    accounts_by_tier: dict[str, int] = prop("Accounts per tier (none: without a tier).")
    coverage: PortfolioCoverage = prop("The portfolio's data coverage (reports show it first).")


@dataclass(slots=True)
class IdentityConflict(JsonObject):
    """Records of two CRM sources a match rule pointed at but the audit left apart."""

    kind: str = prop("shared_domain or shared_name (one source has two accounts with it), shared_email (one "
                     "source has two contacts or users with it), names_differ (one email, different names), "
                     "accounts_apart (one email at accounts that are not one), same_source (the join would "
                     "put two records of one source together), unknown_record (an override names a record "
                     "not in the store).",
                     enum=("shared_domain", "shared_name", "shared_email", "names_differ", "accounts_apart",
                           "same_source", "unknown_record"))
    entity: str = prop("account, contact or user.", enum=("account", "contact", "user"))
    value: str = prop("The domain, name, email or record the rule matched on.")
    records: list[str] = prop("The records involved, as SOURCE:kind:ID.")
    message: str = prop("What was found, in one sentence.")
    decide: str = prop("What to write in the config file to decide it.")


@dataclass(slots=True)
class MergeSummary(JsonObject):
    """How several CRM sources were merged into one portfolio."""

    sources: list[str] = prop("The CRM sources merged, primary first (identity.match.source_order, then "
                              "the latest synced).")
    accounts_joined: int = prop("Accounts of the audit built from two or more source records.")
    contacts_joined: int = prop("Contacts built from two or more source records.")
    users_joined: int = prop("Our people found in two or more sources (by email).")
    conflicts: list[IdentityConflict] = prop("Records left apart for want of a decision; each is also an "
                                             "IDENTITY_CONFLICT portfolio finding.")


@dataclass(frozen=True)
class Presentation:
    """How reports headline the document: the scores plugins declared (through the
    ``score_definitions`` hook) and the previous period the scores are compared with.
    Not part of the JSON in schema 1.0; plugin formats get the JSON alone."""

    scores: tuple[ScoreDefinition, ...] = ()
    previous_period_days: float = 90

    @property
    def headline(self) -> tuple[ScoreDefinition, ...]:
        """The declared scores a report shows, in their headline order."""
        return tuple(s for s in self.scores if s.headline is not None)

    @property
    def overall(self) -> ScoreDefinition | None:
        """The overall score (sorting, health bands, the departure simulation), if declared."""
        return next((s for s in self.scores if s.overall), None)

    def label(self, name: str) -> str:
        return next((s.label for s in self.scores if s.name == name), name)


@dataclass(slots=True)
class AuditDocument(JsonObject):
    """The relationship audit of one store as of one date."""

    crmlink_version: str = prop("The crmlink version that made the document.")
    schema_version: str = prop("The version of this document's shape, major.minor: a minor version adds "
                               "fields, a major one removes or changes some.", enum=(SCHEMA_VERSION,))
    generated_at: str = prop("When the document was made (UTC, ISO 8601).")
    as_of: str = prop("The audit date, YYYY-MM-DD: scores as of the end of that day (UTC).")
    summary: Summary = prop("Counts over the whole audit.")
    accounts: Sequence[AccountEntry] = prop(
        "Every account, the ones that need attention first (worst finding, then tier, then overall score).")
    opportunities: Sequence[OpportunityEntry] = prop("Every deal, by remote id.")
    portfolio_findings: list[Finding] = prop("Findings about the whole portfolio.")
    tier_target: dict[str, float] = prop("The target ratio of effort per tier (config tiers.target).")
    merge: MergeSummary | None = prop("How several CRM sources were merged into one portfolio (added in 1.4; "
                                      "only when two or more were).", default=None, omit_empty=True)
    presentation: Presentation = prop("How reports headline the document.", default=Presentation(), json=False)
    changes: Changes | None = prop("What changed since the latest audit saved before this one (the reports' "
                                   "What changed section); not in the JSON.", default=None, json=False)
    urgent_deal_findings: int | None = prop(
        "The deals' critical and high findings, counted as the audit judged the deals (the reports' deals "
        "at risk, without reading every deal back); not in the JSON.", default=None, json=False)

    def dumps(self, indent: int | None = None) -> str:
        """The JSON text of the document."""
        return dumps(self.to_json(), indent)

    def write_json(self, out: TextIO, indent: int | None = None,
                   accounts: Iterable[str] | Iterable[bytes] | None = None,
                   opportunities: Iterable[str] | Iterable[bytes] | None = None) -> None:
        """Write :meth:`dumps` to ``out`` one account and one deal at a time, never the
        whole text (or the whole JSON data) at once. ``accounts``, when given, are the
        account entries' texts (:func:`account_json`, in the document's order), or their
        UTF-8 bytes, to write in place of :attr:`accounts`: an audit that spooled each
        entry as it finished them (:meth:`crmlink.core.analysis.audit.Audit.stream`);
        ``opportunities`` likewise, the deals' in place of :attr:`opportunities`."""
        head = dataclasses.replace(self, accounts=[], opportunities=[]).to_json()
        head["accounts"], head["opportunities"] = _ACCOUNTS_MARK, _DEALS_MARK
        text = dumps(head, indent)
        before, middle, after = _split(text, json.dumps(_ACCOUNTS_MARK), json.dumps(_DEALS_MARK))
        out.write(before)
        if accounts is None:
            _write_array(out, (account_json(a, indent) for a in self.accounts), indent)
        else:
            _write_texts(out, accounts, indent)
        out.write(middle)
        if opportunities is None:
            _write_array(out, (account_json(o, indent) for o in self.opportunities), indent)
        else:
            _write_texts(out, opportunities, indent)
        out.write(after)


#: what :meth:`AuditDocument.write_json` writes the accounts and the deals in place of
#: (control characters: no name, id or message of a CRM holds them)
_ACCOUNTS_MARK = "\x00crmlink:accounts\x00"
_DEALS_MARK = "\x00crmlink:opportunities\x00"


def _split(text: str, first: str, second: str) -> tuple[str, str, str]:
    """``text`` before ``first``, between it and ``second``, and after ``second``; each
    mark must be there exactly once."""
    before, found, rest = text.partition(first)
    middle, found_too, after = rest.partition(second)
    if not (found and found_too) or first in after or second in after or second in before:
        raise ValueError("the audit document holds the text that marks where its accounts or deals go")
    return before, middle, after


def _write_texts(out: TextIO, texts: Iterable[str] | Iterable[bytes], indent: int | None) -> None:
    """:func:`_write_array` of texts made earlier: bytes go as they are to ``out``'s
    binary buffer where ``out`` writes UTF-8 and turns no newline into another (a file
    or stdout on a POSIX system; an audit's entries are a hundred megabytes at 10,000
    accounts, and decoding them to encode them again cost a third of their writing),
    else as text."""
    buffer = _utf8_buffer(out)
    if buffer is None:
        _write_array(out, (text if isinstance(text, str) else text.decode("utf-8") for text in texts), indent)
        return
    out.flush()  # what went to out as text first
    _write_array(buffer, (text.encode("utf-8") if isinstance(text, str) else text for text in texts), indent,
                 binary=True)


def _utf8_buffer(out: TextIO) -> IO[bytes] | None:
    """The binary buffer under ``out`` when writing UTF-8 bytes there is writing their
    text to ``out``, else ``None``."""
    buffer, encoding = getattr(out, "buffer", None), getattr(out, "encoding", None)
    if buffer is None or not encoding or os.linesep != "\n":
        return None
    try:
        utf8 = codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return None
    return buffer if utf8 else None


#: characters (or bytes) of items :func:`_write_array` writes at once: one write of many
#: small texts, not two of each (each text past a file's buffer was a system call of its
#: own: a third of the writing's CPU time at 10,000 accounts)
_WRITE_AT_ONCE = 1 << 20


def _write_array(out: IO[Any], texts: Iterable[Any], indent: int | None, *, binary: bool = False) -> None:
    """A JSON array at the document's first level, of items already in JSON (each as
    :func:`account_json` makes it): strings to a text file, or (``binary``) their UTF-8
    bytes to a binary one, about :data:`_WRITE_AT_ONCE` of them at a time."""
    separator, first = (",", "[") if indent is None else (",\n" + " " * (2 * indent), "[\n" + " " * (2 * indent))
    end, empty = ("]" if indent is None else "\n" + " " * indent + "]"), "[]"
    marks: tuple[Any, ...] = (separator, first, end, empty)
    if binary:
        marks = tuple(mark.encode("utf-8") for mark in marks)
    separator, first, end, empty = marks
    joined: Any = separator[:0]  # "" or b""
    written = False
    batch: list[Any] = []
    size = 0
    for text in texts:
        batch += (separator if written else first, text)
        written = True
        size += len(text)
        if size >= _WRITE_AT_ONCE:
            out.write(joined.join(batch))
            batch, size = [], 0
    batch.append(end if written else empty)
    out.write(joined.join(batch))


def account_json(entry: AccountEntry | OpportunityEntry, indent: int | None = None) -> str:
    """One account's (or deal's) entry's JSON text as it stands in the document's
    ``accounts`` (or ``opportunities``) array (with ``indent``, indented for that depth)."""
    return account_jsonb(entry, indent).decode("utf-8")


def account_jsonb(entry: AccountEntry | OpportunityEntry, indent: int | None = None) -> bytes:
    """:func:`account_json` in UTF-8, as the audit spools it."""
    text = dumpb(entry.to_json(), indent)
    return text if indent is None else text.replace(b"\n", b"\n" + b" " * (2 * indent))


def audit_schema() -> dict[str, Any]:
    """The JSON Schema of the audit document (what ``crmlink audit --schema`` prints)."""
    return json_schema(AuditDocument, schema_id=SCHEMA_ID, title=f"crmlink audit document {SCHEMA_VERSION}")

