"""The HTTP side: a requests session with a default timeout, simple-salesforce, session
renewal, the API budget, describe-driven field lists and query paging (REST or Bulk 2.0).

No retries happen here except one re-login after an expired session: the host's sync
engine retries :class:`~crmlink.RetriableError` (see ``classify_error``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

from crmlink import BudgetExhausted

from .auth import API_VERSION, Session, flow_of, login

T = TypeVar("T")
#: Types never selected: compound fields (their parts are selected) and blobs.
SKIPPED_TYPES = {"address", "location", "base64"}


class TimeoutAdapter(HTTPAdapter):
    """An HTTPAdapter that gives every request a timeout and never retries (the host does)."""

    def __init__(self, timeout: float, on_send: Callable[[], None]) -> None:
        self.default_timeout = timeout
        self.on_send = on_send
        #: the Retry-After header of the last response (simple-salesforce's errors drop headers)
        self.retry_after: str | None = None
        super().__init__(max_retries=0)

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        self.on_send()
        if kw.get("timeout") is None:
            kw["timeout"] = self.default_timeout
        response = super().send(request, **kw)
        self.retry_after = response.headers.get("Retry-After")
        return response


class Client:
    """One run's connection to one org."""

    def __init__(self, config: Mapping[str, Any],
                 session_factory: Callable[[], requests.Session] | None = None) -> None:
        self.config = config
        self.flow = flow_of(config)
        self.budget = int(config["api_budget"]) if config.get("api_budget") else None
        self.page_size = int(config.get("page_size") or 2000)
        self.requests_made = 0
        self.http = session_factory() if session_factory else requests.Session()
        adapter = self.adapter = TimeoutAdapter(float(config.get("timeout") or 30), self._count)
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)
        self._sf: Salesforce | None = None
        self._describes: dict[str, dict[str, Any]] = {}

    # ---- session --------------------------------------------------------------------------
    def _count(self) -> None:
        if self.budget is not None and self.requests_made >= self.budget:
            raise BudgetExhausted(
                f"salesforce: the API budget of {self.budget} requests for this run is used up; "
                "what was synced so far is kept and the next run resumes from there")
        self.requests_made += 1

    @property
    def session_id(self) -> str | None:
        """The token of the current session, once logged in (a secret)."""
        return self._sf.session_id if self._sf is not None else None

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._connect()
        return self._sf

    def _connect(self) -> Salesforce:
        s: Session = login(self.config, self.http)
        return Salesforce(session_id=s.session_id, instance=s.instance, session=self.http,
                          version=API_VERSION)

    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run ``fn(sf)``; after an expired session log in again once and repeat it."""
        try:
            result = fn(self.sf)
        except SalesforceExpiredSession:
            if self.flow == "direct":
                raise
            self._sf = self._connect()
            result = fn(self._sf)
        self._check_org_limit()
        return result

    def _check_org_limit(self) -> None:
        usage = (self._sf.api_usage or {}).get("api-usage") if self._sf is not None else None
        if usage is not None and usage.total and usage.used >= usage.total:
            raise BudgetExhausted(
                f"salesforce: the org's daily API limit is used up ({usage.used}/{usage.total}); "
                "what was synced so far is kept; run again after the limit resets")

    # ---- describe -------------------------------------------------------------------------
    def describe(self, obj: str) -> dict[str, Any]:
        if obj not in self._describes:
            self._describes[obj] = self.call(lambda sf: getattr(sf, obj).describe())
        return self._describes[obj]

    def fields(self, obj: str, wanted: list[str], extra: bool = True) -> list[str]:
        """``wanted`` fields the user can read on ``obj`` (others skipped), plus the other
        readable scalar fields when ``extra`` (they go to the record's ``extra``)."""
        described = {f["name"].lower(): f for f in self.describe(obj).get("fields", [])}
        chosen: list[str] = []
        seen: set[str] = set()
        for name in wanted:
            if name and name.lower() in described and name.lower() not in seen:
                chosen.append(described[name.lower()]["name"])
                seen.add(name.lower())
        if extra:
            for key, f in described.items():
                if key in seen or f.get("type") in SKIPPED_TYPES or f.get("type") == "textarea":
                    continue
                chosen.append(f["name"])
                seen.add(key)
        return chosen

    def has_object(self, obj: str) -> bool:
        try:
            self.describe(obj)
        except SalesforceMalformedRequest:
            return False
        except Exception as exc:  # 404 NOT_FOUND for an object the org lacks
            if getattr(exc, "status", None) == 404:
                return False
            raise
        return True

    # ---- queries --------------------------------------------------------------------------
    def pages(self, soql: str, include_deleted: bool = True,
              page_size: int | None = None) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(totalSize, records) per page, following ``nextRecordsUrl`` (never OFFSET);
        ``page_size`` overrides ``--page-size`` (the id listing of --reconcile asks for 2000)."""
        headers = {"Sforce-Query-Options": f"batchSize={page_size or self.page_size}"}
        result = self.call(lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers))
        while True:
            yield int(result.get("totalSize") or 0), result["records"]
            if result.get("done", True):
                return
            result = self._query_more(result["nextRecordsUrl"], headers)

    def _query_more(self, url: str, headers: Mapping[str, str]) -> dict[str, Any]:
        """The query result page at ``nextRecordsUrl``."""
        return self.call(lambda sf: sf.query_more(url, identifier_is_url=True, headers=headers))

    def bulk_rows(self, obj: str, soql: str, include_deleted: bool = True) -> Iterator[dict[str, Any]]:
        """Rows of a Bulk API 2.0 query job, as dicts of strings (empty -> None)."""
        def pages(sf: Salesforce) -> Iterator[str]:
            handler = getattr(sf.bulk2, obj)
            run = handler.query_all if include_deleted else handler.query
            return run(soql, max_records=50_000, wait=float(self.config.get("bulk_wait") or 1))

        for page in self.call(pages):
            for row in csv.DictReader(io.StringIO(page)):
                yield {k: (v if v != "" else None) for k, v in row.items()}
