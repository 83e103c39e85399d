"""Expected start times of pending workloads, refreshed in the background.

Off the request path: every ``refresh_seconds`` this reads the live snapshot
(the same one a scheduling cycle reads) and the history of finished
workloads, estimates run times (``hub_ext.scheduler.estimates``), runs the
queue forward with the same core (``hub_ext.scheduler.forward``) in a worker
thread, and writes each pending workload's ``expected_start`` and
``expected_start_basis``. Handlers only read those columns.

An expected start is an estimate, never a promise: it assumes nobody else
submits, and it is "not known" (null, with the reason in the basis) where the
GPUs a workload waits for are held by work with no time limit and no history.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select, update
from traitlets import Bool, Float, Integer
from traitlets.config import LoggingConfigurable

from ..scheduler.estimates import Estimate, Estimator, PastRun, duration_text
from ..scheduler.forward import run_forward, with_estimates
from ..scheduler.model import WorkloadKind
from .snapshot import build_snapshot
from .store import Store, WorkloadRow

ENDED = ("completed", "failed", "cancelled")


class ExpectedStarts(LoggingConfigurable):
    enabled = Bool(True, help="Compute expected start times of pending workloads in the background.").tag(config=True)
    refresh_seconds = Float(30.0, help="Seconds between refreshes of the expected start times.").tag(config=True)
    history_runs = Integer(
        20000, help="How many of the most recently ended workloads run-time estimates learn from."
    ).tag(config=True)
    min_runs = Integer(3, help="Fewest past runs of a shape (user, team or pool) an estimate is made from.").tag(config=True)
    last_runs = Integer(50, help="An estimate uses at most this many of the latest runs of its shape.").tag(config=True)
    quantile = Float(
        0.5, help="Which quantile of past run times is the estimate (0.5: the median; higher: more cautious)."
    ).tag(config=True)
    horizon_seconds = Float(30 * 86400.0, help="The forward run looks this far ahead; later starts are 'not known'.").tag(config=True)
    max_cycles = Integer(2000, help="Most scheduling cycles one forward run may take (bounds its cost).").tag(config=True)

    def __init__(self, store: Store, loop, time_limits=None, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.loop = loop  # SchedulingLoop: its scheduler configuration
        self.time_limits = time_limits  # TimeLimits: a team's maximum session length bounds its sessions
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.last_refresh_at: float | None = None
        self.last_refresh_seconds: float | None = None
        self._estimates: dict[str, Estimate] = {}  # by workload id, from the last refresh

    # ------------------------------------------------------------ one refresh

    def history(self, db) -> list[PastRun]:
        rows = db.execute(
            select(WorkloadRow.user, WorkloadRow.team, WorkloadRow.kind, WorkloadRow.gpus, WorkloadRow.started_at, WorkloadRow.finished_at)
            .where(WorkloadRow.state.in_(ENDED), WorkloadRow.started_at.is_not(None), WorkloadRow.finished_at.is_not(None))
            .order_by(WorkloadRow.finished_at.desc())
            .limit(self.history_runs)
        )
        return [PastRun(u, t, k, g, max(0.0, f - s), f) for u, t, k, g, s, f in rows]

    def compute(self, now: float) -> dict[int, tuple[float | None, str]]:
        """Expected start and basis of every pending workload, by row seq."""
        # Store.read_unlocked: on SQLite, Store.read begins IMMEDIATE and would hold the write lock through
        # this whole read (about a second at 50,000 pending), and every cycle and submit would wait for it.
        with self.store.read_unlocked() as db:
            snapshot, active = build_snapshot(db, now, self.loop.scheduler_config, attained_step=self.loop.attained_step)
            if not snapshot.pending:
                return {}
            estimator = Estimator(self.history(db), min_runs=self.min_runs, last=self.last_runs, q=self.quantile)
        bases: dict[str, str] = {}

        def estimate_of(w):
            e = estimator.estimate(w)
            seconds, basis = e.seconds, e.basis
            longest = self.time_limits.session_max_for(w.team) if self.time_limits and w.kind is WorkloadKind.SESSION else None
            if longest is not None and (seconds is None or seconds > longest):
                seconds, basis = longest, f"team {w.team}'s maximum session length of {duration_text(longest)}"
            bases[w.id] = basis
            return Estimate(seconds, basis, e.source if seconds == e.seconds else "limit")

        estimated = with_estimates(snapshot, estimate_of)
        # Kept with their basis: the loop's core quotes it where an estimate places work (las_on_estimates).
        self._estimates = {w.id: Estimate(w.estimate_s, bases[w.id], "") for w in estimated.pending}
        self._estimates.update((r.workload.id, Estimate(r.workload.estimate_s, bases[r.workload.id], "")) for r in estimated.running)
        forecasts = run_forward(estimated, bases, horizon_s=self.horizon_seconds, max_cycles=self.max_cycles)
        return {active[wid].seq: (f.at, f.basis) for wid, f in forecasts.items() if wid in active}

    def estimate_of(self, w) -> Estimate | None:
        """The run-time estimate of a workload as of the last refresh, with its basis (None: not refreshed yet)."""
        return self._estimates.get(w.id)

    def write(self, found: dict[int, tuple[float | None, str]]) -> int:
        """Store what changed (rows that left the queue meanwhile are left alone); how many rows were written."""
        if not found:
            return 0
        with self.store.write() as db:
            current = db.execute(
                select(WorkloadRow.seq, WorkloadRow.expected_start, WorkloadRow.expected_start_basis).where(WorkloadRow.state == "pending")
            )
            changed = []
            for seq, at, basis in current:
                new = found.get(seq)
                if new is None:
                    continue
                new_at = None if new[0] is None else round(new[0])
                if (at if at is None else round(at), basis) != (new_at, new[1]):
                    changed.append({"seq": seq, "expected_start": new_at, "expected_start_basis": new[1]})
            if changed:
                db.execute(update(WorkloadRow), changed)
        return len(changed)

    async def refresh(self) -> None:
        started = time.perf_counter()
        now = time.time()
        found = await asyncio.get_running_loop().run_in_executor(None, self.compute, now)
        self.write(found)
        self.last_refresh_at = now
        self.last_refresh_seconds = time.perf_counter() - started

    # ------------------------------------------------------------ in the background

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("Refreshing expected start times failed")
            await asyncio.sleep(self.refresh_seconds)

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

