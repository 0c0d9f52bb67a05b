"""A stream base for connectors that read a JSON HTTP API: declare, don't write, the
requests.

A :class:`RestStream` subclass names its endpoint (``url_base``, ``path``, ``params``),
where the items are in an answer (``records_path``), how pages follow each other
(``paginator``: offset, cursor or next-link), the token header (``auth_header``), the
item field that says when an item last changed (``replication_key``, for incremental
syncs) and maps one item to a canonical record (:meth:`RestStream.to_record`). The base
makes the requests with one :mod:`requests` session, pages, filters by the saved cursor,
yields an item that does not fit the model as its ``InvalidRecord`` and keeps the cursor.

It never retries. A 429 (with the server's Retry-After), a 5xx, a timeout, a dropped
connection or a truncated answer raises :class:`~crmlink.RetriableError`, and the sync
engine's one retry policy (the ``[retry]`` settings) restarts the stream from its last
checkpoint, as for the Salesforce and HubSpot connectors. docs/plugins/writing-a-connector.md
builds a whole connector on it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin, urlsplit

from crmlink.core.connector import Stream
from crmlink.core.errors import (
    AuthError,
    ConfigError,
    CrmlinkError,
    FatalError,
    InvalidRecord,
    RetriableError,
)
from crmlink.core.model import Record, parse_datetime

if TYPE_CHECKING:
    import requests

#: Headers that say how long until a rate-limit window resets, in seconds.
RESET_HEADERS = ("RateLimit-Reset", "X-RateLimit-Reset")


def dig(body: Any, path: str | None) -> Any:
    """The value at a dotted ``path`` (``additional_data.pagination.next_start``) of a
    decoded JSON body, ``None`` where a step is missing; the body itself when ``path``
    is empty."""
    if not path:
        return body
    for step in path.split("."):
        if not isinstance(body, Mapping):
            return None
        body = body.get(step)
    return body


@dataclass(frozen=True)
class Request:
    """One page to ask for: a URL and its query parameters."""

    url: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One answer: its decoded body, its items, and the URL its ``Link`` header gives as
    ``rel="next"`` (if any)."""

    body: Any
    items: list[Any]
    next_link: str | None = None


class Paginator:
    """How one page follows another. The base class reads a single page."""

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The query parameters of the first page, given the stream's own."""
        return dict(params)

    def next(self, request: Request, page: Page) -> Request | None:
        """The request for the page after ``page`` (asked for by ``request``), or ``None``."""
        return None


@dataclass(frozen=True)
class OffsetPaginator(Paginator):
    """Pages by position: ``?start=0&limit=500``, then ``start=500`` ...

    ``more_path`` names the body's flag that more pages exist and ``next_path`` the
    next offset, when the API gives them (Pipedrive: ``additional_data.pagination.
    more_items_in_collection`` and ``.next_start``). Without ``more_path`` a page
    shorter than ``page_size`` is the last; without ``next_path`` the next offset is
    this one plus the items read.
    """

    offset_param: str = "offset"
    limit_param: str = "limit"
    page_size: int = 100
    more_path: str | None = None
    next_path: str | None = None

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, self.offset_param: 0, self.limit_param: self.page_size}

    def next(self, request: Request, page: Page) -> Request | None:
        more = dig(page.body, self.more_path) if self.more_path else len(page.items) >= self.page_size
        if not more or not page.items:
            return None
        offset = dig(page.body, self.next_path) if self.next_path else None
        if offset is None:
            offset = int(request.params.get(self.offset_param) or 0) + len(page.items)
        return Request(request.url, {**request.params, self.offset_param: offset})


@dataclass(frozen=True)
class CursorPaginator(Paginator):
    """Pages by an opaque cursor the answer gives at ``cursor_path`` (``next_cursor``,
    ``paging.next.after``) and the next request sends back as ``cursor_param``; no
    cursor means the last page."""

    cursor_path: str = "next_cursor"
    cursor_param: str = "cursor"
    limit_param: str | None = "limit"
    page_size: int = 100

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, self.limit_param: self.page_size} if self.limit_param else dict(params)

    def next(self, request: Request, page: Page) -> Request | None:
        cursor = dig(page.body, self.cursor_path)
        if cursor in (None, ""):
            return None
        return Request(request.url, {**request.params, self.cursor_param: cursor})


@dataclass(frozen=True)
class NextLinkPaginator(Paginator):
    """Follows the link to the next page: a URL in the body at ``link_path`` (``next``,
    ``paging.next.link``), or else the ``Link: <url>; rel="next"`` header. The link is
    asked for as given (it carries its own query); a relative one is resolved against
    the current URL. ``limit_param`` and ``page_size`` go on the first request only."""

    link_path: str | None = None
    limit_param: str | None = None
    page_size: int = 100

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, self.limit_param: self.page_size} if self.limit_param else dict(params)

    def next(self, request: Request, page: Page) -> Request | None:
        link = dig(page.body, self.link_path) if self.link_path else page.next_link
        return Request(urljoin(request.url, str(link))) if link else None


