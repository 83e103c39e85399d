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
from dataclasses import replace

from traitlets import Bool, Enum, Float, Int, List, TraitError, validate
from traitlets.config import LoggingConfigurable

from ..scheduler.forward import with_estimates
from ..scheduler.model import Running, SchedulerConfig
from . import metrics
from .apply import JobActions, OvercommitError, apply_decisions
from .jobs import JobSupervisor
from .queue_state import QueueView
from .attained import ATTAINED_STEP
from .gc_pause import paused_gc
from .snapshot import KeptSnapshot, build_snapshot, read_teams
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


def attained_revisions(snapshot, rows) -> dict:
    """Workload id -> what says it changed: ``WorkloadRow.revision``, and for running work its attained service.

    A running workload's attained service grows with no write to its row; as the snapshot gives it on a
    grid (attained.on_grid), it moves, and the workload is read again, only when it reaches the next step."""
    revisions = {wid: a.revision for wid, a in rows.items()}
    for r in snapshot.running:
        w = r.workload
        if w.attained_gpu_s:
            revisions[w.id] = (revisions[w.id], w.attained_gpu_s)
    return revisions


def differences(kept, full) -> int:
    """How many workloads two snapshots hold differently (present in one only, or with other fields)."""

    def by_id(s):
        out = {w.id: w.__dict__ for w in s.pending}
        out.update((r.workload.id, (r.workload.__dict__, r.allocation, r.leaving)) for r in s.running)
        return out

    a, b = by_id(kept), by_id(full)
    return sum(1 for wid in a.keys() | b.keys() if a.get(wid) != b.get(wid))


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

    Which workloads changed: with ``revisions`` (workload id ->
    ``WorkloadRow.revision``, bumped by every write of a column the scheduler
    reads or of the workload's shares) only those whose revision moved are
    read again; without, every active workload is compared field by field.
    Every ``check_every``-th cycle compares field by field anyway and counts
    in ``misses`` the changes the revisions did not show (a write that
    bypassed the bump), which that comparison then applies.
    """

    def __init__(self, check_every: int = 0):
        self.scheduler = None
        self._key = None
        self._revisions = None
        self.rebuilds = 0
        self.cycles = 0
        self.check_every = check_every
        self.misses = 0

    def prime(self, snapshot) -> None:
        """Index ``snapshot`` without deciding (a warm-up before the first cycle): the next ``decide`` with
        the same pool, teams and configuration only applies what changed since."""
        from ..scheduler import Scheduler

        self.scheduler = Scheduler.from_snapshot(snapshot)
        self._key = (snapshot.pool, tuple(sorted(snapshot.teams.items())), snapshot.config)
        self._revisions = None
        self.rebuilds += 1
        # One cycle, its decisions dropped: a cycle changes no state of the Scheduler's (decisions come back
        # as events once applied), but the first builds what later ones keep (the starving work's index by
        # request shape, 100 ms at 50,000 pending), so the service's first real cycle is an ordinary one.
        self.scheduler.cycle(snapshot.now)

    def decide(self, snapshot, revisions=None, changed=None):
        """``changed`` (snapshot.KeptSnapshot): workload id -> its ``Running`` or pending ``Workload`` now, or None
        where it left the active states, for every workload that changed since the last call; given, it is
        used instead of ``revisions`` and nothing else of the snapshot is looked at."""
        from ..scheduler import Scheduler

        key = (snapshot.pool, tuple(sorted(snapshot.teams.items())), snapshot.config)
        s = self.scheduler
        kept, self._revisions = self._revisions, revisions
        if s is not None and key != self._key and key[0] == self._key[0] and key[2] == self._key[2]:
            # Only teams changed (an admin's quota edit): the Scheduler's own events, not a re-index.
            old, new = dict(self._key[1]), snapshot.teams
            for name, team in new.items():
                if old.get(name) != team:
                    s.set_team(team)
            for name in old.keys() - new.keys():
                s.remove_team(name)
            self._key = key
        if s is None or key != self._key:
            self.scheduler = s = Scheduler.from_snapshot(snapshot)
            self._key = key
            self.rebuilds += 1
            return s.cycle(snapshot.now)
        self.cycles += 1
        pend, run = s.pending, s.running
        if changed is not None:
            for wid in changed:
                if wid in run:
                    s.finished(wid)
            for wid in changed:
                if wid in pend:
                    s.cancel(wid)
            started = [x for x in changed.values() if isinstance(x, Running)]
            arrived = [x for x in changed.values() if x is not None and not isinstance(x, Running)]
        elif revisions is None or kept is None or (self.check_every and self.cycles % self.check_every == 0):
            sure = revisions is not None and kept is not None  # count what the revisions would have missed
            running = {r.workload.id: r for r in snapshot.running}
            for wid, r in list(run.items()):
                now_r = running.get(wid)
                if now_r is None or not _same_running(now_r, r):
                    if now_r is not None and sure and kept.get(wid) == revisions.get(wid):
                        self.misses += 1
                    s.finished(wid)
            pending = {w.id: w for w in snapshot.pending}
            for wid, w in list(pend.items()):
                now_w = pending.get(wid)
                # Field by field through the instance dicts: a snapshot read from the
                # database holds new objects each cycle, and dict equality is C code.
                if now_w is None or (now_w is not w and now_w.__dict__ != w.__dict__):
                    if now_w is not None and sure and kept.get(wid) == revisions.get(wid):
                        self.misses += 1
                    s.cancel(wid)
            started = [r for wid, r in running.items() if wid not in run]
            arrived = [w for wid, w in pending.items() if wid not in pend]
        else:
            # Only what was written since the last cycle (or left the active states).
            changed = {wid for wid, rev in revisions.items() if kept.get(wid) != rev}
            touched = [*changed, *(kept.keys() - revisions.keys())]
            for wid in touched:
                if wid in run:
                    s.finished(wid)
            for wid in touched:
                if wid in pend:
                    s.cancel(wid)
            started = [r for r in snapshot.running if r.workload.id in changed] if changed else []
            arrived = [w for w in snapshot.pending if w.id in changed] if changed else []
        for r in started:
            s.cancel(r.workload.id)
            s.started(r.workload, r.allocation)
        s.submit_many(arrived)
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
    incremental_check_every = Int(
        100,
        help="With incremental: each cycle also read this fraction (1/N) of the active workloads again, in turn, and "
        "compare them with the kept rows (other rows are read only when their revision stamp moved): every workload is "
        "checked within N cycles, and a change the revisions missed is logged and applied. 0: never.",
    ).tag(config=True)

    las_thresholds_gpu_hours = List(
        Float(),
        default_value=[16.0],
        help="""Least attained service within a team: GPU-hours a workload has held so far (over all its runs)
        cut into queues at these thresholds. Work of a team that has held less goes first, and may preempt
        (or shrink) its own team's work of a higher queue, never another team's. [16] (Tiresias's) makes two
        queues; [] turns it off (submit order within a team).""",
    ).tag(config=True)
    attained_step = Float(
        ATTAINED_STEP,
        help="""The scheduler sees a running workload's attained service rounded down to steps of this fraction
        or to a GPU-minute, whichever is more (and to the las_thresholds_gpu_hours exactly, so its queue is
        exact): the order of attained service between running jobs (elastic growth, which job new work shrinks
        first, the GPU-hours in a preemption's reason) is exact up to it. Smaller is finer and re-reads running
        work more often; 0: exact, every running workload re-read every cycle. Between 0 and 0.5.""",
    ).tag(config=True)

    las_on_estimates = Bool(
        False,
        help="""Inside a least-attained-service queue, order work by its estimated remaining GPU-time (a run-time
        estimate learned from past runs, ExpectedStarts, times the GPUs asked, less what it has held): work
        estimated short goes first, elastic growth goes to the least first, and new work shrinks only
        elastic jobs estimated to need more. Work with no estimate, or past its estimate, is ordered by
        plain least attained service; nothing is preempted for an estimate.""",
    ).tag(config=True)
    max_reservations = Int(
        1,
        allow_none=True,
        help="""How many starving workloads (waiting past reservation_after_s) may hold GPUs for themselves at
        once, oldest first; smaller work only backfills around them. None: every one.""",
    ).tag(config=True)
    elastic_growth_order = Enum(
        ["attained", "started"],
        default_value="attained",
        help="""Inside a team, which running elastic job grows first into idle GPUs: "attained" (least attained
        service first) or "started" (lowest least-attained-service queue, then earliest started).""",
    ).tag(config=True)
    las_preempt_elastic = Bool(
        False,
        help="""Least attained service may suspend (preempt) an elastic job of a higher queue once it is at its
        min_gpus; False: it only shrinks it, and the job keeps running.""",
    ).tag(config=True)
    new_work_shrinks_elastic = Bool(
        True,
        help="""New work (no attained service yet) that does not fit at its asked size shrinks its own team's
        elastic jobs that have run, most attained service first, and starts at its asked size.""",
    ).tag(config=True)
    new_work_shrink_floor = Float(
        0.5,
        help="""... but shrinks no job below this fraction of what it asked for (rounded up, at least its
        min_gpus). Between 0 and 1.""",
    ).tag(config=True)
    las_top_in_submit_order = Bool(
        True,
        help="""At the top least-attained-service queue, an elastic job below its asked size takes GPUs back from
        its team's top-queue elastic jobs submitted after it (latest first, down to their min_gpus), as
        Tiresias runs its last queue; False: they keep what they hold.""",
    ).tag(config=True)
    las_top_floor_until = Float(
        2.0,
        help="""... but a top-queue job whose attained service is below this many times the last of
        las_thresholds_gpu_hours (it reached the top queue only lately) keeps new_work_shrink_floor of what it
        asked. 0: every one may go down to its min_gpus.""",
    ).tag(config=True)
    elastic_spread_start = Bool(
        False,
        help="""An elastic job asking for more GPUs than any node has, whose asked GPUs do not fit on the fewest
        nodes that could hold them, may start on idle GPUs spread over more nodes, rather than start with
        fewer GPUs (at each size it tries, one consolidated block first). Off: a multi-GPU job runs only on the fewest nodes, as collective
        communication across nodes is slower on real machines.""",
    ).tag(config=True)
    las_estimates_take_back = Bool(
        False,
        help="""With las_on_estimates: a running elastic job below its asked size, with a run-time estimate, takes
        GPUs back from its team's running elastic jobs of its least-attained-service queue or a higher one that
        are estimated to need more GPU-time than it, the most first, down to their min_gpus (never suspending
        them). Off: only new work shrinks others; a job that started small only grows
        into idle GPUs.""",
    ).tag(config=True)
    las_suspend_elastic = Bool(
        False,
        help="""With las_on_estimates: at the start of a cycle, a team's running elastic jobs estimated to need at
        least las_suspend_ratio times the GPU-time of its work below its asked size (pending, or running short of
        its ask) are suspended (preempted whole and requeued; they resume later from where they were), the most
        first, so that the work estimated shorter gets the GPUs it asked for. Never work of a higher priority or
        a lower least-attained-service queue, a session, or work that started less than las_suspend_min_run_s
        ago. Off: elastic work is only shrunk, never suspended, for work estimated shorter.""",
    ).tag(config=True)
    las_suspend_ratio = Float(
        2.0,
        help="""With las_suspend_elastic: a running elastic job is suspended only for work estimated to need this
        many times less GPU-time than it, or fewer (more than 1).""",
    ).tag(config=True)
    las_suspend_min_run_s = Float(
        600.0,
        help="""With las_suspend_elastic: seconds a job runs after it started or resumed before it may be
        suspended again (0 or more).""",
    ).tag(config=True)
    las_suspend_wait_factor = Float(
        1.0,
        help="""With las_suspend_elastic: a job that has waited (the time since its submission, less its
        attained service at its asked size) this many times its own run-time estimate is no longer suspended,
        nor held back behind work estimated shorter: a bound on how long work waits for shorter work.
        0: no bound.""",
    ).tag(config=True)
    las_suspend_top_in_order = Bool(
        False,
        help="""With las_suspend_elastic and las_top_in_submit_order: work above the last least-attained-service
        cut suspends no one (the top level goes in submit order; work there that is estimated shorter waits
        for idle GPUs or its turn). Off: work of every level may have others suspended for it.""",
    ).tag(config=True)

    @validate("max_reservations")
    def _valid_max_reservations(self, proposal):
        if proposal["value"] is not None and proposal["value"] < 1:
            raise TraitError(f"SchedulingLoop.max_reservations must be at least 1, or None (every starving workload); got {proposal['value']!r}")
        return proposal["value"]

    @validate("new_work_shrink_floor")
    def _valid_shrink_floor(self, proposal):
        if not (0 <= proposal["value"] <= 1):
            raise TraitError(f"SchedulingLoop.new_work_shrink_floor must be between 0 and 1; got {proposal['value']!r}")
        return proposal["value"]

    @validate("las_suspend_ratio")
    def _valid_suspend_ratio(self, proposal):
        if not proposal["value"] > 1:
            raise TraitError(f"SchedulingLoop.las_suspend_ratio must be more than 1 (times the GPU-time of the work it is suspended for); got {proposal['value']!r}")
        return proposal["value"]

    @validate("las_suspend_min_run_s")
    def _valid_suspend_min_run(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"SchedulingLoop.las_suspend_min_run_s must be 0 or more (seconds); got {proposal['value']!r}")
        return proposal["value"]

    @validate("las_suspend_wait_factor")
    def _valid_suspend_wait(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"SchedulingLoop.las_suspend_wait_factor must be 0 (no bound) or more (times a job's run-time estimate); got {proposal['value']!r}")
        return proposal["value"]

    @validate("las_top_floor_until")
    def _valid_top_floor(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"SchedulingLoop.las_top_floor_until must be 0 or more (times the last cut); got {proposal['value']!r}")
        return proposal["value"]

    @validate("las_thresholds_gpu_hours")
    def _valid_las(self, proposal):
        value = [float(x) for x in proposal["value"]]
        if any(x <= 0 for x in value) or value != sorted(set(value)):
            raise TraitError(f"SchedulingLoop.las_thresholds_gpu_hours must be positive GPU-hours in increasing order; got {proposal['value']!r}")
        return value

    @validate("attained_step")
    def _valid_attained_step(self, proposal):
        if not (0 <= proposal["value"] <= 0.5):
            raise TraitError(f"SchedulingLoop.attained_step must be between 0 and 0.5; got {proposal['value']!r}")
        return proposal["value"]

    @validate("incremental_check_every")
    def _valid_check_every(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"SchedulingLoop.incremental_check_every must be 0 (never) or a number of cycles; got {proposal['value']!r}")
        return proposal["value"]

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
        # ExpectedStarts.estimate_of, set by the app: run-time estimates for backfill_on_estimates, las_on_estimates.
        self.estimates = None
        self.core = IncrementalCore(self.incremental_check_every)
        # The snapshot's rows kept between cycles: each cycle reads only the rows written since the last.
        self.kept = KeptSnapshot()
        self._estimates_seen: dict = {}
        # The last committed cycle's queue: pending work's positions and reasons, read by the API (queue_state.py).
        self.queue = QueueView()
        # What the last committed cycle decided on (immutable; before run-time estimates were added): the
        # expected starts' forward run starts from it rather than reading every row again (expected.py).
        self.settled = None
        self._deciding_on = None

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
            las_thresholds_gpu_s=tuple(h * 3600.0 for h in self.las_thresholds_gpu_hours),
            max_reservations=self.max_reservations,
            las_on_estimates=self.las_on_estimates,
            elastic_growth_order=self.elastic_growth_order,
            las_preempt_elastic=self.las_preempt_elastic,
            new_work_shrinks_elastic=self.new_work_shrinks_elastic,
            new_work_shrink_floor=self.new_work_shrink_floor,
            las_top_in_submit_order=self.las_top_in_submit_order,
            las_top_floor_until=self.las_top_floor_until,
            elastic_spread_start=self.elastic_spread_start,
            las_estimates_take_back=self.las_estimates_take_back,
            las_suspend_elastic=self.las_suspend_elastic,
            las_suspend_ratio=self.las_suspend_ratio,
            las_suspend_min_run_s=self.las_suspend_min_run_s,
            las_suspend_wait_factor=self.las_suspend_wait_factor,
            las_suspend_top_in_order=self.las_suspend_top_in_order,
        )

    def _read(self, db, now: float, history):
        """The kept snapshot brought up to date (only rows written since the last cycle read), with the
        rolling check: each cycle 1/``incremental_check_every`` of the kept rows read again and compared
        (KeptSnapshot._check); each workload the revisions did not show is counted in ``core.misses`` and
        handed to the core as changed."""
        cfg, rules, step = self.scheduler_config, self.preemption_rules, self.attained_step
        misses = self.kept.misses
        snapshot, rows, changed = self.kept.refresh(db, now, cfg, rules, history, step, check_every=self.incremental_check_every)
        self.core.misses += self.kept.misses - misses
        return snapshot, rows, changed

    def warm_up(self) -> None:
        """Read every active workload and index the core, outside the cycle's write transaction.

        Runs before a service's first cycle, and before the first cycle after a failed one (whatever
        forgot the kept rows): the full read (about 1 s at 60,000 rows) holds no write lock, and the
        cycle that follows reads only what was written meanwhile (KeptSnapshot.load)."""
        with paused_gc(freeze_after=True):
            with self.store.read() as db:
                snapshot = self.kept.load(db, time.time(), self.scheduler_config, self.preemption_rules, None, self.attained_step)
            self._prime(snapshot)

    @property
    def feeds_estimates(self) -> bool:
        """Does the core get run-time estimates (for backfill, or for least attained service)?"""
        return (self.backfill_on_estimates or self.las_on_estimates) and self.estimates is not None

    def _prime(self, snapshot) -> None:
        """Index the core on ``snapshot`` (outside a cycle; what it builds is frozen out of the garbage
        collector's passes: ``paused_gc(freeze_after=True)``)."""
        if self.feeds_estimates:
            snapshot = with_estimates(snapshot, self.estimates)
            self._estimated(snapshot, None)  # the estimates the core is indexed with
        with paused_gc(freeze_after=True):
            self.core.prime(snapshot)

    def reindex_if_changed(self) -> bool:
        """Index the kept core again, outside the cycle's write transaction, when the pool or the
        configuration changed (150-300 ms at 50,000 pending, which the cycle would otherwise spend
        holding the write lock). From the kept rows as they stand (revision ``seen``):
        the cycle then hands the core what was written since, as after a warm-up. True if it did."""
        if self.core.scheduler is None or self.kept.seen is None:
            return False
        config = self.scheduler_config
        with self.store.read() as db:
            pool = self.kept.pool(db)  # (the pool's stamp, read again only when it moved)
            key = self.core._key
            if pool == key[0] and config == key[2]:  # (a change of teams alone is applied by IncrementalCore.decide)
                return False
            teams = read_teams(db, self.preemption_rules)
        self._prime(self.kept.snapshot(pool, teams, time.time(), config))
        return True

    def _pool_or_config_changed(self) -> bool:
        """Quick, before each cycle: did the pool's stamp or the configuration move since the core was indexed?"""
        key = self.core._key
        if self.core.scheduler is None or key is None:
            return False
        if self.scheduler_config != key[2]:
            return True
        with self.store.read() as db:
            return self.kept.pool_moved(db)

    def _warm_up_in_thread(self) -> bool:
        # An in-memory SQLite database is one connection per thread: another thread would see an empty one.
        url = self.store.url
        return not (url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"))

    def _estimated(self, snapshot, changed):
        """``changed`` with the snapshot's workloads (which carry estimates), and those whose estimate moved."""
        seen, now_seen = self._estimates_seen, {}
        by_id = {w.id: w for w in snapshot.pending}
        by_id.update((r.workload.id, r) for r in snapshot.running)
        for wid, x in by_id.items():
            now_seen[wid] = (x.workload if isinstance(x, Running) else x).estimate_s
        self._estimates_seen = now_seen
        if changed is None:
            return None
        out = {wid: by_id.get(wid) for wid in changed}
        for wid, est in now_seen.items():
            if seen.get(wid, est) != est:
                out[wid] = by_id[wid]
        return out

    def decide(self, db, now: float):
        """This cycle's decisions, in its transaction: the snapshot read (the kept rows brought up to date,
        or everything), past usage and run-time estimates added, the kept core (or the pure function)
        deciding. -> (decisions, the rows apply.py needs by workload id)."""
        if self.incremental:
            snapshot, rows, changed = self._read(db, now, None)
            if self.history is not None:  # the GPUs in use as the kept rows count them: not read again
                snapshot = replace(snapshot, history=self.history.update(db, now, self.kept.in_use))
        else:
            history = self.history.update(db, now) if self.history is not None else None
            snapshot, rows = build_snapshot(db, now, self.scheduler_config, self.preemption_rules, history, self.attained_step)
        self._deciding_on = snapshot
        if self.feeds_estimates:
            snapshot = with_estimates(snapshot, self.estimates)
            if self.incremental:  # estimates come from past runs, not the rows: a changed one is a change too
                changed = self._estimated(snapshot, changed)
        if self.incremental:
            misses = self.core.misses
            decisions = self.core.decide(snapshot, None, changed)
            if self.core.misses > misses:
                self.log.warning("Scheduling: %d workload change(s) came without a revision bump; the full comparison caught them",
                                 self.core.misses - misses)
        else:
            decisions = _schedule_function()(snapshot)
        return decisions, rows

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
                if self.incremental:
                    if self.kept.seen is None:
                        prepare = self.warm_up
                    else:  # (re-indexing is rare: only then a worker thread)
                        prepare = self.reindex_if_changed if self._pool_or_config_changed() else None
                    if prepare is None:
                        pass
                    elif self._warm_up_in_thread():
                        await asyncio.to_thread(prepare)  # the service's handlers go on meanwhile
                    else:
                        prepare()
                now = time.time()
                with self.store.write() as db:
                    if self.reclaim is not None:
                        actions.extend(self.reclaim.before_cycle(db, now))
                    if self.preemption_rules is not None:
                        server_stops = self.preemption_rules.before_cycle(db, now, actions)
                    if self.time_limits is not None:
                        actions.extend(self.time_limits.before_cycle(db, now))
                    decisions, rows = self.decide(db, now)
                    actions.extend(apply_decisions(db, decisions, rows, now, self.supervisor.runner.max_nodes, self.preemption_rules))
                    if self.reclaim is not None:
                        server_actions = self.reclaim.after_cycle(db, now)
                self.queue.update(decisions.pending, now)
                self.settled = self._deciding_on
                self.last_error = None
                metrics.record_cycle(decisions, time.perf_counter() - started)
            except OvercommitError as e:
                server_stops = []  # rolled back with the cycle
                self.kept = KeptSnapshot()  # it read this transaction's own (rolled back) writes: read everything next cycle
                self.settled = None  # (and what it decided on was never committed)
                self.last_error = str(e)
                self.log.error("Scheduling cycle refused: %s", e)
            except Exception as e:
                server_stops = []
                self.core = IncrementalCore(self.incremental_check_every)  # its state may be half updated: re-index next cycle
                self.kept = KeptSnapshot()
                self.queue.clear()
                self.settled = None
                self.last_error = f"{type(e).__name__}: {e}"
                self.log.exception("Scheduling cycle failed")
            self._deciding_on = None  # (held only through the cycle: settled, if committed)
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
