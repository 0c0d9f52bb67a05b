"""``crmlink sync SOURCE``: one subcommand per connector, options from its settings."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import click

from crmlink.commands.common import config, config_option, db_option, host_of, open_store
from crmlink.commands.sources import source_spec, sources, with_keyring
from crmlink.core.connector import Connector, Setting, envvar_for
from crmlink.core.errors import ConfigError
from crmlink.core.redact import RedactingFilter, Redactor
from crmlink.core.store import Store
from crmlink.core.sync import BATCH_SIZE, RetryPolicy, StreamCounts, SyncEngine, SyncResult

RAW_ARGS = "crmlink.sync.args"


class SyncGroup(click.Group):
    """Subcommands are the installed connectors and the config file's named sources."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(host_of(ctx).connectors())

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        ctx.meta[RAW_ARGS] = list(args)  # for a named source's --config, see _config_file_in
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        connectors = host_of(ctx).connectors()
        if name in connectors:
            return connector_command(connectors[name], name)
        found = named_source_command(ctx, name)
        if found is None and host_of(ctx).unavailable(name) is not None:
            host_of(ctx).connector(name)  # raises: which package to install
        return found


def _option(setting: Setting, connector: str) -> click.Parameter:
    if setting.argument:
        return click.Argument([setting.name], required=setting.required)
    flag = "--" + setting.name.replace("_", "-")
    return click.Option([flag, setting.name], envvar=setting.envvar or envvar_for(connector, setting.name),
                        is_flag=setting.is_flag, default=None, type=None if setting.is_flag else setting.type,
                        multiple=setting.multiple,
                        help=setting.help + (" [secret]" if setting.secret else ""),
                        show_envvar=True)


