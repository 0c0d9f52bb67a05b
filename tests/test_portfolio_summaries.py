"""The portfolio step on summaries: ``portfolio_findings`` hooks get each judged account
and deal as a small summary (``PortfolioView.summaries``, ``deal_summaries``); the full
views (``accounts``, ``opportunities``) are built only when a plugin reads them. The
built-in plugins never do, and the summaries hold what the full views would give."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmlink import AccountSummary, Finding, OpportunitySummary, PortfolioView, hookimpl
from crmlink.cli import cli
from crmlink.core import parallel
from crmlink.core.analysis.audit import Audit
from crmlink.core.analysis.config import load_config
from crmlink.core.analysis.summary import OnDemand
from crmlink.core.host import get_plugin_host
from crmlink.core.store import Store
from crmlink.plugins.ltc import has_relationship_data
from tests.conftest import AS_OF, SAMPLE
from tests.mergefixtures import split

WORKERS = [1, 2] if parallel.can_fork() else [1]


class Keeper:
    """A portfolio plugin that keeps the view it is given and reads nothing of it."""

    view: PortfolioView | None = None

    @hookimpl
    def portfolio_findings(self, view: PortfolioView) -> list[Finding]:
        self.view = view
        return []


class Reader:
    """A portfolio plugin that reads the summaries and the full views, side by side."""

    pairs: list[tuple[AccountSummary, object]]
    deals: list[tuple[OpportunitySummary, object]]

    @hookimpl
    def portfolio_findings(self, view: PortfolioView) -> list[Finding]:
        self.pairs = list(zip(view.summaries, view.accounts, strict=True))
        self.deals = list(zip(view.deal_summaries, view.opportunities, strict=True))
        return []


def _sync(url: str, tmp_path: Path, merged: bool) -> None:
    runner = CliRunner()
    folders = [("csv", SAMPLE)] if not merged else list(zip(("sales", "marketing"), split(tmp_path / "split"),
                                                            strict=True))
    for source, folder in folders:
        result = runner.invoke(cli, ["sync", "csv", str(folder), "--source", source, "--db", url])
        assert result.exit_code == 0, result.output


def _audit(url: str, workers: int, plugin: object) -> Audit:
    config = load_config(None)
    config["audit"]["workers"] = workers
    config["identity"]["match"]["source_order"] = ["sales", "marketing"]
    host = get_plugin_host(load_entrypoints=False)
    host.register("plugin", plugin)
    return Audit(Store(url), host, config, date.fromisoformat(AS_OF))


@pytest.mark.parametrize("workers", WORKERS)
def test_the_built_in_plugins_read_only_the_summaries(tmp_path: Path, workers: int) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _sync(url, tmp_path, False)
    keeper = Keeper()
    document = _audit(url, workers, keeper).document()
    assert [f.code for f in document.portfolio_findings] == ["TIER_EFFORT_MISMATCH"]  # the method's hook ran
    view = keeper.view
    assert view is not None and len(view.summaries) == 50
    assert len(view.deal_summaries) == len(document.opportunities) > 0
    assert isinstance(view.accounts, OnDemand) and isinstance(view.opportunities, OnDemand)
    assert not view.accounts.built and not view.opportunities.built
    assert len(view.accounts) == 50 and view.accounts.built  # reading builds them, once


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("merged", [False, True], ids=["one-source", "merged"])
def test_the_summaries_hold_what_the_full_views_give(tmp_path: Path, workers: int, merged: bool) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _sync(url, tmp_path, merged)
    reader = Reader()
    audit = _audit(url, workers, reader)
    document = audit.document()
    assert len(reader.pairs) == len(document.accounts) == 50
    units = list(audit.units(None))
    assert len(units) == 1 and units[0].merged is merged
    for summary, view in reader.pairs:
        assert view.previous is not None
        # an equal record (the summaries are kept on disk and read back)
        assert summary.account == view.account and summary.key == units[0].key(view)
        assert (summary.scores, summary.previous_scores) == (view.scores, view.previous.scores)
        assert list(summary.findings) == view.findings and summary.relationship == view.relationship
        assert summary.coverage == view.coverage and summary.assessment == view.assessment
        assert summary.personalization == view.personalization
        assert summary.effort == view.data.effort and summary.tier == view.tier
    assert any(s.findings for s, _ in reader.pairs) and any(s.relationship for s, _ in reader.pairs)
    assert len(reader.deals) == len(document.opportunities) > 0
    for (deal, view), entry in zip(reader.deals, document.opportunities, strict=True):
        assert deal.opportunity == view.opportunity and deal.ltc_stage == view.ltc_stage == entry.ltc_stage
        assert list(deal.findings) == entry.findings
        assert deal.contact_roles == len(view.contact_roles)
        assert deal.source_contact_roles == view.source_contact_roles
        assert deal.linked_contacts == view.linked_contacts
        assert has_relationship_data(deal) == has_relationship_data(view)
    assert {d.linked_contacts for d, _ in reader.deals} == {True, False}
    assert any(d.findings for d, _ in reader.deals)
