"""The ``crmlink`` command line. Commands live in :mod:`crmlink.commands`; this module
builds the root group, adds the plugins' commands (the plugin host is built lazily, once
per invocation, by :func:`crmlink.commands.common.host_of`) and turns errors into one
line on stderr and a documented exit code."""

from __future__ import annotations

import errno
import logging
import os
import select
import sys
from typing import Any

import click

from crmlink import __version__
from crmlink.commands.common import host_of
from crmlink.core.engine import store_failure
from crmlink.core.errors import CrmlinkError, ExitCode
from crmlink.core.host import get_plugin_host

#: an output file, a report's folder or crmlink's temporary files (the audit's spool, in
#: TMPDIR) filled their disk
NO_SPACE = ("no space left on the disk of the output or of the temporary files (TMPDIR); nothing was "
            "replaced: free some space, or set TMPDIR to a folder on a larger disk, and run it again")


def _version_message() -> str:
    lines = [f"crmlink {__version__}"]
    try:
        plugins = [p for p in get_plugin_host().plugins() if not p.builtin]
    except CrmlinkError as exc:
        return lines[0] + f"\nplugins: {exc}"
    for info in plugins:
        lines.append(f"  plugin {info.name}: {info.distribution or info.module} {info.version or ''} [{info.status}]")
    return "\n".join(lines)


class CrmlinkGroup(click.Group):
    """Adds plugin commands lazily and maps errors to exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._plugin_commands(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        found = super().get_command(ctx, name)
        if found is None:
            self._plugin_commands(ctx)
            found = super().get_command(ctx, name)
        return found

    def _plugin_commands(self, ctx: click.Context) -> None:
        root = ctx.find_root()
        root.ensure_object(dict)
        if root.obj.get("commands_added"):
            return
        root.obj["commands_added"] = True
        try:
            host_of(ctx).add_commands(self)
        except CrmlinkError as exc:
            click.echo(f"crmlink: plugin commands unavailable: {exc}", err=True)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CrmlinkError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(int(exc.exit_code))
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            if isinstance(exc, BrokenPipeError) and _reader_gone():
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush goes nowhere
                ctx.exit(int(ExitCode.PIPE))
            if ctx.obj and ctx.obj.get("debug"):
                raise
            failure = store_failure(exc, None)  # met outside the store's transactions: not a bug
            if failure is not None:
                click.echo(f"Error: {failure}", err=True)
                ctx.exit(int(ExitCode.STORE))
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                click.echo(f"Error: {NO_SPACE}", err=True)
                ctx.exit(int(ExitCode.FAILED))
            click.echo(f"Error: internal error ({type(exc).__name__}: {exc}); run with --debug "
                       "for the traceback and report it", err=True)
            ctx.exit(int(ExitCode.INTERNAL))


def _reader_gone() -> bool:
    """Whether standard output is a pipe whose reader closed it (``crmlink status | head``),
    rather than some other pipe or socket that broke."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no such file descriptor, or no poll()
        return False


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_message())
        ctx.exit()


@click.group(cls=CrmlinkGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show crmlink's version and the plugins installed, then exit.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (secrets stay hidden).")
@click.option("-v", "--verbose", count=True, help="Log more to stderr (-vv for debug logs).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """Audit customer relationships across the CRMs you already run.

    Sync Salesforce, HubSpot or CSV exports into one store, then audit key, broad and
    organisational relationships, personalised relationships and LTC stages.

    \b
    Quick start:
      crmlink audit examples/sample --as-of 2026-11-20
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    level = logging.DEBUG if verbose > 1 or debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="crmlink: %(name)s: %(message)s")


def _register_builtin_commands() -> None:
    from crmlink.commands import (
        aggregate,
        audit,
        diff,
        doctor,
        history,
        login,
        ltc,
        plugins,
        push,
        review,
        status,
        sync,
    )

    for module in (plugins, sync, audit, aggregate, history, diff, review, ltc, push, status, doctor, login):
        cli.add_command(module.command)
    cli.add_command(__import__("crmlink.commands.new_plugin", fromlist=["command"]).command)


_register_builtin_commands()


def main() -> None:
    try:
        cli.main(prog_name="crmlink")
    except KeyboardInterrupt:  # pragma: no cover
        click.echo("Interrupted.", err=True)
        sys.exit(130)


__all__ = ["cli", "main", "host_of", "ExitCode"]
