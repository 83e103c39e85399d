"""Expected start times of pending workloads, refreshed in the background.

Off the request path: every ``refresh_seconds`` this takes the live snapshot
(the last committed cycle's, or a read of the same rows) and the history of
finished workloads, estimates run times (``hub_ext.scheduler.estimates``), runs
the queue forward with the same core (``hub_ext.scheduler.forward``), and
writes each pending workload's ``expected_start`` and ``expected_start_basis``.
Handlers only read those columns.

Where it runs: in a thread of the service while the queue is short; from
``worker_process_from`` pending workloads on, in a worker process (its own
interpreter, reading and writing the database itself), because a thread's
forward run competes with the scheduling cycles for Python's GIL: at 50,000
pending, the slowest cycle beside a refresh in a thread took 1.9-3.6 s (87-127 ms
beside the worker process; benchmarks/bench_service_cycle.py).

An expected start is an estimate, never a promise: it assumes nobody else
submits, and it is "not known" (null, with the reason in the basis) where the
GPUs a workload waits for are held by work with no time limit and no history.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, select, update
from traitlets import Bool, Enum, Float, Integer, TraitError, validate
from traitlets.config import LoggingConfigurable

from ..scheduler.estimates import BEYOND, GIVEN_RUN, Estimate, Estimator, PastRun, duration_text
from ..scheduler.forward import run_forward, with_estimates
from ..scheduler.model import SchedulerConfig, Snapshot, WorkloadKind
from .gc_pause import paused_gc
from .snapshot import build_snapshot
from .store import Store, WorkloadRow
from .store.orm import parse_workload_id

ENDED = ("completed", "failed", "cancelled")

Found = dict[int, tuple[float | None, str]]  # row seq -> (expected start or None, its basis)


@dataclass(frozen=True)
class RefreshSettings:
    """What one refresh needs besides the rows, as plain data (a worker process gets it pickled)."""

    config: SchedulerConfig
    attained_step: float
    history_runs: int
    min_runs: int
    last_runs: int
    quantile: float
    horizon_s: float
    max_cycles: int
    session_max_s: dict[str, float] = field(default_factory=dict)  # TimeLimits.team_session_max_s ("*": the rest)
    given_run: str = "off"  # ExpectedStarts.given_run (estimates.Estimator)
    beyond: str = "las"  # ExpectedStarts.beyond


def read_history(db, limit: int) -> list[PastRun]:
    """The most recently ended workloads that ran, as past runs for the estimates."""
    rows = db.execute(
        select(WorkloadRow.user, WorkloadRow.team, WorkloadRow.kind, WorkloadRow.gpus, WorkloadRow.started_at, WorkloadRow.finished_at)
        .where(WorkloadRow.state.in_(ENDED), WorkloadRow.started_at.is_not(None), WorkloadRow.finished_at.is_not(None))
        .order_by(WorkloadRow.finished_at.desc())
        .limit(limit)
    )
    return [PastRun(u, t, k, g, max(0.0, f - s), f) for u, t, k, g, s, f in rows]


def forecast(snapshot: Snapshot, history: list[PastRun], settings: RefreshSettings) -> tuple[Found, dict[str, Estimate]]:
    """Expected start and basis of every pending workload by row seq, and every workload's run-time
    estimate with its basis (kept for the loop's core: it quotes the basis where an estimate places
    work, las_on_estimates; running work's too, queue or not). Pure: the same in a thread and in a
    worker process."""
    if not snapshot.pending and not snapshot.running:
        return {}, {}
    estimator = Estimator(history, min_runs=settings.min_runs, last=settings.last_runs, q=settings.quantile,
                          given_run=settings.given_run, beyond=settings.beyond)
    longest_of = settings.session_max_s
    bases: dict[str, str] = {}

    def estimate_of(w):
        e = estimator.estimate(w)
        seconds, basis = e.seconds, e.basis
        longest = longest_of.get(w.team, longest_of.get("*")) if w.kind is WorkloadKind.SESSION else None
        if longest is not None and (seconds is None or seconds > longest):
            seconds, basis = longest, f"team {w.team}'s maximum session length of {duration_text(longest)}"
        bases[w.id] = basis
        return Estimate(seconds, basis, e.source if seconds == e.seconds else "limit")

    estimated = with_estimates(snapshot, estimate_of)
    estimates = {w.id: Estimate(w.estimate_s, bases[w.id], "") for w in estimated.pending}
    estimates.update((r.workload.id, Estimate(r.workload.estimate_s, bases[r.workload.id], "")) for r in estimated.running)
    if not snapshot.pending:
        return {}, estimates
    forecasts = run_forward(estimated, bases, horizon_s=settings.horizon_s, max_cycles=settings.max_cycles)
    pending = {w.id for w in snapshot.pending}  # (work started since the snapshot is left alone by write_found)
    return {parse_workload_id(wid): (f.at, f.basis) for wid, f in forecasts.items() if wid in pending}, estimates


WRITE_BATCH = 2000  # rows written in one transaction: the scheduling cycles wait for the write lock in between


def write_found(store: Store, found: Found) -> int:
    """Store what changed; how many rows were written. What is stored is compared outside any write
    transaction, and what changed is written a batch at a time: at 50,000 pending, reading the queue
    inside one write transaction held SQLite's write lock (so the scheduling cycles) for 0.3-0.7 s,
    and a first refresh writes every row. A row that left the queue meanwhile is left alone."""
    if not found:
        return 0
    with store.read() as db:
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
                changed.append({"row_seq": seq, "at": new_at, "basis": new[1]})
    table = WorkloadRow.__table__
    stored = (  # (Core, not the ORM: these columns are not scheduling columns, no revision stamp moves)
        update(table).where(table.c.seq == bindparam("row_seq"), table.c.state == "pending")
        .values(expected_start=bindparam("at"), expected_start_basis=bindparam("basis"))
    )
    for start in range(0, len(changed), WRITE_BATCH):
        with store.write() as db:
            db.connection().execute(stored, changed[start:start + WRITE_BATCH])
    return len(changed)


_worker_stores: dict[str, Store] = {}  # in a worker process: one Store (engine) per database, kept between refreshes


def refresh_in_worker(url: str, now: float, settings: RefreshSettings, want_estimates: bool):
    """One whole refresh in a worker process: read the rows and history, forecast, write what changed.
    -> (rows written, the estimates if wanted else None, this process's id)."""
    store = _worker_stores.get(url)
    if store is None:
        store = _worker_stores[url] = Store(url)
    with paused_gc():
        with store.read() as db:
            snapshot, _ = build_snapshot(db, now, settings.config, attained_step=settings.attained_step)
            history = read_history(db, settings.history_runs)
        found, estimates = forecast(snapshot, history, settings)
    return write_found(store, found), (estimates if want_estimates else None), os.getpid()


def _lower_priority(nice: int) -> None:
    """The worker process's first step: a lower CPU priority (ExpectedStarts.worker_nice)."""
    if nice and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError:  # (raising one's nice value is always allowed on Linux; elsewhere, run as it is)
            pass


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
    given_run = Enum(
        list(GIVEN_RUN),
        default_value="off",
        help="""How a workload that has already run is estimated (estimates.Estimator): "off", from all past runs of
        its shape; "quantile" (at ``quantile``), "mean" or "gittins" (the Gittins index), from the past runs that ran
        longer than it has so far only: a job past most of its shape's runs is then expected to run as the longer
        ones did, not "about to end". Running work's estimates feed the expected starts of what waits for it.""",
    ).tag(config=True)
    beyond = Enum(
        list(BEYOND),
        default_value="las",
        help="""A workload that has run longer than its estimate (or, with given_run, than every past run of its
        shape): "las", its estimate stands, overrun (the core orders it by attained service alone); "overrun",
        it is expected to run a quarter of its overrun more, at least 5 minutes.""",
    ).tag(config=True)
    horizon_seconds = Float(30 * 86400.0, help="The forward run looks this far ahead; later starts are 'not known'.").tag(config=True)
    max_cycles = Integer(2000, help="Most scheduling cycles one forward run may take (bounds its cost).").tag(config=True)
    worker_process_from = Integer(
        2000,
        help="""A refresh runs in a worker process (its own interpreter, which reads and writes the database
        itself) once this many workloads are pending, and in a thread of the service below that. A refresh's
        forward run in a thread competes with the scheduling cycles for Python's GIL: at 50,000 pending the
        slowest cycle beside it took 1.9-3.6 s, against 87-127 ms beside the worker process (bench_service_cycle.py). 0: always in the worker process; -1: never (an
        in-memory SQLite database is always refreshed in the service).""",
    ).tag(config=True)

    worker_nice = Integer(
        10,
        help="""How much lower the worker process's CPU priority is than the service's (added to its nice value,
        Linux and other Unix; 0: the same). A refresh is background work that keeps a core busy for seconds
        at a time; a scheduling cycle is what people wait for: where cores are few, the cycle goes first.""",
    ).tag(config=True)

    @validate("worker_nice")
    def _check_nice(self, proposal):
        if not 0 <= proposal["value"] <= 19:
            raise TraitError(f"worker_nice must be within 0..19, not {proposal['value']}")
        return proposal["value"]

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
        self._executor: ProcessPoolExecutor | None = None  # the worker process, started on the first refresh that needs it
        self.last_refresh_pid: int | None = None  # which process ran the last refresh (the service's, or its worker's)

    # ------------------------------------------------------------ one refresh

    @property
    def settings(self) -> RefreshSettings:
        return RefreshSettings(
            config=self.loop.scheduler_config, attained_step=self.loop.attained_step, history_runs=self.history_runs,
            min_runs=self.min_runs, last_runs=self.last_runs, quantile=self.quantile, horizon_s=self.horizon_seconds,
            max_cycles=self.max_cycles, session_max_s=dict(self.time_limits.team_session_max_s) if self.time_limits else {},
            given_run=self.given_run, beyond=self.beyond,
        )

    def compute(self, now: float) -> Found:
        """Expected start and basis of every pending workload, by row seq, in this process (the garbage
        collector paused: the forward run builds a copy of the whole queue, and the collector's full passes
        over it held the GIL for 300-730 ms at 50,000 pending, stalling the scheduling cycles beside it)."""
        # The last committed cycle's snapshot, as its core saw it (pending, running, teams, decayed usage),
        # when the loop has one: reading every row again cost about a second at 50,000 pending, each refresh.
        settings = self.settings
        snapshot = getattr(self.loop, "settled", None)
        with paused_gc():
            with self.store.read() as db:
                if snapshot is None:  # (Store.read holds no write lock: cycles and submits do not wait for this)
                    snapshot, _ = build_snapshot(db, now, settings.config, attained_step=settings.attained_step)
                history = read_history(db, self.history_runs)
            found, estimates = forecast(snapshot, history, settings)
        self._estimates = estimates
        return found

    def estimate_of(self, w) -> Estimate | None:
        """The run-time estimate of a workload as of the last refresh, with its basis (None: not refreshed yet)."""
        return self._estimates.get(w.id)

    def write(self, found: Found) -> int:
        """Store what changed (rows that left the queue meanwhile are left alone); how many rows were written."""
        return write_found(self.store, found)

    def _pending_now(self) -> int:
        settled = getattr(self.loop, "settled", None)
        if settled is not None:
            return len(settled.pending)
        with self.store.read() as db:
            return db.scalar(select(func.count()).select_from(WorkloadRow).where(WorkloadRow.state == "pending")) or 0

    def in_worker_process(self) -> bool:
        """Does the next refresh run in the worker process?"""
        if self.worker_process_from < 0:
            return False
        url = self.store.url  # an in-memory SQLite database is this process's alone
        if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"):
            return False
        return self.worker_process_from == 0 or self._pending_now() >= self.worker_process_from

    def _worker(self) -> ProcessPoolExecutor:
        if self._executor is None:  # spawned, not forked: the service has threads, and a fork copies their locks
            self._executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_lower_priority, initargs=(self.worker_nice,))
        return self._executor

    async def refresh(self) -> None:
        started = time.perf_counter()
        now = time.time()
        running = asyncio.get_running_loop()
        if self.in_worker_process():
            settings, want = self.settings, self.loop.feeds_estimates
            try:
                _, estimates, self.last_refresh_pid = await running.run_in_executor(
                    self._worker(), refresh_in_worker, self.store.url, now, settings, want
                )
            except BrokenProcessPool:  # the worker died (killed, out of memory): a new one next time
                self._executor = None
                raise
            self._estimates = estimates or {}
            self.store.generation += 1  # (another process wrote: views cached by generation are read again)
        else:
            await running.run_in_executor(None, lambda: self.write(self.compute(now)))
            self.last_refresh_pid = os.getpid()
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
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

