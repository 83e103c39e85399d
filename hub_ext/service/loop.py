"""The scheduling loop: snapshot from the database -> scheduler core -> decisions -> apply.

One cycle is one serialised transaction (``Store.write``), so concurrent
requests and several service processes never decide on a stale view. Cycles
run on events (submit, finish, cancel, resize, quota change) and on a
periodic tick; within this process an asyncio lock keeps them one at a time.
After the transaction commits, job processes are started and stopped
(``JobSupervisor``).
"""

from __future__ import annotations

import asyncio
import time

from traitlets import Bool, Enum, Float, TraitError, validate
from traitlets.config import LoggingConfigurable

from ..scheduler.forward import with_estimates
from ..scheduler.model import SchedulerConfig
from . import metrics
from .apply import JobActions, OvercommitError, apply_decisions
from .jobs import JobSupervisor
from .snapshot import build_snapshot
from .store import Store


def _schedule_function():
    # Imported late so the service starts (and reports why) even if the core is broken.
    from ..scheduler import schedule

    return schedule


def _same_running(a, b) -> bool:
    if a is b:
        return True
    if a.workload.__dict__ != b.workload.__dict__:
        return False
    x, y = a.allocation, b.allocation
    return x.started_at == y.started_at and len(x.shares) == len(y.shares) and all(
        p.__dict__ == q.__dict__ for p, q in zip(x.shares, y.shares)
    )


class IncrementalCore:
    """The core's stateful ``Scheduler``, kept between cycles and brought up to date by differences.

    Each cycle reads the database's snapshot (the one source of truth: other
    service processes and requests change it too); instead of indexing the
    whole snapshot again (``schedule(snapshot)``), the workloads that arrived,
    left, started, stopped or changed since the last cycle are passed to the
    kept ``Scheduler`` as its events (submit, cancel, started, finished), and
    it decides. A cycle is pure, so the decisions equal ``schedule(snapshot)``
    (tests/service/test_incremental_core.py checks it); a change of pool,
    teams or configuration re-indexes from the snapshot.
    """

    def __init__(self):
        self.scheduler = None
        self._key = None
        self.rebuilds = 0

    def decide(self, snapshot):
        from ..scheduler import Scheduler

        key = (snapshot.pool, tuple(sorted(snapshot.teams.items())), snapshot.config)
        s = self.scheduler
        if s is None or key != self._key:
            self.scheduler = s = Scheduler.from_snapshot(snapshot)
            self._key = key
            self.rebuilds += 1
            return s.cycle(snapshot.now)
        running = {r.workload.id: r for r in snapshot.running}
        pending = {w.id: w for w in snapshot.pending}
        for wid, r in list(s.running.items()):
            now_r = running.get(wid)
            if now_r is None or not _same_running(now_r, r):
                s.finished(wid)
        for wid, w in list(s.pending.items()):
            now_w = pending.get(wid)
            # Field by field through the instance dicts: a snapshot read from the
            # database holds new objects each cycle, and dict equality is C code.
            if now_w is None or (now_w is not w and now_w.__dict__ != w.__dict__):
                s.cancel(wid)
        for wid, r in running.items():
            if wid not in s.running:
                s.cancel(wid)
                s.started(r.workload, r.allocation)
        s.submit_many([w for wid, w in pending.items() if wid not in s.pending])
        s.set_history(snapshot.history)  # decayed past usage changes between cycles
        return s.cycle(snapshot.now)


