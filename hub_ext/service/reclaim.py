"""Idle GPU reclaim in the service: configuration, and applying the pure
policy (``hub_ext.reclaim``) on every scheduling cycle.

What happens, and where:

- every reading an agent reports advances its GPU's idle streak
  (``apply_reading``, called by the readings handler), kept in the GPU's row
  (``idle_since``), so no reading is lost between cycles and a restart loses
  nothing;
- before each cycle, GPUs whose readings went stale lose their idle streak
  (missing data is not idleness), and sessions whose server has been stopped
  for a reclaim give their GPUs back, so the same cycle can hand them to the
  waiting user (``before_cycle``);
- after each cycle, the policy decides on the running workloads: warnings,
  withdrawn warnings, job flags (events in the same transaction) and
  reclaims: the session goes to ``stopping`` and keeps its GPUs until its
  server is stopped (``after_cycle``);
- after the transaction commits, the session's server is stopped through the
  JupyterHub API, and restarted without GPUs when so configured
  (``carry_out``). A session with no server behind it (submitted through the
  API by hand) gives its GPUs back at once.

Warnings and flags are read back from the event log at start, so a restarted
service neither forgets a warning nor warns twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload
from traitlets import Bool, Dict, Enum, Float, TraitError, Unicode, default
from traitlets.config import LoggingConfigurable

from ..reclaim import (
    ACTIONS,
    MODES,
    GpuIdle,
    IdleDefinition,
    IdlePolicy,
    PolicyError,
    PolicySettings,
    ReclaimState,
    decide,
    idle_seconds,
    observe,
    workload_idle_seconds,
)
from ..scheduler.model import Allocation, GpuShare, Running, Workload, WorkloadKind
from . import events
from .apply import JobActions, release
from .hub import HubClient, HubError, ServerActions, server_name_of
from .snapshot import allocation_model, workload_model
from .store import EventRow, GpuRow, NodeRow, ShareRow, Store, WorkloadRow, format_workload_id, parse_workload_id

# Event kinds this module writes (the lab panel and the admin page show them).
WARNED, WARNING_WITHDRAWN, RECLAIMED, FLAGGED, FLAG_WITHDRAWN, RECLAIM_FAILED = (
    "warned", "warning-withdrawn", "reclaimed", "flagged", "flag-withdrawn", "reclaim-failed",
)

NO_STATE = ReclaimState()

# A session being reclaimed: "stopping", with this reason, until its server is gone.
RECLAIMING_REASON = "being reclaimed: "

# traitlet name -> IdlePolicy field: what a team may override.
TEAM_SETTINGS = {
    "enabled": "enabled",
    "idle_limit_seconds": "idle_limit_s",
    "grace_seconds": "grace_s",
    "mode": "mode",
    "action": "action",
    "job_flag_after_seconds": "job_flag_after_s",
}


def gpu_idle_state(g: GpuRow) -> GpuIdle:
    return GpuIdle(reading_at=g.reading_at, utilization=g.utilization, idle_since=g.idle_since)


@dataclass(frozen=True)
class ServerAction:
    """Stop (and maybe restart without GPUs) one session's server, after the cycle commits."""

    workload_id: str
    user: str
    server: str | None  # None: no server behind the session
    action: str  # "stop" | "restart_without_gpus"


