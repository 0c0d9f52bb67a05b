"""``HubSpotEmulator``: the public facade over state, engine and HTTP server."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from crmlink.testing.emulation import EmulatorControls, ServerThread

from .auth import DEFAULT_TOKEN, Auth
from .clock import Clock, to_ms
from .engine import Engine
from .limits import RateLimiter, RateLimits
from .pipelines import Pipelines
from .server import server_thread
from .store import Store, require_type
from .wire import Context, Options


class HubSpotEmulator(EmulatorControls):
    """An in-process HubSpot CRM API on 127.0.0.1 for the real hubspot-api-client.

    >>> with HubSpotEmulator() as emu:
    ...     cid = emu.add("contacts", {"email": "ada@example.com"})
    ...     client = HubSpot(access_token=emu.token, host=emu.url)
    """

    clock: Clock
    _engine: Engine

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 rate_limits: RateLimits | None = None, clock: Clock | None = None,
                 delay: float = 0.0, portal_id: int = 62515) -> None:
        self.clock = clock or Clock()
        self._store = Store(self.clock)
        self.options = Options(portal_id=portal_id)
        self.auth = Auth(self.clock)
        self.rate_limits = rate_limits or RateLimits()
        self._limiter = RateLimiter(self.rate_limits, self.clock)
        self._engine = Engine(Context(self._store, self.options, self.auth), self._limiter)
        self._engine.delay = delay
        self._host, self._port = host, port
        self._server: ServerThread | None = None
        self.url = ""

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> str:
        """Start serving; returns the base URL ``http://127.0.0.1:PORT``."""
        if self._server is None:
            self._server = server_thread(self._engine, self._host, self._port)
            self._server.start()
            self.url = f"http://{self._host}:{self._server.port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def port(self) -> int:
        return self._server.port if self._server else 0

    # --- objects --------------------------------------------------------------------------
    def add(self, object_type: str, properties: Mapping[str, Any] | None = None, *,
            at: datetime | float | str | None = None) -> str:
        """Create an object; returns its id. ``at`` backdates it (datetime or epoch ms)."""
        with self._store.lock:
            return self._store.add(object_type, properties or {}, _ms(at))

    def add_many(self, object_type: str, rows: Iterable[Mapping[str, Any]], *,
                 at: datetime | float | str | None = None) -> list[str]:
        """Bulk create (one lock acquisition; ~10k contacts in well under a second)."""
        with self._store.lock:
            return [self._store.add(object_type, row, _ms(at)) for row in rows]

    def update(self, object_type: str, object_id: str, properties: Mapping[str, Any], *,
               at: datetime | float | str | None = None) -> None:
        with self._store.lock:
            self._store.update(object_type, object_id, properties, _ms(at))

    def archive(self, object_type: str, object_id: str) -> None:
        with self._store.lock:
            self._store.archive(object_type, object_id)

    def restore(self, object_type: str, object_id: str) -> None:
        with self._store.lock:
            self._store.restore(object_type, object_id)

    def get(self, object_type: str, object_id: str) -> dict[str, Any]:
        """Ground truth for one object (every property), or KeyError."""
        with self._store.lock:
            obj = self._store.get(require_type(object_type), object_id)
            if obj is None:
                raise KeyError(f"no {object_type} with id {object_id}")
            return obj.to_json()

    def objects(self, object_type: str, archived: bool | None = None) -> list[dict[str, Any]]:
        """Ground truth: every object of a type (``archived=None``: active and archived)."""
        with self._store.lock:
            return [o.to_json() for o in self._store.iter(require_type(object_type), archived)]

    def add_property(self, object_type: str, name: str, type: str = "string",
                     options: list[str] | None = None, **kwargs: Any) -> None:
        """Custom property; type is string|number|datetime|date|enumeration|bool."""
        with self._store.lock:
            self._store.add_property(object_type, name, type, options, **kwargs)

    def property_names(self, object_type: str) -> set[str]:
        """The names of every property ``object_type`` has (HubSpot's and custom ones)."""
        with self._store.lock:
            return set(self._store.schema[require_type(object_type)])

    def refuse_update(self, object_type: str, object_id: str, message: str) -> None:
        """Batch updates of this object are refused (VALIDATION_ERROR) with ``message``, as a
        record HubSpot will not change; ``message=""`` lifts it."""
        with self._store.lock:
            key = (require_type(object_type), str(object_id))
            if message:
                self._store.refused[key] = message
            else:
                self._store.refused.pop(key, None)

    # --- associations ---------------------------------------------------------------------
    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str,
                  label: str | None = None, type_id: int | None = None) -> None:
        """Associate two objects both ways. ``label="Primary"`` is HubSpot-defined; other
        labels are USER_DEFINED and created on first use (an unlabeled edge is added too)."""
        with self._store.lock:
            ftype, ttype = require_type(from_type), require_type(to_type)
            for otype, oid in ((ftype, from_id), (ttype, to_id)):
                if self._store.get(otype, oid) is None:
                    raise KeyError(f"no {otype} with id {oid}")
            self._store.associations.add(ftype, int(from_id), ttype, int(to_id), label, type_id)

    def dissociate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        with self._store.lock:
            self._store.associations.remove(require_type(from_type), int(from_id),
                                            require_type(to_type), int(to_id))

    def define_association_label(self, from_type: str, to_type: str, label: str, *,
                                 type_id: int | None = None,
                                 inverse_label: str | None = None) -> int:
        with self._store.lock:
            return self._store.associations.define_label(
                require_type(from_type), require_type(to_type), label, type_id=type_id,
                inverse_label=inverse_label).type_id

    def associations(self, from_type: str, from_id: str, to_type: str) -> list[dict[str, Any]]:
        """Ground truth: ``[{"toObjectId", "associationTypes": [...]}]``."""
        with self._store.lock:
            rows = self._store.associations.targets(require_type(from_type), int(from_id),
                                                    require_type(to_type))
            return [{"toObjectId": str(i), "associationTypes": [t.to_json() for t in ts]}
                    for i, ts in rows]

    # --- owners and pipelines -------------------------------------------------------------
    def add_owner(self, email: str, first_name: str = "", last_name: str = "", *,
                  user_id: int | None = None, teams: list[dict[str, Any]] | None = None,
                  archived: bool = False) -> str:
        with self._store.lock:
            return self._store.owners.add(email, first_name, last_name, self.clock.now_ms(),
                                          user_id=user_id, teams=teams, archived=archived)

    def archive_owner(self, owner_id: str) -> None:
        with self._store.lock:
            self._store.owners.archive(owner_id, self.clock.now_ms())

    def owners(self) -> list[dict[str, Any]]:
        with self._store.lock:
            return [o.to_json() for o in self._store.owners.all()]

    @property
    def pipelines(self) -> Pipelines:
        return self._store.pipelines

    def add_pipeline(self, object_type: str, label: str, stages: Iterable[Any] = (),
                     **kwargs: Any) -> str:
        """``stages``: labels or dicts of add_stage() keyword arguments (with ``label``)."""
        with self._store.lock:
            return self._store.add_pipeline(object_type, label, stages, **kwargs)

    def add_stage(self, object_type: str, pipeline_id: str, label: str, *,
                  probability: float | None = None, is_closed: bool = False,
                  stage_id: str | None = None, display_order: int | None = None) -> str:
        with self._store.lock:
            return self._store.add_stage(object_type, pipeline_id, label,
                                         probability=probability, is_closed=is_closed,
                                         stage_id=stage_id, display_order=display_order)

    # --- auth -----------------------------------------------------------------------------
    @property
    def access_tokens(self) -> set[str]:
        """Valid private-app tokens (add or discard freely)."""
        return self.auth.access_tokens

    @property
    def token(self) -> str:
        """A valid private-app token (the built-in one while it is still valid)."""
        if DEFAULT_TOKEN in self.auth.access_tokens:
            return DEFAULT_TOKEN
        return sorted(self.auth.access_tokens)[0]

    def add_token(self, token: str, scopes: Iterable[str] | None = None) -> str:
        """Register a private-app token; ``scopes=None`` grants every scope."""
        self.auth.access_tokens.add(token)
        if scopes is not None:
            self.auth.scopes[token] = set(scopes)
        return token

    def expire_token(self, token: str) -> None:
        self.auth.expire(token)

    @property
    def client_id(self) -> str:
        return next(iter(self.auth.oauth_apps))

    @property
    def client_secret(self) -> str:
        return self.auth.oauth_apps[self.client_id]

    @property
    def refresh_token(self) -> str:
        return next(iter(self.auth.refresh_tokens))

    # --- limits (time, faults, delay and the log: EmulatorControls) -----------------------
    def reset_rate_limits(self) -> None:
        self._limiter.reset()

    @property
    def daily_used(self) -> int:
        return self._limiter.daily_used

    @daily_used.setter
    def daily_used(self, value: int) -> None:
        self._limiter.daily_used = value

    @property
    def max_url_length(self) -> int:
        return self._engine.max_url_length

    @max_url_length.setter
    def max_url_length(self, value: int) -> None:
        self._engine.max_url_length = value

    @property
    def search_lag(self) -> float:
        return self.options.search_lag

    @search_lag.setter
    def search_lag(self, seconds: float) -> None:
        self.options.search_lag = seconds


def _ms(value: datetime | float | str | None) -> int | None:
    return None if value is None else to_ms(value)