class SchedulingLoop(LoggingConfigurable):
    tick_seconds = Float(
        5.0,
        help="Seconds between scheduling cycles when nothing happens (submits, exits and changes trigger one at once).",
    ).tag(config=True)

    preemption = Bool(True, help="Reclaim quota and priority by preempting borrowed GPUs.").tag(config=True)
    borrowing = Bool(True, help="Teams may use idle GPUs beyond their quota (preemptible).").tag(config=True)
    ordering = Enum(
        ["fair", "fifo"],
        default_value="fair",
        help='"fair": team/user fair share and priority; "fifo": submit time only.',
    ).tag(config=True)
    reservation_after_s = Float(
        3600.0,
        help="A pending workload waiting longer than this gets a reservation; smaller work may only backfill around it.",
    ).tag(config=True)
    elastic = Bool(True, help="Elastic jobs grow into idle GPUs and are shrunk before anyone is preempted.").tag(config=True)
    time_backfill = Bool(
        True,
        help="""Jobs whose time limit ends them before a reservation's expected start may use the GPUs it holds
        (EASY backfilling); they cannot delay it.""",
    ).tag(config=True)
    backfill_on_estimates = Bool(
        False,
        help="""Trust run-time estimates from history (not only declared time limits) for backfilling onto
        reserved GPUs. A job backfilled on an estimate that runs past it is preempted (with the usual
        notice) when the reserved workload's time comes.""",
    ).tag(config=True)
    aging_gpus_per_hour = Float(
        0.0,
        help="""Aging: a borrowing team's next workload is ranked as if its team borrowed this many GPUs
        less per hour it has waited (up to aging_max_gpus). 0: no aging.""",
    ).tag(config=True)
    aging_max_gpus = Float(4.0, help="The most credit (in GPUs) aging gives a waiting workload.").tag(config=True)
    incremental = Bool(
        True,
        help="Keep the scheduler core's indexed state between cycles and update it by differences "
        "(same decisions as rebuilding it from the snapshot every cycle, less work on long queues).",
    ).tag(config=True)

    @validate("aging_gpus_per_hour", "aging_max_gpus")
    def _valid_aging(self, proposal):
        value = proposal["value"]
        if not (0 <= value <= 10000):
            raise TraitError(f"SchedulingLoop.{proposal['trait'].name} must be between 0 and 10000 GPUs; got {value!r}")
        return value

    def __init__(self, store: Store, supervisor: JobSupervisor, reclaim=None, preemption_rules=None, history=None, time_limits=None, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.supervisor = supervisor
        self.reclaim = reclaim  # IdleReclaim: runs around every cycle, in the same transaction
        self.preemption_rules = preemption_rules  # Preemption: notice and grace for preempted work, minimum run-times
        self.history = history  # UsageDecay: decayed past usage for the fair-share order
        self.time_limits = time_limits  # TimeLimits: stops jobs past their limit, before every cycle
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self.last_cycle_at: float | None = None
        self.last_error: str | None = None
        # ExpectedStarts.estimate_of, set by the app: run-time estimates for backfill_on_estimates.
        self.estimates = None
        self.core = IncrementalCore()

    @property
    def scheduler_config(self) -> SchedulerConfig:
        return SchedulerConfig(
            preemption=self.preemption,
            borrowing=self.borrowing,
            ordering=self.ordering,
            reservation_after_s=self.reservation_after_s,
            elastic=self.elastic,
            time_backfill=self.time_backfill,
            backfill_on_estimates=self.backfill_on_estimates,
            aging_gpus_per_hour=self.aging_gpus_per_hour,
            aging_max_gpus=self.aging_max_gpus,
        )

    async def cycle(self, pending_actions: JobActions | None = None) -> None:
        """Run one cycle now (waiting for one in progress), then act on processes.

        ``pending_actions`` are process actions of a request's own transaction
        (e.g. the stop of a cancelled job), carried out together with the cycle's.
        """
        async with self._lock:
            actions = JobActions()
            if pending_actions:
                actions.extend(pending_actions)
            started = time.perf_counter()
            server_actions = []
            server_stops = []
            try:
                now = time.time()
                with self.store.write() as db:
                    if self.reclaim is not None:
                        actions.extend(self.reclaim.before_cycle(db, now))
                    if self.preemption_rules is not None:
                        server_stops = self.preemption_rules.before_cycle(db, now, actions)
                    if self.time_limits is not None:
                        actions.extend(self.time_limits.before_cycle(db, now))
                    history = self.history.update(db, now) if self.history is not None else None
                    snapshot, rows = build_snapshot(db, now, self.scheduler_config, self.preemption_rules, history)
                    if self.backfill_on_estimates and self.estimates is not None:
                        snapshot = with_estimates(snapshot, self.estimates)
                    decisions = self.core.decide(snapshot) if self.incremental else _schedule_function()(snapshot)
                    actions.extend(apply_decisions(db, decisions, rows, now, self.supervisor.runner.max_nodes, self.preemption_rules))
                    if self.reclaim is not None:
                        server_actions = self.reclaim.after_cycle(db, now)
                self.last_error = None
                metrics.record_cycle(decisions, time.perf_counter() - started)
            except OvercommitError as e:
                server_stops = []  # rolled back with the cycle
                self.last_error = str(e)
                self.log.error("Scheduling cycle refused: %s", e)
            except Exception as e:
                server_stops = []
                self.core = IncrementalCore()  # its state may be half updated: re-index next cycle
                self.last_error = f"{type(e).__name__}: {e}"
                self.log.exception("Scheduling cycle failed")
            self.last_cycle_at = time.time()
        if server_actions:
            self.reclaim.carry_out(server_actions)
        if server_stops:
            self.preemption_rules.carry_out(server_stops)
        for seq, handle, at, reason, uuids in actions.notices:
            self.supervisor.notice(seq, handle, at, reason, uuids)
        await self.supervisor.execute(actions.stop, actions.start, actions.stop_gpus)

    def poke(self) -> None:
        """Ask for a cycle soon, without waiting for it."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.tick_seconds)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                break
            await self.cycle()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