def _common(func: Any) -> Any:
    options = [
        click.option("--source", "source_name", metavar="NAME", help="Name of this connection in the store [default: the connector's name]."),
        click.option("--full", is_flag=True, help="Ignore saved cursors and read everything again."),
        click.option("--on-error", type=click.Choice(["fail", "skip"]), default=None,
                     help="On an invalid record: stop (nothing of the run is kept for file imports) or skip "
                          "it and count it [default: fail; skip for mail and calendar]."),
        click.option("-q", "--quiet", is_flag=True, help="No progress on stderr."),
        db_option, config_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def connector_command(cls: type[Connector], name: str, preset: dict[str, Any] | None = None) -> click.Command:
    @_common
    @click.pass_context
    def run(ctx: click.Context, source_name: str | None, full: bool, on_error: str | None, quiet: bool,
            db_url: str | None, config_file: str | None, **settings: Any) -> None:
        settings_file = config(config_file)
        policy = RetryPolicy.from_settings(settings_file.get("retry"))  # fails early on a bad file
        values = {**(preset or {}), **{k: v for k, v in settings.items() if v is not None and v != ()}}
        if preset is not None:  # a named source: secrets 'crmlink login' stored
            values = with_keyring(name, cls, values)
        result = run_sync(ctx, cls, values, source_name or name, db_url, full=full,
                          on_error=on_error or cls.on_error, quiet=quiet, policy=policy,
                          settings_file=settings_file)
        print_summary(result)
        if result.status == "partial":
            ctx.exit(0)

    params = [_option(s, cls.name) for s in cls.settings if not (preset and s.name in preset)]
    command = click.Command(name, callback=run, params=[*params, *run.__click_params__[::-1]],
                            help=cls.description or f"Sync from {name}.",
                            short_help=(cls.description or f"Sync from {name}.").split(".")[0])
    return command


def named_source_command(ctx: click.Context, name: str) -> click.Command | None:
    config_file = _config_file_in(ctx.meta.get(RAW_ARGS, []))
    if name not in sources(config_file):
        return None
    connector, spec = source_spec(config_file, name)
    return connector_command(host_of(ctx).connector(connector), name, preset=spec)


def _config_file_in(args: list[str]) -> str | None:
    """The ``--config`` given after a named source (``crmlink sync prod --config x.toml``).

    Click parses the subcommand's options only once the subcommand is known, and which
    subcommand a named source is depends on that file, so it is read from the raw
    arguments here; without one, ``CRMLINK_CONFIG`` or ./crmlink.toml as everywhere."""
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return os.environ.get("CRMLINK_CONFIG")


def run_sync(ctx: click.Context, cls: type[Connector], settings: dict[str, Any], source: str,
             db_url: str | None, *, full: bool = False, on_error: str = "fail",
             quiet: bool = False, policy: RetryPolicy | None = None,
             settings_file: dict[str, Any] | None = None) -> SyncResult:
    """Run one sync: progress on stderr when it is a terminal, retries and skips on stderr
    unless ``quiet`` (and in the ``--verbose`` log), every log line redacted."""
    host = host_of(ctx)
    connector = cls(settings)
    store = open_store(db_url, create=True)
    started = time.monotonic()
    show = not quiet and sys.stderr.isatty()
    redacting = RedactingFilter(Redactor(connector.secrets))
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(redacting)

    def progress(stream: str, counts: StreamCounts) -> None:
        if show:
            rate = counts.read / max(1e-6, time.monotonic() - started)
            retried = engine.result.retries.get(stream, 0) if engine.result else 0
            again = f", {retried} retries" if retried else ""
            click.echo(f"\r{stream}: {counts.read} records ({rate:,.0f}/s{again})   ", err=True, nl=False)

    def status(message: str) -> None:
        if show:
            click.echo(f"\r{message}   ", err=True, nl=False)

    def notice(message: str) -> None:
        if not quiet and not logging.getLogger("crmlink.core.sync").isEnabledFor(logging.INFO):
            click.echo(("\n" if show else "") + f"crmlink: {message}", err=True)

    engine = SyncEngine(store, host, connector, source, full=full, on_error=on_error,
                        progress=progress, notice=notice, policy=policy or RetryPolicy.from_settings(),
                        batch_size=batch_size_from_env(), config=settings_file, status=status)
    try:
        return engine.run()
    finally:
        for handler in handlers:
            handler.removeFilter(redacting)
        if show:
            click.echo("", err=True)


def sync_folder(ctx: click.Context, path: str, source: str | None, db_url: str | None) -> str:
    """Import a canonical CSV export before a report (``crmlink audit FOLDER``,
    ``crmlink ltc FOLDER``); returns the source it was stored under (``csv`` by default)."""
    source = source or "csv"
    run_sync(ctx, host_of(ctx).connector("csv"), {"path": path}, source, db_url, quiet=True)
    return source


def nothing_synced(store: Store) -> str | None:
    """What to say when the store holds no records yet (``None`` when it holds some):
    where the store is, and the sync commands that fill it."""
    if store.sources():
        return None
    return (f"The store at {store.display_url} holds nothing yet. Sync a source first, for example:\n"
            "  crmlink sync csv path/to/export\n"
            "  crmlink sync salesforce --target-org ALIAS     # a Salesforce CLI login\n"
            "  crmlink sync hubspot --access-token \"$HUBSPOT_ACCESS_TOKEN\"\n"
            "or audit the bundled sample: crmlink audit examples/sample")


def batch_size_from_env() -> int:
    """Records per transaction (and per saved cursor) for API syncs: ``CRMLINK_BATCH_SIZE``."""
    value = os.environ.get("CRMLINK_BATCH_SIZE")
    if not value:
        return BATCH_SIZE
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"CRMLINK_BATCH_SIZE must be a whole number of at least 1, not {value!r}")
    return int(value)


def print_summary(result: SyncResult) -> None:
    click.echo(f"Synced {result.source} (run {result.run_id}, {result.status}):")
    click.echo(f"  {'stream':<22}{'read':>9}{'created':>9}{'updated':>9}{'deleted':>9}{'skipped':>9}")
    for name, c in result.streams.items():
        click.echo(f"  {name:<22}{c.read:>9}{c.created:>9}{c.updated:>9}{c.deleted:>9}{c.skipped:>9}")
    if result.retries:
        retried = ", ".join(f"{name} {n}" for name, n in result.retries.items())
        click.echo(f"  retries (each resumed from the last saved batch): {retried}")
    for stream, remote_id, reason in result.skips[:20]:
        click.echo(f"  skipped {stream} {remote_id or ''}: {reason}")
    if len(result.skips) > 20:
        click.echo(f"  ... and {len(result.skips) - 20} more; see 'crmlink status --run {result.run_id}'")


@click.group("sync", cls=SyncGroup)
def command() -> None:
    """Sync a CRM or an export into the store.

    SOURCE is a connector (csv, salesforce, hubspot, or a plugin's) or a source named in
    the config file. Progress goes to stderr, a summary to stdout.

    \b
    Examples:
      crmlink sync csv examples/sample
      crmlink sync hubspot --access-token "$HUBSPOT_ACCESS_TOKEN"
    """


__all__ = ["command", "run_sync", "print_summary", "sync_folder", "nothing_synced"]
