"""The scheduler core's vocabulary: plain, immutable data in and out.

Everything the core knows arrives as these types, and everything it decides
leaves as these types. Nothing here imports tornado, SQLAlchemy, JupyterHub,
NVML or Kubernetes, so the live service and the trace simulator feed the same
core with the same data and get the same decisions.

Words (used identically in code, API, UI and docs):
pool, node, GPU, team, quota (guaranteed GPUs), over-quota weight, limit,
user, workload (session | job), allocation, fraction, queue, reason,
preemption, reclaim, resize, reservation, backfill.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

# Fractions are compared with this slack so that 0.1 + 0.2 + 0.7 fills a card.
EPSILON = 1e-9


class WorkloadKind(str, enum.Enum):
    SESSION = "session"  # an interactive notebook server
    JOB = "job"  # a batch job


# ---------------------------------------------------------------- the pool


@dataclass(frozen=True)
class GPU:
    """One physical card."""

    uuid: str
    index: int  # index on its node, as CUDA_VISIBLE_DEVICES counts
    model: str  # e.g. "V100-SXM2-32GB"
    memory_mib: int


@dataclass(frozen=True)
class Node:
    name: str
    gpus: tuple[GPU, ...]
    # A declared node with no real hardware behind it (demo, tests, simulator).
    simulated: bool = False
    # An unschedulable node keeps its running workloads but gets no new ones.
    schedulable: bool = True


@dataclass(frozen=True)
class Pool:
    nodes: tuple[Node, ...]

    @property
    def total_gpus(self) -> int:
        return sum(len(n.gpus) for n in self.nodes)


# ---------------------------------------------------------------- teams


@dataclass(frozen=True)
class Team:
    name: str
    quota: float  # guaranteed GPUs; never preempted while within it
    over_quota_weight: float = 1.0  # share of idle GPUs borrowed beyond quota
    limit: float | None = None  # hard cap on GPUs in use, None = no cap
    # Minimum run-time (minimum_runtime.py): work of this team started less than
    # this many seconds ago is not a victim. ``reclaim``: preempted whole so that
    # another team gets its quota back; ``shrink``: an elastic job's borrowed
    # GPUs (lent or over quota) taken back.
    min_runtime_reclaim_s: float = 0.0
    min_runtime_shrink_s: float = 0.0


# ---------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """A request for GPUs: an interactive session or a batch job.

    ``gpus`` is a whole number of GPUs, or a fraction in (0, 1) of one shared
    card. For an elastic job ``min_gpus``/``max_gpus`` bound what the core may
    give it; ``gpus`` is what it asked for and starts with when possible.
    """

    id: str
    user: str
    team: str
    kind: WorkloadKind
    gpus: float
    submitted_at: float
    priority: int = 0  # higher runs first within a team; also protects from preemption
    preemptible: bool = True  # a job may opt out; sessions within quota never are preempted
    min_gpus: int | None = None  # elastic jobs only
    max_gpus: int | None = None  # elastic jobs only
    gpu_model: str | None = None  # require this model
    min_gpu_memory_mib: int | None = None  # require cards with at least this much memory
    gpu_memory_mib: int | None = None  # for a fraction: memory share on the card (default: fraction x card memory)
    # Run time, as the user declared it (the pool stops the workload there) and
    # as estimated from history (estimates.py): plain data, never the true duration.
    time_limit_s: float | None = None
    estimate_s: float | None = None
    # GPU-seconds this workload has held so far (attained service; a live
    # pool knows it, unlike remaining work): orders work within a team when
    # ``SchedulerConfig.las_thresholds_gpu_s`` is set (ordering.py).
    attained_gpu_s: float = 0.0
    # Where ``estimate_s`` came from, for a person ("median of alice's last 14
    # two-GPU jobs"; estimates.Estimate.basis); None: not said.
    estimate_basis: str | None = None

    @property
    def is_fraction(self) -> bool:
        return 0 < self.gpus < 1

    @property
    def is_elastic(self) -> bool:
        return self.kind is WorkloadKind.JOB and self.min_gpus is not None and self.max_gpus is not None and self.min_gpus < self.max_gpus


@dataclass(frozen=True)
class GpuShare:
    """Part (or all) of one GPU held by one workload."""

    node: str
    gpu_uuid: str
    fraction: float = 1.0
    memory_mib: int | None = None  # for fractions: the memory share; None for a whole card


@dataclass(frozen=True)
class Allocation:
    workload_id: str
    shares: tuple[GpuShare, ...]
    started_at: float

    @cached_property
    def gpus(self) -> float:
        # Cached on the (frozen) instance: fair share and room-making read it tens of millions of
        # times in a long replay, and the shares never change.
        return sum(s.fraction for s in self.shares)

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.node for s in self.shares))


@dataclass(frozen=True)
class Running:
    """A workload that holds an allocation now."""

    workload: Workload
    allocation: Allocation
    # Preempted with notice: still holds its GPUs until it is gone (its grace
    # ends), but is never a victim again; work that needs its GPUs waits for them.
    leaving: bool = False


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SchedulerConfig:
    # Policy switches; the simulator's baselines are the same core with these off.
    preemption: bool = True  # reclaim quota and priority by preempting
    borrowing: bool = True  # teams may use idle GPUs beyond their quota
    ordering: str = "fair"  # "fair" (team/user fair share, priority) or "fifo" (submit time only)
    # A pending workload waiting longer than this gets a reservation; later,
    # smaller work may only backfill where it does not delay it.
    reservation_after_s: float = 3600.0
    # How many starving workloads may hold GPUs at once (oldest first). Held
    # GPUs stay idle until the reservation fills, so one (as in EASY
    # backfilling) keeps the pool busy; None: every starving workload.
    max_reservations: int | None = 1
    # Elastic jobs grow into idle GPUs, and are shrunk before anyone is preempted.
    elastic: bool = True
    # Aging (aging.py): a pending workload gains this many GPUs of credit per
    # hour it waits in the between-teams order, up to ``aging_max_gpus``.
    # 0: no aging.
    aging_gpus_per_hour: float = 0.0
    aging_max_gpus: float = 0.0
    # Backfill onto GPUs held by a reservation when the work's time limit says
    # it ends before the reservation's expected start (EASY backfilling);
    # with backfill_on_estimates, a run-time estimate is trusted as well.
    time_backfill: bool = True
    backfill_on_estimates: bool = False
    # Least attained service within a team (ordering.py): GPU-second
    # thresholds cutting Workload.attained_gpu_s into queues; () = off.
    # 16 GPU-hours is Tiresias's threshold (two queues); docs/benchmarks.md
    # has what other cuts did. Inert where callers do not report attained
    # service (every workload is then level 0).
    las_thresholds_gpu_s: tuple[float, ...] = (16 * 3600.0,)
    # Which running elastic job of a team grows first into idle GPUs (elastic.py):
    # "attained": the one that has held GPUs for least (continuous least attained
    # service); "started": lowest LAS level, then the earliest started.
    elastic_growth_order: str = "attained"
    # Least attained service may preempt an elastic job of a higher level whole
    # (after shrinking it to min_gpus); False: it only shrinks it to min_gpus,
    # so long-running elastic work keeps progressing on its smallest size.
    las_preempt_elastic: bool = False
    # New work (no attained service yet) that does not fit at the size it asked
    # for shrinks running elastic jobs of its own team that have held GPUs, most
    # attained service first, never suspending them, and starts at its asked
    # size (elastic.py; needs preemption on). Inert where callers report no
    # attained service. docs/benchmarks.md has what these three switches gave.
    new_work_shrinks_elastic: bool = True
    # ... but no further than this fraction of what the job asked for (rounded
    # up, at least its min_gpus): long-running work keeps some of its speed.
    new_work_shrink_floor: float = 0.5
    # At the top LAS level (attained service beyond the last cut), an elastic job
    # below its asked size takes GPUs back from its team's top-level elastic jobs
    # submitted after it, latest first, down to their min_gpus (elastic.py), as
    # Tiresias runs its last queue in submit order; False: they keep what they hold.
    las_top_in_submit_order: bool = True
    # ... but a job whose attained service is below this many times the last cut
    # (it reached the top level only lately, often near its end) keeps
    # ``new_work_shrink_floor`` of what it asked for; 0: every one down to min_gpus.
    las_top_floor_until: float = 2.0
    # Inside a least-attained-service level, work estimated to need less
    # GPU-time goes first (Workload.estimate_s x asked GPUs - attained service;
    # las_estimates.py); no estimate, or one already overrun: plain least
    # attained service. Inert where callers set no estimates.
    las_on_estimates: bool = False
    # An elastic job whose asked size spans nodes anyway (larger than any node)
    # and does not fit on the fewest nodes that could hold it may start on idle
    # GPUs spread over more nodes (placement.place_spread), rather than start
    # smaller: at each size it tries, consolidated first; room-making stays
    # consolidated.
    # Off: a gang waits for (or shrinks to) a consolidated block, as NCCL
    # across nodes is slower on real machines (docs/scheduler.md).
    elastic_spread_start: bool = False
    # With las_on_estimates: a running elastic job below its asked size with a
    # usable estimate takes GPUs back, at the end of a cycle, from its team's
    # running elastic jobs of its level or higher estimated to need more, the
    # most first, down to their min_gpus (estimate_takeback.py). Off: only
    # new work shrinks others; a job that started small only grows into idle GPUs.
    las_estimates_take_back: bool = False
    # With las_on_estimates: at the start of a cycle, a team's running elastic
    # jobs estimated to need at least ``las_suspend_ratio`` times the GPU-time of
    # its work below its asked size (pending, or running short of its ask) are
    # suspended (preempted whole, requeued), the most first, so that the work
    # estimated shorter gets its ask (estimate_suspend.py); never one that
    # started less than ``las_suspend_min_run_s`` ago. Off: elastic work is only shrunk.
    las_suspend_elastic: bool = False
    las_suspend_ratio: float = 2.0
    las_suspend_min_run_s: float = 600.0
    # ... and never one that has waited (since its submission, less its attained
    # service at its asked size) this many times its own run-time estimate; such
    # work does not yield either (estimate_suspend.waited_enough). 0: no bound.
    las_suspend_wait_factor: float = 1.0
    # ... and with las_top_in_submit_order, work above the last cut suspends no
    # one: the top level goes in submit order (estimate_suspend.wanting).
    las_suspend_top_in_order: bool = False


# ---------------------------------------------------------------- the snapshot


@dataclass(frozen=True)
class UsageHistory:
    """Decayed past usage, the fair-share order's memory (see decay.py).

    ``teams``/``users``: the average GPUs in use, weighted by exponential decay
    with ``half_life_s`` (constant use of g GPUs averages g)."""

    half_life_s: float
    teams: dict = field(default_factory=dict)  # team -> average GPUs
    users: dict = field(default_factory=dict)  # (team, user) -> average GPUs


@dataclass(frozen=True)
class Snapshot:
    """Everything one scheduling cycle may look at, frozen at ``now``."""

    pool: Pool
    teams: dict[str, Team]
    running: tuple[Running, ...]
    pending: tuple[Workload, ...]
    now: float
    config: SchedulerConfig = field(default_factory=SchedulerConfig)
    # Past usage with exponential decay (decay.py), as plain data: team ->
    # average GPUs in use over the recent past, and (team, user) -> the same.
    history: "UsageHistory | None" = None


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Start:
    workload_id: str
    allocation: Allocation
    reason: str  # e.g. "within quota", "borrowed 2 idle GPUs (over quota)", "backfill"
    over_quota: bool = False  # borrowed GPUs: preemptible later


@dataclass(frozen=True)
class Preempt:
    workload_id: str
    reason: str  # human-readable: who needs the GPUs and why this victim
    for_workload_id: str | None = None


@dataclass(frozen=True)
class Resize:
    workload_id: str
    allocation: Allocation  # the whole new allocation
    reason: str


@dataclass(frozen=True)
class PendingReason:
    workload_id: str
    position: int  # 1-based position in the queue, in the order the core would start work
    reason: str  # "team vision is at its quota of 8 and no GPUs are idle to borrow"
    reserved: bool = False  # holds a reservation against starvation


@dataclass(frozen=True)
class Decisions:
    starts: tuple[Start, ...] = ()
    preemptions: tuple[Preempt, ...] = ()
    resizes: tuple[Resize, ...] = ()
    pending: tuple[PendingReason, ...] = ()
    # Reservations standing after this cycle: the workloads, and how many GPUs they hold idle.
    reserved: tuple[str, ...] = ()
    reserved_gpus: float = 0.0
