"""crmlink.RestStream against a real local HTTP server: the three pagination styles, the
auth header, incremental reads, errors classified for the sync engine's retry policy
(Retry-After included), and the conformance kit on a connector built from declarations."""

from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest

import crmlink
from crmlink import (
    Account,
    AuthError,
    ConfigError,
    Contact,
    FatalError,
    InvalidRecord,
    Opportunity,
    RetriableError,
    Setting,
    User,
)
from crmlink.core.rest import CursorPaginator, NextLinkPaginator, OffsetPaginator, RestStream, dig
from crmlink.core.store import Store
from crmlink.testing.conformance import ConnectorContract, SuiteConfig
from crmlink.testing.http import ApiRequest, ApiResponse, LocalApi

TOKEN = "t0k3n-s3cret"
COMPANIES = [{"id": n, "name": f"Company {n}", "changed": f"2026-0{n}-01T00:00:00Z"} for n in range(1, 6)]
PEOPLE = [{"id": f"p{n}", "company": 1 + n % 5, "name": f"Person {n}",
           "changed": f"2026-0{1 + n % 9}-15T00:00:00Z"} for n in range(1, 8)]
DEALS = [{"id": f"d{n}", "title": f"Deal {n}", "amount": 1000 * n} for n in range(1, 6)]
USERS = [{"id": f"u{n}", "name": f"User {n}"} for n in range(1, 4)]


def acme(request: ApiRequest) -> ApiResponse:
    """A small API: companies page by offset, people by cursor, deals by a link in the
    body and users by the Link header, two items a page; a Bearer token is required."""
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        return ApiResponse(401, {"message": "invalid token"})
    q = request.query
    if request.path == "/api/companies":
        start, limit = int(q["offset"]), int(q["limit"])
        since = q.get("changed_since", "")
        rows = sorted((c for c in COMPANIES if c["changed"] >= since), key=lambda c: c["changed"])
        return ApiResponse(200, {"data": rows[start:start + limit],
                                 "paging": {"more": start + limit < len(rows)}})
    if request.path == "/api/people":
        start = int(q.get("cursor", "0"))
        more = start + 2 < len(PEOPLE)
        return ApiResponse(200, {"results": PEOPLE[start:start + 2],
                                 "next_cursor": str(start + 2) if more else None})
    if request.path == "/api/deals":
        page = int(q.get("page", "1"))
        more = page * 2 < len(DEALS)
        return ApiResponse(200, {"items": DEALS[(page - 1) * 2:page * 2],
                                 "next": f"/api/deals?page={page + 1}" if more else None})
    if request.path == "/api/users":
        page = int(q.get("page", "1"))
        link = f'<http://{request.headers["host"]}/api/users?page={page + 1}>; rel="next"'
        return ApiResponse(200, USERS[(page - 1) * 2:page * 2],
                           {"Link": link} if page * 2 < len(USERS) else {})
    return ApiResponse(404, {"message": f"no such endpoint {request.path}"})


class AcmeStream(RestStream):
    url_base = "https://api.acme.example"
    auth_header, auth_scheme = "Authorization", "Bearer"


class Companies(AcmeStream):
    name, entity, path = "companies", Account, "/api/companies"
    records_path = "data"
    paginator = OffsetPaginator(page_size=2, more_path="paging.more")
    replication_key, since_param = "changed", "changed_since"
    is_sorted = True

    def to_record(self, item):
        return Account(remote_id=item["id"], name=item["name"])


class People(AcmeStream):
    name, entity, path = "people", Contact, "/api/people"
    records_path = "results"
    paginator = CursorPaginator(cursor_path="next_cursor")
    replication_key = "changed"   # not sorted, no server-side filter: the base filters

    def to_record(self, item):
        return Contact(remote_id=item["id"], account_id=item["company"], name=item["name"])


class Deals(AcmeStream):
    name, entity, path = "deals", Opportunity, "/api/deals"
    records_path = "items"
    paginator = NextLinkPaginator(link_path="next")

    def to_record(self, item):
        return Opportunity(remote_id=item["id"], name=item["title"], amount=item["amount"])


