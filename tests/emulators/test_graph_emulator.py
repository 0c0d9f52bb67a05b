"""Contract tests: the REAL msal and requests against the Graph emulator (no mocks).

The shapes checked here are Microsoft's documented ones: the client-credentials token
endpoint and its AADSTS errors, ``{"error": {"code", "message", "innerError"}}`` bodies,
messages and calendarView delta rounds (``@odata.nextLink`` with ``$skiptoken``,
``@odata.deltaLink`` with ``$deltatoken``, ``@removed``), ``Prefer: odata.maxpagesize``,
429 with ``Retry-After`` and 410 ``syncStateNotFound``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import msal
import pytest
import requests

from crmlink.testing.graph_emulator import Fault, GraphEmulator, Limits, Mailbox

SCOPE = ["https://graph.microsoft.com/.default"]
T0 = datetime(2024, 3, 4, 9, 0, tzinfo=timezone.utc)  # a Monday
WINDOW = "startDateTime=2024-03-01T00:00:00Z&endDateTime=2024-05-01T00:00:00Z"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphEmulator]:
    with GraphEmulator() as e:
        assert e.ca_path
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", e.ca_path)  # requests and msal trust its CA
        yield e


@pytest.fixture
def ann(emu: GraphEmulator) -> Mailbox:
    return emu.add_mailbox("ann@contoso.test", "Ann Lee")


def app(emu: GraphEmulator, secret: str | None = None, client_id: str | None = None,
        authority: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id or emu.client_id, client_credential=secret or emu.client_secret,
        authority=authority or emu.authority, instance_discovery=False)


def session(emu: GraphEmulator, token: str | None = None) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token or emu.issue_token()}"
    return s


def delta_round(s: requests.Session, url: str, page: int = 10) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the end: (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        r = s.get(url, headers={"Prefer": f"odata.maxpagesize={page}"})
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert len(body["value"]) <= page
        items.extend(body["value"])
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            assert "$skiptoken=" in url
        else:
            assert "$deltatoken=" in body["@odata.deltaLink"]
            return items, body["@odata.deltaLink"], pages


def inbox_delta(emu: GraphEmulator, box: Mailbox, select: str = "subject,from") -> str:
    return f"{emu.base_url}/users/{box.address}/mailFolders/inbox/messages/delta?$select={select}"


def fill(emu: GraphEmulator, box: Mailbox, n: int, folder: str = "inbox") -> list[str]:
    return [emu.add_message(box, folder, sender="Bob Ray <bob@fabrikam.test>", to=[box],
                            subject=f"m{i}", sent=T0 + timedelta(minutes=i)) for i in range(n)]


# --- the token endpoint, through msal --------------------------------------------------------
def test_msal_gets_an_app_only_token_and_caches_it(emu: GraphEmulator) -> None:
    client = app(emu)
    first = client.acquire_token_for_client(SCOPE)
    assert first["token_type"] == "Bearer" and first["expires_in"] == 3599
    assert first["access_token"].count(".") == 2  # JWT-shaped
    again = client.acquire_token_for_client(SCOPE)
    assert again["access_token"] == first["access_token"] and emu.tokens_issued == 1
    posts = [r for r in emu.requests if r.method == "POST"]
    assert [r.path for r in posts] == [f"/{emu.tenant_id}/oauth2/v2.0/token"]
    assert any(r.path.endswith("/v2.0/.well-known/openid-configuration") for r in emu.requests)


def test_wrong_secret_gets_the_identity_platforms_error(emu: GraphEmulator) -> None:
    result = app(emu, secret="not-the-secret").acquire_token_for_client(SCOPE)
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert "Trace ID:" in result["error_description"] and "correlation_id" in result
    assert [r.status for r in emu.requests if r.method == "POST"] == [401]


def test_unknown_app_scope_and_tenant(emu: GraphEmulator) -> None:
    unknown = app(emu, client_id="00000000-0000-0000-0000-000000000000")
    assert unknown.acquire_token_for_client(SCOPE)["error_codes"] == [700016]
    bad_scope = app(emu).acquire_token_for_client(["https://graph.microsoft.com/Mail.Read"])
    assert bad_scope["error"] == "invalid_scope" and bad_scope["error_codes"] == [1002012]
    with pytest.raises(ValueError, match="tenant"):
        app(emu, authority=f"{emu.url}/no-such-tenant")
    raw = requests.post(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token",
                        data={"grant_type": "password", "client_id": emu.client_id})
    assert raw.status_code == 400 and raw.json()["error"] == "unsupported_grant_type"


def test_msal_refuses_a_plain_http_authority() -> None:
    with GraphEmulator(tls=False) as plain, pytest.raises(ValueError, match="https"):
        msal.ConfidentialClientApplication(plain.client_id, client_credential=plain.client_secret,
                                           authority=plain.authority, instance_discovery=False)


# --- bearer tokens and permissions -----------------------------------------------------------
def test_missing_bad_and_expired_tokens(emu: GraphEmulator, ann: Mailbox) -> None:
    url = f"{emu.base_url}/users/{ann.address}/messages"
    none = requests.get(url).json()["error"]
    assert none["code"] == "InvalidAuthenticationToken" and none["message"] == "Access token is empty."
    assert requests.get(url, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    s = session(emu)
    assert s.get(url).status_code == 200
    emu.advance(3600)
    expired = s.get(url)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "Lifetime validation failed, the token is expired."


def test_permissions_come_from_admin_consent(emu: GraphEmulator, ann: Mailbox) -> None:
    emu.set_roles(["Calendars.Read"])
    s = session(emu)
    denied = s.get(f"{emu.base_url}/users/{ann.address}/messages")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorAccessDenied"
    assert s.get(f"{emu.base_url}/users/{ann.address}/calendarView?{WINDOW}").status_code == 200
    user = s.get(f"{emu.base_url}/users/{ann.address}")
    assert user.status_code == 403 and user.json()["error"]["code"] == "Authorization_RequestDenied"
    emu.set_roles(["User.Read.All"])
    assert session(emu).get(f"{emu.base_url}/users/{ann.id}").json()["mail"] == ann.address


def test_read_basic_never_returns_bodies(emu: GraphEmulator, ann: Mailbox) -> None:
    emu.add_message(ann, sender="bob@fabrikam.test", to=[ann], subject="hi", body="secret words")
    basic = session(emu).get(f"{emu.base_url}/users/{ann.address}/messages").json()["value"][0]
    assert "body" not in basic and "bodyPreview" not in basic and basic["subject"] == "hi"
    emu.set_roles(["Mail.Read"])
    full = session(emu).get(f"{emu.base_url}/users/{ann.address}/messages").json()["value"][0]
    assert full["body"]["content"] == "secret words"


def test_error_bodies_carry_inner_error(emu: GraphEmulator) -> None:
    r = session(emu).get(f"{emu.base_url}/users/nobody@contoso.test/messages",
                         headers={"client-request-id": "my-id"})
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "ErrorInvalidUser" and "nobody@contoso.test" in error["message"]
    assert error["innerError"]["client-request-id"] == "my-id"
    assert error["innerError"]["request-id"] == r.headers["request-id"]
    datetime.strptime(error["innerError"]["date"], "%Y-%m-%dT%H:%M:%S")


# --- messages --------------------------------------------------------------------------------
def test_messages_delta_pages_through_every_message_once(emu: GraphEmulator, ann: Mailbox) -> None:
    ids = fill(emu, ann, 25)
    items, _, pages = delta_round(session(emu), inbox_delta(emu, ann))
    assert sorted(i["id"] for i in items) == sorted(ids) and pages == 3
    first = items[0]
    assert first["@odata.type"] == "#microsoft.graph.message"
    assert set(first) == {"@odata.type", "@odata.etag", "id", "subject", "from"}
    assert first["from"] == {"emailAddress": {"name": "Bob Ray", "address": "bob@fabrikam.test"}}


def test_prefer_header_is_acknowledged_and_default_page_is_ten(emu: GraphEmulator,
                                                               ann: Mailbox) -> None:
    fill(emu, ann, 12)
    s = session(emu)
    r = s.get(inbox_delta(emu, ann), headers={"Prefer": "odata.maxpagesize=5"})
    assert r.headers["Preference-Applied"] == "odata.maxpagesize=5" and len(r.json()["value"]) == 5
    plain = s.get(inbox_delta(emu, ann))
    assert "Preference-Applied" not in plain.headers and len(plain.json()["value"]) == 10


def test_next_round_brings_only_changes_and_removals(emu: GraphEmulator, ann: Mailbox) -> None:
    ids = fill(emu, ann, 6)
    s = session(emu)
    _, delta, _ = delta_round(s, inbox_delta(emu, ann))
    quiet, delta, _ = delta_round(s, delta)
    assert quiet == []
    emu.update_message(ann, ids[0], subject="renamed")
    emu.delete_message(ann, ids[1])
    new = emu.add_message(ann, sender="eve@northwind.test", to=[ann], subject="new")
    changes, _, _ = delta_round(s, delta)
    by_id = {c["id"]: c for c in changes}
    assert set(by_id) == {ids[0], ids[1], new}
    assert by_id[ids[0]]["subject"] == "renamed" and set(by_id[ids[0]]) >= {"from"}  # $select kept
    assert by_id[ids[1]] == {"@odata.type": "#microsoft.graph.message", "id": ids[1],
                             "@removed": {"reason": "deleted"}}


def test_a_change_during_a_round_comes_in_the_next_round(emu: GraphEmulator, ann: Mailbox) -> None:
    ids = fill(emu, ann, 6)
    s = session(emu)
    first = s.get(inbox_delta(emu, ann), headers={"Prefer": "odata.maxpagesize=3"}).json()
    seen = {i["id"] for i in first["value"]}
    late = emu.add_message(ann, sender="eve@northwind.test", to=[ann], subject="late")
    emu.update_message(ann, next(iter(seen)), subject="touched")
    rest, delta, _ = delta_round(s, first["@odata.nextLink"], page=3)
    assert seen | {i["id"] for i in rest} == set(ids) and late not in {i["id"] for i in rest}
    following, _, _ = delta_round(s, delta)
    assert {i["id"] for i in following} == {late, next(iter(seen))}


def test_links_use_key_syntax_and_folders_answer_to_ids(emu: GraphEmulator, ann: Mailbox) -> None:
    fill(emu, ann, 3, "sentitems")
    s = session(emu)
    sent = emu.folder_id(ann, "sentitems")
    for ref in (sent, "SentItems", "sentitems"):
        url = f"{emu.base_url}/users/{ann.id}/MailFolders('{ref}')/messages/delta"
        assert len(s.get(url).json()["value"]) == 3
    body = s.get(inbox_delta(emu, ann)).json()
    assert "/mailFolders('inbox')/messages/delta?$deltatoken=" in body["@odata.deltaLink"]
    encoded = s.get(f"{emu.base_url}/users/ann%40contoso.test/mailFolders/SentItems/messages/delta")
    assert len(encoded.json()["value"]) == 3  # path segments are percent-decoded
    folder = s.get(f"{emu.base_url}/users/{ann.address}/mailFolders/sentitems").json()
    assert folder["id"] == sent and folder["displayName"] == "Sent Items"
    missing = s.get(f"{emu.base_url}/users/{ann.address}/mailFolders/nope/messages/delta")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ErrorItemNotFound"


def test_select_and_headers(emu: GraphEmulator, ann: Mailbox) -> None:
    emu.add_message(ann, sender="news@fabrikam.test", to=[ann], subject="News",
                    internet_message_id="<n1@fabrikam.test>", headers=[("List-Id", "<news.fab>")])
    s = session(emu)
    url = inbox_delta(emu, ann, "internetMessageId,internetMessageHeaders,toRecipients")
    item = s.get(url).json()["value"][0]
    headers = {h["name"]: h["value"] for h in item["internetMessageHeaders"]}
    assert headers["List-Id"] == "<news.fab>" and headers["Message-ID"] == "<n1@fabrikam.test>"
    assert item["internetMessageId"] == "<n1@fabrikam.test>"
    default = s.get(f"{emu.base_url}/users/{ann.address}/messages").json()["value"][0]
    assert "internetMessageHeaders" not in default and "conversationId" in default
    ids_only = s.get(inbox_delta(emu, ann, "id")).json()["value"][0]
    assert set(ids_only) == {"@odata.type", "@odata.etag", "id"}
    bad = s.get(inbox_delta(emu, ann, "subject,nosuch"))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "RequestBroker--ParseUri"
    assert "'nosuch'" in bad.json()["error"]["message"]


def test_message_list_pages_newest_first(emu: GraphEmulator, ann: Mailbox) -> None:
    fill(emu, ann, 5, "inbox")
    fill(emu, ann, 2, "sentitems")
    s = session(emu)
    r = s.get(f"{emu.base_url}/users/{ann.address}/messages?$top=4&$select=subject,receivedDateTime")
    body = r.json()
    times = [m["receivedDateTime"] for m in body["value"]]
    assert times == sorted(times, reverse=True) and len(times) == 4
    rest = s.get(body["@odata.nextLink"]).json()
    assert len(rest["value"]) == 3 and "@odata.nextLink" not in rest
    one = s.get(f"{emu.base_url}/users/{ann.address}/mailFolders/sentitems/messages").json()
    assert len(one["value"]) == 2


def test_tokens_are_per_folder_and_expire(emu: GraphEmulator, ann: Mailbox) -> None:
    fill(emu, ann, 2)
    s = session(emu)
    _, delta, _ = delta_round(s, inbox_delta(emu, ann))
    token = delta.split("$deltatoken=")[1]
    other = f"{emu.base_url}/users/{ann.address}/mailFolders/sentitems/messages/delta?$deltatoken={token}"
    assert s.get(other).status_code == 400
    assert s.get(delta.replace("$deltatoken=", "$deltatoken=zz")).status_code == 400
    emu.invalidate_delta_tokens(ann)
    gone = s.get(delta)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "syncStateNotFound"
    items, _, _ = delta_round(s, inbox_delta(emu, ann))  # a new initial round works
    assert len(items) == 2


# --- calendar --------------------------------------------------------------------------------
WEEKLY = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
          "range": {"type": "numbered", "startDate": "2024-03-04", "numberOfOccurrences": 4}}


def test_calendar_view_delta_expands_series_and_keeps_responses(emu: GraphEmulator,
                                                                ann: Mailbox) -> None:
    series = emu.add_event(ann, subject="Weekly", start=T0, end=T0 + timedelta(hours=1),
                           organizer=ann, attendees=[("carl@fabrikam.test", "accepted"),
                                                     ("dan@fabrikam.test", "declined")],
                           recurrence=WEEKLY)
    single = emu.add_event(ann, subject="Kickoff", start=T0 + timedelta(days=2),
                           end=T0 + timedelta(days=2, hours=1), organizer="carl@fabrikam.test",
                           attendees=[(ann.address, "tentativelyAccepted")], online=True)
    emu.add_event(ann, subject="Last year", start=T0 - timedelta(days=400),
                  end=T0 - timedelta(days=400, hours=-1), organizer=ann)
    items, _, _ = delta_round(session(emu), f"{emu.base_url}/users/{ann.address}/calendarView/delta?{WINDOW}", 3)
    occurrences = [i for i in items if i["type"] == "occurrence"]
    assert len(occurrences) == 4 and {o["seriesMasterId"] for o in occurrences} == {series}
    starts = sorted(o["start"]["dateTime"] for o in occurrences)
    assert starts[0] == "2024-03-04T09:00:00.0000000" and starts[-1] == "2024-03-25T09:00:00.0000000"
    assert len({o["iCalUId"] for o in occurrences}) == 4
    assert all(o["iCalUId"][32:40] == "07E80304" for o in occurrences if o["start"]["dateTime"] == starts[0])
    status = {a["emailAddress"]["address"]: a["status"]["response"] for a in occurrences[0]["attendees"]}
    assert status == {"carl@fabrikam.test": "accepted", "dan@fabrikam.test": "declined"}
    assert occurrences[0]["isOrganizer"] and occurrences[0]["responseStatus"]["response"] == "organizer"
    kickoff = next(i for i in items if i["id"] == single)
    assert kickoff["type"] == "singleInstance" and kickoff["isOnlineMeeting"]
    assert kickoff["responseStatus"]["response"] == "tentativelyAccepted" and not kickoff["isOrganizer"]
    assert len(items) == 5  # last year's meeting is outside the window; the master is not listed


def test_calendar_delta_reports_cancellations_deletions_and_responses(emu: GraphEmulator,
                                                                     ann: Mailbox) -> None:
    series = emu.add_event(ann, subject="Weekly", start=T0, end=T0 + timedelta(hours=1),
                           organizer=ann, attendees=["carl@fabrikam.test"], recurrence=WEEKLY)
    single = emu.add_event(ann, subject="One", start=T0, end=T0 + timedelta(hours=1),
                           organizer="carl@fabrikam.test", attendees=[(ann.address, "none")])
    gone = emu.add_event(ann, subject="Gone", start=T0, end=T0 + timedelta(hours=1), organizer=ann)
    s = session(emu)
    url = f"{emu.base_url}/users/{ann.address}/calendarView/delta?{WINDOW}"
    first, delta, _ = delta_round(s, url)
    second_monday = next(i["id"] for i in first if i["start"]["dateTime"].startswith("2024-03-11"))
    emu.cancel_occurrence(ann, series, date(2024, 3, 11))
    emu.respond(ann, single, ann.address, "accepted")
    emu.delete_event(ann, gone)
    changes, delta, _ = delta_round(s, delta)
    by_id = {c["id"]: c for c in changes}
    assert set(by_id) == {second_monday, single, gone}
    assert by_id[second_monday]["@removed"] == {"reason": "deleted"}
    assert by_id[gone]["@removed"] == {"reason": "deleted"}
    assert by_id[single]["responseStatus"]["response"] == "accepted"
    emu.update_event(ann, single, isCancelled=True)
    cancelled, _, _ = delta_round(s, delta)
    assert [c["isCancelled"] for c in cancelled] == [True]
    assert len(emu.events(ann, T0 - timedelta(days=1), T0 + timedelta(days=60))) == 4  # 3 + One


def test_calendar_view_needs_a_window(emu: GraphEmulator, ann: Mailbox) -> None:
    r = session(emu).get(f"{emu.base_url}/users/{ann.address}/calendarView/delta")
    assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorInvalidParameter"
    assert "StartDateTime and EndDateTime" in r.json()["error"]["message"]


def test_a_meeting_shares_its_ical_uid_across_mailboxes(emu: GraphEmulator, ann: Mailbox) -> None:
    bob = emu.add_mailbox("bob@contoso.test")
    ids = emu.add_meeting(ann, attendees=[(bob.address, "accepted"), ("eve@fabrikam.test", "accepted")],
                          subject="Pricing", start=T0, end=T0 + timedelta(hours=1))
    assert set(ids) == {ann.address, bob.address}
    uids = {emu.event(box, ids[box])["iCalUId"] for box in ids}
    assert len(uids) == 1
    mine = emu.event(bob.address, ids[bob.address])
    assert not mine["isOrganizer"] and mine["responseStatus"]["response"] == "accepted"


# --- faults and limits -----------------------------------------------------------------------
def test_throttling_with_and_without_retry_after(emu: GraphEmulator, ann: Mailbox) -> None:
    s = session(emu)
    url = f"{emu.base_url}/users/{ann.address}/messages"
    emu.add_fault(Fault.throttle(retry_after=3, path="/v1.0/users/", times=1))
    emu.add_fault(Fault.throttle(path="/v1.0/users/", after=1, times=1))
    first, second, third = s.get(url), s.get(url), s.get(url)
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    assert first.json()["error"]["code"] == "ApplicationThrottled"
    assert second.status_code == 429 and "Retry-After" not in second.headers
    assert third.status_code == 200
    assert [r.fault for r in emu.requests] == ["throttle", "throttle", None]


def test_server_errors(emu: GraphEmulator, ann: Mailbox) -> None:
    s = session(emu)
    url = f"{emu.base_url}/users/{ann.address}/messages"
    emu.add_fault(Fault.error(503, retry_after=1, times=1))
    emu.add_fault(Fault.error(504, after=1, times=1))
    emu.add_fault(Fault.error(502, after=2, times=1))
    unavailable, gateway, bad = s.get(url), s.get(url), s.get(url)
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "1"
    assert unavailable.json()["error"]["code"] == "serviceNotAvailable"
    assert gateway.status_code == 504 and "innerError" in gateway.json()["error"]
    assert bad.status_code == 502 and bad.headers["Content-Type"] == "text/html"


def test_dropped_connection_and_truncated_body(emu: GraphEmulator, ann: Mailbox) -> None:
    fill(emu, ann, 3)
    s = session(emu)
    url = inbox_delta(emu, ann)
    emu.add_fault(Fault.drop(times=1))
    with pytest.raises(requests.ConnectionError):
        s.get(url)
    emu.add_fault(Fault.truncate(times=1))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        s.get(url).json()
    assert len(s.get(url).json()["value"]) == 3
    assert [r.status for r in emu.requests][0] == 0  # the dropped request got no answer


def test_token_expiry_mid_paging_needs_a_new_token(emu: GraphEmulator, ann: Mailbox) -> None:
    fill(emu, ann, 6)
    client = app(emu)
    token = client.acquire_token_for_client(SCOPE)["access_token"]
    s = session(emu, token)
    first = s.get(inbox_delta(emu, ann), headers={"Prefer": "odata.maxpagesize=3"}).json()
    emu.add_fault(Fault.expire_token(path="*/messages/delta", times=1))
    failed = s.get(first["@odata.nextLink"])
    assert failed.status_code == 401
    assert failed.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert s.get(first["@odata.nextLink"]).status_code == 401  # the token stays expired
    assert client.acquire_token_for_client(SCOPE)["access_token"] == token  # msal's cache
    client.remove_tokens_for_client()
    fresh = client.acquire_token_for_client(SCOPE)["access_token"]
    assert fresh != token
    rest = session(emu, fresh).get(first["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=3"})
    assert rest.status_code == 200 and len(rest.json()["value"]) == 3


def test_stale_delta_fault_only_hits_delta_links(emu: GraphEmulator, ann: Mailbox) -> None:
    fill(emu, ann, 2)
    s = session(emu)
    emu.add_fault(Fault.stale_delta(times=1))
    _, delta, _ = delta_round(s, inbox_delta(emu, ann))  # the initial round is untouched
    gone = s.get(delta)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "syncStateNotFound"
    assert s.get(delta).status_code == 200


def test_mailbox_request_limit() -> None:
    with GraphEmulator(tls=False, limits=Limits(requests=3, window=600)) as emu:
        box = emu.add_mailbox("eve@contoso.test")
        s = session(emu)
        url = f"{emu.base_url}/users/{box.address}/messages"
        assert [s.get(url).status_code for _ in range(3)] == [200, 200, 200]
        throttled = s.get(url)
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
        emu.advance(601)
        assert s.get(url).status_code == 200


def test_plain_http_mode_for_requests() -> None:
    with GraphEmulator(tls=False) as plain:
        box = plain.add_mailbox("zed@contoso.test")
        assert plain.url.startswith("http://") and plain.ca_path is None
        r = session(plain).get(f"{plain.base_url}/users/{box.address}/mailFolders/inbox/messages/delta")
        assert r.status_code == 200 and r.json()["@odata.deltaLink"].startswith("http://")


def test_run_by_hand_prints_what_a_client_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crmlink.testing.graph_emulator", "--port", "0", "--messages", "40"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(8)]
        values = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].split()[0]
                  for line in lines[1:] if ":" in line}
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", values["CA bundle"])
        client = msal.ConfidentialClientApplication(
            values["client id"], client_credential=values["client secret"],
            authority=f"{values['authority url']}/emulator.onmicrosoft.com",
            instance_discovery=False)
        token = client.acquire_token_for_client(SCOPE)
        assert "access_token" in token, token
        mailbox = values["mailboxes"].rstrip(",")
        r = requests.get(f"{values['base url']}/users/{mailbox}/mailFolders/sentitems/messages/delta",
                         headers={"Authorization": f"Bearer {token['access_token']}"})
        assert r.status_code == 200 and r.json()["value"]
        assert "messages=4" in lines[-1] and json.dumps(r.json())
    finally:
        proc.terminate()
        proc.wait(timeout=5)
