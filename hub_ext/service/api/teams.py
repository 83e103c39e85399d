"""``api/teams``: teams with quota, weight, limit, usage and borrowed GPUs; admins create and change them."""

from __future__ import annotations

import re
import time

from ..errors import bad_request, not_found
from ..events import record
from ..quota_marks import remark_team
from ..store import TeamRow
from ..teams import check_team_numbers
from ..views import one_team_view, teams_view
from .base import APIHandler

TEAM_FIELDS = ("quota", "over_quota_weight", "limit")
TEAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TeamsHandler(APIHandler):
    scopes = {"GET": "use"}

    async def get(self):
        with self.pool.store.read() as db:
            self.write_json({"teams": [with_time_limits(self.pool, t) for t in teams_view(db)]})


def with_time_limits(pool, view: dict) -> dict:
    """A team's view with its time-limit settings (configuration, not the database)."""
    if pool.time_limits is not None:
        view.update(pool.time_limits.team_settings(view["name"]))
    return view


class TeamHandler(APIHandler):
    scopes = {"GET": "use", "PUT": "admin", "PATCH": "admin"}

    async def get(self, name):
        with self.pool.store.read() as db:
            team = db.get(TeamRow, name)
            if team is None:
                raise not_found(f"no team {name!r}")
            self.write_json(with_time_limits(self.pool, one_team_view(db, team)))

    async def put(self, name):
        await self._change(name, replace=True)

    async def patch(self, name):
        await self._change(name, replace=False)

    async def _change(self, name: str, replace: bool):
        body = self.json_object()
        unknown = sorted(set(body) - set(TEAM_FIELDS))
        if unknown:
            raise bad_request(f"unknown field(s): {', '.join(unknown)}; a team has: {', '.join(TEAM_FIELDS)}")
        if not TEAM_NAME.match(name):
            raise bad_request("a team name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        now = time.time()
        with self.pool.store.write() as db:
            team = db.get(TeamRow, name)
            created = team is None
            if created and "quota" not in body:
                raise bad_request(f"team {name!r} does not exist yet: give its quota to create it")
            current = {"quota": 0.0, "over_quota_weight": 1.0, "limit": None}
            if team is not None and not replace:
                current = {"quota": team.quota, "over_quota_weight": team.over_quota_weight, "limit": team.limit}
            if replace and "quota" not in body:
                raise bad_request("PUT replaces the team: give its quota (use PATCH to change single fields)")
            new = {**current, **body}
            error = check_team_numbers(new["quota"], new["over_quota_weight"], new["limit"])
            if error:
                raise bad_request(error)
            if team is None:
                team = TeamRow(name=name)
                db.add(team)
            before = None if created else {"quota": team.quota, "over_quota_weight": team.over_quota_weight, "limit": team.limit}
            team.quota = float(new["quota"])
            team.over_quota_weight = float(new["over_quota_weight"])
            team.limit = None if new["limit"] is None else float(new["limit"])
            team.updated_at = now
            if not created:
                remark_team(db, team)  # running work is marked by the new quota, not the one it started under
            after = {"quota": team.quota, "over_quota_weight": team.over_quota_weight, "limit": team.limit}
            verb = "created" if created else "changed"
            record(
                db, "team-changed", f"team {name} {verb} by {self.me.name}: quota {team.quota:g}, weight {team.over_quota_weight:g}, "
                + ("no limit" if team.limit is None else f"limit {team.limit:g}"),
                team=name, details={"before": before, "after": after, "by": self.me.name}, at=now,
            )
        await self.pool.loop.cycle()
        with self.pool.store.read() as db:
            team = db.get(TeamRow, name)
            self.write_json(with_time_limits(self.pool, one_team_view(db, team)), status=201 if created else 200)


handlers = [(r"api/teams", TeamsHandler), (r"api/teams/([^/]+)", TeamHandler)]
