"""The plugin kit on crmlink's own CSV connector, and the third-party path end to end."""

from __future__ import annotations

from pathlib import Path

from crmlink.plugins.csv import CsvConnector
from crmlink.testing.conformance import ConnectorContract, SuiteConfig

ROOT = Path(__file__).resolve().parent.parent
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
