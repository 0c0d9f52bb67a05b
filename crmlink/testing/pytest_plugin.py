"""Fixtures for testing crmlink plugins, loaded by pytest through the ``pytest11`` entry
point whenever crmlink is installed.

``plugin_host``      a fresh plugin host with the built-in plugins and no entry points
``register_plugin``  ``register_plugin(module_or_object, name=...)`` for one test
``cli_runner``       ``cli_runner.invoke("sync", "csv", path)`` against that host and an
                     isolated temporary store; results have ``assert_success()``
``local_api``        ``local_api(handler)`` serves a fake JSON API on 127.0.0.1 for one
                     test (:class:`crmlink.testing.http.LocalApi`)

docs/plugins/testing.md shows them in use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmlink.core.host import PluginHost, get_plugin_host
from crmlink.testing.http import Handler, LocalApi

#: Environment variables that would let a developer's setup leak into a test.
ISOLATED_ENV = ("CRMLINK_CONFIG", "CRMLINK_LOAD_PLUGINS", "CRMLINK_DISABLE_PLUGINS",
                "CRMLINK_STRICT_PLUGINS", "CRMLINK_TRACE_PLUGINS")


class RunResult:
    """A finished ``crmlink`` invocation."""

    def __init__(self, args: list[str], result: Result) -> None:
        self.args, self.result = args, result

    @property
    def exit_code(self) -> int:
        return self.result.exit_code

    @property
    def stdout(self) -> str:
        return self.result.stdout

    @property
    def stderr(self) -> str:
        return self.result.stderr

    @property
    def exception(self) -> BaseException | None:
        return self.result.exception

    def json(self) -> Any:
        return json.loads(self.stdout)

    def _describe(self) -> str:
        return (f"crmlink {' '.join(self.args)} exited {self.exit_code}\n"
                f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}")

    def assert_success(self) -> RunResult:
        if self.exception is not None and not isinstance(self.exception, SystemExit):
            raise AssertionError(self._describe()) from self.exception
        assert self.exit_code == 0, self._describe()
        return self

    def assert_failed(self, code: int | None = None) -> RunResult:
        """Assert a non-zero exit, or exactly ``code`` when given."""
        if code is None:
            assert self.exit_code != 0, self._describe()
        else:
            assert self.exit_code == code, f"expected exit {code}; " + self._describe()
        return self


class CrmlinkRunner:
    """Runs the ``crmlink`` command line in-process with one plugin host and one store."""

    def __init__(self, host: PluginHost, db_url: str) -> None:
        self.host, self.db_url = host, db_url

    def invoke(self, *args: str | Path, input: str | None = None,
               env: Mapping[str, str | None] | None = None) -> RunResult:
        from crmlink.cli import cli

        argv = [str(a) for a in args]
        environment: dict[str, str | None] = dict.fromkeys(ISOLATED_ENV)
        environment["CRMLINK_DB"] = self.db_url
        environment.update(env or {})
        result = CliRunner().invoke(cli, argv, input=input, env=environment,
                                    obj={"host": self.host}, catch_exceptions=True)
        return RunResult(argv, result)


@pytest.fixture
def plugin_host() -> PluginHost:
    """A fresh host: built-in plugins only, no installed entry points."""
    return get_plugin_host(load_entrypoints=False)


@pytest.fixture
def register_plugin(plugin_host: PluginHost) -> Iterator[Callable[..., str]]:
    """``register_plugin(plugin, name=None)`` registers a module or object on
    ``plugin_host`` for this test and unregisters it afterwards, pass or fail."""
    registered: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        info = plugin_host.register(name, plugin)
        if info.status != "ok":
            plugin_host.unregister(name)
            raise AssertionError(f"plugin {name!r} did not register: {info.error}")
        registered.append(name)
        return name

    try:
        yield register
    finally:
        for name in reversed(registered):
            plugin_host.unregister(name)


@pytest.fixture
def cli_runner(plugin_host: PluginHost, tmp_path: Path) -> CrmlinkRunner:
    """Runs ``crmlink`` against ``plugin_host`` with a store in a temporary folder."""
    return CrmlinkRunner(plugin_host, f"sqlite:///{tmp_path / 'crmlink-test.db'}")


@pytest.fixture
def local_api() -> Iterator[Callable[[Handler], LocalApi]]:
    """``local_api(handler)`` starts a :class:`~crmlink.testing.http.LocalApi` for this
    test (its ``url`` is the base URL to give the connector); stopped afterwards."""
    started: list[LocalApi] = []

    def start(handler: Handler) -> LocalApi:
        api = LocalApi(handler).start()
        started.append(api)
        return api

    try:
        yield start
    finally:
        for api in started:
            api.stop()


__all__ = ["CrmlinkRunner", "RunResult", "plugin_host", "register_plugin", "cli_runner", "local_api"]