class RestStream(Stream):
    """A stream read from one endpoint of a JSON HTTP API.

    Set ``name``, ``entity``, ``path`` and :meth:`to_record`; the rest has defaults.
    The connector passes its resolved settings (``self.config``): ``base_url``, when the
    connector declares it, replaces ``url_base`` (a sandbox, a proxy, a test server),
    and ``token_setting`` names the setting ``auth_header`` carries.
    """

    url_base: ClassVar[str] = ""
    #: appended to the base URL: ``/v1/organizations``
    path: ClassVar[str] = ""
    #: query parameters of every request (``{"sort": "update_time ASC"}``)
    params: ClassVar[Mapping[str, Any]] = {}
    #: where the list of items is in an answer (``data``); ``None``: the answer is the list
    records_path: ClassVar[str | None] = None
    paginator: ClassVar[Paginator] = Paginator()
    #: the item field holding when the item last changed: records are filtered by it
    #: from the saved cursor and it fills ``modified_at`` when ``to_record`` leaves it blank.
    #: ``None``: the stream is read whole every time.
    replication_key: ClassVar[str | None] = None
    #: the query parameter that asks the server for items changed since the cursor
    #: (``updated_since``), formatted by :meth:`format_since`; without it the base filters
    #: what the server sends
    since_param: ClassVar[str | None] = None
    #: the header carrying the token (``x-api-token``, ``Authorization``), and its scheme
    #: (``Bearer``) if any
    auth_header: ClassVar[str | None] = None
    auth_scheme: ClassVar[str | None] = None
    token_setting: ClassVar[str] = "api_token"
    #: the item field holding its id, for :meth:`remote_ids`
    id_key: ClassVar[str] = "id"
    #: seconds to wait for an answer
    timeout: ClassVar[float] = 60.0
    #: seconds to wait after a 429 that gives neither Retry-After nor a reset header
    #: (the length of the API's rate-limit window)
    rate_limit_window: ClassVar[float | None] = None

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.latest: datetime | None = None  # the newest modified_at yielded by this read
        self._session: requests.Session | None = None

    # -- what a subclass declares ------------------------------------------------------------

    def to_record(self, item: Any) -> Record | None:
        """The canonical record of one item, or ``None`` to leave it out. Raise
        :class:`~crmlink.InvalidRecord` (building the record does) for an item that does
        not fit: the base yields it, so the sync skips it under ``--on-error skip``."""
        raise NotImplementedError(f"{type(self).__name__} must define to_record(item)")

    def http_headers(self) -> dict[str, str]:
        """Headers of every request: JSON, and the token when ``auth_header`` is set."""
        from crmlink import __version__

        headers = {"Accept": "application/json", "User-Agent": f"crmlink/{__version__}"}
        token = self.config.get(self.token_setting) if self.auth_header else None
        if self.auth_header and token:
            headers[self.auth_header] = f"{self.auth_scheme} {token}" if self.auth_scheme else str(token)
        return headers

    def request_params(self, since: datetime | None) -> dict[str, Any]:
        """The stream's query parameters, with ``since_param`` when there is a cursor."""
        params = dict(self.params)
        if since is not None and self.since_param:
            params[self.since_param] = self.format_since(since)
        return params

    def format_since(self, since: datetime) -> str:
        """The cursor as ``since_param`` sends it: ISO 8601 in UTC by default."""
        return since.isoformat()

    def parse_time(self, value: Any) -> datetime | None:
        """A ``replication_key`` value as an aware datetime (ISO 8601, or the API's own
        format: override this)."""
        return parse_datetime(value)

    def classify_response(self, response: requests.Response) -> CrmlinkError | None:
        """The error an answer means, or ``None`` for a good one. Override it to catch an
        API's own signals first (a daily quota: :class:`~crmlink.BudgetExhausted`) and
        fall back on this."""
        return classify_response(response, self.rate_limit_window, self.token_setting)

    # -- reading ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or self.url_base).rstrip("/")

    def records(self, state: Mapping[str, Any] | None) -> Iterator[Record | InvalidRecord]:
        """Every item changed since ``state["since"]`` (inclusive), as a record."""
        since = parse_datetime((state or {}).get("since")) if self.replication_key else None
        self.latest = since
        for item in self.items(since):
            stamp = self.parse_time(dig(item, self.replication_key)) if self.replication_key else None
            if since is not None and stamp is not None and stamp < since:
                continue
            try:
                record = self.to_record(item)
            except InvalidRecord as exc:
                yield exc
                continue
            if record is None:
                continue
            if record.modified_at is None:
                record.modified_at = stamp
            if record.modified_at is not None and (self.latest is None or record.modified_at > self.latest):
                self.latest = record.modified_at
            yield record

    def next_state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """An unsorted incremental stream resumes from the newest change it read; a sorted
        one from its last checkpoint (``None``)."""
        if self.is_sorted or not self.replication_key or self.latest is None:
            return None
        return {"since": self.latest.isoformat()}

    def remote_ids(self) -> list[str] | None:
        """Every id the endpoint lists now, when the connector's ``reconcile`` setting is
        on (hard deletes are then caught); ``None`` otherwise."""
        if not self.config.get("reconcile"):
            return None
        return [str(item[self.id_key]) for item in self.items(None)]

    def items(self, since: datetime | None) -> Iterator[Any]:
        """The raw items of every page, in order."""
        request: Request | None = Request(self.base_url + self.path,
                                          self.paginator.first(self.request_params(since)))
        while request is not None:
            page = self.fetch(request)
            yield from page.items
            following = self.paginator.next(request, page)
            if following == request:
                raise FatalError(f"{_where(request.url)} gave the same page again: the API's "
                                 f"pagination does not advance (stream {self.name})")
            request = following

    def fetch(self, request: Request) -> Page:
        """Ask for one page and decode it, or raise the crmlink error its failure means."""
        import requests

        try:
            response = self.session.get(request.url, params=request.params,
                                        headers=self.http_headers(), timeout=self.timeout)
        except requests.RequestException as exc:
            raise classify_exception(exc, request.url) from None
        error = self.classify_response(response)
        if error is not None:
            raise error
        try:
            body = response.json()
        except ValueError:
            raise RetriableError(f"the answer from {_where(request.url)} was not complete JSON "
                                 "(cut off?); will retry") from None
        items = dig(body, self.records_path)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise FatalError(f"the answer from {_where(request.url)} has no list at "
                             f"{self.records_path or 'its top level'!r}; check records_path of "
                             f"stream {self.name}")
        return Page(body, items, (response.links.get("next") or {}).get("url"))

    @property
    def session(self) -> requests.Session:
        """One HTTP session (a connection pool) for the stream's requests."""
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session


