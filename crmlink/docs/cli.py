"""docs/cli.md: every command's ``--help`` (built-in plugins only), the exit codes and the
environment variables."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator

import click

from crmlink.docs.introspect import cell

#: Every ``CRMLINK_*`` variable the code reads besides the ``[retry]`` ones, and what it
#: does. tests/test_reference_docs.py fails when the code reads one that is not here, or
#: this names one the code no longer reads.
ENVIRONMENT = {
    "CRMLINK_DB": "The store, as an SQLAlchemy URL (`--db`); default `sqlite:///crmlink.db`.",
    "CRMLINK_CONFIG": "The config file (`--config`); default `./crmlink.toml` when it exists. "
                      "Its settings are in [method.md](method.md#the-default-config).",
    "CRMLINK_BATCH_SIZE": "Records per transaction and saved cursor in API syncs; default {batch}.",
    "CRMLINK_SYNC_WAIT": "Seconds a sync waits for another sync of the same source in the same store "
                         "to finish before it refuses (exit 9); default 5.",
    "CRMLINK_SECRETS_FILE": "Where `crmlink login` keeps secrets when no OS keyring is usable "
                            "(a file only its owner may read); default `secrets.json` in "
                            "`$XDG_CONFIG_HOME/crmlink` or `~/.config/crmlink`.",
    "CRMLINK_LOAD_PLUGINS": "Comma list: load only these installed plugins; empty loads none "
                            "(built-in ones stay).",
    "CRMLINK_DISABLE_PLUGINS": "Comma list: block these plugins, built-in ones included "
                               "(`method` to replace the scoring).",
    "CRMLINK_STRICT_PLUGINS": "`1`: a plugin that fails to load is an error (exit 7), not a warning.",
    "CRMLINK_TRACE_PLUGINS": "`1`: print every hook call, the plugins asked and their results to stderr.",
}
#: The sync engine's retry policy settings (``RetryPolicy``; ``[retry]`` in the config file).
RETRY = {
    "attempts": "Tries per stream before a sync gives up.",
    "initial": "Seconds of the first wait between tries; each next wait doubles, plus jitter.",
    "maximum": "Longest wait in seconds, unless the server's Retry-After asks for more.",
    "total": "Seconds after a stream's first try within which its retries must end.",
}
WIDTH = 88

INTRO = """\
# Command reference

Generated from the code by `python -m crmlink.docs`; do not edit by hand. It shows
crmlink with its built-in plugins: installed plugins add `sync` subcommands (one per
connector, options from its settings) and commands of their own, and `crmlink COMMAND
--help` always shows what is installed.

Every option of a `sync` subcommand can also come from the environment (the variable
its help names) or from a `[sources.NAME]` table of the config file, used by
`crmlink sync NAME`. Data goes to stdout; progress, warnings and errors go to stderr.
"""


def page() -> str:
    from crmlink.cli import cli
    from crmlink.core.host import get_plugin_host

    root = click.Context(cli, info_name="crmlink", obj={"host": get_plugin_host(load_entrypoints=False)},
                         terminal_width=WIDTH, max_content_width=WIDTH, **cli.context_settings)
    parts = [INTRO, "## Commands\n"]
    commands = list(_walk(root))
    parts.append("\n".join(f"* [`{path}`](#{_anchor(path)})" for path, _ in commands) + "\n")
    for path, ctx in commands:
        parts.append(f"## {path}\n\n```text\n{ctx.command.get_help(ctx).rstrip()}\n```\n")
    parts.append(connector_settings(root))
    parts.append(exit_codes())
    parts.append(environment())
    return "\n".join(parts)


def _walk(ctx: click.Context) -> Iterator[tuple[str, click.Context]]:
    """(``crmlink sync csv``, its context) for the root and every command below it."""
    yield ctx.command_path, ctx
    command = ctx.command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(click.Context(sub, info_name=name, parent=ctx, **sub.context_settings))


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


def connector_settings(root: click.Context) -> str:
    """Each built-in connector's settings with their defaults, which ``--help`` cannot show
    (an option left out takes the setting's default only after the config file and the
    environment were consulted)."""
    from crmlink.core.connector import envvar_for

    host = root.obj["host"]
    parts = ["## Connector settings\n",
             "The settings behind each `sync` subcommand's options, as a `[sources.NAME]` table "
             "of the config file takes them (`connector = \"salesforce\"` plus these keys). "
             "Secrets are never printed, logged or stored.\n"]
    for name, connector in sorted(host.connectors().items()):
        rows = [f"| `{s.name}` | {_default(s.default)} | `{s.envvar or envvar_for(name, s.name)}` | "
                f"{'yes' if s.required else ''} | {'yes' if s.secret else ''} | {cell(s.help)} |"
                for s in connector.settings]
        parts.append(f"### {name}\n\n| Setting | Default | Environment | Required | Secret | "
                     "Meaning |\n| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")
    return "\n".join(parts)


def _default(value: object) -> str:
    return "" if value is None else f"`{value}`"


def exit_codes() -> str:
    """The :class:`~crmlink.core.errors.ExitCode` members and their ``#:`` comments."""
    from crmlink.core.errors import ExitCode

    notes = dict(re.findall(r"^\s+(\w+) = \d+\s+#: (.+)$", inspect.getsource(ExitCode), flags=re.M))
    rows = [f"| {int(code)} | `{code.name}` | {notes.get(code.name, '').replace('``', '`')} |"
            for code in ExitCode]
    return ("## Exit codes\n\n| Code | Name | Meaning |\n| --- | --- | --- |\n"
            + "\n".join(rows) + "\n")


def environment() -> str:
    from crmlink.core.sync import BATCH_SIZE, RETRY_ENV, RetryPolicy

    rows = [f"| `{name}` | {text.format(batch=BATCH_SIZE)} |" for name, text in ENVIRONMENT.items()]
    rows += [f"| `{RETRY_ENV[key]}` | {text} `[retry] {key}` in the config file; default "
             f"{getattr(RetryPolicy, key)}. |" for key, text in RETRY.items()]
    return ("## Environment variables\n\nBesides each connector setting's own variable "
            "(`<CONNECTOR>_<SETTING>`, e.g. `SALESFORCE_SESSION_ID`):\n\n"
            "| Variable | Effect |\n| --- | --- |\n" + "\n".join(rows) + "\n")
