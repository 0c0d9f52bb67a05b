"""``crmlink plugins``: what is installed, and what is broken."""

from __future__ import annotations

import json

import click

from crmlink.commands.common import host_of


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins: version, hooks, connectors and status.

    A plugin whose optional dependency is not installed shows as ``missing`` with the
    ``pip install`` line that adds it; other commands stay quiet about it until one needs it.

    \b
    Example:
      crmlink plugins --json
    """
    infos = host_of(ctx).plugins()
    if as_json:
        click.echo(json.dumps([i.to_json() for i in infos], indent=2))
        return
    for info in infos:
        origin = "built-in" if info.builtin else f"{info.distribution or info.module} {info.version or ''}".strip()
        click.echo(f"{info.name:<12} {info.status:<8} {origin}")
        if info.connectors:
            click.echo(f"{'':<12} connectors: {', '.join(info.connectors)}")
        if info.hooks:
            click.echo(f"{'':<12} hooks: {', '.join(info.hooks)}")
        if info.error:
            label = "not loaded" if info.status == "missing" else "error"
            click.echo(f"{'':<12} {label}: {info.error}")
