"""``crmlink new-plugin NAME``: a plugin package that passes the plugin kit out of the box."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import click

from crmlink import __version__
from crmlink.core.errors import ConfigError

NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
#: kind -> (template, path in the package), with {module} filled in
FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "connector": (
        ("connector.py.tmpl", "crmlink_{module}/__init__.py"),
        ("fake_api.py.tmpl", "tests/fake_api.py"),
        ("fixture.json.tmpl", "tests/fixtures/accounts.json"),
        ("test_connector.py.tmpl", "tests/test_{module}.py"),
    ),
    "scoring": (
        ("scoring.py.tmpl", "crmlink_{module}/__init__.py"),
        ("test_scoring.py.tmpl", "tests/test_{module}.py"),
    ),
}
COMMON = (("pyproject.toml.tmpl", "pyproject.toml"), ("README.md.tmpl", "README.md"))
#: How the generated README installs the package for development: the ``test`` extra
#: brings ``crmlink[testing]`` (the conformance kit and pytest).
INSTALL = "pip install -e '.[test]'"


def render_plugin(name: str, kind: str, output: Path) -> list[Path]:
    """Write the package ``crmlink-NAME`` into ``output`` and return the files written."""
    if not NAME.match(name):
        raise ConfigError(f"plugin name {name!r} must be lower-case letters, digits, '-' or '_', "
                          "starting with a letter (e.g. pipedrive)")
    target = output / f"crmlink-{name}"
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another --output or remove it")
    module = name.replace("-", "_")
    values = {"name": name, "module": module, "kind": kind, "upper": module.upper(),
              "Class": "".join(part.capitalize() for part in re.split(r"[-_]", name)),
              "crmlink_version": __version__, "install": INSTALL}
    templates = resources.files("crmlink.templates.plugin")
    written = []
    for template, path in (*COMMON, *FILES[kind]):
        destination = target / path.format(**values)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(templates.joinpath(template).read_text(encoding="utf-8").format(**values),
                               encoding="utf-8")
        written.append(destination)
    return written


@click.command("new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(sorted(FILES)), default="connector", show_default=True,
              help="A connector (a CRM to sync from) or a scoring plugin (scores and findings).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to create the package in.")
def command(name: str, kind: str, output: Path) -> None:
    """Create a plugin package crmlink-NAME whose tests pass out of the box.

    \b
    Example:
      crmlink new-plugin pipedrive --output ~/src
      cd ~/src/crmlink-pipedrive && pip install -e '.[test]' && python -m pytest
    """
    files = render_plugin(name, kind, output)
    root = output / f"crmlink-{name}"
    for path in files:
        click.echo(f"created {path}", err=True)
    click.echo(f"Next: cd {root} && {INSTALL} && python -m pytest", err=True)


__all__ = ["command", "render_plugin"]
