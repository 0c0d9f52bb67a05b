"""Options and helpers shared by several commands, and by the root group in
:mod:`crmlink.cli` (which imports the commands, so they never import it)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
import sqlalchemy as sa
from click.core import ParameterSource

from crmlink.core.analysis.config import load_config
from crmlink.core.errors import ConfigError, StoreError
from crmlink.core.host import PluginHost, get_plugin_host
from crmlink.core.store import DEFAULT_DB_ENV, Store, sqlite_path

F = TypeVar("F", bound=Callable[..., Any])


def host_of(ctx: click.Context) -> PluginHost:
    """The plugin host of this invocation, built on first use."""
    root = ctx.find_root()
    root.ensure_object(dict)
    if "host" not in root.obj:
        root.obj["host"] = get_plugin_host()
    host: PluginHost = root.obj["host"]
    return host


def db_option(func: F) -> F:
    return click.option("--db", "db_url", envvar=DEFAULT_DB_ENV, metavar="URL",
                        help="Store as an SQLAlchemy URL [env CRMLINK_DB; default sqlite:///crmlink.db].")(func)


def config_option(func: F) -> F:
    return click.option("--config", "config_file", envvar="CRMLINK_CONFIG", metavar="FILE",
                        help="TOML file with weights, thresholds, LTC maps and named sources "
                             "[env CRMLINK_CONFIG; default ./crmlink.toml].")(func)


def as_of_option(func: F) -> F:
    return click.option("--as-of", "as_of", metavar="YYYY-MM-DD", callback=_parse_date,
                        help="Audit as of the end of this day (UTC) [default: today].")(func)


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2026-06-30") from None


def open_store(db_url: str | None, *, create: bool = False) -> Store:
    """The store at ``db_url`` (``--db``, ``CRMLINK_DB``), or the default one. A SQLite
    file given with ``--db`` that does not exist is made only by a command that fills a
    store (``create``: a sync); any other says there is none and leaves no file or folder
    behind for a mistyped path. The default store, and one ``CRMLINK_DB`` names, are made
    by any command (the first ``crmlink audit`` says what to sync into them)."""
    if not create and db_url is not None and _on_command_line() and (path := _missing_sqlite_file(db_url)):
        raise StoreError(f"there is no store at {path} (no such file): check --db, or sync a source into it "
                         f"first: crmlink sync csv FOLDER --db {db_url}")
    return Store(db_url)


def _on_command_line() -> bool:
    """Whether this command's ``--db`` was given on its command line (not by ``CRMLINK_DB``)."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.get_parameter_source("db_url") is ParameterSource.COMMANDLINE


def _missing_sqlite_file(url: str) -> str | None:
    """The path of the SQLite file ``url`` names when that file does not exist (not for
    a store in memory, a ``file:`` URI, or another database)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None  # Store says what is wrong with it
    path = sqlite_path(parsed)
    return parsed.database if path is not None and not path.exists() else None


def config(config_file: str | None) -> dict[str, Any]:
    return load_config(config_file)


def write_output(text: str, output: str | None) -> None:
    """Write to ``output`` (:func:`output_file`) or stdout."""
    if not output or output == "-":
        click.echo(text, nl=not text.endswith("\n"))
        return
    with output_file(output) as handle:
        handle.write(text)
    click.echo(f"Wrote {output}", err=True)


@contextmanager
def output_file(output: str) -> Iterator[TextIO]:
    """A text handle on the file ``output`` names. A regular file (or a new one) is
    written beside itself and moved into place once complete, so a reader never sees
    half a report and a failure leaves the old one; anything else that exists, a device
    or a pipe (``/dev/null``, ``/dev/stdout``, a FIFO), is written in place, as moving a
    file over it would replace the device itself."""
    path = Path(output)
    if path.is_dir():
        raise ConfigError(f"cannot write {output}: it is a folder; give a file name")
    if path.exists() and not path.is_file():
        with path.open("w", encoding="utf-8") as handle:
            yield handle
        return
    if path.parent and not path.parent.exists():
        raise ConfigError(f"cannot write {output}: folder {path.parent} does not exist")
    temp = path.with_name(f".{path.name}.tmp")
    try:
        try:
            handle = temp.open("w", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from None
        with handle:
            yield handle
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class ProgressLine:
    """Long work's progress on stderr (a :data:`~crmlink.core.progress.Progress`): one line,
    rewritten at most every :attr:`EVERY` seconds, with the source, its ``noun`` done of
    all and how many a second; :meth:`end` ends the line before anything else is written,
    as leaving a ``with`` block of the line does (also on an error, before its sentence)."""

    EVERY = 0.1

    def __init__(self, noun: str) -> None:
        self.noun = noun
        self.what = ""
        self.started = self.shown = 0.0
        self.written = False

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if what != self.what or not done:
            self.what, self.started = what, now
        elif done < total and now - self.shown < self.EVERY:
            return
        self.shown = now
        if done and done == total:
            text = f"{what}: all {total:,} {self.noun} done"
        elif not done:
            text = f"{what}: {total:,} {self.noun}"
        else:
            rate = done / max(1e-6, now - self.started)
            text = f"{what}: {done:,} of {total:,} {self.noun} ({rate:,.0f}/s)"
        click.echo(f"\r{text}   ", err=True, nl=False)
        self.written = True

    def end(self) -> None:
        if self.written:
            click.echo("", err=True)
            self.written = False

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *_: object) -> None:
        self.end()
