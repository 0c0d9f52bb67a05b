"""``crmlink login NAME``: store a named source's secrets in the keyring."""

from __future__ import annotations

import click

from crmlink.commands.common import config_option, host_of
from crmlink.commands.sources import secret_settings, source_spec
from crmlink.core.errors import ConfigError


@click.command("login")
@click.argument("name")
@click.option("--setting", "only", multiple=True, metavar="SETTING",
              help="Ask only for this secret setting (repeatable) [default: every secret setting "
                   "the config file does not give].")
@click.option("--forget", is_flag=True, help="Delete the source's stored secrets instead.")
@config_option
@click.pass_context
def command(ctx: click.Context, name: str, only: tuple[str, ...], forget: bool,
            config_file: str | None) -> None:
    """Store the secrets of the named source NAME in the operating system's keyring.

    Asks (without echo) for each secret setting its connector declares; press Enter to
    leave one as it is. 'crmlink sync NAME' and 'crmlink doctor' then read them from the
    keyring when neither a flag, an environment variable nor the config file gives them.
    Without a usable keyring (a headless server) they go to a file only you can read.

    \b
    Examples:
      crmlink login prod
      crmlink login portal --setting access_token
      crmlink login prod --forget
    """
    from crmlink.core import keystore  # imports the keyring library: only for this command

    connector, spec = source_spec(config_file, name)
    cls = host_of(ctx).connector(connector)
    declared = {s.name: s for s in secret_settings(cls)}
    unknown = [s for s in only if s not in declared]
    if unknown:
        raise ConfigError(f"{connector} has no secret setting {unknown[0]!r}; its secret settings are: "
                          f"{', '.join(declared) or 'none'}")
    if forget:
        gone = keystore.forget(name, only or declared)
        click.echo(f"Deleted {len(gone)} secret(s) of source {name!r} from "
                   f"{keystore.describe(keystore.backend())}: {', '.join(gone) or 'none were stored'}")
        return
    wanted = [declared[s] for s in only] if only else [s for s in declared.values() if s.name not in spec]
    if not wanted:
        click.echo(f"Source {name!r} ({connector}) has no secret setting left to store.")
        return
    click.echo(f"Secrets of source {name!r} ({connector}); press Enter to skip one.", err=True)
    values = {}
    for setting in wanted:
        value = click.prompt(f"{setting.name} ({setting.help.rstrip('.')})", default="", hide_input=True,
                             show_default=False, err=True)
        if value.strip():
            values[setting.name] = value.strip()
    if not values:
        click.echo("Nothing stored.")
        return
    store = keystore.save(name, values)
    click.echo(f"Stored {', '.join(values)} of source {name!r} in {keystore.describe(store)}.")
    if isinstance(store, keystore.PrivateFileKeyring):
        click.echo("(No operating-system keyring is available here, so crmlink keeps them in that "
                   "file, mode 0600.)", err=True)
