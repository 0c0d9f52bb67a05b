"""The Graph endpoints the emulator serves (see docs/emulators-graph.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from crmlink.testing.emulation import Reply

from . import calendar
from .auth import CALENDAR_ROLES, MAIL_ROLES, USER_ROLES, Auth, Grant, openid_configuration
from .calendar import EVENTS
from .delta import Collection, Sequence, State
from .errors import aadsts, bad_request, graph_error
from .mail import MESSAGES, Directory
from .shapes import parse_time
from .wire import Request, context, link, page_size

#: Properties Mail.ReadBasic(.All) does not grant.
_NOT_BASIC = ("body", "bodyPreview", "uniqueBody")
_FULL_MAIL = frozenset({"Mail.Read", "Mail.ReadWrite"})


class Api:
    """Handlers over the tenant's state; each returns a :class:`Reply` or raises GraphError."""

    def __init__(self, auth: Auth, directory: Directory, calendars: Mapping[str, calendar.Calendar],
                 seq: Sequence) -> None:
        self.auth, self.directory, self.calendars, self.seq = auth, directory, calendars, seq

    # --- identity platform ---------------------------------------------------------------
    def token(self, req: Request, tenant: str) -> Reply:
        return Reply(200, self.auth.token(tenant, req.form), {"Cache-Control": "no-store, no-cache"})

    def openid(self, req: Request, tenant: str) -> Reply:
        if not self.auth.knows_tenant(tenant):
            err = aadsts(90002, tenant=tenant)
            body = dict(err.body) if isinstance(err.body, dict) else {}
            return Reply(400, {**body, "error": "invalid_tenant"})
        return Reply(200, openid_configuration(req.base_url, tenant))

    # --- users and folders ----------------------------------------------------------------
    def user(self, req: Request, grant: Grant, user: str) -> Reply:
        _user_roles(grant)
        box = self.directory.get(user)
        return Reply(200, {"@odata.context": context(req, "users/$entity"), **box.user_json()})

    def folders(self, req: Request, grant: Grant, user: str) -> Reply:
        self.auth.require(grant, MAIL_ROLES)
        box = self.directory.get(user)
        value = [f.json() for f in box.folders.values()]
        return Reply(200, {"@odata.context": context(req, f"users('{user}')/mailFolders"),
                           "value": value})

    def folder(self, req: Request, grant: Grant, user: str, folder: str) -> Reply:
        self.auth.require(grant, MAIL_ROLES)
        found = self.directory.get(user).folder(folder)
        return Reply(200, {"@odata.context": context(req, f"users('{user}')/mailFolders/$entity"),
                           **found.json()})

    # --- messages -------------------------------------------------------------------------
    def messages(self, req: Request, grant: Grant, user: str, folder: str | None = None) -> Reply:
        """``GET /users/{id}/messages`` and ``.../mailFolders/{id}/messages``: newest first,
        ``$top`` (default 10) and ``$skip`` paging through ``@odata.nextLink``."""
        self.auth.require(grant, MAIL_ROLES)
        box = self.directory.get(user)
        if req.one("$filter") or req.one("$search"):
            raise bad_request("The emulator does not support $filter or $search on messages.")
        folders = [box.folder(folder)] if folder else list(box.folders.values())
        rows = [i.data for f in folders for i in f.messages.live() if i.data is not None]
        rows.sort(key=lambda d: (d["receivedDateTime"], d["id"]), reverse=True)
        select = MESSAGES.parse(req.many("$select"))
        return self._list(req, rows, lambda d: self._message(grant, d, select), default=10)

    def message(self, req: Request, grant: Grant, user: str, message_id: str,
                folder: str | None = None) -> Reply:
        self.auth.require(grant, MAIL_ROLES)
        box = self.directory.get(user)
        _, item = box.find_message(message_id)
        assert item.data is not None
        select = MESSAGES.parse(req.many("$select"))
        return Reply(200, {"@odata.context": context(req, "users/messages/$entity"),
                           **self._message(grant, item.data, select)})

    def messages_delta(self, req: Request, grant: Grant, user: str, folder: str) -> Reply:
        """``GET /users/{id}/mailFolders/{id}/messages/delta``."""
        self.auth.require(grant, MAIL_ROLES)
        box = self.directory.get(user)
        target = box.folder(folder)
        state = self._round(req, target.messages, lambda: MESSAGES.parse(req.many("$select")), {})
        size, applied = page_size(req, default=10)
        after = int(state.after[0]) if state.after else 0
        items, cursor = target.messages.changes(state.lo, state.hi, after, size)
        value = [self._message(grant, i.data, state.select, delta=True) if i.data is not None
                 else _removed("message", i.id) for i in items]
        path = f"/v1.0/users/{user}/mailFolders('{folder}')/messages/delta"
        body: dict[str, Any] = {"@odata.context": context(req, "Collection(message)")}
        body.update(self._next(req, path, state, None if cursor is None else [cursor]))
        body["value"] = value
        return Reply(200, body, applied)

    def _message(self, grant: Grant, data: Mapping[str, Any], select: list[str],
                 delta: bool = False) -> dict[str, Any]:
        out = MESSAGES.apply(data, select)
        if not grant.roles & _FULL_MAIL:
            for name in _NOT_BASIC:
                out.pop(name, None)
        return {"@odata.type": "#microsoft.graph.message", **out} if delta else out

    # --- calendar -------------------------------------------------------------------------
    def calendar_view(self, req: Request, grant: Grant, user: str) -> Reply:
        """``GET /users/{id}/calendarView?startDateTime=..&endDateTime=..``."""
        self.auth.require(grant, CALENDAR_ROLES)
        box = self.directory.get(user)
        start, end = _window(req.one("startDateTime"), req.one("endDateTime"))
        rows = [i.data for i in calendar.view(self.calendars[box.id], start, end, False)
                if i.data is not None]
        rows.sort(key=lambda d: (d["start"]["dateTime"], d["id"]))
        select = EVENTS.parse(req.many("$select"))
        return self._list(req, rows, lambda d: EVENTS.apply(d, select), default=10)

    def calendar_delta(self, req: Request, grant: Grant, user: str) -> Reply:
        """``GET /users/{id}/calendarView/delta``; ``$select`` is not supported there, so the
        events come with every default property (as Graph documents)."""
        self.auth.require(grant, CALENDAR_ROLES)
        box = self.directory.get(user)
        cal = self.calendars[box.id]

        def window() -> dict[str, Any]:
            start, end = _window(req.one("startDateTime"), req.one("endDateTime"))
            return {"s": start.isoformat(), "e": end.isoformat()}

        state = self._round(req, cal.events, list, None, window)
        start = datetime.fromisoformat(state.extra["s"])
        end = datetime.fromisoformat(state.extra["e"])
        size, applied = page_size(req, default=10)
        after = tuple(state.after) if state.after else (0, "")
        todo = [i for i in calendar.view(cal, start, end, removals=state.lo > 0)
                if state.lo < i.seq <= state.hi and (i.seq, i.id) > after]
        page, more = todo[:size], len(todo) > size
        value = [{"@odata.type": "#microsoft.graph.event", **EVENTS.apply(i.data, [])}
                 if i.data is not None else _removed("event", i.id) for i in page]
        cursor = [page[-1].seq, page[-1].id] if more else None
        body: dict[str, Any] = {"@odata.context": context(req, "Collection(event)")}
        body.update(self._next(req, f"/v1.0/users/{user}/calendarView/delta", state, cursor))
        body["value"] = value
        return Reply(200, body, applied)

    def event(self, req: Request, grant: Grant, user: str, event_id: str) -> Reply:
        self.auth.require(grant, CALENDAR_ROLES)
        box = self.directory.get(user)
        data = calendar.find(self.calendars[box.id], event_id)
        select = EVENTS.parse(req.many("$select"))
        return Reply(200, {"@odata.context": context(req, "users/events/$entity"),
                           **EVENTS.apply(data, select)})

    # --- rounds and links -----------------------------------------------------------------
    def _round(self, req: Request, coll: Collection, select: Callable[[], list[str]],
               extra: dict[str, Any] | None,
               window: Callable[[], dict[str, Any]] | None = None) -> State:
        """The state of this delta call: from its skip or delta token, or a new round."""
        skip, delta = req.one("$skiptoken"), req.one("$deltatoken")
        if skip:
            state = State.decode(skip, "skip")
            state.check(coll)
            return state
        if delta:
            done = State.decode(delta, "delta")
            done.check(coll)
            return State("skip", coll.key, coll.generation, done.lo, self.seq.current, [],
                         done.select, done.extra)
        return State("skip", coll.key, coll.generation, 0, self.seq.current, [], select(),
                     window() if window else dict(extra or {}))

    @staticmethod
    def _next(req: Request, path: str, state: State, cursor: list[Any] | None) -> dict[str, str]:
        if cursor is not None:
            token = State("skip", state.collection, state.generation, state.lo, state.hi, cursor,
                          state.select, state.extra).encode()
            return {"@odata.nextLink": link(req, path, **{"$skiptoken": token})}
        token = State("delta", state.collection, state.generation, state.hi, 0, [], state.select,
                      state.extra).encode()
        return {"@odata.deltaLink": link(req, path, **{"$deltatoken": token})}

    @staticmethod
    def _list(req: Request, rows: list[dict[str, Any]],
              render: Callable[[dict[str, Any]], dict[str, Any]], default: int) -> Reply:
        size, applied = page_size(req, default)
        skip = req.integer("$skip", 0)
        page = rows[skip:skip + size]
        body: dict[str, Any] = {"@odata.context": context(req, "Collection"),
                                "value": [render(r) for r in page]}
        if skip + size < len(rows):
            params = {k: vs[-1] for k, vs in req.query.items() if k.lower() not in ("$skip", "$top")}
            params.update({"$top": str(size), "$skip": str(skip + size)})
            body["@odata.nextLink"] = link(req, req.path, **params)
        return Reply(200, body, applied)


def _user_roles(grant: Grant) -> None:
    if not grant.roles & USER_ROLES:
        raise graph_error(403, "Authorization_RequestDenied",
                          "Insufficient privileges to complete the operation.")


def _removed(kind: str, item_id: str) -> dict[str, Any]:
    return {"@odata.type": f"#microsoft.graph.{kind}", "id": item_id,
            "@removed": {"reason": "deleted"}}


def _window(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    if not start or not end:
        raise bad_request("This request requires a time window specified by the query string "
                          "parameters StartDateTime and EndDateTime.", "ErrorInvalidParameter")
    return parse_time(start, "startDateTime"), parse_time(end, "endDateTime")