class IdleReclaim(LoggingConfigurable):
    """Warn about, and take back, GPUs that notebook sessions hold without using them.

    A GPU is idle while its utilisation is below ``Inventory.idle_threshold_percent``.
    A session is idle when every GPU it holds is idle; idle for
    ``idle_limit_seconds`` it is warned, and ``grace_seconds`` later, still idle,
    it is reclaimed. Batch jobs are never reclaimed, only flagged to admins.
    """

    enabled = Bool(
        True,
        help="""Warn about and reclaim idle sessions. Off: idle time is still measured and
        shown (pool API, metrics), but nobody is warned or reclaimed.""",
    ).tag(config=True)

    idle_limit_seconds = Float(
        3600.0,
        help="""A session whose GPUs have all been idle this long is warned (event "warned",
        shown in the lab panel).""",
    ).tag(config=True)

    grace_seconds = Float(
        900.0,
        help="""Seconds between the warning and the reclaim. Using the GPUs in that time
        withdraws the warning; idle throughout, the session is reclaimed.""",
    ).tag(config=True)

    mode = Enum(
        list(MODES),
        default_value="when_waiting",
        help="""When a warned session past its grace period is reclaimed. "immediate": at once.
        "when_waiting": only while pending workloads wait for GPUs, longest-idle sessions first,
        until the GPUs they wait for are covered.""",
    ).tag(config=True)

    action = Enum(
        list(ACTIONS),
        default_value="stop",
        help="""What a reclaim does. "stop": stop the session's server through the JupyterHub
        API (files and the home directory are untouched; the user starts it again when they
        need GPUs). "restart_without_gpus": stop it, then start it again with no GPUs.""",
    ).tag(config=True)

    job_flag_after_seconds = Float(
        6 * 3600.0,
        help="""A batch job whose GPUs have all been idle this long is flagged to admins
        (event "flagged"). Jobs are never reclaimed for idleness.""",
    ).tag(config=True)

    stale_after_seconds = Float(
        120.0,
        help="""A GPU with no reading for this long has no data: it is neither idle nor busy,
        and nothing happens to its holders (an agent that stopped reporting never gets anyone
        reclaimed). A gap this long between readings restarts the GPU's idle time. Keep it
        well above the agents' interval.""",
    ).tag(config=True)

    team_overrides = Dict(
        help="""Per-team changes to the policy: team name -> {setting: value}, with settings
        among enabled, idle_limit_seconds, grace_seconds, mode, action, job_flag_after_seconds.
        E.g. {"nlp": {"idle_limit_seconds": 1800, "mode": "immediate"}, "admins": {"enabled": False}}.
        What counts as idle (the threshold, stale readings) is pool-wide.""",
    ).tag(config=True)

    hub_api_url = Unicode(help="The JupyterHub API URL used to stop sessions (default: $JUPYTERHUB_API_URL).").tag(config=True)

    @default("hub_api_url")
    def _hub_api_url_default(self):
        return os.environ.get("JUPYTERHUB_API_URL", "")

    hub_api_token = Unicode(
        help="Token for the JupyterHub API, with admin:servers and read:servers (default: $JUPYTERHUB_API_TOKEN, the service's own).",
    ).tag(config=True)

    @default("hub_api_token")
    def _hub_api_token_default(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    check_seconds = Float(
        5.0,
        help="""Run the idle policy at most this often. Scheduling cycles also run on every
        submit and exit; warnings and reclaims need no more precision than this.""",
    ).tag(config=True)

    server_stop_timeout_seconds = Float(
        120.0,
        help="""How long to wait for the hub to stop a session's server (reclaimed or preempted). A server
        not stopped by then keeps its GPUs (no card is used twice) and the stop is tried again later.""",
    ).tag(config=True)

    retry_seconds = Float(
        300.0,
        help="""Seconds before a reclaim the hub refused (e.g. the service lacks the admin:servers
        scope) is tried again. The session keeps running meanwhile; admins see one
        "reclaim-failed" event.""",
    ).tag(config=True)

    def __init__(self, store: Store, threshold_percent: float = 1.0, on_change: Callable[[], None] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.on_change = on_change  # asks the loop for a cycle (GPUs were given back)
        self.threshold_percent = threshold_percent
        self.settings = self._build_settings()
        self._states: dict[str, ReclaimState] | None = None  # loaded from the event log on the first cycle
        self._stops = ServerActions(lambda: self.retry_seconds)
        self._give_back: set[str] = set()  # stopped (or serverless) sessions whose GPUs go back next cycle
        self._reclaiming: dict[str, tuple[str, dict]] = {}  # session -> the "reclaimed" event to record once it is stopped
        self._reported_failures: set[str] = set()
        self._checked_at = float("-inf")
        self._models: dict[str, tuple] = {}  # workload id -> (what it was built from, Running)

    def _build_settings(self) -> PolicySettings:
        try:
            default_policy = IdlePolicy(**{field: getattr(self, trait) for trait, field in TEAM_SETTINGS.items()})
            teams = {}
            for team, overrides in self.team_overrides.items():
                if not isinstance(overrides, dict):
                    raise PolicyError(f"team {team!r}: overrides must be a dict of setting -> value")
                unknown = set(overrides) - set(TEAM_SETTINGS)
                if unknown:
                    raise PolicyError(
                        f"team {team!r}: unknown settings {sorted(unknown)} in IdleReclaim.team_overrides; "
                        f"known: {', '.join(TEAM_SETTINGS)}"
                    )
                teams[team] = {TEAM_SETTINGS[k]: v for k, v in overrides.items()}
            return PolicySettings(default=default_policy, idle=self.idle_definition, teams=teams)
        except PolicyError as e:
            raise TraitError(f"IdleReclaim: {e}") from None

    @property
    def idle_definition(self) -> IdleDefinition:
        return IdleDefinition(threshold_percent=self.threshold_percent, stale_after_s=self.stale_after_seconds)

    # ------------------------------------------------------------ readings

    def apply_reading(self, g: GpuRow, utilization: float | None, at: float) -> None:
        """Record one reading of a GPU and advance its idle streak."""
        state = observe(gpu_idle_state(g), at, utilization, self.settings.idle)
        g.utilization, g.reading_at, g.idle_since = state.utilization, state.reading_at, state.idle_since

    # ------------------------------------------------------------ the cycle

    def _load_states(self, db: Session) -> dict[str, ReclaimState]:
        """Warnings and flags still standing, from the event log (survives restarts)."""
        latest = (
            select(EventRow.workload_seq, EventRow.kind, EventRow.at)
            .join(WorkloadRow, WorkloadRow.seq == EventRow.workload_seq)
            .where(WorkloadRow.state.in_(("running", "stopping")))
            .where(EventRow.kind.in_((WARNED, WARNING_WITHDRAWN, FLAGGED, FLAG_WITHDRAWN, "started", "preempted")))
            .order_by(EventRow.id)
        )
        states: dict[str, ReclaimState] = {}
        for seq, kind, at in db.execute(latest):
            wid = format_workload_id(seq)
            s = states.get(wid, ReclaimState())
            if kind == WARNED:
                s = ReclaimState(warned_at=at, flagged_at=s.flagged_at)
            elif kind == FLAGGED:
                s = ReclaimState(warned_at=s.warned_at, flagged_at=at)
            elif kind == WARNING_WITHDRAWN:
                s = ReclaimState(warned_at=None, flagged_at=s.flagged_at)
            elif kind == FLAG_WITHDRAWN:
                s = ReclaimState(warned_at=s.warned_at, flagged_at=None)
            else:  # a new run: nothing from an earlier one stands
                s = ReclaimState()
            states[wid] = s
        return states

    def before_cycle(self, db: Session, now: float) -> JobActions:
        """Forget idle streaks of GPUs that went quiet; give back GPUs of stopped reclaimed sessions."""
        stale_before = now - self.stale_after_seconds
        for g in db.scalars(select(GpuRow).where(GpuRow.idle_since.is_not(None), GpuRow.reading_at < stale_before)):
            g.idle_since = None
        actions = JobActions()
        if not self._give_back:
            return actions
        seqs = [parse_workload_id(wid) for wid in self._give_back]
        for w in db.scalars(select(WorkloadRow).options(selectinload(WorkloadRow.shares)).where(WorkloadRow.seq.in_(seqs))):
            message, details = self._reclaiming.pop(w.id, ("GPUs idle: the session was stopped and its GPUs went back to the pool", {}))
            if w.state == "stopping":
                release(w, actions, now)
                w.state = "cancelled"
                w.finished_at = now
            # (When the spawner gave the GPUs back first, the session is already cancelled.)
            w.reason = "reclaimed: " + message
            events.record(db, RECLAIMED, message, w, details=details, at=now)
        self._give_back.clear()
        return actions

    def _active(self, db: Session, now: float):
        """What the policy looks at: running workloads it can act on, their GPUs' states,
        GPUs waited for, and light rows (by id) of those workloads and of sessions being reclaimed.

        Only workloads idle on some GPU, or warned or flagged before (to withdraw), can
        change anything; the rest are not even read, so a pool of busy GPUs costs
        next to nothing however big it is. Plain columns, not ORM objects: the few
        workloads the policy acts on are loaded whole later.
        """
        waiting_gpus = db.scalar(select(func.coalesce(func.sum(WorkloadRow.gpus), 0.0)).where(WorkloadRow.state == "pending")) or 0.0
        # Subqueries, not IN lists of ids: building a long IN list costs more than the query.
        idle_holders = select(ShareRow.workload_seq).join(GpuRow, GpuRow.uuid == ShareRow.gpu_uuid).where(GpuRow.idle_since.is_not(None))
        considered = WorkloadRow.seq.in_(idle_holders.scalar_subquery())
        stated = [parse_workload_id(wid) for wid, state in self._states.items() if state != NO_STATE]
        if stated:
            considered = or_(considered, WorkloadRow.seq.in_(stated))
        columns = (WorkloadRow.seq, WorkloadRow.state, WorkloadRow.kind, WorkloadRow.user, WorkloadRow.team, WorkloadRow.name,
                   WorkloadRow.reason, WorkloadRow.gpus, WorkloadRow.submitted_at, WorkloadRow.started_at)
        rows = {format_workload_id(a.seq): a for a in db.execute(select(*columns).where(or_(WorkloadRow.state == "stopping", considered)))}
        running_considered = and_(WorkloadRow.state == "running", considered)
        shares: dict[int, list[tuple]] = {}
        for seq, node, uuid, fraction in db.execute(
            select(ShareRow.workload_seq, ShareRow.node_name, ShareRow.gpu_uuid, ShareRow.fraction)
            .join(WorkloadRow, WorkloadRow.seq == ShareRow.workload_seq).where(running_considered).order_by(ShareRow.id)
        ):
            shares.setdefault(seq, []).append((node, uuid, fraction))
        gpus: dict[str, GpuIdle] = {}
        if shares:
            for uuid, reading_at, utilization, idle_since in db.execute(
                select(GpuRow.uuid, GpuRow.reading_at, GpuRow.utilization, GpuRow.idle_since)
                .join(ShareRow, ShareRow.gpu_uuid == GpuRow.uuid).join(WorkloadRow, WorkloadRow.seq == ShareRow.workload_seq)
                .where(running_considered)
            ):
                gpus[uuid] = GpuIdle(reading_at=reading_at, utilization=utilization, idle_since=idle_since)
        running, cache = [], {}
        for wid, a in rows.items():
            if a.state == "running" and a.seq in shares:
                # The same workload on the same cards as last time: reuse its model (building
                # frozen models for hundreds of idle sessions every cycle is most of the cost).
                key = (a.team, a.started_at, tuple(shares[a.seq]))
                known = self._models.get(wid)
                if known is None or known[0] != key:
                    workload = Workload(id=wid, user=a.user, team=a.team, kind=WorkloadKind(a.kind), gpus=a.gpus, submitted_at=a.submitted_at)
                    allocation = Allocation(wid, tuple(GpuShare(node=n, gpu_uuid=u, fraction=f) for n, u, f in shares[a.seq]), a.started_at or a.submitted_at)
                    known = (key, Running(workload, allocation))
                cache[wid] = known
                running.append(known[1])
        self._models = cache
        return running, gpus, waiting_gpus, rows

    def after_cycle(self, db: Session, now: float) -> list[ServerAction]:
        """Run the policy on the running workloads; record its decisions; say which servers to stop."""
        if self._states is None:
            self._states = self._load_states(db)
        elif now - self._checked_at < self.check_seconds:
            return []  # cycles run on every submit and exit; idle time moves in seconds
        self._checked_at = now
        running, gpus, waiting_gpus, active = self._active(db, now)
        settings = self.settings if self.enabled else PolicySettings(IdlePolicy(enabled=False), self.settings.idle)
        d = decide(running, gpus, self._states, settings, now, waiting_gpus)

        def row(wid: str) -> WorkloadRow:
            return db.get(WorkloadRow, parse_workload_id(wid))

        for warn in d.warnings:
            self._states[warn.workload_id] = ReclaimState(warned_at=now, flagged_at=self._states.get(warn.workload_id, ReclaimState()).flagged_at)
            events.record(db, WARNED, warn.reason, row(warn.workload_id),
                          details={"idle_seconds": round(warn.idle_seconds), "reclaim_at": warn.reclaim_at}, at=now)
        for withdraw in d.withdrawals:
            s = self._states.get(withdraw.workload_id, ReclaimState())
            if withdraw.what == "warning":
                self._states[withdraw.workload_id] = ReclaimState(warned_at=None, flagged_at=s.flagged_at)
                events.record(db, WARNING_WITHDRAWN, f"warning withdrawn: {withdraw.reason}", row(withdraw.workload_id), at=now)
            else:
                self._states[withdraw.workload_id] = ReclaimState(warned_at=s.warned_at, flagged_at=None)
                events.record(db, FLAG_WITHDRAWN, f"flag withdrawn: {withdraw.reason}", row(withdraw.workload_id), at=now)
        for flag in d.flags:
            self._states[flag.workload_id] = ReclaimState(warned_at=self._states.get(flag.workload_id, ReclaimState()).warned_at, flagged_at=now)
            events.record(db, FLAGGED, flag.reason, row(flag.workload_id), details={"idle_seconds": round(flag.idle_seconds)}, at=now)

        todo = []
        for r in d.reclaims:
            if self._stops.busy(r.workload_id, now):
                continue  # under way, or the hub refused a moment ago: try again after retry_seconds
            w = row(r.workload_id)
            what = "stopped (your files are kept)" if r.action == "stop" else "restarted without GPUs"
            message = f"{r.reason}: the session is {what} and its {r.gpus:g} GPU(s) go back to the pool"
            # The GPUs stay held until the server is gone (the "reclaimed" event says so then):
            # a process still on a card must not share it with the next user.
            w.state = "stopping"
            w.reason = f"{RECLAIMING_REASON}{r.reason}"
            self._reclaiming[w.id] = (message, {"action": r.action, "idle_seconds": round(r.idle_seconds), "gpus": r.gpus})
            todo.append(ServerAction(w.id, w.user, server_name_of(w.name), r.action))

        # Reclaims left half-done by a restart (or refused by the hub): try again.
        planned = {a.workload_id for a in todo}
        for wid, a in active.items():
            if a.state == "stopping" and a.kind == "session" and (a.reason or "").startswith(RECLAIMING_REASON):
                if wid in planned or self._stops.busy(wid, now):
                    continue
                todo.append(ServerAction(wid, a.user, server_name_of(a.name), self.settings.for_team(a.team).action))
        for wid, state in list(self._states.items()):
            a = active.get(wid)
            if state == NO_STATE or (a is not None and a.state not in ("running", "stopping")):
                del self._states[wid]  # nothing standing, or the workload has ended
        return todo

    # ------------------------------------------------------------ after commit

    def carry_out(self, actions: list[ServerAction]) -> None:
        """Stop (and restart) the servers of reclaimed sessions, in the background."""
        for a in actions:
            self._stops.start(a.workload_id, lambda a=a: self._carry_out(a))

    def hub(self) -> HubClient | None:
        """The service's hub client (None when no hub API URL or token is configured)."""
        if not self.hub_api_url or not self.hub_api_token:
            return None
        return HubClient(self.hub_api_url, self.hub_api_token)

    async def _carry_out(self, a: ServerAction) -> None:
        hub = self.hub()
        if hub is None or a.server is None:
            self.log.info("reclaimed %s: no server behind it, giving its GPUs back", a.workload_id)
        else:
            try:
                found = await hub.take_gpus_away(a.user, a.server, a.action, self.server_stop_timeout_seconds)
            except HubError as e:
                if getattr(e, "stopped", False):
                    self._failed(a, f"stopped the session's server but could not restart it without GPUs: {e}", still_running=False)
                    found = True
                else:
                    # The server still runs on its GPUs: they cannot go to anyone else.
                    self._failed(a, f"could not stop the session's server: {e}", still_running=True)
                    return
            self.log.info("reclaimed %s: %s's server %r %s", a.workload_id, a.user, a.server,
                          ("restarted without GPUs" if a.action == "restart_without_gpus" else "stopped") if found else "was not running")
        self._stops.succeeded(a.workload_id)
        self._give_back.add(a.workload_id)
        if self.on_change:
            self.on_change()

    def _failed(self, a: ServerAction, message: str, still_running: bool) -> None:
        """Tell admins once; a session whose server still runs goes back to running and is retried later."""
        self.log.error("reclaim of %s: %s", a.workload_id, message)
        with self.store.write() as db:
            w = db.get(WorkloadRow, parse_workload_id(a.workload_id))
            if w is None:
                return
            if still_running and w.state == "stopping":
                self._reclaiming.pop(w.id, None)
                w.state = "running"
                w.reason = f"idle, but the reclaim failed (retrying every {self.retry_seconds:g}s): {message}"
                self._stops.refused(a.workload_id)
            if a.workload_id not in self._reported_failures:
                self._reported_failures.add(a.workload_id)
                events.record(db, RECLAIM_FAILED, message, w)

    async def close(self) -> None:
        await self._stops.close()

    # ------------------------------------------------------------ reading idle time

    def gpu_idle_seconds(self, g: GpuRow, now: float) -> float | None:
        return idle_seconds(gpu_idle_state(g), self.settings.idle, now)

    def workload_idle_seconds(self, w: WorkloadRow, gpus: dict[str, GpuRow], now: float) -> float | None:
        if w.state != "running" or not w.shares:
            return None
        states = {s.gpu_uuid: gpu_idle_state(gpus[s.gpu_uuid]) for s in w.shares if s.gpu_uuid in gpus}
        return workload_idle_seconds(_running(w), states, self.settings.idle, now)


def _running(w: WorkloadRow) -> Running:
    return Running(workload=workload_model(w), allocation=allocation_model(w))


class IdleCollector:
    """Prometheus metrics of idle time, read at scrape time like the pool's other gauges."""

    def __init__(self, reclaim: IdleReclaim):
        self.reclaim = reclaim

    def collect(self):
        now = time.time()
        reclaim = self.reclaim
        gpu_idle = GaugeMetricFamily(
            "gpupool_gpu_idle_seconds", "Seconds a GPU has been below the idle threshold (absent: no recent reading).", labels=["node", "index", "uuid"]
        )
        # Per team and kind, never per workload or user: label values stay as few as the teams
        # (a label per workload would grow without bound and name what the API hides from others).
        workload_idle = GaugeMetricFamily(
            "gpupool_workloads_idle",
            "Running workloads whose every GPU is idle now, per team and kind (absent: no recent reading).",
            labels=["team", "kind"],
        )
        workload_idle_max = GaugeMetricFamily(
            "gpupool_workload_idle_seconds_max",
            "The longest time a running workload of a team and kind has been idle (0: all busy).",
            labels=["team", "kind"],
        )
        idle_counts: dict[tuple[str, str], int] = {}
        idle_longest: dict[tuple[str, str], float] = {}
        with reclaim.store.read() as db:
            gpus = {g.uuid: g for g in db.scalars(select(GpuRow).join(NodeRow))}
            for g in gpus.values():
                seconds = reclaim.gpu_idle_seconds(g, now)
                if seconds is not None:
                    gpu_idle.add_metric([g.node_name, str(g.index), g.uuid], seconds)
            for w in db.scalars(select(WorkloadRow).options(selectinload(WorkloadRow.shares)).where(WorkloadRow.state == "running")):
                seconds = reclaim.workload_idle_seconds(w, gpus, now)
                if seconds is not None:
                    key = (w.team, w.kind)
                    idle_counts[key] = idle_counts.get(key, 0) + (1 if seconds > 0 else 0)
                    idle_longest[key] = max(idle_longest.get(key, 0.0), seconds)
            counts = db.execute(
                select(EventRow.team, EventRow.kind, func.count())
                .where(EventRow.kind.in_((WARNED, FLAGGED, RECLAIM_FAILED)))
                .group_by(EventRow.team, EventRow.kind)
            ).all()
        for key in sorted(idle_counts):
            workload_idle.add_metric(list(key), idle_counts[key])
            workload_idle_max.add_metric(list(key), idle_longest[key])
        yield gpu_idle
        yield workload_idle
        yield workload_idle_max
        idle_events = CounterMetricFamily(
            "gpupool_idle_events", "Idle sessions warned, idle jobs flagged and reclaims the hub refused, per team.", labels=["team", "kind"]
        )
        for team, kind, count in counts:
            idle_events.add_metric([team or "", kind], count)
        yield idle_events


_registered: dict = {}


def register_metrics(reclaim: IdleReclaim) -> None:
    """Expose idle time on the service's /metrics (once per process; the newest service wins)."""
    from . import metrics

    collector = _registered.get("collector")
    if collector is None:
        collector = _registered["collector"] = IdleCollector(reclaim)
        metrics.REGISTRY.register(collector)
    collector.reclaim = reclaim
