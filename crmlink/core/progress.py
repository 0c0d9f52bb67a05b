"""How long work tells of its progress: the audit (:class:`.analysis.audit.Audit`) and
the aggregates' build (:func:`.analysis.aggregate_build.refresh`) call a :data:`Progress`
with what they are at; the command line draws it (:class:`crmlink.commands.common.ProgressLine`)."""

from __future__ import annotations

from collections.abc import Callable

#: ``(what, done, total)``: the source (or merged sources, joined by "+") being worked on,
#: its accounts done so far and its accounts in all. Called once with none done when a
#: source begins, then as accounts are done, in the process that does the work's bookkeeping.
Progress = Callable[[str, int, int], None]


def untold(_what: str, _done: int, _total: int) -> None:
    """No one to tell."""
