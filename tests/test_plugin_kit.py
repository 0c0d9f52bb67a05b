"""The plugin kit on crmlink's own CSV connector, and the third-party path end to end."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import re
import shlex
import shutil
import subprocess

import pytest

from crmlink.commands.new_plugin import render_plugin
from crmlink.plugins.csv import CsvConnector
from crmlink.testing.conformance import ConnectorContract, SuiteConfig
from crmlink.testing.http import LocalApi
from tests.plugin_venv import (
    ROOT,
    crmlink,
    install,
    make_bare_venv,
    make_venv,
    pip,
    wheel_of_installed,
)

SAMPLE = ROOT / "examples" / "sample"

class TestCsvConnector(ConnectorContract):
    connector = CsvConnector
    config = {"path": str(SAMPLE)}
    suite = SuiteConfig(incremental_streams=())  # a file import re-reads everything


def test_cli_runner_syncs_and_audits(cli_runner):
    cli_runner.invoke("sync", "csv", SAMPLE, "-q").assert_success()
    audit = cli_runner.invoke("audit", "--as-of", "2026-11-20", "--format", "json").assert_success()
    assert len(audit.json()["accounts"]) == 50


def test_cli_runner_reports_failure(cli_runner, tmp_path):
    cli_runner.invoke("sync", "csv", tmp_path / "missing").assert_failed(2)


def test_register_plugin_offers_a_connector_for_one_test(plugin_host, register_plugin, cli_runner):
    import crmlink

    class Echo(crmlink.Connector):
        name = "echo"
        settings = ()

        def streams(self):
            return []

    class Plugin:
        @crmlink.hookimpl
        def register_connectors(self, register):
            register(Echo)

    register_plugin(Plugin(), name="echo-plugin")
    assert "echo" in plugin_host.connectors()
    listed = cli_runner.invoke("plugins", "--json").assert_success().json()
    assert {"name": "echo-plugin", "status": "ok"}.items() <= next(
        p for p in listed if p["name"] == "echo-plugin").items()


def test_registered_plugin_is_gone_in_the_next_test(plugin_host):
    assert "echo" not in plugin_host.connectors()
    assert "echo-plugin" not in plugin_host.infos


def load(path):
    """A package's test module by its path (its fake API, say)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_third_party_plugins_end_to_end(tmp_path):
    """The example packages and a freshly generated one, pip-installed into a virtual
    environment, are found only through their entry points, work from the CLI (the
    Pipedrive connector against a fake Pipedrive API) and pass their own tests there."""
    python = make_venv(tmp_path / "venv")
    packages = tmp_path / "packages"
    examples = ("crmlink-pipedrive", "crmlink-champion-score")
    for name in examples:
        shutil.copytree(ROOT / "examples" / "plugins" / name, packages / name,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    generated = crmlink(python, "new-plugin", "demo", "--output", str(packages))
    assert generated.returncode == 0, generated.stderr
    for name in (*examples, "crmlink-demo"):
        install(python, packages / name)

    listed = crmlink(python, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    for name, dist in (("pipedrive", "crmlink-pipedrive"), ("champion", "crmlink-champion-score"),
                       ("demo", "crmlink-demo")):
        assert plugins[name]["status"] == "ok", plugins[name]
        assert plugins[name]["distribution"] == dist and not plugins[name]["builtin"]
    assert plugins["pipedrive"]["connectors"] == ["pipedrive"]
    assert "score_account" in plugins["champion"]["hooks"]

    db = {"CRMLINK_DB": f"sqlite:///{tmp_path / 'store.db'}"}
    pipedrive = load(packages / "crmlink-pipedrive" / "tests" / "pipedrive_api.py")
    with LocalApi(pipedrive.PipedriveApi(token="t0k3n-secret")) as server:
        synced = crmlink(python, "sync", "pipedrive", "--api-token", "t0k3n-secret",
                         "--base-url", server.url, env=db)
    assert synced.returncode == 0, synced.stderr
    assert "activities" in synced.stdout and "t0k3n-secret" not in synced.stdout + synced.stderr
    demo_api = load(packages / "crmlink-demo" / "tests" / "fake_api.py")
    with LocalApi(demo_api.fake_api) as server:
        demo = crmlink(python, "sync", "demo", "--api-token", demo_api.TOKEN, "--base-url", server.url,
                       env=db)
    assert demo.returncode == 0, demo.stderr
    assert re.search(r"accounts\s+3\s+3", demo.stdout), demo.stdout

    audited = crmlink(python, "audit", "--source", "pipedrive", "--as-of", "2026-11-20",
                      "--format", "json", env=db)
    assert audited.returncode == 0, audited.stderr
    accounts = {a["name"]: a for a in json.loads(audited.stdout)["accounts"]}
    codes = {name: {f["code"] for f in a["findings"]} for name, a in accounts.items()}
    assert all("champion" in a["scores"] for a in accounts.values())
    assert accounts["Aurora Freight"]["score_evidence"]["champion"]["champion"] == "11"
    assert "NO_CHAMPION" in codes["Borealis Energy"]      # S, supporters never engaged
    assert "NO_CHAMPION" not in codes["Aurora Freight"]   # A, strong champion
    assert "NO_CHAMPION" not in codes["Cobalt Retail"]    # C tier is not checked

    for name in (*examples, "crmlink-demo"):
        tested = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                                cwd=packages / name, capture_output=True, text=True, timeout=300)
        assert tested.returncode == 0, f"{name}: " + tested.stdout + tested.stderr


@pytest.mark.slow
def test_generated_packages_pass_their_tests_after_their_readme_install(tmp_path):
    """In an environment without pytest, the one ``pip install`` line of a generated
    package's README (run offline: pytest comes from a local wheel) is all its tests need."""
    if "testing" not in (md.metadata("crmlink").get_all("Provides-Extra") or []):
        pytest.skip("the installed crmlink's metadata predates its 'testing' extra; "
                    "reinstall it (pip install -e '.[dev]') to refresh it")
    python = make_bare_venv(tmp_path / "venv", hide=("pytest",))
    before = subprocess.run([python, "-c", "import pytest"], capture_output=True, text=True)
    assert before.returncode != 0, "pytest must not be importable before the README's install"
    wheels = tmp_path / "wheels"
    wheel_of_installed("pytest", wheels)
    for kind in ("connector", "scoring"):
        render_plugin(f"demo-{kind}", kind, tmp_path)
        package = tmp_path / f"crmlink-demo-{kind}"
        readme = (package / "README.md").read_text(encoding="utf-8")
        commands = re.findall(r"^(pip install .*?)(?:\s+#.*)?$", readme, flags=re.M)
        assert len(commands) == 1, f"the README should give one pip install line: {commands}"
        pip(python, *shlex.split(commands[0])[1:], "--no-index", "--find-links", str(wheels),
            "--no-build-isolation", "-q", cwd=package)
        tested = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                                cwd=package, capture_output=True, text=True, timeout=300)
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert " passed" in tested.stdout and "skipped" not in tested.stdout, tested.stdout
