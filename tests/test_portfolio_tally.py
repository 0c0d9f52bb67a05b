"""The document's summary is added up as the accounts and deals are judged
(:class:`PortfolioTally`), never by reading them back: it must give what counting over
the whole list gives, ties among the accounts to fix first included."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crmlink.core.analysis.assemble import PortfolioTally, deal_counted, finding_pairs
from crmlink.core.analysis.cache import StoredSummary
from crmlink.core.analysis.coverage import Coverage
from crmlink.core.analysis.summary import AccountSummary, OpportunitySummary
from crmlink.core.findings import SEVERITIES, Finding
from crmlink.core.model import Account, Opportunity

SETTINGS = {"window_days": 365, "fix_first": 3}

findings = st.lists(st.builds(lambda code, severity: Finding(code, severity, "m"),
                              st.sampled_from(["A_CODE", "B_CODE", "C_CODE"]), st.sampled_from(SEVERITIES)),
                    max_size=3)
counts = st.integers(0, 4)


@st.composite
def accounts(draw: st.DrawFn) -> AccountSummary:
    """An account with few distinct values, so that ties are common."""
    remote_id = draw(st.sampled_from(["a1", "a2", "a3"]))
    tier = draw(st.sampled_from(["S", "A", "B", "C", None]))
    names = ("contacts", "classified", "titled", "with_department", "with_seniority", "with_role", "interactions",
             "with_contact", "with_user", "paired", "contacts_reached", "our_people", "opportunities",
             "open_opportunities")
    coverage = Coverage(
        window_days=365.0, **{name: draw(counts) for name in names},
        open_pipeline=draw(st.sampled_from([0.0, 100.0, 2500.0])),
        gaps=tuple(draw(st.lists(st.sampled_from(["no_contacts", "no_activity"]), max_size=1))),
        thin=tuple(draw(st.lists(st.sampled_from(["few_contacts"]), max_size=1))),
        ratio=draw(st.sampled_from([0.0, 0.5, 1.0])))
    some: list[dict[str, float | None]] = [{}, {"health": None}, {"health": 50.0}, {"health": None, "key": 10.0}]
    scores = draw(st.sampled_from(some))
    return AccountSummary(Account(remote_id, "crm", name=f"name {remote_id}", tier=tier), remote_id, scores, {},
                          tuple(draw(findings)), None, coverage, {}, draw(st.floats(0, 1e6)))


deals = st.builds(lambda found, roles: OpportunitySummary(Opportunity("o1", "crm"), "qualify", tuple(found), roles,
                                                           None, False),
                  findings, st.integers(0, 2))


def counted(found: list[Finding]) -> dict[str, Any]:
    return {"severity": {s: sum(f.severity == s for f in found) for s in reversed(SEVERITIES)},
            "code": dict(sorted(Counter(f.code for f in found).items()))}


@given(st.lists(accounts(), max_size=25), st.lists(deals, max_size=5), findings)
def test_the_tally_counts_what_the_whole_list_would_give(listed: list[AccountSummary],
                                                           deal_list: list[OpportunitySummary],
                                                           portfolio: list[Finding]) -> None:
    tally, stored = PortfolioTally(SETTINGS), PortfolioTally(SETTINGS)
    for account in listed:
        tally.add_account(account)
        # as the audit's cache gives it: the findings still pickled, their severities and codes at hand
        stored.add_account(StoredSummary.of(account), finding_pairs(account.findings))
    for deal in deal_list:
        tally.add_deal(deal)
        stored.add_counted_deal(deal_counted(deal))
    summary = tally.summary(portfolio)
    assert stored.summary(portfolio) == summary

    every = [f for a in listed for f in a.findings] + [f for d in deal_list for f in d.findings] + portfolio
    assert (summary.findings_by_severity, summary.findings_by_code) == tuple(counted(every).values())
    assert summary.accounts_by_tier == dict(Counter(a.tier or "none" for a in listed))
    effort = {"S": 0.0, "A": 0.0, "B": 0.0, "C": 0.0}
    for a in listed:
        effort[a.tier or "none"] = effort.get(a.tier or "none", 0.0) + a.effort
    grand = sum(effort.values())
    assert summary.effort_share_by_tier == {t: round(v / grand, 4) if grand else 0.0 for t, v in effort.items()}

    coverage = summary.coverage
    assert coverage.accounts == {v: sum(a.assessment == v for a in listed)
                                 for v in ("assessable", "partial", "not_assessable")}
    assert coverage.contacts == sum(a.coverage.contacts for a in listed)
    assert (coverage.opportunities, coverage.opportunities_with_contact_roles) == (
        len(deal_list), sum(1 for d in deal_list if d.contact_roles))
    weak = [a for a in listed if a.assessment != "assessable" or a.coverage.thin]
    first = sorted(weak, key=lambda a: (-a.coverage.open_pipeline, a.coverage.ratio, a.account.remote_id))[:3]
    # equal keys keep the order the accounts came in: the same account objects, in the same order
    assert [(f.remote_id, f.open_pipeline, f.ratio, f.assessment, f.gaps, f.thin) for f in coverage.fix_first] == [
        (a.account.remote_id, a.coverage.open_pipeline, a.coverage.ratio, a.assessment, list(a.coverage.gaps),
         list(a.coverage.thin)) for a in first]


@given(st.lists(st.integers(min_value=0, max_value=12), max_size=40))
def test_the_deals_document_order_keeps_each_position_once_its_last_judged(positions: list[int]) -> None:
    """The deals go into the document by position, each deal kept twice (judged again)
    taken as kept last: the numbers :meth:`_UnitDeals.numbers` gives are those of
    sorting every kept deal by position, stably, and keeping each position's last."""
    from array import array

    from crmlink.core.analysis.audit import _UnitDeals

    deals = object.__new__(_UnitDeals)
    deals.positions = array("q", positions)
    by_position = {position: number for number, position in enumerate(positions)}
    assert list(deals.numbers()) == [by_position[position] for position in sorted(by_position)]


def test_the_deals_at_risk_are_counted_as_the_deals_are_judged(tmp_path: Path) -> None:
    """The table's "Deals at risk" count comes from the audit's tally, not from reading
    every deal back: it is the count of the deals' critical and high findings, with the
    cache and without, and a document the audit did not count renders the same table."""
    import dataclasses

    from crmlink.core.analysis.audit import Audit
    from crmlink.core.analysis.config import load_config
    from crmlink.core.findings import URGENT_SEVERITIES
    from crmlink.core.host import get_plugin_host
    from crmlink.core.report import table
    from tests.conftest import AS_OF, synced

    store, _ = synced(f"sqlite:///{tmp_path / 'store.db'}")
    for cached in (True, False, True):
        settings = load_config()
        settings["audit"]["cache"] = cached
        document = Audit(store, get_plugin_host(), settings, date.fromisoformat(AS_OF)).stream()
        counted = sum(f.severity in URGENT_SEVERITIES for deal in document.opportunities for f in deal.findings)
        assert document.urgent_deal_findings == counted > 0
        rendered = table.render(document)
        assert f"Deals at risk ({counted}):" in rendered
        assert table.render(dataclasses.replace(document, urgent_deal_findings=None)) == rendered
