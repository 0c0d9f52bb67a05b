"""The Pipedrive connector against a fake Pipedrive API served on 127.0.0.1 (see
pipedrive_api.py): the conformance kit, paging, custom fields, a 429 waited out by
crmlink's retry policy, a refused token, and deletions caught by --reconcile."""

import crmlink_pipedrive
import pytest
from crmlink_pipedrive import PipedriveConnector
from pipedrive_api import TOKEN, PipedriveApi

from crmlink.testing.conformance import ConnectorContract, SuiteConfig
from crmlink.testing.http import LocalApi


class TestPipedrive(ConnectorContract):
    connector = PipedriveConnector
    config = {"api_token": TOKEN}
    # users and activities are not sorted by change, but resume from the newest one read
    suite = SuiteConfig(incremental_streams=("users", "organizations", "persons", "deals", "activities"))

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def api(cls):
        with LocalApi(PipedriveApi(page_limit=5)) as api:
            cls.base_url = api.url
            yield api

    def make_connector(self):
        """The connector pointed at the fake API: the config's URL is only known here."""
        return self.connector({**self.config, "base_url": self.base_url})


@pytest.fixture
def pipedrive(local_api):
    fake = PipedriveApi(page_limit=5)
    server = local_api(fake)
    return fake, server


def stream(server, name, **config):
    connector = PipedriveConnector({"api_token": TOKEN, "base_url": server.url, **config})
    return next(s for s in connector.streams() if s.name == name)


def test_lists_are_paged_by_start_and_limit(pipedrive):
    fake, server = pipedrive
    activities = list(stream(server, "activities").records(None))
    pages = [r.query for r in server.requests]
    assert [p["start"] for p in pages] == [str(n) for n in range(0, 64, 5)]
    assert all(p["limit"] == "500" and p["user_id"] == "0" for p in pages)
    assert len(activities) == 63  # every done activity; the planned one is left out
    assert all(r.headers["x-api-token"] == TOKEN for r in server.requests)


def test_custom_fields_and_probability_are_read(pipedrive):
    fake, server = pipedrive
    fake.data["deals"][0]["probability"] = 40
    accounts = {a.remote_id: a for a in stream(server, "organizations").records(None)}
    contacts = {c.remote_id: c for c in stream(server, "persons").records(None)}
    deals = {d.remote_id: d for d in stream(server, "deals").records(None)}
    assert accounts["2"].tier == "S" and accounts["2"].tier_source == "crm"
    assert contacts["11"].stance == 2
    assert deals["201"].probability == 0.4          # Pipedrive's percent, crmlink's fraction
    assert "23" not in contacts and "204" not in deals  # deleted in Pipedrive: not listed


@pytest.fixture
def synced(pipedrive, register_plugin, cli_runner):
    register_plugin(crmlink_pipedrive, name="pipedrive")

    def sync(*args, **env):
        environment = {"PIPEDRIVE_API_TOKEN": TOKEN, "CRMLINK_RETRY_INITIAL": "0.01", **env}
        return cli_runner.invoke("sync", "pipedrive", "--base-url", pipedrive[1].url, *args,
                                 env=environment)

    return sync


def test_a_429_is_waited_out_and_the_sync_completes(pipedrive, synced, cli_runner):
    fake, _ = pipedrive
    fake.rate_limited = 1
    result = synced().assert_success()
    assert "HTTP 429" in result.stderr and "the server asked to wait 1s" in result.stderr
    waited = float(result.stderr.split("retry 1 of 5 in ")[1].split("s")[0])
    assert waited >= 1.0, result.stderr
    run = cli_runner.invoke("status", "--json").assert_success().json()[0]
    assert run["status"] == "ok" and run["counts"]["activities"]["created"] == 63


def test_a_refused_token_stops_the_sync_with_exit_4(synced):
    result = synced(PIPEDRIVE_API_TOKEN="wrong-token").assert_failed(4)
    assert "HTTP 401" in result.stderr and "--api-token" in result.stderr
    assert "wrong-token" not in result.stdout + result.stderr


def test_reconcile_marks_what_pipedrive_deleted(pipedrive, synced, cli_runner):
    fake, _ = pipedrive
    synced().assert_success()
    fake.deleted.add(("deals", 203))
    synced().assert_success()     # an incremental run cannot see it ...
    synced("--reconcile").assert_success()
    runs = cli_runner.invoke("status", "--json").assert_success().json()
    deleted = [run["counts"]["deals"]["deleted"] for run in runs]
    assert sorted(deleted) == [0, 0, 1]   # ... the reconciling run does