class Users(AcmeStream):
    name, entity, path = "users", User, "/api/users"
    paginator = NextLinkPaginator()   # the Link header

    def to_record(self, item):
        return User(remote_id=item["id"], name=item["name"])


class AcmeConnector(crmlink.Connector):
    name = "acme"
    settings = (Setting("api_token", "Acme API token.", required=True, secret=True),
                Setting("base_url", "API base URL."),
                Setting("reconcile", "List every id to catch hard deletes.", is_flag=True, type=bool))

    def streams(self):
        return [cls(self.config) for cls in (Companies, People, Deals, Users)]


@pytest.fixture(scope="module")
def api():
    with LocalApi(acme) as server:
        yield server


def read(stream, state=None):
    return list(stream.records(state))


def connector(api, **config):
    return AcmeConnector({"api_token": TOKEN, "base_url": api.url, **config})


def stream_of(api, name, **config):
    return next(s for s in connector(api, **config).streams() if s.name == name)


@pytest.mark.parametrize("name, count", [("companies", 5), ("people", 7), ("deals", 5), ("users", 3)])
def test_every_pagination_style_reads_every_item_once(api, name, count):
    api.requests.clear()
    records = read(stream_of(api, name))
    assert len(records) == count == len({r.remote_id for r in records})
    assert len(api.requests) == (count + 1) // 2
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api.requests)


def test_offset_pages_carry_the_stream_params(api):
    api.requests.clear()
    read(stream_of(api, "companies"))
    assert [(r.query["offset"], r.query["limit"]) for r in api.requests] == [("0", "2"), ("2", "2"), ("4", "2")]


def test_incremental_read_asks_the_server_and_filters_the_rest(api):
    companies = stream_of(api, "companies")
    api.requests.clear()
    later = read(companies, {"since": "2026-03-01T00:00:00+00:00"})
    assert [r.remote_id for r in later] == ["3", "4", "5"]
    assert api.requests[0].query["changed_since"] == "2026-03-01T00:00:00+00:00"
    assert later[0].modified_at == datetime(2026, 3, 1, tzinfo=timezone.utc)  # from the replication key

    people = stream_of(api, "people")
    changed = read(people, {"since": "2026-06-15T00:00:00Z"})
    assert {r.remote_id for r in changed} == {p["id"] for p in PEOPLE if p["changed"] >= "2026-06-15"}
    assert people.next_state(None) == {"since": "2026-08-15T00:00:00+00:00"}  # the newest seen


def test_a_stream_without_replication_key_is_read_whole(api):
    deals = stream_of(api, "deals")
    assert len(read(deals, {"since": "2030-01-01T00:00:00Z"})) == 5
    assert deals.next_state(None) is None


def test_remote_ids_only_when_reconciling(api):
    assert stream_of(api, "deals").remote_ids() is None
    assert stream_of(api, "deals", reconcile=True).remote_ids() == [d["id"] for d in DEALS]


def failing(status: int, body=None, headers=None):
    def handler(request: ApiRequest) -> ApiResponse:
        return ApiResponse(status, body, headers or {})
    return handler


def first_error(handler, name="deals") -> BaseException:
    with LocalApi(handler) as server, pytest.raises(crmlink.CrmlinkError) as caught:
        read(stream_of(server, name))
    assert TOKEN not in str(caught.value)
    return caught.value


def test_429_is_retriable_with_the_server_s_retry_after():
    error = first_error(failing(429, {"message": "slow down"}, {"Retry-After": "7"}))
    assert isinstance(error, RetriableError) and error.retry_after == 7.0
    assert "rate limit (HTTP 429)" in str(error) and "wait 7s" in str(error)


def test_429_without_retry_after_suggests_the_window_reset():
    error = first_error(failing(429, {}, {"X-RateLimit-Reset": "2"}))
    assert isinstance(error, RetriableError) and error.retry_after is None and error.suggested_wait == 2.0


