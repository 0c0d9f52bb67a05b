"""Pieces shared by the table and Markdown renderers."""

from __future__ import annotations

from collections.abc import Sequence

from crmlink.core.document import (
    AccountEntry,
    AuditDocument,
    FixFirst,
    MergeSummary,
    PortfolioCoverage,
)
from crmlink.core.findings import Finding, ScoreDefinition

#: How a report shows a score that is null (no evidence) or missing: never as 0.
NO_SCORE = "–"
#: How many accounts the table and Markdown reports list unless ``--all`` is given: the
#: ones that need attention first (the bundled sample's 50 are all listed).
ACCOUNT_LIMIT = 50


def listed(doc: AuditDocument, limit: int | None) -> Sequence[AccountEntry]:
    """The accounts a text report lists: the first ``limit`` in attention order (every
    account when ``limit`` is None)."""
    return doc.accounts if limit is None else doc.accounts[:limit]


def left_out_note(doc: AuditDocument, shown: int) -> str | None:
    """What a report that lists ``shown`` accounts says about the rest, or None."""
    left = len(doc.accounts) - shown
    if left <= 0:
        return None
    return (f"{left:,} more account(s) not listed here: these are the {shown:,} that need attention first. "
            f"Run crmlink audit with --all to list all {len(doc.accounts):,}.")


def share(value: float | None) -> str:
    return "-" if not value else f"{value:.0%}"


def delta(now: float | None, before: float | None) -> str:
    if now is None or before is None or round(now) == round(before):
        return ""
    return f" ({now - before:+.0f})"


def score(value: float | None) -> str:
    """A score rounded to a whole number, or "–" when it is null or missing."""
    return NO_SCORE if value is None else f"{value:.0f}"


def score_cell(account: AccountEntry, definition: ScoreDefinition) -> str:
    """The account's score; the overall score with its change since the previous period."""
    value = account.scores.get(definition.name)
    if not definition.overall:
        return score(value)
    return score(value) + delta(value, account.previous_scores.get(definition.name))


def summary_lines(doc: AuditDocument) -> list[str]:
    s = doc.summary
    severities = ", ".join(f"{n} {sev}" for sev, n in s.findings_by_severity.items() if n) or "none"
    effort = "  ".join(f"{t} {v:.0%}" for t, v in s.effort_share_by_tier.items())
    tiers = "  ".join(f"{t} {n}" for t, n in sorted(s.accounts_by_tier.items()))
    return [
        f"crmlink audit as of {doc.as_of}: {s.accounts} accounts, {s.opportunities} opportunities",
        *merge_lines(doc.merge),
        *coverage_lines(s.coverage),
        f"Findings: {severities}",
        f"Accounts by tier: {tiers}",
        f"Effort by tier:   {effort}",
    ]


def finding_lines(finding: Finding, mark: str) -> list[str]:
    lines = [f" {mark}[{finding.severity}] {finding.code}: {finding.message}"]
    if finding.action:
        lines.append(f"      -> {finding.action}")
    return lines


GAP_WORDS = {"no_contacts": "no contacts", "no_classified_contacts": "contacts without titles",
             "no_activity": "no activity", "no_linked_activity": "activities name no contact",
             "no_user_activity": "activities name none of ours", "no_paired_activity": "no two-sided activity",
             "few_contacts": "few contacts", "few_classified_contacts": "few titles",
             "few_interactions": "few activities", "low_linked_share": "few linked activities"}


def percent(value: float | None) -> str:
    """A share as a percentage, or "–" when there is nothing to take a share of."""
    return NO_SCORE if value is None else f"{value:.0%}"


def coverage_cell(account: AccountEntry) -> str:
    """How much evidence the account's scores rest on: the ratio, marked when the
    account is partly or not assessable or its evidence is thin."""
    c = account.coverage
    if c.assessment == "not_assessable":
        return "none"
    mark = " part" if c.assessment == "partial" else " thin" if c.thin else ""
    return f"{c.ratio:.0%}{mark}"


def fix_first_text(entry: FixFirst) -> str:
    problems = ", ".join(GAP_WORDS.get(code, code) for code in entry.gaps + entry.thin)
    pipeline = f"; {entry.open_pipeline:,.0f} open" if entry.open_pipeline else ""
    return f"{entry.name or entry.remote_id} ({problems}{pipeline})"


def _activities(c: PortfolioCoverage) -> str:
    if not c.interactions:
        return f"no activity recorded in {c.window_days:g} days"
    return (f"{c.interactions} activities in {c.window_days:g} days: {percent(c.linked_to_contact_share)} "
            f"name a contact, {percent(c.linked_to_our_people_share)} one of our people")


def coverage_lines(c: PortfolioCoverage) -> list[str]:
    """The portfolio's data coverage in two or three lines: what a reader must know
    before trusting any score below it."""
    total = sum(c.accounts.values())
    lines = [f"Data coverage: {c.accounts['assessable']} of {total} accounts assessable, "
             f"{c.accounts['partial']} partly, {c.accounts['not_assessable']} not",
             f"  {_activities(c)}; {c.contacts} contacts"
             + (f": {percent(c.titled_share)} with a title" if c.contacts else "")]
    if c.fix_first:
        lines.append("Fix first: " + "; ".join(fix_first_text(entry) for entry in c.fix_first))
    return lines


def merge_lines(merge: MergeSummary | None, shown: int = 3) -> list[str]:
    """What merging several CRM sources did, in one line, and up to ``shown`` of the
    conflicts it left apart; nothing for an audit of one source."""
    if merge is None:
        return []
    conflicts = len(merge.conflicts)
    lines = [f"{len(merge.sources)} sources merged ({', '.join(merge.sources)}): {merge.accounts_joined} accounts, "
             f"{merge.contacts_joined} contacts, {merge.users_joined} of our people joined; "
             f"{conflicts} conflict{'' if conflicts == 1 else 's'} left apart"
             + (" (IDENTITY_CONFLICT findings say how to decide them)" if conflicts else "")]
    lines += [f"  not merged: {c.message}" for c in merge.conflicts[:shown]]
    if conflicts > shown:
        lines.append(f"  and {conflicts - shown} more")
    return lines


def merged_line(account: AccountEntry) -> str | None:
    """"Merged from salesforce 0015g00000AbCd (primary) and hubspot 9001, by domain
    bank.com", or ``None`` for an account of one CRM record."""
    if not account.merged_from:
        return None
    parts = [f"{m.source} {m.remote_id}{' (primary)' if m.primary else ''}" for m in account.merged_from]
    rules = sorted({f"{m.rule} {m.value}" for m in account.merged_from})
    return f"Merged from {', '.join(parts[:-1])} and {parts[-1]}, by {'; '.join(rules)}."


def unknown_people_line(account: AccountEntry, shown: int = 3) -> str | None:
    """"We correspond with 14 people at Pinnacle Bank who are not in the CRM: ..." (the
    ones with most messages first), or ``None`` when there are none."""
    people = account.unknown_people
    if not people:
        return None
    top = ", ".join(f"{p.name + ' ' if p.name else ''}<{p.address}> ({p.messages})" for p in people[:shown])
    more = f" and {len(people) - shown} more" if len(people) > shown else ""
    count = "1 person" if len(people) == 1 else f"{len(people)} people"
    return (f"We correspond with {count} at {account.name or account.remote_id} who "
            f"{'is' if len(people) == 1 else 'are'} not in the CRM: {top}{more}.")

