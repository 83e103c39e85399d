"""Preemption in the service: notice, grace, then the workload lets go of its GPUs.

The scheduler core decides who is preempted (``Decisions.preemptions``);
this module decides how, so that no card is ever used by two workloads:

- **notice** (``notice``, called where decisions are applied): the victim
  stays ``running`` on its GPUs with ``preempt_at`` = now + its team's grace,
  and an event "preempting" says why and when (the lab panel and ``gpupool
  ls`` show it). A job gets SIGTERM at once and the time of the coming stop in
  the file ``$GPUPOOL_PREEMPT_NOTICE_FILE``; it may checkpoint and exit early.
  The core sees the victim as *leaving*: never a victim again, and the
  workload it was preempted for waits for exactly its GPUs.
- **the end of the grace** (``before_cycle``): a job still there is killed
  (its runner's stop) and goes back to the queue, keeping its place; a
  session's server is stopped through the hub, or restarted without GPUs
  (per-team ``session_action``), files untouched, and the session ends
  (state ``cancelled``, reason "preempted: ..."); its user starts it again
  when they want GPUs. The session keeps its GPUs (state ``stopping``) until
  the hub says the server is gone. A session with no server behind it
  (submitted through the API by hand) goes back to the queue.

Minimum run-times (``min_runtime_*``) reach the core as fields of its teams.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from traitlets import Dict, Enum, Float, TraitError, validate
from traitlets.config import LoggingConfigurable

from . import events
from .hub import SERVER_ACTIONS, STOP, HubClient, HubError, ServerActions, server_name_of
from ..scheduler.reasons import PREEMPTED as PREEMPTED_REASON
from .store import WorkloadRow, parse_workload_id

PREEMPTING, PREEMPTED, PREEMPT_FAILED = "preempting", "preempted", "preempt-failed"
BEING_PREEMPTED = "being preempted: "

# A week: longer than any sensible notice or minimum run-time (a typo such as 6000000 is refused).
LONGEST_SECONDS = 7 * 24 * 3600.0

# After preempt_at, how long a job's own stop has to report that its process is gone.
JOB_STOP_SLACK_SECONDS = 15.0

# traitlet name -> what a team may override
TEAM_SETTINGS = ("grace_seconds", "session_action", "min_runtime_reclaim_seconds", "min_runtime_shrink_seconds")


def check_seconds(name: str, value, where: str = "Preemption") -> float:
    """A positive number of seconds up to a week, or a clear error."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise TraitError(f"{where}.{name} must be a number of seconds, not {value!r}") from None
    if not (seconds > 0):
        raise TraitError(f"{where}.{name} must be more than 0 seconds (got {value!r})")
    if seconds > LONGEST_SECONDS:
        raise TraitError(f"{where}.{name} must be at most a week ({LONGEST_SECONDS:g} s); got {value!r}")
    return seconds


def when(at: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(at))


@dataclass(frozen=True)
class TeamPreemption:
    grace_seconds: float
    session_action: str
    min_runtime_reclaim_seconds: float
    min_runtime_shrink_seconds: float


@dataclass(frozen=True)
class ServerStop:
    """Stop (or restart without GPUs) a preempted session's server, after the cycle commits."""

    workload_id: str
    user: str
    server: str
    action: str


