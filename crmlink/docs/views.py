"""docs/views.md: what the views passed to the scoring and findings hooks offer."""

from __future__ import annotations

from crmlink.docs.introspect import Member, cell, fields, first_paragraph, members

INTRO = """\
# Views: what scoring and findings hooks see

Generated from the code by `python -m crmlink.docs`; do not edit by hand.

`score_account(view)` and `account_findings(view)` receive an `AccountView`,
`opportunity_findings(view)` an `OpportunityView`, `portfolio_findings(view)` a
`PortfolioView` ([hooks.md](hooks.md)). Views are read-only by contract: compute from
them and return scores or findings; the audit fills `scores`, `score_evidence` and
`findings`. Times are epoch seconds (UTC) in the views and the aggregates, datetimes in
the records ([records.md](records.md)); `days_since(moment)` converts. Everything is as
of the audit date, `view.as_of`: interactions after it do not count. To build an
`AccountView` from records in a unit test, use `crmlink.testing.account_view`
([plugins/testing.md](plugins/testing.md)).

A `PortfolioView` holds every judged account and deal twice over. `view.summaries`
(`AccountSummary`) and `view.deal_summaries` (`OpportunitySummary`) are what judging each
one left: scores, findings, stage and level, coverage, effort, LTC stage. The audit keeps
them, so reading them derives nothing again (past 10,000 accounts each pass reads them
back from a temporary file: gather what you need in one loop). `view.accounts` and `view.opportunities` are the full
views, for what a summary lacks (contact stats, pair strengths, score evidence). Nothing
builds them until a plugin reads one of them. The first read then builds every account's
view again from the store's records and folded interactions, and runs the scoring hooks
once more for the score evidence, which costs about as much as scoring the portfolio
again. A portfolio hook that needs only what the summaries hold should read the summaries.
"""


#: What the code does not say next to a field or in a docstring, by (class, member).
#: tests/test_reference_docs.py requires one meaning per member, from the code or from
#: here, and fails on a note for a member the code now documents (move it there).
NOTES = {
    ("AccountView", "account"): "The account record; its `tier` is the CRM's or computed "
                                "from size and growth (`tier_source`).",
    ("AccountView", "data"): "The folded interactions everything below derives from "
                             "(see the aggregates at the end).",
    ("AccountView", "contacts"): "The account's contacts, deleted ones left out.",
    ("AccountView", "users"): "Our people by remote id, deleted ones included (they may "
                              "still hold relationships).",
    ("AccountView", "opportunities"): "The account's deals, deleted ones left out.",
    ("AccountView", "config"): "The settings: defaults merged with the config file, as "
                               "tables (`config[\"strength\"][\"engaged_threshold\"]`; "
                               "[method.md](method.md#the-default-config)).",
    ("AccountView", "excluded_users"): "Users left out of every strength; `without_user()` "
                                       "sets it for the departure simulation.",
    ("AccountView", "previous"): "The same account `findings.previous_period_days` earlier, "
                                 "scored before this one; `None` in that previous view.",
    ("AccountView", "scores"): "Scores by name (0..100, one decimal). Findings hooks see "
                               "every plugin's: they run after all `score_account` hooks.",
    ("AccountView", "score_evidence"): "Each score's evidence, by score name.",
    ("AccountView", "findings"): "The account's findings, once the `account_findings` "
                                 "hooks ran.",
    ("AccountView", "as_of"): "The audit instant: the end of the audit day, epoch seconds (UTC).",
    ("AccountView", "tier"): "The account's tier: `S`, `A`, `B`, `C` or `None`.",
    ("AccountView", "days_since"): "Days from `moment` (epoch seconds) to the audit instant; "
                                   "`None` for `None`.",
    ("AccountView", "pair_strengths"): "(our user id, contact id) -> pair strength 0..100 "
                                       "(decayed weight, reciprocity, freshness; "
                                       "[method.md](method.md)), excluded users left out.",
    ("AccountView", "contact_stats"): "Contact remote id -> `ContactStat`, for every contact, "
                                      "in id order.",
    ("AccountView", "user_active"): "Whether our user exists, is active and is not deleted.",
    ("AccountView", "engaged_users"): "Our users with a counted interaction on the account "
                                      "within `within_days` of the audit instant.",
    ("AccountView", "open_opportunities"): "The deals neither closed nor deleted.",
    ("ContactStat", "contact"): "The contact record.",
    ("ContactStat", "days_since_two_way"): "Days since the last two-way interaction with "
                                           "them; `None`: never.",
    ("ContactStat", "days_since_any"): "Days since the last interaction of any kind; "
                                       "`None`: never.",
    ("ContactStat", "best"): "The strongest pair strength one of our users has with them "
                             "(0 when none).",
    ("OpportunityView", "opportunity"): "The deal record.",
    ("OpportunityView", "account"): "The view of the deal's account; `None` when the "
                                    "account is not in the audit.",
    ("OpportunityView", "stage"): "The CRM's definition of the deal's stage "
                                  "(`crmlink.Stage`), when the source has one.",
    ("OpportunityView", "ltc_stage"): "The canonical LTC stage the `ltc_stage` hooks chose, "
                                      "or `unmapped` ([ltc.md](ltc.md)).",
    ("OpportunityView", "contact_roles"): "The deal's contact roles (`crmlink.OpportunityContact`).",
    ("OpportunityView", "stage_history"): "The deal's `crmlink.StageChange` records, oldest first.",
    ("OpportunityView", "config"): "The settings, as for `AccountView.config`.",
    ("OpportunityView", "as_of"): "The audit instant, epoch seconds (UTC).",
    ("OpportunityView", "typical_days_in_stage"): "Native stage -> the 75th percentile of "
                                                  "days won deals spent in it.",
    ("OpportunityView", "days_in_stage"): "Days in the current stage at the audit instant: "
                                          "from `stage_entered_at`, else the stage history, "
                                          "else `created_at`.",
    ("PortfolioView", "config"): "The settings, as for `AccountView.config`.",
    ("PortfolioView", "as_of"): "The audit instant, epoch seconds (UTC).",
    ("AccountData", "as_of"): "The instant these aggregates are as of, epoch seconds.",
    ("AccountData", "pairs"): "(our user id, contact id) -> `Pair`.",
    ("AccountData", "user_last"): "Our user id -> their last counted interaction on the account.",
    ("AccountData", "exec_links"): "Times of executive-to-executive interactions within "
                                   "`findings.exec_link_days`, earliest first.",
    ("AccountData", "effort"): "Sum of the decayed weights of the counted interactions.",
    ("AccountData", "interactions"): "Counted interactions.",
    ("AccountData", "window"): "Counts of the external interactions within the coverage "
                               "window (`coverage.window_days`), behind `AccountView.coverage`.",
    ("AccountData", "opp_contacts"): "Deal id -> contact id -> [last any, last two-way] on that deal.",
    ("AccountData", "opp_last_inbound"): "Deal id -> the last time they spoke on it.",
    ("AccountData", "opp_last_any"): "Deal id -> the last interaction on it.",
    ("AccountData", "days_since"): "Days from `moment` to `as_of`; `None` for `None`.",
    ("Pair", "last_two_way"): "The pair's last two-way interaction; `None`: never.",
    ("Pair", "last_any"): "The pair's last interaction of any kind.",
}


