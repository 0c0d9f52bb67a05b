"""What the portfolio level keeps of each judged account and deal: small, frozen
summaries made where the account's view is at hand (in the worker that judged it, or in
this process), so the audit's portfolio step never needs every account's full view.

:class:`~.view.PortfolioView` hands them to the ``portfolio_findings`` hooks as
``summaries`` and ``deal_summaries``; its ``accounts`` and ``opportunities`` still give
the full views, built again only when a plugin reads them (:class:`OnDemand`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from crmlink.core.analysis.coverage import Coverage, assessment
from crmlink.core.evaluation.relationship import Relationship
from crmlink.core.findings import Finding
from crmlink.core.model import Account, Opportunity

if TYPE_CHECKING:
    from crmlink.core.analysis.view import AccountView, OpportunityView

T = TypeVar("T")


@dataclass(frozen=True)
class AccountSummary:
    """One judged account as the portfolio level reads it: its record, scores (now and
    at the previous period), findings, stage and level, evidence coverage,
    personalisation and effort. Everything here was computed once, when the account was
    judged; reading it derives nothing again."""

    #: The account record (its `tier` as the audit assigned it).
    account: Account
    #: The account's key in its audit unit: its remote id, or for several CRM sources
    #: merged into one portfolio its global id (`source:remote_id` of the primary record).
    key: str
    #: Scores by name (0..100, one decimal; `None`: no evidence for that layer).
    scores: Mapping[str, float | None]
    #: The same scores `findings.previous_period_days` earlier.
    previous_scores: Mapping[str, float | None]
    #: The account's findings, most severe first.
    findings: tuple[Finding, ...]
    #: The strategic stage and relationship level (`None` when no plugin answered).
    relationship: Relationship | None
    #: The evidence behind the account (as `AccountView.coverage`).
    coverage: Coverage
    #: Concentration of the relationship strength on our side (as `AccountView.personalization`).
    personalization: Mapping[str, Any]
    #: The decayed interaction weight spent on the account (`AccountView.data.effort`).
    effort: float

    @property
    def tier(self) -> str | None:
        """The account's tier: ``S``, ``A``, ``B``, ``C`` or ``None``."""
        return self.account.tier

    @property
    def assessment(self) -> str:
        """``assessable``, ``partial`` or ``not_assessable`` (as ``AccountView.assessment``)."""
        return assessment(self.scores, self.coverage)


@dataclass(frozen=True)
class OpportunitySummary:
    """One judged deal as the portfolio level reads it: its record, LTC stage, findings
    and the facts that say whether its people could be judged."""

    #: The deal record (in the unit's ids: for merged sources, `account_id` is the
    #: account's key in the portfolio).
    opportunity: Opportunity
    #: The canonical LTC stage the `ltc_stage` hooks chose, or `unmapped`.
    ltc_stage: str
    #: The deal's findings, most severe first.
    findings: tuple[Finding, ...]
    #: How many contact roles the deal records.
    contact_roles: int
    #: Contact roles recorded on all the deals of the deal's source (as
    #: `OpportunityView.source_contact_roles`: 0 means the CRM records none anywhere).
    source_contact_roles: int | None
    #: Whether interactions linked to this deal name one of its account's contacts
    #: (`OpportunityView.linked_contacts`), found when the deal was judged with its
    #: account's view at hand; `False` for a deal whose account is not in the audit.
    linked_contacts: bool


def account_summary(view: AccountView, key: str) -> AccountSummary:
    """The summary of ``view``, judged (scores, stage and level, findings set)."""
    previous = view.previous
    return AccountSummary(view.account, key, view.scores, previous.scores if previous is not None else {},
                          tuple(view.findings), view.relationship, view.coverage, view.personalization,
                          view.data.effort)


def opportunity_summary(view: OpportunityView, findings: Sequence[Finding]) -> OpportunitySummary:
    """The summary of the deal ``view`` (with its account's view, when the account is in
    the audit) and the ``findings`` the hooks gave it."""
    return OpportunitySummary(view.opportunity, view.ltc_stage, tuple(findings), len(view.contact_roles),
                              view.source_contact_roles, view.linked_contacts)


class OnDemand(Sequence[T], Generic[T]):
    """A sequence whose items are made by ``build()`` when it is first read (its length,
    an item, an iteration), then kept; :attr:`built` says whether that happened."""

    def __init__(self, build: Callable[[], Sequence[T]]) -> None:
        self._build: Callable[[], Sequence[T]] | None = build
        self._items: Sequence[T] = ()

    @property
    def built(self) -> bool:
        """Whether the items were made."""
        return self._build is None

    def _made(self) -> Sequence[T]:
        if self._build is not None:
            self._items, self._build = self._build(), None
        return self._items

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return self._made()[index]

    def __len__(self) -> int:
        return len(self._made())

    def __iter__(self) -> Iterator[T]:
        return iter(self._made())

    def __repr__(self) -> str:
        return f"OnDemand({list(self._made())!r})" if self.built else "OnDemand(<not built>)"


__all__ = ["AccountSummary", "OnDemand", "OpportunitySummary", "account_summary", "opportunity_summary"]