def _where(url: str) -> str:
    """A URL without its query (which may carry a credential) for messages."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds a ``Retry-After`` header asks for (a number or an HTTP date)."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _reset_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until the rate-limit window resets, from ``RateLimit-Reset`` style headers
    (a delay in seconds; an epoch timestamp is turned into one)."""
    for name in RESET_HEADERS:
        try:
            value = float(headers.get(name) or "")
        except ValueError:
            continue
        return max(0.0, value - time.time()) if value > 1e9 else max(0.0, value)
    return None


def classify_response(response: requests.Response, window: float | None = None,
                      token_setting: str = "api_token") -> CrmlinkError | None:
    """The crmlink error an HTTP answer means: 429, 408 and 5xx are retriable (with the
    server's Retry-After), 401 is an authentication error, any other 4xx is fatal."""
    status = response.status_code
    if status < 400:
        return None
    where = f"GET {_where(response.url)}"
    if status == 429:
        after = retry_after(response.headers)
        said = f"; the server asked to wait {after:g}s" if after is not None else ""
        return RetriableError(f"{where} hit the API's rate limit (HTTP 429){said}",
                              retry_after=after, suggested_wait=_reset_wait(response.headers) or window)
    if status == 408 or status >= 500:
        return RetriableError(f"{where} failed temporarily (HTTP {status}); will retry",
                              retry_after=retry_after(response.headers))
    if status == 401:
        flag = "--" + token_setting.replace("_", "-")
        return AuthError(f"{where} was refused (HTTP 401): the credentials are wrong or expired; "
                         f"check {flag}")
    if status == 403:
        return FatalError(f"{where} is not allowed (HTTP 403): the credentials lack the permission")
    return FatalError(f"{where} failed (HTTP {status}): {_reason(response)}")


def _reason(response: requests.Response) -> str:
    """The API's own error message, shortened."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        for key in ("error", "message", "error_description", "detail"):
            text = body.get(key)
            if isinstance(text, str):
                return text[:200]
    return (response.text or response.reason or "no reason given").strip()[:200]


def classify_exception(exc: BaseException, url: str) -> CrmlinkError:
    """The crmlink error a failed request (a :mod:`requests` exception) means: a bad URL
    is a configuration error, anything else (refused or dropped connection, timeout, an
    answer cut off) is retriable."""
    import requests

    if isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                        requests.exceptions.InvalidURL)):
        return ConfigError(f"{url!r} is not a URL crmlink can reach; "
                           "check --base-url (e.g. https://api.example.com)")
    name = type(exc).__name__
    return RetriableError(f"no answer from {_where(url)} ({name}); will retry")


__all__ = ["RestStream", "Paginator", "OffsetPaginator", "CursorPaginator", "NextLinkPaginator",
           "Request", "Page", "dig", "retry_after", "classify_response", "classify_exception"]
