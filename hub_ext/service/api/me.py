"""``api/me``: who the caller is, their teams, whether they administer the pool."""

from __future__ import annotations

from sqlalchemy import select

from ..store import TeamRow
from .base import APIHandler


def known_teams(pool) -> set[str]:
    with pool.store.read() as db:
        return set(db.scalars(select(TeamRow.name)))


class MeHandler(APIHandler):
    scopes = {"GET": "use"}

    async def get(self):
        teams = self.pool.teams.teams_of(self.me.name, list(self.me.groups), known_teams(self.pool)) if self.me.kind == "user" else []
        self.write_json({"user": self.me.name, "kind": self.me.kind, "teams": teams, "admin": self.me.admin})


handlers = [(r"api/me", MeHandler)]
