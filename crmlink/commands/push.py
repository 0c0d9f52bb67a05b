"""``crmlink push SOURCE``: write the audit's scores, tiers, LTC stages and findings back
into the CRM (docs/push.md). One subcommand per connector that has a push target, and per
named source of such a connector; the connection options are the sync's."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import date
from typing import Any

import click

from crmlink.commands.common import (
    as_of_option,
    config,
    config_option,
    db_option,
    host_of,
    open_store,
)
from crmlink.commands.sources import source_spec, sources, with_keyring
from crmlink.commands.sync import RAW_ARGS, _config_file_in, _option
from crmlink.core.connector import Connector
from crmlink.core.errors import BudgetExhausted, ConfigError, CrmlinkError, ExitCode
from crmlink.core.findings import SEVERITIES
from crmlink.core.push import log, tasks
from crmlink.core.push.engine import Plan, PushEngine, PushResult
from crmlink.core.push.fields import BY_KEY
from crmlink.core.push.target import PushTarget
from crmlink.core.push.tasks import TaskPlan
from crmlink.core.redact import RedactingFilter, Redactor
from crmlink.core.sync import RetryPolicy

SAMPLE = 5  # changes shown per object in a dry run
#: changed records of one object above which a target that can writes them in one bulk job
BULK_THRESHOLD = 2000


class PushGroup(click.Group):
    """Subcommands: connectors with a push target, and the config file's sources of them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(host_of(ctx).push_targets())

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        ctx.meta[RAW_ARGS] = list(args)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        host = host_of(ctx)
        if name in host.push_targets():
            return push_command(host.connector(name), name)
        config_file = _config_file_in(ctx.meta.get(RAW_ARGS, []))
        if name not in sources(config_file):
            return None
        connector, spec = source_spec(config_file, name)
        if connector not in host.push_targets():
            raise ConfigError(f"source {name!r} uses the {connector} connector, which cannot push; "
                              f"crmlink pushes to: {', '.join(sorted(host.push_targets()))}")
        return push_command(host.connector(connector), name, preset=spec)


def _push_options(func: Any) -> Any:
    options = [
        click.option("--setup", is_flag=True, help="Create crmlink's fields in the CRM (and, in Salesforce, a "
                     "permission set for them assigned to you); nothing else is written."),
        click.option("--dry-run", is_flag=True, help="Show what would change and write nothing [the default "
                     "unless --apply or --yes]."),
        click.option("--apply", is_flag=True, help="Write the changes."),
        click.option("--yes", "-y", is_flag=True, help="The same as --apply (for CI)."),
        click.option("--tasks", "task_severity", type=click.Choice(SEVERITIES), metavar="SEVERITY",
                     help="Also turn each finding at or above this severity into a task for the account "
                     "owner (high: high and critical); a finding that is gone closes its task."),
        click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                     help="json: one document {changes, tasks, requests} (and what was written)."),
        as_of_option,
        click.option("-q", "--quiet", is_flag=True, help="No retry notices on stderr."),
        db_option, config_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def push_command(cls: type[Connector], name: str, preset: dict[str, Any] | None = None) -> click.Command:
    @_push_options
    @click.pass_context
    def run(ctx: click.Context, setup: bool, dry_run: bool, apply: bool, yes: bool, task_severity: str | None,
            fmt: str,
            as_of: date | None, quiet: bool, db_url: str | None, config_file: str | None,
            **settings: Any) -> None:
        values = {**(preset or {}), **{k: v for k, v in settings.items() if v is not None and v != ()}}
        if preset is not None:
            values = with_keyring(name, cls, values)
        push = Push(ctx, cls, values, name, db_url, config_file, quiet=quiet)
        with push.redacting():
            if setup:
                push.setup(dry_run=dry_run and not (apply or yes))
                return
            code = push.run(as_of, write=(apply or yes) and not dry_run, ask=not (dry_run or apply or yes),
                            fmt=fmt, task_severity=task_severity)
        if code:
            ctx.exit(code)

    params = [_option(s, cls.name) for s in cls.settings if not (preset and s.name in preset)]
    return click.Command(name, callback=run, params=[*params, *run.__click_params__[::-1]],
                         help=f"Push audit results into {name} ({cls.name}).",
                         short_help=f"Push audit results into {name}.")


#: the settings of a ``[push.<source>]`` table
PUSH_SETTINGS = ("fields", "bulk_threshold")


