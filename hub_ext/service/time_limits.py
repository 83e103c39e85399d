"""Time limits: how long a job may run, checked at submit and enforced every cycle.

A job may declare ``time_limit_s``; a team may have a default (for jobs that
declare none) and a maximum (a longer limit is refused at submit). A job still
running when its limit has passed since it started is stopped like any other
(SIGTERM, then SIGKILL after ``JobSupervisor.grace_seconds``) and ends
``failed`` with the reason "time limit", with an event its user sees. A
preempted job's limit counts again from its next start (it lost its GPUs, not
its time). The limit is also handed to the runner (Kubernetes Jobs get
``activeDeadlineSeconds``) and to the scheduler core, which lets a job with a
limit backfill onto GPUs held by a reservation when it will end in time.

Sessions take no declared limit; a team may have a maximum session length
(off by default). ``session_warning_s`` before it, the user gets a warning
event; at it, the session is ended like an admin's stop (``cancelled``,
reason "time limit"), its GPUs go back to the pool, and the spawner stops the
server within its ``pool_check_interval``.
"""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from traitlets import Dict, Float, TraitError, validate
from traitlets.config import LoggingConfigurable

from ..scheduler.estimates import duration_text
from . import events
from .apply import JobActions, release
from .errors import bad_request
from .hub import server_name_of
from .store import WorkloadRow

YEAR_S = 365 * 86400.0
TIME_LIMIT = "time-limit"  # the event kind
TIME_LIMIT_WARNING = "time-limit-warning"


