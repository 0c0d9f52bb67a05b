"""What scoring and findings hooks see: read-only views of one account, deal or portfolio.

Views derive everything from the aggregates of :mod:`.accumulate` lazily, so a plugin
pays only for what it reads. ``view.without_user(uid)`` gives the same account as if
one of our people had never been there: the departure simulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, overload

from crmlink.core import clock, vocab
from crmlink.core.analysis.accumulate import AccountData, is_senior
from crmlink.core.analysis.coverage import Coverage, account_coverage, assessment
from crmlink.core.analysis.people import UnknownPerson
from crmlink.core.analysis.summary import AccountSummary, OpportunitySummary
from crmlink.core.clock import DAY
from crmlink.core.evaluation.relationship import Relationship
from crmlink.core.findings import Finding
from crmlink.core.model import Account, Contact, Opportunity, OpportunityContact, Stage, User

T = TypeVar("T")

#: The roles the method calls "decision makers" (决策者): the key layer's point. Approvers
#: (finance, legal) have decision power for a deal (`is_power`) but are a role of their own.
DECISION_ROLES = frozenset({"economic_buyer", "decision_maker"})


class _once(cached_property[T]):  # noqa: N801 - a decorator, named as cached_property is
    """:func:`functools.cached_property` without the lock Python 3.11 takes on each
    first read (one lock for all the instances of a class; Python 3.12 dropped it): a
    view is read by one thread, and the audit makes hundreds of thousands of views."""

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> _once[T]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> T | _once[T]:
        if instance is None:
            return self
        value: T = self.func(instance)
        instance.__dict__[self.attrname] = value  # type: ignore[index]  # read from there on, as cached_property
        return value


@dataclass(frozen=True)
class ContactStat:
    """The team's relationship with one contact."""

    contact: Contact
    role: str | None          # buying role, or inferred from seniority and department
    strengths: Mapping[str, float]  # our user -> pair strength (0..100)
    team: float               # noisy-OR of the pair strengths (0..100)
    holders: tuple[str, ...]  # users with a pair strength at or above the holder threshold
    days_since_two_way: float | None
    days_since_any: float | None

    @property
    def best(self) -> float:
        return max(self.strengths.values(), default=0.0)

    @_once
    def best_holder(self) -> str | None:
        """Our strongest holder; of equally strong ones, the smallest id (whatever the
        store's row order)."""
        strengths = self.strengths
        if not strengths:
            return None
        best = max(strengths.values())
        return min(user for user, value in strengths.items() if value == best)

    @property
    def is_power(self) -> bool:
        """Decision power over a deal: decision makers, economic buyers and approvers."""
        return self.role in vocab.POWER_ROLES

    @property
    def is_decision_maker(self) -> bool:
        """A decision maker or economic buyer (CRM role, or inferred from VP+ seniority)."""
        return self.role in DECISION_ROLES


def infer_role(contact: Contact) -> str | None:
    """The buying role, or a documented guess from seniority and department when the CRM
    has none: VP and above decide; procurement buys; technical, engineering and IT
    managers evaluate; finance approves; operations use."""
    if contact.buying_role:
        return contact.buying_role
    if is_senior(contact):
        return "decision_maker"
    department = contact.department
    if department == "procurement":
        return "procurement"
    if department in ("technical", "engineering", "it") and is_senior(contact, "manager"):
        return "technical_evaluator"
    if department == "finance":
        return "approver"
    if department == "operations":
        return "user"
    return None


def pair_strength(pair: Any, as_of: float, strength: Mapping[str, Any]) -> float:
    """0..100 from decayed weight, reciprocity and freshness (docs/method.md)."""
    return pair_strengths_of({("", ""): pair}, as_of, strength)[("", "")]


