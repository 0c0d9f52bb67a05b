"""Which handler serves a path. Graph matches path segments case-insensitively and also
accepts a key in parentheses (``mailFolders('inbox')`` for ``mailFolders/inbox``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

_KEY = re.compile(r"^([A-Za-z]+)\('([^']*)'\)$")


@dataclass(frozen=True)
class Route:
    method: str
    parts: tuple[str, ...]  # literal segments lower-cased; "{name}" captures
    handler: str  # an Api method name
    auth: bool = True  # needs a bearer token (and counts against the mailbox limit)


ROUTES: tuple[Route, ...] = tuple(
    Route(method, tuple(pattern.strip("/").split("/")), handler, auth)
    for method, pattern, handler, auth in (
        ("POST", "{tenant}/oauth2/v2.0/token", "token", False),
        ("GET", "{tenant}/v2.0/.well-known/openid-configuration", "openid", False),
        ("GET", "v1.0/users/{user}", "user", True),
        ("GET", "v1.0/users/{user}/mailfolders", "folders", True),
        ("GET", "v1.0/users/{user}/mailfolders/{folder}", "folder", True),
        ("GET", "v1.0/users/{user}/messages", "messages", True),
        ("GET", "v1.0/users/{user}/messages/{message_id}", "message", True),
        ("GET", "v1.0/users/{user}/mailfolders/{folder}/messages", "messages", True),
        ("GET", "v1.0/users/{user}/mailfolders/{folder}/messages/delta", "messages_delta", True),
        ("GET", "v1.0/users/{user}/mailfolders/{folder}/messages/{message_id}", "message", True),
        ("GET", "v1.0/users/{user}/calendarview", "calendar_view", True),
        ("GET", "v1.0/users/{user}/calendarview/delta", "calendar_delta", True),
        ("GET", "v1.0/users/{user}/events/{event_id}", "event", True),
        ("GET", "v1.0/users/{user}/calendar/events/{event_id}", "event", True),
    )
)


def segments(path: str) -> list[str]:
    out: list[str] = []
    for raw in path.strip("/").split("/"):
        part = unquote(raw)
        keyed = _KEY.match(part)
        out.extend(keyed.groups() if keyed else (part,))
    return out


def match(method: str, path: str) -> tuple[Route, dict[str, Any]] | None | bool:
    """(route, captured values); False when the path exists for another method; None if
    no route has this path. A literal segment beats a capture (``messages/delta``)."""
    parts = segments(path)
    best: tuple[int, Route, dict[str, Any]] | None = None
    other_method = False
    for route in ROUTES:
        if len(route.parts) != len(parts):
            continue
        captured: dict[str, Any] = {}
        literal = 0
        for want, got in zip(route.parts, parts):
            if want.startswith("{"):
                captured[want[1:-1]] = got
            elif want == got.lower():
                literal += 1
            else:
                break
        else:
            if route.method != method:
                other_method = True
                continue
            if best is None or literal > best[0]:
                best = (literal, route, captured)
    if best is not None:
        return best[1], best[2]
    return False if other_method else None


def mailbox_of(captured: dict[str, Any]) -> str | None:
    value = captured.get("user")
    return str(value) if value is not None else None