def push_table(target: type[PushTarget], settings: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``[push.<source>]`` of the config file, or else ``[push.<connector>]``."""
    table = settings.get("push") or {}
    chosen = dict(table.get(source) or table.get(target.connector) or {})
    unknown = sorted(set(chosen) - set(PUSH_SETTINGS))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} in [push.{source}] of the config file; it takes: "
                          f"{', '.join(PUSH_SETTINGS)}")
    threshold = chosen.get("bulk_threshold")
    if threshold is not None and (not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0):
        raise ConfigError(f"[push.{source}] bulk_threshold must be a whole number of records, not {threshold!r}")
    return chosen


def field_names(target: type[PushTarget], settings: Mapping[str, Any], source: str) -> dict[str, str]:
    """Each field's CRM name: the target's default, or ``[push.<source>.fields]`` (or
    ``[push.<connector>.fields]``) of the config file."""
    chosen = push_table(target, settings, source).get("fields") or {}
    unknown = sorted(set(chosen) - set(BY_KEY))
    if unknown:
        raise ConfigError(f"unknown field {unknown[0]!r} in [push.{source}.fields] of the config file; "
                          f"the fields are: {', '.join(BY_KEY)}")
    return {**target.default_names, **{k: str(v) for k, v in chosen.items()}}


class Push:
    """One ``crmlink push`` invocation."""

    def __init__(self, ctx: click.Context, cls: type[Connector], values: dict[str, Any], source: str,
                 db_url: str | None, config_file: str | None, *, quiet: bool) -> None:
        self.ctx, self.source, self.quiet = ctx, source, quiet
        self.settings = config(config_file)
        self.host = host_of(ctx)
        target_cls = self.host.push_targets()[cls.name]
        self.connector = cls(values)
        self.target = target_cls(self.connector, field_names(target_cls, self.settings, source))
        self.target.bulk_threshold = push_table(target_cls, self.settings, source).get("bulk_threshold", BULK_THRESHOLD)
        self.store = open_store(db_url)
        self.engine = PushEngine(self.store, self.target, source, notice=self.notice,
                                 policy=RetryPolicy.from_settings(self.settings.get("retry")))

    def notice(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"crmlink: {message}", err=True)

    def redacting(self) -> _Redacting:
        return _Redacting(Redactor(self.connector.secrets))

    # -- setup -------------------------------------------------------------------------------
    def setup(self, dry_run: bool) -> None:
        report = self.engine.call("set up the fields", lambda: self.target.setup(dry_run=dry_run))
        keys = {self.target.field_name(f): f.key for f in self.target.fields}
        keys[self.target.task_key_field] = "task_key"
        if not dry_run:
            log.own(self.store, self.source, [(obj, name, keys[name]) for obj, name in
                                              report.created + report.existing])
        verb = "Would create" if dry_run else "Created"
        click.echo(f"{verb} {len(report.created)} field(s) in {self.source}; {len(report.existing)} were crmlink's already.")
        objects = {**self.target.objects, "task": self.target.task_object}
        for obj, name in report.created:
            click.echo(f"  {objects[obj]}.{name}")
        for note in report.notes:
            click.echo(f"  {note}")

    # -- push --------------------------------------------------------------------------------
    def run(self, as_of: date | None, *, write: bool, ask: bool, fmt: str, task_severity: str | None = None) -> int:
        from crmlink.core.analysis.audit import Audit

        if self.source not in self.store.sources():
            raise ConfigError(f"the store has no source named {self.source!r}; run 'crmlink sync {self.source}' first")
        self.engine.require_owned(tasks=task_severity is not None)
        first = not log.applied_before(self.store, self.source)
        document = Audit(self.store, self.host, self.settings, as_of).document(None)
        run_id = log.start(self.store, self.source, self.connector.name, document.as_of)
        try:
            plan = self.engine.plan(document)
            task_plan = (self.engine.plan_tasks(document, tasks.threshold(task_severity))
                         if task_severity else None)
            work = len(plan.changes) + (len(task_plan.create) + len(task_plan.close) if task_plan else 0)
            if not write and ask and not first and work and _interactive():
                write = click.confirm(f"Write {work} change(s) to {self.source}?", err=True)
            if not write:
                log.finish(self.store, run_id, "dry_run", self._counts(plan))
                self._print_plan(plan, task_plan, fmt, first)
                return 0
            result = self.engine.apply(plan, run_id)
            if task_plan is not None:
                self.engine.apply_tasks(task_plan, result)
        except BudgetExhausted as exc:
            log.finish(self.store, run_id, "stopped", {}, str(exc))
            raise
        except CrmlinkError as exc:
            log.finish(self.store, run_id, "failed", {}, str(exc))
            raise
        result.status = "partial" if result.refused else "ok"
        result.requests = self.target.requests_made()
        log.finish(self.store, run_id, result.status, self._counts(plan, result))
        self._print_result(result, task_plan, fmt)
        return int(ExitCode.CONNECTOR) if result.refused else 0

    def _counts(self, plan: Plan, result: PushResult | None = None) -> dict[str, Any]:
        counts: dict[str, Any] = {"records": plan.records, "changes": len(plan.changes),
                                  "missing": len(plan.missing), "requests": self.target.requests_made()}
        if result is not None:
            counts.update(written=result.written, refused=len(result.refused), retries=result.retries,
                          tasks_created=result.tasks_created, tasks_closed=result.tasks_closed)
        return counts

    def _document(self, plan: Plan, task_plan: TaskPlan | None) -> dict[str, Any]:
        return plan.to_json(self.target.objects, task_plan, self.target.task_batch)

    def _print_plan(self, plan: Plan, task_plan: TaskPlan | None, fmt: str, first: bool) -> None:
        document = self._document(plan, task_plan)
        if fmt == "json":
            click.echo(json.dumps(document, ensure_ascii=False))
            return
        click.echo(f"Dry run: nothing was written to {self.source}"
                   + (" (the first push to it is always a dry run)." if first else "."))
        self._print_changes(plan)
        self._print_tasks(task_plan)
        click.echo(f"Writing it takes {document['requests']} request(s). Run again with --apply to write it.")

    def _print_tasks(self, task_plan: TaskPlan | None) -> None:
        if task_plan is None:
            return
        kind = self.target.task_object
        click.echo(f"  {kind}: {len(task_plan.create)} to create, {len(task_plan.close)} to close "
                   f"(their findings are gone), {len(task_plan.left_alone)} left alone")
        for spec in task_plan.create[:SAMPLE]:
            click.echo(f"    + {spec.subject[:100]} (for {spec.owner or 'nobody'}, on {spec.what})")
            if spec.note:
                click.echo(f"      {spec.note}")
        for task in task_plan.close[:SAMPLE]:
            click.echo(f"    - {task.id}: {task.subject}")

    def _print_changes(self, plan: Plan) -> None:
        for obj, crm_name in self.target.objects.items():
            changes = [c for c in plan.changes if c.obj == obj]
            records = {c.record_id for c in changes}
            fields = sorted({c.field for c in changes})
            click.echo(f"  {crm_name}: {len(records)} record(s) to update" +
                       (f"; fields: {', '.join(fields)}" if fields else ""))
            for change in changes[:SAMPLE]:
                click.echo(f"    {change.record_id} {change.field}: {_show(change.old)} -> {_show(change.new)}")
            if len(changes) > SAMPLE:
                click.echo(f"    ... and {len(changes) - SAMPLE} more change(s)")
        for obj, rid in plan.missing[:SAMPLE]:
            click.echo(f"  {self.target.objects[obj]} {rid}: not found in the CRM, skipped")

    def _print_result(self, result: PushResult, task_plan: TaskPlan | None, fmt: str) -> None:
        if fmt == "json":
            doc = self._document(result.plan, task_plan)
            doc.update(written=result.written, refused=[{"object": o, "id": r, "message": m}
                                                        for o, r, m in result.refused])
            click.echo(json.dumps(doc, ensure_ascii=False))
            return
        click.echo(f"Pushed to {self.source} (push run {result.run_id}, {result.status}): "
                   f"{result.written} record(s) written, {len(result.refused)} refused, "
                   f"{result.requests} request(s)" + (f", {result.retries} retries" if result.retries else ""))
        if task_plan is not None:
            click.echo(f"  tasks: {result.tasks_created} created, {result.tasks_closed} closed, "
                       f"{len(task_plan.left_alone)} left alone")
        self._print_changes(result.plan)
        self._print_tasks(task_plan)
        for obj, rid, message in result.refused[:20]:
            click.echo(f"  refused {obj} {rid}: {message}")
        if len(result.refused) > 20:
            click.echo(f"  ... and {len(result.refused) - 20} more; see 'crmlink status --push {result.run_id}'")


def _show(value: Any) -> str:
    return "(blank)" if value is None else json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


class _Redacting:
    """Every log line redacted while the push runs."""

    def __init__(self, redactor: Redactor) -> None:
        self.filter = RedactingFilter(redactor)

    def __enter__(self) -> None:
        for handler in logging.getLogger().handlers:
            handler.addFilter(self.filter)

    def __exit__(self, *exc: object) -> None:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self.filter)


@click.group("push", cls=PushGroup)
def command() -> None:
    """Write audit results back into the CRM: scores, tier, top-holder share, coverage and
    the top finding on each account; LTC stage, phase and findings on each deal.

    SOURCE is a connector that can push (salesforce, hubspot, or a plugin's) or a source
    named in the config file. The first push to a CRM is a dry run; --apply (or --yes)
    writes. Run it once with --setup to create crmlink's fields (docs/push.md).

    \b
    Examples:
      crmlink push salesforce --target-org prod --setup
      crmlink push salesforce --target-org prod --dry-run --format json
      crmlink push portal --apply
    """


__all__ = ["command", "field_names"]