def pair_strengths_of(pairs: Mapping[tuple[str, str], Any], as_of: float, strength: Mapping[str, Any],
                      excluded: Container[str] = ()) -> dict[tuple[str, str], float]:
    """:func:`pair_strength` of each pair whose user is not in ``excluded``, in (user,
    contact) order, not the order the store returned the interactions in: the sums and
    products over them, and so every tie, come out the same on every store. The
    settings are read once for all the pairs; each value is the formula's, operation for
    operation (the comments say which step a shortcut stands for)."""
    k, cap = strength["k"], float(strength["one_way_cap"])
    grace, half_life = strength["freshness_grace_days"], strength["freshness_half_life_days"]
    exp, pow_ = math.exp, math.pow
    keys = sorted(pairs)  # the keys alone sort faster than the items
    if excluded:
        keys = [key for key in keys if key[0] not in excluded]
    found = {}
    for key in keys:
        pair = pairs[key]
        inbound, outbound = pair.inbound, pair.outbound
        ratio = inbound / (outbound if outbound > 1 else 1)  # inbound / max(1, outbound)
        # 100 x saturation x (0.4 + 0.6 x reciprocity), reciprocity = min(1.0, ratio)
        value = 100.0 * (1.0 - exp(-pair.weight / k)) * (0.4 + 0.6 * (ratio if ratio < 1.0 else 1.0))
        if inbound == 0 and cap < value:  # min(value, cap): one-way contact alone is capped
            value = cap
        last = pair.last_any  # the latest contact of any kind
        if last is not None:
            silent = (as_of - last) / DAY - grace  # the freshness factor is 1 within the grace period
            if silent > 0.0:
                value *= pow_(2.0, -silent / half_life)
        found[key] = value
    return found