def _positive_seconds(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0 or value > YEAR_S:
        raise TraitError(f"{name}: a time limit is a number of seconds above 0 and at most a year, not {value!r}")
    return float(value)


class TimeLimits(LoggingConfigurable):
    """Per-team defaults and maxima of job time limits."""

    # Preemption (service/preemption.py), set by the app: a session past its maximum length leaves
    # through its server stop, as preempted work does.
    preemption = None

    team_default_s = Dict(
        help="""Time limit in seconds for jobs that declare none, by team: ``{"vision": 86400}``. The key
        ``"*"`` applies to teams not listed. Teams without a default leave such jobs unlimited.""",
    ).tag(config=True)

    team_maximum_s = Dict(
        help="""Longest time limit in seconds a job may declare, by team: ``{"vision": 7 * 86400}`` (``"*"``:
        teams not listed). A job declaring more is refused; with a maximum, a job that declares no limit
        gets the team's default, or else the maximum.""",
    ).tag(config=True)

    team_session_max_s = Dict(
        help="""Longest a session may run, in seconds, by team: ``{"vision": 8 * 3600}`` (``"*"``: teams not
        listed). Off (empty) by default. Users are warned ``session_warning_s`` before the end.""",
    ).tag(config=True)

    session_warning_s = Float(
        900.0, help="Seconds before a session reaches its team's maximum length at which its user is warned."
    ).tag(config=True)

    @validate("team_default_s", "team_maximum_s", "team_session_max_s")
    def _check_seconds(self, proposal):
        name = proposal["trait"].name
        return {str(team): _positive_seconds(f"TimeLimits.{name}[{team!r}]", v) for team, v in proposal["value"].items()}

    def _for(self, table: dict, team: str) -> float | None:
        return table.get(team, table.get("*"))

    def default_for(self, team: str) -> float | None:
        return self._for(self.team_default_s, team)

    def maximum_for(self, team: str) -> float | None:
        return self._for(self.team_maximum_s, team)

    def session_max_for(self, team: str) -> float | None:
        return self._for(self.team_session_max_s, team)

    def team_settings(self, team: str) -> dict:
        """What the teams API shows of a team's time limits."""
        return {
            "default_time_limit_s": self.default_for(team),
            "max_time_limit_s": self.maximum_for(team),
            "max_session_s": self.session_max_for(team),
        }

    # ------------------------------------------------------------ submit

    @staticmethod
    def check_value(value) -> float | None:
        """A declared ``time_limit_s`` on its own: a number of seconds, above 0, at most a year."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_request(f"time_limit_s must be a number of seconds (e.g. 7200 for 2 hours), not {value!r}")
        if not math.isfinite(value):
            raise bad_request("time_limit_s must be a finite number of seconds")
        if value <= 0:
            raise bad_request(f"time_limit_s must be more than 0 seconds (got {value:g})")
        if value > YEAR_S:
            raise bad_request(f"time_limit_s of {value:g} s is over a year; the longest limit is {YEAR_S:g} s (365 days)")
        return float(value)

    def limit_for(self, spec: dict, team: str) -> float | None:
        """The limit a job runs under: declared (within the team's maximum), else the team's default."""
        declared = spec.get("time_limit_s")
        maximum = self.maximum_for(team)
        if declared is not None:
            if maximum is not None and declared > maximum:
                raise bad_request(
                    f"time_limit_s of {duration_text(declared)} is above team {team}'s maximum of {duration_text(maximum)}"
                )
            return declared
        if spec.get("kind") != "job":
            return None
        default = self.default_for(team)
        if default is not None and maximum is not None:
            return min(default, maximum)
        return default if default is not None else maximum

    # ------------------------------------------------------------ enforcement

    def before_cycle(self, db: Session, now: float) -> JobActions:
        """Stop running jobs past their limit: failed, reason "time limit", an event for their user."""
        actions = JobActions()
        over = db.scalars(
            select(WorkloadRow)
            .options(selectinload(WorkloadRow.shares))
            .where(WorkloadRow.state == "running", WorkloadRow.kind == "job", WorkloadRow.time_limit_s.is_not(None))
            .where(WorkloadRow.started_at + WorkloadRow.time_limit_s <= now)
        )
        for w in over:
            ran = now - (w.started_at or now)
            release(w, actions, now)
            w.state = "failed"
            w.finished_at = now
            w.reason = f"time limit: stopped after running {duration_text(ran)}, past its limit of {duration_text(w.time_limit_s)}"
            events.record(db, TIME_LIMIT, w.reason, w, details={"time_limit_s": w.time_limit_s, "ran_s": round(ran, 1)}, at=now)
        if self.team_session_max_s:
            self._sessions(db, now, actions)
        return actions

    def _sessions(self, db: Session, now: float, actions: JobActions) -> None:
        """Warn sessions nearing their team's maximum length; end those past it."""
        for w in db.scalars(
            select(WorkloadRow).options(selectinload(WorkloadRow.shares))
            .where(WorkloadRow.state == "running", WorkloadRow.kind == "session", WorkloadRow.started_at.is_not(None))
        ):
            longest = self._for(self.team_session_max_s, w.team)
            if longest is None:
                continue
            ends = w.started_at + longest
            if w.preempt_at is not None:
                continue  # already being ended (or preempted): its server is on its way out
            if now >= ends and self.preemption is not None and server_name_of(w.name) is not None and self.preemption.hub() is not None:
                # Its server still runs on the cards: they stay its own until the hub has stopped it
                # (the preemption's path with no notice left), so no card is used twice.
                w.preempt_at = now
                w.preempt_reason = f"time limit: the session reached team {w.team}'s maximum session length of {duration_text(longest)}"
                w.reason = w.preempt_reason + "; its server is being stopped"
                events.record(db, TIME_LIMIT, w.preempt_reason, w, details={"max_session_s": longest}, at=now)
            elif now >= ends:
                release(w, actions, now)
                w.state = "cancelled"
                w.finished_at = now
                w.reason = f"time limit: the session reached team {w.team}'s maximum session length of {duration_text(longest)}"
                events.record(db, TIME_LIMIT, w.reason, w, details={"max_session_s": longest}, at=now)
            elif now >= ends - self.session_warning_s and (w.time_warned_at is None or w.time_warned_at < w.started_at):
                w.time_warned_at = now
                events.record(
                    db, TIME_LIMIT_WARNING,
                    f"this session ends in {duration_text(ends - now)}: team {w.team}'s sessions last at most "
                    f"{duration_text(longest)}; save your work",
                    w, details={"ends_at": ends, "max_session_s": longest}, at=now,
                )
