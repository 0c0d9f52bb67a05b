"""The public ``SalesforceEmulator`` object: org state, credentials, faults, lifecycle."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from . import metadata, seed, writes
from .auth import ConnectedApp, UserCredentials
from .bulk import BulkJob
from .faults import Fault, FaultQueue
from .ingest import IngestJob
from .schema import OPPORTUNITY_STAGES, FieldDef
from .server import EmulatorHTTPServer, RequestRecord, make_server, tls_context
from .store import Clock, Store, id18

DEFAULT_USERNAME = "admin@crmlink-emulator.test"
DEFAULT_PASSWORD = "emulator-Passw0rd"
DEFAULT_TOKEN = "EMUTOKEN0123456789"
DEFAULT_CONSUMER_KEY = "3MVG9crmlinkEMULATORconsumerKEY"
DEFAULT_CONSUMER_SECRET = "emulator-consumer-secret"


class SalesforceEmulator:
    """A Salesforce org on 127.0.0.1 that the real simple-salesforce client can talk to."""

    def __init__(self, tls: bool = False, *, host: str = "127.0.0.1", port: int = 0,
                 api_version: str = "59.0", start_time: datetime | None = None,
                 tick: float = 0.0, default_batch_size: int = 2000,
                 api_limit: tuple[int, int] = (0, 15000)) -> None:
        self.tls, self.host, self.port = tls, host, port
        self.api_version = api_version
        self.clock = Clock(start_time, tick)
        self.store = Store(self.clock)
        self.org_id = id18("00D" + "Dn0" + "000000EMU")
        self.default_batch_size = default_batch_size
        self.bulk_in_progress_polls = 0
        self.users: dict[str, UserCredentials] = {}
        self.connected_apps: dict[str, ConnectedApp] = {}
        self.sessions: dict[str, str] = {}
        self.refresh_tokens: dict[str, tuple[str, str]] = {}
        self.faults = FaultQueue()
        self.requests: list[RequestRecord] = []
        self.errors: list[str] = []
        self.cursors: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self.max_query_cursors = 10  # per user, as in Salesforce; the oldest is released
        self.bulk_jobs: dict[str, BulkJob] = {}
        self.ingest_jobs: dict[str, IngestJob] = {}
        self.ca_path: str | None = None
        self._api_used, self._api_total = api_limit
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        self._seed_refs: dict[str, str] = {}
        #: Metadata API components by type and full name (metadata.py)
        self.metadata: dict[str, dict[str, Any]] = {}
        #: write rules for rehearsing pushes (writes.py)
        self.rules = writes.Rules()
        self._bootstrap()

    # ---- bootstrap ----------------------------------------------------------------------
    def _bootstrap(self) -> None:
        profile = self.store.insert("Profile", {"Name": "System Administrator",
                                                "UserType": "Standard"})
        role = self.store.insert("UserRole", {"Name": "CEO", "DeveloperName": "CEO"})
        admin = self.add_user(DEFAULT_USERNAME, DEFAULT_PASSWORD, DEFAULT_TOKEN,
                              FirstName="Emma", LastName="Admin", ProfileId=profile,
                              UserRoleId=role, Title="Salesforce Administrator")
        self.store.default_user_id = admin.user_id
        for table in ("Profile", "UserRole", "User"):
            for rec in self.store.rows(table):
                rec["CreatedById"] = rec["LastModifiedById"] = admin.user_id
        self.add_connected_app(DEFAULT_CONSUMER_KEY, DEFAULT_CONSUMER_SECRET,
                               run_as=DEFAULT_USERNAME)
        for i, (label, prob, cat, cat_name, closed, won) in enumerate(OPPORTUNITY_STAGES):
            self.store.insert("OpportunityStage", {
                "MasterLabel": label, "ApiName": label, "SortOrder": i + 1,
                "DefaultProbability": prob, "ForecastCategory": cat,
                "ForecastCategoryName": cat_name, "IsClosed": closed, "IsWon": won,
                "IsActive": True})
        metadata.bootstrap(self)
        self.session_id = self.new_session(DEFAULT_USERNAME)

    # ---- clock --------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.clock.now

    @now.setter
    def now(self, value: datetime) -> None:
        self.clock.now = value

    def advance(self, seconds: float) -> datetime:
        return self.clock.advance(seconds)

    # ---- data ---------------------------------------------------------------------------
    def insert(self, obj: str, values: dict[str, Any]) -> str:
        """Create a record as the default user; system fields may be given to backdate."""
        return self.store.insert(obj, values)

    def update(self, obj: str, record_id: str, values: dict[str, Any]) -> None:
        self.store.update(obj, record_id, values)

    def delete(self, obj: str, record_id: str) -> None:
        """Soft delete: IsDeleted=true, visible only through queryAll."""
        self.store.delete(obj, record_id)

    def undelete(self, obj: str, record_id: str) -> None:
        self.store.undelete(obj, record_id)

    def hard_delete(self, obj: str, record_id: str) -> None:
        self.store.hard_delete(obj, record_id)

    def touch(self, obj: str, record_id: str) -> None:
        """Bump only SystemModstamp, like a roll-up or other system process."""
        self.store.touch(obj, record_id)

    def records(self, obj: str, include_deleted: bool = True) -> list[dict[str, Any]]:
        """Ground truth as JSON-style values (datetimes as Salesforce strings)."""
        return [self.store.as_json(obj, r) for r in self.store.rows(obj, include_deleted)]

    def get(self, obj: str, record_id: str) -> dict[str, Any] | None:
        rec = self.store.get(obj, record_id)
        return self.store.as_json(obj, rec) if rec else None

    def add_object(self, name: str, plural: str | None = None) -> None:
        self.store.add_object(name, plural)

    def add_field(self, obj: str, name: str, type: str = "string", **kw: Any) -> FieldDef:  # noqa: A002
        """Add a (custom) field; kw: values=[...] for picklists, reference_to=[...], label..."""
        return self.store.add_field(obj, name, type, **kw)

    def hide_field(self, obj: str, field: str, username: str | None = None) -> None:
        """Field-level security: hide from describe/SOQL for one user (or everyone)."""
        od = self.store.obj(obj)
        self.store.hidden.setdefault((od.name.lower(), field.lower()), set()).add(username)

    def unhide_field(self, obj: str, field: str) -> None:
        self.store.hidden.pop((self.store.obj(obj).name.lower(), field.lower()), None)

    def add_validation_rule(self, obj: str, name: str, fails: Any, message: str,
                            field: str | None = None) -> None:
        """A validation rule: an API write of ``obj`` whose resulting record makes
        ``fails(record)`` true is refused with FIELD_CUSTOM_VALIDATION_EXCEPTION."""
        self.rules.validations.append(writes.ValidationRule(self.store.obj(obj).name, name, fails, message, field))

    def lock_record(self, record_id: str, times: int | None = 1) -> None:
        """The next ``times`` API writes of the record (None: all) fail with UNABLE_TO_LOCK_ROW,
        as when another transaction holds it."""
        self.rules.locks[record_id] = times

    def set_field_permission(self, permission_set: str, field: str, *, editable: bool) -> None:
        """Change one grant of a permission set (``field`` as Object.Field__c)."""
        obj, _, name = field.partition(".")
        self.store.grants.setdefault(permission_set, {})[(obj.lower(), name.lower())] = editable

    def seed_tree_json(self, path: str | Path) -> list[str]:
        """Load an sObject Tree JSON file; ``@Ref`` references resolve across loaded files."""
        return seed.load_tree(self, Path(path), self._seed_refs)

    def seed_plan(self, path: str | Path) -> dict[str, int]:
        """Load a directory (or plan file) following ``data-plan.json``; counts per object."""
        return seed.load_plan(self, Path(path), self._seed_refs)

    # ---- credentials ----------------------------------------------------------------------
    def add_user(self, username: str, password: str, security_token: str = "",
                 **fields: Any) -> UserCredentials:
        values = {"Username": username, "Email": fields.pop("Email", username),
                  "LastName": fields.pop("LastName", username.split("@")[0]),
                  "Alias": username[:8], **fields}
        user_id = self.store.insert("User", values)
        creds = UserCredentials(username, password, security_token, user_id)
        self.users[username] = creds
        return creds

    def add_connected_app(self, consumer_key: str, consumer_secret: str,
                          run_as: str | None = None,
                          jwt_public_key: str | None = None) -> ConnectedApp:
        app = ConnectedApp(consumer_key, consumer_secret, run_as, jwt_public_key)
        self.connected_apps[consumer_key] = app
        return app

    @property
    def consumer_keys(self) -> dict[str, str]:
        return {k: app.consumer_secret for k, app in self.connected_apps.items()}

    @property
    def valid_session_ids(self) -> set[str]:
        return set(self.sessions)

    def new_session(self, username: str | None = None) -> str:
        name = username or DEFAULT_USERNAME
        if name not in self.users:
            raise KeyError(f"unknown user {name}")
        sid = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
        self.sessions[sid] = name
        return sid

    def expire_sessions(self) -> None:
        """Every current session id becomes invalid (401 INVALID_SESSION_ID)."""
        self.sessions.clear()

    def issue_refresh_token(self, username: str | None = None,
                            consumer_key: str = DEFAULT_CONSUMER_KEY) -> str:
        token = "5Aep8" + secrets.token_urlsafe(48)
        self.refresh_tokens[token] = (username or DEFAULT_USERNAME, consumer_key)
        return token

    # ---- API usage ----------------------------------------------------------------------
    @property
    def api_limit(self) -> tuple[int, int]:
        return self._api_used, self._api_total

    @api_limit.setter
    def api_limit(self, value: tuple[int, int]) -> None:
        with self._lock:
            self._api_used, self._api_total = int(value[0]), int(value[1])

    def consume_api_call(self) -> bool:
        with self._lock:
            if self._api_used >= self._api_total:
                return False
            self._api_used += 1
            return True

    # ---- faults and log -----------------------------------------------------------------
    def add_fault(self, *faults: Fault) -> None:
        self.faults.add(*faults)

    def log_request(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def sleep(self, seconds: float) -> None:
        """Interruptible sleep for delay/timeout faults (``stop()`` wakes it)."""
        self._stop_event.wait(seconds)

    # ---- lifecycle ----------------------------------------------------------------------
    @property
    def instance_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started: call start() first")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    base_url = instance_url

    def start(self) -> str:
        if self._server is not None:
            return self.instance_url
        context = None
        if self.tls:
            self._tmpdir = tempfile.mkdtemp(prefix="sf-emulator-")
            context, self.ca_path = tls_context(self._tmpdir)
        self._stop_event.clear()
        self._server = make_server(self, self.host, self.port, context)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"sf-emulator-{self.port}", daemon=True)
        self._thread.start()
        return self.instance_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stop_event.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> SalesforceEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