def documented(cls: type) -> list[tuple[str, list[Member]]]:
    """The class's fields and members, each with its meaning from the code or ``NOTES``."""
    def explained(found: list[Member]) -> list[Member]:
        return [m if m.doc else Member(m.name, m.kind, m.signature, NOTES.get((cls.__name__, m.name), ""))
                for m in found]

    return [("Field", explained(fields(cls))), ("Property or method", explained(members(cls)))]


def page() -> str:
    from crmlink.core.analysis.accumulate import AccountData, Pair
    from crmlink.core.analysis.summary import AccountSummary, OpportunitySummary
    from crmlink.core.analysis.view import AccountView, ContactStat, OpportunityView, PortfolioView

    public: tuple[type, ...] = (AccountView, ContactStat, OpportunityView, PortfolioView, AccountSummary,
                                OpportunitySummary)
    parts = [INTRO, *(section(cls, f"crmlink.{cls.__name__}") for cls in public)]
    parts.append("## The aggregates behind an account view\n\n"
                 "`view.data` holds the folded interactions the view derives everything from. "
                 "They are not part of the public API (`crmlink.*`) and may change; prefer the "
                 "view's properties.\n")
    parts += [section(cls, cls.__name__, level="###") for cls in (AccountData, Pair)]
    return "\n".join(parts)


def section(cls: type, title: str, level: str = "##") -> str:
    lines = [f"{level} {title}\n", first_paragraph(cls.__doc__) + "\n"]
    lines += [_table(header, rows) for header, rows in documented(cls) if rows]
    return "\n".join(lines)


def _table(header: str, rows: list[Member]) -> str:
    body = "\n".join(f"| {cell(f'`{m.signature}`')} | {cell(m.doc)} |" for m in rows)
    return f"| {header} | Meaning |\n| --- | --- |\n{body}\n"