@dataclass
class AccountView:
    """One account as of one date, with everything the method needs."""

    account: Account
    data: AccountData
    contacts: Sequence[Contact]
    users: Mapping[str, User]
    opportunities: Sequence[Opportunity]
    config: Mapping[str, Any]
    excluded_users: frozenset[str] = frozenset()
    previous: AccountView | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    score_evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    #: People at the account we corresponded or met with who are not contacts (from mail
    #: and calendar sources), most messages first.
    unknown_people: Sequence[UnknownPerson] = ()
    #: The strategic stage and relationship level (the `evaluate_relationship` hook and
    #: the CRM's override), set after the scores and before the findings.
    relationship: Relationship | None = None
    #: Whether anything reads this view's score evidence. The audit keeps only the score
    #: values of the previous period's view and of the monthly history's, and sets this
    #: `False` there: a `score_account` implementation may then skip building its evidence.
    wants_evidence: bool = True

    @property
    def as_of(self) -> float:
        return self.data.as_of

    @property
    def tier(self) -> str | None:
        return self.account.tier

    def days_since(self, moment: float | None) -> float | None:
        if moment is None:
            return None
        if isinstance(moment, float):
            return (self.data.as_of - moment) / DAY  # what clock.days_between does, without its checks
        return self.data.days_since(moment)

    def derived(self, key: Hashable, compute: Callable[[AccountView], T]) -> T:
        """``compute(self)``, computed once per view and ``key``: for a plugin's values
        that follow from the view alone and that several hooks read (the built-in method's
        scores, read again by its departure simulation). Key them by the plugin's name."""
        memo: dict[Hashable, Any] = self.__dict__.setdefault("_derived", {})  # not a field: not compared
        if key not in memo:
            memo[key] = compute(self)
        return memo[key]  # type: ignore[no-any-return]

    @_once
    def coverage(self) -> Coverage:
        """The evidence behind this account, counted before any score: read it to leave
        a score ``None`` where its layer has no evidence (docs/method.md, "Evidence coverage")."""
        return account_coverage(self)

    @property
    def assessment(self) -> str:
        """``assessable``, ``partial`` or ``not_assessable``, from the scores the plugins
        returned (``None`` = no evidence for that layer)."""
        return assessment(self.scores, self.coverage)

    @_once
    def pair_strengths(self) -> dict[tuple[str, str], float]:
        return pair_strengths_of(self.data.pairs, self.as_of, self.config["strength"], self.excluded_users)

    @_once
    def contact_stats(self) -> dict[str, ContactStat]:
        left: tuple[dict[str, ContactStat], str] | None = self.__dict__.get("_left_out")
        threshold = self.config["strength"]["holder_threshold"]
        if left is not None:  # without_user() of a view whose stats were computed
            return _stats_without(left[0], left[1], threshold)
        # one pass over the pairs: each contact's strengths by user, the product of
        # (1 - s / 100) in that order and the holders, which is what _team gives for those
        # strengths, operation for operation (its first factor 1.0 x (1 - s / 100) is 1 - s / 100)
        # (and the best holder: the first of the strongest, as max() finds them, and of
        # equally strong ones the smallest id)
        per_contact: dict[str, list[Any]] = {}
        for (user, contact_id), value in self.pair_strengths.items():
            found = per_contact.get(contact_id)
            if found is None:
                per_contact[contact_id] = [{user: value}, 1.0 - value / 100.0, [user] if value >= threshold else [],
                                           value, user]
                continue
            found[0][user] = value
            found[1] *= 1.0 - value / 100.0
            if value >= threshold:
                found[2].append(user)
            if value > found[3] or (value == found[3] and user < found[4]):
                found[3], found[4] = value, user
        contact_last, as_of, none, days_since = self.data.contact_last.get, self.data.as_of, (None, None), self.days_since
        stats = {}
        for contact, role in self._contact_roster().contacts:
            rid = contact.remote_id
            found = per_contact.get(rid)
            if found is None:  # what _team gives for no strengths
                strengths, team, holders = {}, 0.0, ()
            else:
                found[2].sort()  # already in order from pair_strengths_of; for strengths set otherwise
                strengths, team, holders = found[0], 100.0 * (1.0 - found[1]), tuple(found[2])
            any_, two_way = contact_last(rid, none)
            stat = stats[rid] = _stat(
                contact, role, strengths, team, holders,
                (as_of - two_way) / DAY if type(two_way) is float else days_since(two_way),  # days_since, inlined
                (as_of - any_) / DAY if type(any_) is float else days_since(any_))
            if found is not None and found[3] == found[3]:  # else (NaN) as the property finds it
                stat.__dict__["best_holder"] = found[4]
        return stats

    def contacts_derived(self, key: Hashable, compute: Callable[[Sequence[Contact]], T]) -> T:
        """``compute(contacts)``, computed once per ``key`` for the view, its previous
        period's and its departure simulations (:meth:`without_user`), which hold the same
        contacts: for a plugin's values that follow from the contacts alone, not from the
        date or the people left out. Key them by the plugin's name."""
        memo = self._contact_roster().memo
        if key not in memo:
            memo[key] = compute(self.contacts)
        return memo[key]  # type: ignore[no-any-return]

    def _contact_roster(self) -> _Roster:
        """The contacts in id order with their roles: the view's previous period's when it
        holds the same contacts (the audit's views do), else made here."""
        roster: _Roster | None = self.__dict__.get("_roster")
        if roster is None:
            previous = self.previous
            shared = previous is not None and previous.contacts is self.contacts
            roster = previous._contact_roster() if shared else _Roster.of(self.contacts)  # type: ignore[union-attr]
            self.__dict__["_roster"] = roster
        return roster

    def engaged(self, within_days: float | None = None) -> list[ContactStat]:
        """Contacts whose team strength reaches the engaged threshold (and, if given,
        who engaged two-way within ``within_days``)."""
        memo: dict[float | None, list[ContactStat]] = self.__dict__.setdefault("_engaged", {})  # not a field
        found = memo.get(within_days)
        if found is None:  # once per view and window: the broad score and two findings ask
            threshold = self.config["strength"]["engaged_threshold"]
            found = memo[within_days] = [
                s for s in self.contact_stats.values() if s.team >= threshold and s.contact.active
                and (within_days is None or (s.days_since_two_way is not None and s.days_since_two_way <= within_days))]
        return list(found)

    @_once
    def user_strength(self) -> dict[str, float]:
        """Sum of pair strengths held by each of our users."""
        totals: dict[str, float] = {}
        for (user, _), value in self.pair_strengths.items():
            totals[user] = totals.get(user, 0.0) + value
        return totals

    @_once
    def personalization(self) -> dict[str, Any]:
        """Concentration of the account's relationship strength on our side."""
        total = sum(self.user_strength.values())
        if total <= 0:
            return {"top_holder": None, "top_share": 0.0, "effective_holders": 0.0,
                    "bus_factor": 0, "inactive_share": 0.0, "holders": {}}
        shares = {u: v / total for u, v in self.user_strength.items()}
        ordered = sorted(shares.items(), key=lambda item: (-item[1], item[0]))
        hhi = sum(s * s for s in shares.values())
        cumulative, bus = 0.0, 0
        for _, share in ordered:
            cumulative += share
            bus += 1
            if cumulative >= 0.5:
                break
        inactive = sum(s for u, s in shares.items() if not self.user_active(u))
        return {"top_holder": ordered[0][0], "top_share": round(ordered[0][1], 4),
                "effective_holders": round(1.0 / hhi, 2), "bus_factor": bus,
                "inactive_share": round(inactive, 4),
                "holders": {u: round(s, 4) for u, s in ordered}}

    def user_active(self, user_id: str) -> bool:
        user = self.users.get(user_id)
        return bool(user and user.active and not user.deleted)

    def without_user(self, user_id: str) -> AccountView:
        """The same account as if ``user_id`` held none of its relationships."""
        other = AccountView(self.account, self.data, self.contacts, self.users, self.opportunities,
                            self.config, self.excluded_users | {user_id}, unknown_people=self.unknown_people)
        if "pair_strengths" in self.__dict__:  # the same values, less the user's: not computed again
            other.__dict__["pair_strengths"] = {key: value for key, value in self.pair_strengths.items()
                                                if key[0] != user_id}
        if "coverage" in self.__dict__:  # the evidence counts do not depend on who is left out
            other.__dict__["coverage"] = self.coverage
        other.__dict__["_roster"] = self._contact_roster()  # nor do the contacts
        if "contact_stats" in self.__dict__ and "pair_strengths" in self.__dict__:
            other.__dict__["_left_out"] = (self.contact_stats, user_id)
        return other

    def engaged_users(self, within_days: float) -> list[str]:
        as_of, excluded = self.as_of, self.excluded_users
        return sorted(u for u, last in self.data.user_last.items()
                      if u not in excluded and (as_of - last) / DAY <= within_days)

    def open_opportunities(self) -> list[Opportunity]:
        return [o for o in self.opportunities if not o.is_closed and not o.deleted]