class Preemption(LoggingConfigurable):
    """How preempted work is told and let go (see the module docstring)."""

    grace_seconds = Float(
        120.0,
        help="""Notice a preempted workload gets before it loses its GPUs. A job gets SIGTERM at
        once and the time of the stop in $GPUPOOL_PREEMPT_NOTICE_FILE; a session's user is warned
        in the lab panel, and its server is stopped when the notice ends. The workload it was
        preempted for waits until then. More than 0, at most a week.""",
    ).tag(config=True)

    session_action = Enum(
        list(SERVER_ACTIONS),
        default_value=STOP,
        help="""What happens to a preempted session's server when its notice ends: "stop" (files
        and the home directory are untouched; the user starts it again for GPUs) or
        "restart_without_gpus".""",
    ).tag(config=True)

    min_runtime_reclaim_seconds = Float(
        60.0,
        help="""Minimum run-time before a quota reclaim: work of a team over its quota that started
        less than this ago is not preempted for another team's quota. More than 0, at most a week.""",
    ).tag(config=True)

    min_runtime_shrink_seconds = Float(
        60.0,
        help="""Minimum run-time before an elastic job's borrowed GPUs (lent, or over its team's
        quota) are taken back. More than 0, at most a week.""",
    ).tag(config=True)

    team_overrides = Dict(
        help="""Per-team changes: team name -> {setting: value}, settings among grace_seconds,
        session_action, min_runtime_reclaim_seconds, min_runtime_shrink_seconds. E.g.
        {"nlp": {"grace_seconds": 600, "session_action": "restart_without_gpus"}}. The minimum
        run-times protect the team's own work (the victim's team).""",
    ).tag(config=True)

    @validate("grace_seconds", "min_runtime_reclaim_seconds", "min_runtime_shrink_seconds")
    def _valid_seconds(self, proposal):
        return check_seconds(proposal["trait"].name, proposal["value"])

    @validate("team_overrides")
    def _valid_overrides(self, proposal):
        out = {}
        for team, overrides in proposal["value"].items():
            if not isinstance(overrides, dict):
                raise TraitError(f"Preemption.team_overrides[{team!r}] must be a dict of setting -> value")
            unknown = set(overrides) - set(TEAM_SETTINGS)
            if unknown:
                raise TraitError(f"Preemption.team_overrides[{team!r}]: unknown settings {sorted(unknown)}; known: {', '.join(TEAM_SETTINGS)}")
            checked = {}
            for k, v in overrides.items():
                if k == "session_action":
                    if v not in SERVER_ACTIONS:
                        raise TraitError(f"Preemption.team_overrides[{team!r}].session_action must be one of {', '.join(SERVER_ACTIONS)}; got {v!r}")
                    checked[k] = v
                else:
                    checked[k] = check_seconds(k, v, f"Preemption.team_overrides[{team!r}]")
            out[team] = checked
        return out

    server_stop_timeout_seconds = Float(
        120.0,
        help="How long to wait for the hub to stop a preempted session's server; not stopped by then, it keeps its GPUs and the stop is tried again.",
    ).tag(config=True)

    retry_seconds = Float(60.0, help="Seconds before a server stop the hub refused is tried again.").tag(config=True)

    def __init__(self, store=None, hub: Callable[[], HubClient | None] | None = None, on_change: Callable[[], None] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.hub = hub or (lambda: None)
        self.on_change = on_change
        self._stops = ServerActions(lambda: self.retry_seconds)
        self._stopped: set[str] = set()  # sessions whose server is gone: finished in the next cycle

    def for_team(self, team: str) -> TeamPreemption:
        o = self.team_overrides.get(team, {})
        return TeamPreemption(**{k: o.get(k, getattr(self, k)) for k in TEAM_SETTINGS})

    # ------------------------------------------------------------ notice (inside the cycle's transaction)

    def notice(self, db: Session, w: WorkloadRow, reason: str, for_workload_id: str | None, now: float) -> float:
        """Give ``w`` notice of its preemption; returns when its GPUs go."""
        grace = self.for_team(w.team).grace_seconds
        at = now + grace
        w.preempt_at = at
        w.preempt_reason = reason
        what = "its server is stopped" if w.kind == "session" else "it is stopped and requeued"
        w.reason = f"preempting at {when(at)} ({grace:g} s notice; then {what}): {reason}"
        events.record(
            db, PREEMPTING, f"preempted with {grace:g} s notice (until {when(at)}): {reason}", w,
            details={"preempt_at": at, "grace_seconds": grace, "for_workload_id": for_workload_id}, at=now,
        )
        return at

    # ------------------------------------------------------------ the end of the notice

    def before_cycle(self, db: Session, now: float, actions) -> list[ServerStop]:
        """Let go the GPUs of work whose notice ended; say which servers to stop."""
        noticed = (WorkloadRow.preempt_at.is_not(None)) & WorkloadRow.state.in_(("running", "stopping"))
        stopped = [parse_workload_id(wid) for wid in self._stopped]
        if stopped:
            noticed = noticed | WorkloadRow.seq.in_(stopped)
        rows = db.scalars(select(WorkloadRow).options(selectinload(WorkloadRow.shares)).where(noticed))
        todo = []
        for w in rows:
            server = server_name_of(w.name) if w.kind == "session" else None
            if w.id in self._stopped:
                self._stopped.discard(w.id)
                finish_session(db, w, now, self.for_team(w.team).session_action)
                continue
            if w.preempt_at > now:
                continue
            if w.kind == "job":
                # Its stop (SIGTERM at the notice, SIGKILL at preempt_at) requeues it once the
                # process is gone; this is the backstop for a stop that never reported back.
                if not w.runner_handle or now >= w.preempt_at + JOB_STOP_SLACK_SECONDS:
                    requeue(db, w, now, actions)
                continue
            if server is None or self.hub() is None:
                requeue(db, w, now, actions)
                continue
            if self._stops.busy(w.id, now):
                continue
            if w.state == "running":
                w.state = "stopping"
                ending = w.preempt_reason or ""
                # A session at its team's maximum length is ended, not preempted (time_limits.py).
                w.reason = f"{ending}; its server is being stopped" if ending.startswith("time limit") else BEING_PREEMPTED + ending
            todo.append(ServerStop(w.id, w.user, server, self.for_team(w.team).session_action))
        return todo

    def carry_out(self, stops: list[ServerStop]) -> None:
        for s in stops:
            self._stops.start(s.workload_id, lambda s=s: self._stop(s))

    async def _stop(self, s: ServerStop) -> None:
        hub = self.hub()
        try:
            await hub.take_gpus_away(s.user, s.server, s.action, self.server_stop_timeout_seconds)
        except HubError as e:
            if not getattr(e, "stopped", False):
                # The server still runs on its GPUs: they stay its own until it is gone.
                self.log.error("preemption of %s: could not stop the server: %s", s.workload_id, e)
                self._stops.refused(s.workload_id)
                with self.store.write() as db:
                    w = db.get(WorkloadRow, parse_workload_id(s.workload_id))
                    if w is not None:
                        events.record(db, PREEMPT_FAILED, f"could not stop the session's server (retrying every {self.retry_seconds:g} s): {e}", w)
                return
            self.log.error("preemption of %s: stopped the server but could not restart it without GPUs: %s", s.workload_id, e)
        self._stops.succeeded(s.workload_id)
        self._stopped.add(s.workload_id)
        if self.on_change:
            self.on_change()

    async def close(self) -> None:
        await self._stops.close()


def requeue(db: Session, w: WorkloadRow, now: float, actions) -> None:
    """A preempted job (or a session with no server) gives its GPUs back and returns to the queue, keeping its place."""
    from .apply import JobActions, release

    reason = w.preempt_reason or "preempted"
    release(w, actions if actions is not None else JobActions(), now)
    w.state = "pending"
    w.preemptions += 1
    w.started_at = None
    w.over_quota = False
    w.preempt_at = None
    # Kept in its pending reasons until it runs again (scheduler.reasons.pending_reason_after_preemption).
    w.reason = PREEMPTED_REASON + reason
    events.record(db, PREEMPTED, reason, w, details={"requeued": True}, at=now)


def finish_session(db: Session, w: WorkloadRow, now: float, action: str) -> None:
    """A preempted session's server is gone: its GPUs go back and the session ends."""
    from .apply import JobActions, release

    reason = w.preempt_reason or "preempted"
    what = "restarted without GPUs" if action != STOP else "stopped (your files are kept)"
    message = f"{reason}; the session's server was {what}"
    if w.state in ("running", "stopping"):
        release(w, JobActions(), now)
        w.state = "cancelled"
        w.finished_at = now
    # (When the spawner gave the GPUs back first, the session is already cancelled.)
    w.preempt_at = None
    if reason.startswith("time limit"):
        # Ended at its team's maximum session length (time_limits.py), not preempted.
        w.reason = message
        events.record(db, "time-limit", message, w, details={"action": action}, at=now)
        return
    w.preemptions += 1
    w.reason = f"preempted: {message}"
    events.record(db, PREEMPTED, message, w, details={"action": action}, at=now)
