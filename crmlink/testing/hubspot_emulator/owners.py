"""Owners (``/crm/v3/owners/``): the users whose ids appear in ``hubspot_owner_id``."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from .clock import iso_ms


@dataclass
class Owner:
    id: int
    email: str
    first_name: str
    last_name: str
    user_id: int
    created_ms: int
    updated_ms: int
    teams: list[dict[str, Any]] = field(default_factory=list)
    archived: bool = False
    type: str = "PERSON"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(self.id), "email": self.email, "type": self.type,
            "firstName": self.first_name, "lastName": self.last_name,
            "userId": None if self.archived else self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": iso_ms(self.created_ms), "updatedAt": iso_ms(self.updated_ms),
            "archived": self.archived,
        }
        if self.teams:
            body["teams"] = [dict(t) for t in self.teams]
        return body


class Owners:
    def __init__(self) -> None:
        self._owners: dict[int, Owner] = {}
        self._ids = itertools.count(41629779, 1117)
        self._user_ids = itertools.count(9586504, 13)

    def add(self, email: str, first_name: str, last_name: str, now_ms: int, *,
            user_id: int | None = None, teams: list[dict[str, Any]] | None = None,
            archived: bool = False) -> str:
        owner_id = next(self._ids)
        norm_teams = [{"id": str(t["id"]), "name": t["name"], "primary": bool(t.get("primary"))}
                      for t in teams or []]
        self._owners[owner_id] = Owner(
            owner_id, email, first_name, last_name, user_id or next(self._user_ids),
            now_ms, now_ms, norm_teams, archived)
        return str(owner_id)

    def archive(self, owner_id: str, now_ms: int) -> None:
        owner = self._owners[int(owner_id)]
        owner.archived = True
        owner.updated_ms = now_ms

    def get(self, owner_id: str) -> Owner | None:
        return self._owners.get(int(owner_id)) if owner_id.isdigit() else None

    def page(self, *, archived: bool, email: str | None, after: int,
             limit: int) -> tuple[list[Owner], int | None]:
        """One page (ascending id) and the next cursor, or None on the last page."""
        matches = [o for _, o in sorted(self._owners.items())
                   if o.archived == archived and o.id >= after
                   and (email is None or o.email.lower() == email.lower())]
        if len(matches) > limit:
            return matches[:limit], matches[limit].id
        return matches, None

    def all(self) -> list[Owner]:
        return [o for _, o in sorted(self._owners.items())]