def _stats_without(stats: Mapping[str, ContactStat], user_id: str, threshold: float) -> dict[str, ContactStat]:
    """``stats`` as :attr:`AccountView.contact_stats` gives them with ``user_id`` left
    out: a contact ``user_id`` had no pair with keeps its stat (the same strengths in the
    same order, so the same values); the others are computed again from their strengths
    less the user's, exactly as ``contact_stats`` computes them."""
    result = {}
    for rid, stat in stats.items():
        if user_id not in stat.strengths:
            result[rid] = stat
            continue
        strengths = {u: s for u, s in stat.strengths.items() if u != user_id}
        team, holders = _team(strengths, threshold)
        result[rid] = _stat(stat.contact, stat.role, strengths, team, holders, stat.days_since_two_way,
                            stat.days_since_any)
    return result


def _team(strengths: Mapping[str, float], threshold: float) -> tuple[float, tuple[str, ...]]:
    """The team strength with one contact, the noisy-OR of our users' pair strengths
    ``100 x (1 - prod(1 - s / 100))`` (multiplied in the order of ``strengths``), and
    the users at or above ``threshold``, by id."""
    rest, holders = 1.0, []
    for user, value in strengths.items():
        rest *= 1.0 - value / 100.0
        if value >= threshold:
            holders.append(user)
    holders.sort()
    return 100.0 * (1.0 - rest), tuple(holders)


def _stat(contact: Contact, role: str | None, strengths: Mapping[str, float], team: float,
          holders: tuple[str, ...], days_since_two_way: float | None, days_since_any: float | None) -> ContactStat:
    """``ContactStat(contact, role, ...)``: the same fields, set in the instance's dict as
    the frozen dataclass's ``__init__`` sets them, without its ``object.__setattr__`` call
    per field (a view makes one per contact, and that call was most of the cost)."""
    stat = object.__new__(ContactStat)
    stat.__dict__.update(contact=contact, role=role, strengths=strengths, team=team, holders=holders,
                         days_since_two_way=days_since_two_way, days_since_any=days_since_any)
    return stat


