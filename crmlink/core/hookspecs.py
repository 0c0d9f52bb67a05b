"""Every hook crmlink calls. Plugins implement them with ``@crmlink.hookimpl``.

Rules that hold for every hook:

* An implementation may accept any subset of a hook's arguments, so new arguments can be
  added to a hook without breaking existing plugins.
* Hooks marked *first result wins* stop at the first implementation that returns
  something other than ``None``; later-registered plugins are asked first, so a
  third-party plugin overrides the built-in one. Use ``@hookimpl(tryfirst=True)`` to be
  asked before everybody else.
* Other hooks collect every non-``None`` result.

docs/hooks.md documents each hook with an example; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from datetime import date

    import click

    from crmlink.core.analysis.view import AccountView, OpportunityView, PortfolioView
    from crmlink.core.classify import Classification
    from crmlink.core.connector import Connector
    from crmlink.core.document import Departure
    from crmlink.core.evaluation.relationship import Relationship
    from crmlink.core.evaluation.signals import Signal
    from crmlink.core.findings import Finding, Score, ScoreDefinition
    from crmlink.core.model import Contact, ExecutionRecord, Interaction, Opportunity, Stage
    from crmlink.core.push.target import PushTarget

PROJECT = "crmlink"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Offer connector classes by calling ``register(ConnectorClass)`` once for each.

    Called once when the plugin host starts. Two plugins registering the same connector
    name is an error that names both plugins.
    """


@hookspec(firstresult=True)
def classify_contact(contact: Contact) -> Classification | None:
    """Derive a contact's canonical seniority, department and buying role.

    Called for every contact when it is stored, with the native values in
    ``contact.title`` and ``contact.raw``. Return a :class:`~crmlink.Classification`;
    fields left ``None`` mean "no opinion". First result wins.
    """


@hookspec(firstresult=True)
def classify_interaction(interaction: Interaction) -> str | None:
    """Recognise which of the five methods an interaction is (``site_visit``,
    ``exhibition``, ``tech_exchange``, ``management_research``, ``company_visit``).

    Called at analysis time for interactions whose ``method`` is blank. First result wins.
    """


@hookspec(firstresult=True)
def ltc_stage(opportunity: Opportunity, stage: Stage | None, config: Mapping[str, Any],
              execution: Sequence[ExecutionRecord]) -> str | None:
    """Map a deal to a canonical LTC stage (``validate`` ... ``closed``, ``lost``).

    ``stage`` is the CRM's stage definition when the source provided one. ``config`` is
    the ``[ltc]`` table of the config file. ``execution`` holds the deal's contracts,
    orders, invoices and payments (possibly none), which move a won deal past
    ``contract``. First result wins; return ``None`` to let the next plugin decide.
    """


@hookspec
def score_account(view: AccountView) -> list[Score] | None:
    """Return named scores (0..100) for one account.

    Called once per account per audit (and once more for each account when a
    ``portfolio_findings`` hook reads ``PortfolioView.accounts``). Scores from all
    plugins are merged by name; the later-registered plugin wins a clash.
    """


@hookspec
def score_definitions() -> list[ScoreDefinition] | None:
    """Declare the scores your ``score_account`` returns: label, description, where
    reports headline them, and which one is the account's overall health.

    Called once per audit. Definitions from all plugins are merged by name; the
    later-registered plugin wins a clash, and of several ``overall`` scores the
    later-registered plugin's. Scores nobody declares stay in the JSON only.
    """


@hookspec(firstresult=True)
def simulate_departure(view: AccountView, user_id: str) -> Departure | None:
    """What the account would lose if ``user_id`` (one of our people) left: the overall
    score before and after, and the decision makers left with no relationship.

    Called once per account, for its top holder, after ``score_account``.
    ``view.without_user(user_id)`` is the account as if the user had never been there.
    First result wins; return ``None`` to let the next plugin decide.
    """


@hookspec(firstresult=True)
def evaluate_relationship(view: AccountView) -> Relationship | None:
    """The account's strategic stage and relationship level, with the reasons and what
    the next of each needs (a :class:`~crmlink.Relationship`).

    Called once per account per audit, after ``score_account`` (``view.scores`` holds
    every score). A stage or level recorded in the CRM (``stage.crm_fields``,
    ``level.crm_fields``) overrides the answer. First result wins; return ``None`` to let
    the next plugin decide.
    """


@hookspec
def account_findings(view: AccountView) -> list[Finding] | None:
    """Return findings about one account. Called after every ``score_account``, so
    ``view.scores`` holds all scores. Results from all plugins are concatenated."""


@hookspec
def opportunity_findings(view: OpportunityView) -> list[Finding] | None:
    """Return findings about one open or recently closed opportunity."""


@hookspec
def portfolio_findings(view: PortfolioView) -> list[Finding] | None:
    """Return findings about the whole portfolio (for example effort per tier).
    Called once per audit, after every account and deal was judged.

    Read ``view.summaries`` and ``view.deal_summaries`` (a :class:`~crmlink.AccountSummary`
    per account, a :class:`~crmlink.OpportunitySummary` per deal), which the audit keeps.
    ``view.accounts`` and ``view.opportunities`` give the full views, but they are built
    only when read, and then every account is derived again (the ``score_account`` hooks
    run once more, for the score evidence): about the cost of scoring the portfolio again.
    """


@hookspec
def review_signals(store: Any, start: date, end: date, config: Mapping[str, Any]) -> list[Signal] | None:
    """Signals about accounts over a review period (``crmlink review``) beside the
    relationships: customer satisfaction from support cases and complaints, competitors
    on deals (a :class:`~crmlink.Signal` each, naming the account by global id).

    Called once per review with the store, the period's first and last day and the
    configuration (``config["signals"]`` holds the built-in rules' settings). Results
    from all plugins are concatenated. The review lists each account's signals, and a
    negative ``satisfaction`` signal holds back an account that would otherwise be rising.
    """


@hookspec
def register_report_formats(register: Callable[[str, Callable[..., str]], None]) -> None:
    """Offer audit output formats: ``register("csv", render)`` where
    ``render(audit: dict) -> str`` receives the audit document as JSON data (the
    ``to_json()`` of :class:`~crmlink.core.document.AuditDocument`, with each account's
    ``health_history``), exactly what ``--format json`` prints; docs/audit.md describes it."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``crmlink`` command line."""


@hookspec
def register_push_targets(register: Callable[[type[PushTarget]], None]) -> None:
    """Offer push targets (``crmlink push``) by calling ``register(PushTargetClass)`` once
    for each. A target's ``connector`` names the connector it writes through; the target
    is built with that connector, so it logs in exactly as ``crmlink sync`` does. A target
    registered later (a third-party plugin) replaces an earlier one for the same connector.
    """
