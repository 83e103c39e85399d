"""Teams: the ones declared in configuration, and who belongs to which.

Quotas live in the database (admins change them through the API); the
configuration only seeds teams that do not exist yet, so an admin's change
survives a restart. Membership comes from JupyterHub groups: a group maps to
a team through ``Teams.group_teams``, or by having the team's name.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session
from traitlets import Bool, Dict, Unicode
from traitlets.config import LoggingConfigurable

from .store import TeamRow


class TeamConfigError(ValueError):
    pass


#: Bounds of a team's numbers: beyond them a value is a typo, and would break clients
#: (JSON has no Infinity) or the fair-share arithmetic (1e308 * anything overflows).
MAX_TEAM_GPUS = 100_000
MAX_WEIGHT = 1000


def check_team_numbers(quota, over_quota_weight, limit) -> str | None:
    """A message a person understands when a team's numbers make no sense, else None."""
    from .limits import is_number

    bounds = (("quota", quota, MAX_TEAM_GPUS, " GPUs"), ("over_quota_weight", over_quota_weight, MAX_WEIGHT, ""))
    for label, value, top, unit in bounds:
        if not is_number(value) or value > top:
            return f"{label} must be a number between 0 and {top:,}{unit}, not {str(value)[:40]}"
    if limit is not None and (not is_number(limit) or limit > MAX_TEAM_GPUS):
        return f"limit must be a number of GPUs between 0 and {MAX_TEAM_GPUS:,}, or null for no limit, not {str(limit)[:40]}"
    if quota is not None and quota < 0:
        return "quota must be 0 or more GPUs"
    if over_quota_weight is not None and over_quota_weight < 0:
        return "over_quota_weight must be 0 or more (0: never borrows idle GPUs)"
    if limit is not None and limit < 0:
        return "limit must be 0 or more GPUs"
    if limit is not None and quota is not None and limit < quota:
        return f"limit ({limit:g}) is below the quota ({quota:g}): a team may always use its quota"
    return None


class Teams(LoggingConfigurable):
    """Declared teams and the mapping from JupyterHub groups to teams."""

    teams = Dict(
        help="""Teams to create at start if they do not exist yet:
        ``{"vision": {"quota": 4, "over_quota_weight": 1, "limit": 8}}``. Later changes made by
        admins through the API are kept; change a team there, not here.""",
    ).tag(config=True)

    group_teams = Dict(
        help="""Map JupyterHub group names to team names: ``{"vision-lab": "vision"}``. A group whose
        name is a team's name belongs to that team without an entry here (see ``groups_are_teams``).""",
    ).tag(config=True)

    groups_are_teams = Bool(
        True,
        help="A JupyterHub group with the same name as a team makes its members part of that team.",
    ).tag(config=True)

    user_teams = Dict(
        help="""Extra membership by user name, for users not in a mapped group:
        ``{"alice": ["vision"]}``.""",
    ).tag(config=True)

    default_team = Unicode(
        "",
        help="""Team for users who belong to no team (empty: such users cannot submit and are told
        to ask an admin for a team).""",
    ).tag(config=True)

    def seed(self, db: Session, now: float | None = None) -> None:
        now = time.time() if now is None else now
        existing = set(db.scalars(select(TeamRow.name)))
        for name, spec in self.teams.items():
            spec = spec or {}
            error = check_team_numbers(spec.get("quota", 0), spec.get("over_quota_weight", 1.0), spec.get("limit"))
            if error:
                raise TeamConfigError(f"Teams.teams[{name!r}]: {error}")
            if name in existing:
                continue
            db.add(
                TeamRow(
                    name=name,
                    quota=float(spec.get("quota", 0)),
                    over_quota_weight=float(spec.get("over_quota_weight", 1.0)),
                    limit=None if spec.get("limit") is None else float(spec["limit"]),
                    updated_at=now,
                )
            )

    def teams_of(self, user: str, groups: list[str], known_teams: set[str]) -> list[str]:
        """The teams ``user`` belongs to, in a stable order."""
        found: list[str] = []
        for group in groups:
            team = self.group_teams.get(group)
            if team is None and self.groups_are_teams and group in known_teams:
                team = group
            if team and team not in found:
                found.append(team)
        for team in self.user_teams.get(user, []):
            if team not in found:
                found.append(team)
        found = [t for t in found if t in known_teams]
        if not found and self.default_team and self.default_team in known_teams:
            found.append(self.default_team)
        return found