@dataclass(frozen=True)
class _Roster:
    """What views derive from an account's contacts alone, whatever their date and
    whoever they leave out: the contacts in id order (the same order whatever the
    store's) with their roles (:func:`infer_role`), and the values of
    :meth:`AccountView.contacts_derived`. Views that hold the same contacts share one."""

    contacts: tuple[tuple[Contact, str | None], ...]
    memo: dict[Hashable, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, contacts: Sequence[Contact]) -> _Roster:
        return cls(tuple((c, infer_role(c)) for c in sorted(contacts, key=_remote_id)))


def _remote_id(contact: Contact) -> str:
    return contact.remote_id


@dataclass
class OpportunityView:
    """One deal, its account's view, and its LTC stage."""

    opportunity: Opportunity
    account: AccountView | None
    stage: Stage | None
    ltc_stage: str
    contact_roles: Sequence[OpportunityContact]
    stage_history: Sequence[Any]
    config: Mapping[str, Any]
    as_of: float
    typical_days_in_stage: Mapping[str, float] = field(default_factory=dict)
    #: contact roles recorded on all the deals of this deal's source: 0 means the CRM
    #: records none anywhere (a data gap, not this deal's problem); None when unknown
    source_contact_roles: int | None = None

    @property
    def days_in_stage(self) -> float | None:
        entered = self.opportunity.stage_entered_at
        if entered is None:
            history = [h for h in self.stage_history
                       if h.stage_id == self.opportunity.stage_id or h.stage_label == self.opportunity.stage_label]
            entered = max((h.entered_at for h in history), default=None)
        if entered is None:
            entered = self.opportunity.created_at
        return None if entered is None else max(0.0, clock.days_between(entered, self.as_of))

    @property
    def linked_contacts(self) -> bool:
        """Whether interactions linked to this deal name one of its account's contacts
        (``False`` when the account is not in the audit)."""
        account = self.account
        return account is not None and bool(account.data.opp_contacts.get(self.opportunity.remote_id))

    def engaged_contacts(self, within_days: float) -> dict[str, list[float | None]]:
        """Contacts of this deal heard from two-way within ``within_days``: from
        interactions linked to the deal and, failing that, its contact roles."""
        if self.account is None:
            return {}
        data = self.account.data
        found = {}
        linked = data.opp_contacts.get(self.opportunity.remote_id, {})
        candidates = set(linked) | {r.contact_id for r in self.contact_roles if r.contact_id}
        for contact in candidates:
            last = linked.get(contact) or data.contact_last.get(contact) or [None, None]
            if last[1] is not None and clock.days_between(last[1], self.as_of) <= within_days:
                found[contact] = last
        return found


@dataclass
class PortfolioView:
    """Every account and deal of the audit, judged.

    Read ``summaries`` and ``deal_summaries``: what each account's and deal's judging
    left (scores, findings, coverage, effort, LTC stage), kept by the audit: nothing is
    derived again, but past :data:`.spill.KEEP` accounts they are read back from disk on
    each pass, so gather what you need in one loop. ``accounts`` and ``opportunities``
    give the full views instead, for what a summary does not hold (contact stats, pair
    strengths, score evidence): the audit builds them only when a plugin first reads
    them, and then derives every account again (its view from the records and folded
    interactions, its scores' evidence from the scoring hooks), which costs about as much
    as scoring the portfolio again.
    """

    #: Every account's view, judged, in the order of `summaries`; built on first read.
    accounts: Sequence[AccountView]
    config: Mapping[str, Any]
    as_of: float
    #: Every deal's view with its LTC stage, each with its account's view from
    #: `accounts` (`None` when the account is not in the audit), in the order of
    #: `deal_summaries`; built on first read.
    opportunities: Sequence[OpportunityView] = ()
    #: Every account, judged, as a small summary (`AccountSummary`), by unit and key.
    summaries: Sequence[AccountSummary] = ()
    #: Every deal, judged, as a small summary (`OpportunitySummary`).
    deal_summaries: Sequence[OpportunitySummary] = ()
