"""Evidence coverage: what an account's scores can rest on, counted before any score.

Real CRMs often hold accounts and deals but few contacts, contacts without titles, and
few logged activities (mail and meetings live elsewhere). An audit that scored such an
account 0 would call a relationship bad when the CRM simply does not know it. So the
audit first counts the evidence of each account (contacts and how well they are
described, interactions in the coverage window and how many name a contact and one of
our people) and names the *gaps* (no evidence of a kind at all) and the *thin* spots
(evidence below the ``[coverage]`` minimums). Scoring plugins read
``view.coverage`` to leave a layer unscored (``None``) where it has no evidence; the
account's :func:`assessment` then follows from which scores are missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmlink.core.clock import DAY
from crmlink.core.document import ASSESSMENTS, FixFirst, PortfolioCoverage

if TYPE_CHECKING:
    from crmlink.core.analysis.summary import AccountSummary
    from crmlink.core.analysis.view import AccountView


#: Gap codes, in the order a data finding names them: each means "none at all".
GAPS = ("no_contacts", "no_classified_contacts", "no_activity", "no_linked_activity",
        "no_user_activity", "no_paired_activity")

#: Thin-evidence codes: some evidence, below a ``[coverage]`` minimum.
THIN = ("few_contacts", "few_classified_contacts", "few_interactions", "low_linked_share")


@dataclass(frozen=True)
class Coverage:
    """The evidence behind one account as of the audit date.

    Contact counts are of the account's active contacts; interaction counts are of its
    interactions within ``window_days`` that are not internal-only.
    """

    window_days: float
    contacts: int
    classified: int          # contacts with a title, seniority, department or buying role
    titled: int
    with_department: int
    with_seniority: int
    with_role: int           # a buying role recorded in the CRM
    interactions: int
    with_contact: int        # interactions naming one of their contacts
    with_user: int           # interactions naming one of our people
    paired: int              # counted interactions naming both (the relationship evidence)
    contacts_reached: int    # distinct contacts named by an interaction in the window
    our_people: int          # distinct people of ours named by a counted interaction in the window
    opportunities: int
    open_opportunities: int
    open_pipeline: float     # sum of open deal amounts, each in its own currency (not converted)
    gaps: tuple[str, ...]
    thin: tuple[str, ...]
    ratio: float             # 0..1, see :func:`evidence_ratio`

    @property
    def has_relationship_evidence(self) -> bool:
        """At least one counted interaction names a contact and one of our people."""
        return self.paired > 0


def _classified(contact: Any) -> bool:
    return bool(contact.title or contact.seniority or contact.department or contact.buying_role)


def _amount(value: Decimal | float | None) -> float:
    return float(value) if value is not None else 0.0


def evidence_ratio(contacts: int, classified: int, interactions: int, paired: int,
                   settings: Mapping[str, Any]) -> float:
    """The mean of four parts, each 0..1: contacts against ``min_contacts``, the share of
    contacts classified, interactions against ``min_interactions``, and the share of
    interactions naming a contact and one of ours."""
    parts = (min(1.0, contacts / settings["min_contacts"]) if settings["min_contacts"] else 1.0,
             classified / contacts if contacts else 0.0,
             min(1.0, interactions / settings["min_interactions"]) if settings["min_interactions"] else 1.0,
             paired / interactions if interactions else 0.0)
    return round(sum(parts) / len(parts), 3)


def _described(contacts: Sequence[Any]) -> tuple[int, int, int, int, int, int]:
    """Of ``contacts``, how many are active, and of those how many are classified,
    titled, with a department, with a level and with a buying role (one pass)."""
    active = classified = titled = department = seniority = role = 0
    for c in contacts:
        if c.active and not c.deleted:
            active += 1
            classified += _classified(c)
            titled += bool(c.title)
            department += bool(c.department)
            seniority += bool(c.seniority)
            role += bool(c.buying_role)
    return active, classified, titled, department, seniority, role


def account_coverage(view: AccountView) -> Coverage:
    """Count the evidence of one account (see the module docstring)."""
    settings = view.config["coverage"]
    window = float(settings["window_days"])
    # the contacts' counts follow from the contacts alone: once for the account's views
    contacts, classified, titled, with_department, with_seniority, with_role = view.contacts_derived(
        ("coverage", "described"), _described)
    counts = view.data.window
    interactions, paired = counts.interactions, counts.paired
    as_of = view.as_of  # times are epoch seconds: (as_of - t) / DAY is clock.days_between(t, as_of)
    reached = 0
    for last in view.data.contact_last.values():
        if last[0] is not None and (as_of - last[0]) / DAY <= window:
            reached += 1
    people = 0
    for moment in view.data.user_last.values():
        if (as_of - moment) / DAY <= window:
            people += 1
    deals = 0
    amounts = []
    for o in view.opportunities:  # as open_opportunities() and the sums over them
        if not o.deleted:
            deals += 1
            if not o.is_closed:
                amounts.append(_amount(o.amount))
    pipeline = round(sum(amounts, 0.0), 2)
    return _coverage(
        window_days=window, contacts=contacts, classified=classified, titled=titled,
        with_department=with_department, with_seniority=with_seniority, with_role=with_role,
        interactions=interactions, with_contact=counts.with_contact, with_user=counts.with_user,
        paired=paired, contacts_reached=reached, our_people=people,
        opportunities=deals, open_opportunities=len(amounts), open_pipeline=pipeline,
        gaps=_gaps(contacts, classified, interactions, counts.with_contact, counts.with_user, paired),
        thin=_thin(contacts, classified, interactions, paired, settings),
        ratio=evidence_ratio(contacts, classified, interactions, paired, settings))


def _coverage(**fields: Any) -> Coverage:
    """``Coverage(**fields)``: set in the instance's dict as the frozen dataclass's
    ``__init__`` sets them, without its ``object.__setattr__`` call per field."""
    made = object.__new__(Coverage)
    made.__dict__.update(fields)
    return made


def _gaps(contacts: int, classified: int, interactions: int, with_contact: int,
          with_user: int, paired: int) -> tuple[str, ...]:
    found = []
    if not contacts:
        found.append("no_contacts")
    elif not classified:
        found.append("no_classified_contacts")
    if not interactions:
        found.append("no_activity")
    else:
        if not with_contact:
            found.append("no_linked_activity")
        if not with_user:
            found.append("no_user_activity")
        if with_contact and with_user and not paired:
            found.append("no_paired_activity")
    return tuple(found)


def _thin(contacts: int, classified: int, interactions: int, paired: int,
          settings: Mapping[str, Any]) -> tuple[str, ...]:
    found = []
    if 0 < contacts < settings["min_contacts"]:
        found.append("few_contacts")
    if contacts and classified and classified / contacts < settings["min_classified_share"]:
        found.append("few_classified_contacts")
    if 0 < interactions < settings["min_interactions"]:
        found.append("few_interactions")
    if interactions and paired and paired / interactions < settings["min_linked_share"]:
        found.append("low_linked_share")
    return tuple(found)


def assessment(scores: Mapping[str, float | None], coverage: Coverage) -> str:
    """``assessable``, ``partial`` (some scores have no evidence) or ``not_assessable``.

    Judged from the scores the plugins returned: a score of ``None`` is a layer without
    evidence. With no scoring plugin at all, from the evidence itself."""
    if scores:
        missing = sum(1 for value in scores.values() if value is None)
        if missing == len(scores):
            return "not_assessable"
        return "partial" if missing else "assessable"
    if not coverage.has_relationship_evidence:
        return "not_assessable"
    return "partial" if coverage.gaps else "assessable"


class PortfolioCoverageTally:
    """The portfolio's data coverage, added up one account at a time as each is judged
    (:meth:`add`): accounts per assessment, the counts behind the shares of described
    contacts and linked interactions, and the few accounts to fix first. Nothing of an
    account is kept but what the counts need: past a bound the accounts live on disk
    (:mod:`.spill`), where reading them back once per figure unpickled each many times."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings
        self.verdicts = dict.fromkeys(ASSESSMENTS, 0)
        self.totals = dict.fromkeys(_COUNTED, 0)
        self._limit = int(settings["fix_first"])
        #: the candidates to fix first so far, with their sort key and order added: :meth:`_keep_first`
        self._weak: list[tuple[tuple[float, float, str], int, FixFirst]] = []
        self._added = 0

    def add(self, account: AccountSummary) -> None:
        """Count ``account`` (the next in the audit's order: ties among the accounts to
        fix first go to the one added first)."""
        verdict = account.assessment
        self.verdicts[verdict] += 1
        c = account.coverage
        for name in _COUNTED:
            self.totals[name] += getattr(c, name)
        self._added += 1
        if self._limit > 0 and (verdict != "assessable" or c.thin):
            a = account.account
            self._weak.append(((-c.open_pipeline, c.ratio, a.remote_id), self._added, FixFirst(
                a.id, a.source, a.remote_id, a.name, verdict, c.ratio, c.open_pipeline, list(c.gaps), list(c.thin))))
            if len(self._weak) > 2 * self._limit:  # keep the list short: sort now and then, not once an account
                self._keep_first()

    def _keep_first(self) -> None:
        """Keep the accounts to fix first: those not fully assessable or with thin
        evidence, the most open pipeline first, then the least evidence (lowest ratio),
        then by remote id, then the first added; at most ``[coverage] fix_first``."""
        self._weak.sort(key=lambda found: found[:2])
        del self._weak[self._limit:]

    def coverage(self, deals_with_roles: int, deals: int) -> PortfolioCoverage:
        """The portfolio's coverage of the accounts added, with its ``deals`` deals of
        which ``deals_with_roles`` record contact roles."""
        self._keep_first()
        totals = self.totals
        contacts, interactions = totals["contacts"], totals["interactions"]

        def share(part: int, whole: int) -> float | None:
            return round(part / whole, 3) if whole else None

        return PortfolioCoverage(
            window_days=float(self.settings["window_days"]), accounts=dict(self.verdicts), contacts=contacts,
            classified_share=share(totals["classified"], contacts),
            titled_share=share(totals["titled"], contacts),
            interactions=interactions,
            linked_to_contact_share=share(totals["with_contact"], interactions),
            linked_to_our_people_share=share(totals["with_user"], interactions),
            paired_share=share(totals["paired"], interactions),
            opportunities=deals, opportunities_with_contact_roles=deals_with_roles,
            fix_first=[entry for _, _, entry in self._weak])


#: the accounts' coverage counts the portfolio's adds up
_COUNTED = ("contacts", "interactions", "classified", "titled", "with_contact", "with_user", "paired")