@pytest.mark.parametrize("status, kind, words", [
    (503, RetriableError, "failed temporarily (HTTP 503)"),
    (401, AuthError, "check --api-token"),
    (403, FatalError, "lack the permission"),
    (404, FatalError, "failed (HTTP 404): no such thing"),
])
def test_http_errors_are_classified(status, kind, words):
    error = first_error(failing(status, {"message": "no such thing"}))
    assert type(error) is kind and words in str(error)


def test_a_truncated_answer_is_retriable():
    error = first_error(failing(200, b'{"items": [{"id": "d1"'))
    assert isinstance(error, RetriableError) and "not complete JSON" in str(error)


def test_no_server_is_retriable_and_a_bad_url_a_config_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    stream = Deals({"api_token": TOKEN, "base_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(RetriableError, match="no answer from 127.0.0.1"):
        read(stream)
    with pytest.raises(ConfigError, match="check --base-url"):
        read(Deals({"api_token": TOKEN, "base_url": "api.acme.example"}))


def test_an_item_that_does_not_fit_is_yielded_as_invalid_and_the_stream_goes_on():
    rows = [{"id": "a", "name": "ok"}, {"id": "b", "name": "bad", "tier": "Z"}, {"id": "c", "name": "ok"}]

    class Tiered(Companies):
        replication_key = since_param = None

        def to_record(self, item):
            return Account(remote_id=item["id"], name=item["name"], tier=item.get("tier"))

    with LocalApi(lambda r: ApiResponse(200, {"data": rows, "paging": {"more": False}})) as server:
        got = read(Tiered({"base_url": server.url}))
    assert [type(r) for r in got] == [Account, InvalidRecord, Account]
    assert got[1].remote_id == "b" and got[1].field == "tier"


def test_pagination_that_does_not_advance_is_an_error():
    same = {"items": [{"id": "d1", "title": "x", "amount": 1}], "next": "/api/deals"}
    with LocalApi(lambda r: ApiResponse(200, same)) as server, \
            pytest.raises(FatalError, match="does not advance"):
        read(Deals({"base_url": server.url}))


def test_dig():
    assert dig({"a": {"b": [1]}}, "a.b") == [1]
    assert dig({"a": 1}, "a.b") is None and dig([1], None) == [1]


def test_sync_waits_out_a_429_through_the_engine_s_retry_policy(cli_runner, register_plugin):
    """The second page answers 429 once: the engine restarts the stream after at least
    the Retry-After, and the sync stores every record."""
    refused: list[str] = []

    def limited(request: ApiRequest) -> ApiResponse:
        if request.path == "/api/deals" and request.query.get("page") == "2" and not refused:
            refused.append(request.path)
            return ApiResponse(429, {"message": "Too many requests"}, {"Retry-After": "1"})
        return acme(request)

    class Plugin:
        @crmlink.hookimpl
        def register_connectors(self, register):
            register(AcmeConnector)

    register_plugin(Plugin(), name="acme-plugin")
    with LocalApi(limited) as server:
        result = cli_runner.invoke("sync", "acme", "--base-url", server.url,
                                   env={"ACME_API_TOKEN": TOKEN, "CRMLINK_RETRY_INITIAL": "0.01"})
    result.assert_success()
    assert refused and "deals: GET 127.0.0.1" in result.stderr and "HTTP 429" in result.stderr
    waited = float(result.stderr.split("retry 1 of 5 in ")[1].split("s")[0])
    assert waited >= 1.0
    assert TOKEN not in result.stdout + result.stderr
    store = Store(cli_runner.db_url)
    assert {e: store.count(e) for e in ("account", "contact", "opportunity", "user")} == {
        "account": 5, "contact": 7, "opportunity": 5, "user": 3}


class TestAcmeConformance(ConnectorContract):
    """The standard tests on a connector made of declarations, against the local API."""

    connector = AcmeConnector
    config = {"api_token": TOKEN}
    suite = SuiteConfig(incremental_streams=("companies", "people"))

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def server(cls):
        with LocalApi(acme) as api:
            cls.base_url = api.url
            yield api

    def make_connector(self):
        return self.connector({**self.config, "base_url": self.base_url})
