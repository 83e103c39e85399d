"""The policies a replay compares: the same scheduler core, configured three ways.

- ``pool``: the core as the service runs it (``SchedulerConfig()``): one
  shared pool, guaranteed team quotas, over-quota borrowing, preemption,
  elastic resize, reservations against starvation.
- ``fifo``: one queue, first come first served, no preemption: every workload
  is put in one team that owns the whole pool, and the core runs with
  ``ordering="fifo", preemption=False``.
- ``static``: the world before pooling. Each team owns a fixed slice of GPUs
  and can use nothing else; the core runs once per team on that team's slice
  with ``borrowing=False, preemption=False``. Slices: a team's slice is its
  quota where the quotas are whole GPUs that add up to the pool (as the
  derived quotas do); otherwise the pool's GPUs are split in whole GPUs in
  proportion to the quotas (at least one GPU per team, largest remainders); then, biggest slice first, each team takes the next
  GPUs of a list ordered by node (largest nodes first), so a slice is whole
  nodes plus at most two partial ones.

Each policy turns a trace job into the ``Workload`` the core sees (never with
its duration) and turns the engine's state into ``Decisions``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .. import scheduler as core
from ..scheduler.decay import DecayedUsage
from ..scheduler.model import Allocation, Decisions, Node, Pool, Running, SchedulerConfig, Snapshot, Team, Workload, WorkloadKind
from .cluster import Cluster, proportional_split
from .trace import TraceJob

FIFO_TEAM = "all"


@dataclass
class QueueState:
    """What the engine holds now, indexed for policies (workloads by the team the core sees)."""

    pending: dict[str, Workload]
    running: dict[str, Running]
    pending_by_team: dict[str, dict[str, Workload]]
    running_by_team: dict[str, dict[str, Running]]


class Policy(abc.ABC):
    """Turns trace jobs into workloads and engine state into decisions.

    The engine tells a policy every change it applies (``submitted``,
    ``started``, ``stopped``, ``resized``), so a policy may keep the core's
    stateful ``Scheduler`` up to date by events instead of handing it a whole
    snapshot each cycle (same decisions, less work per cycle).
    """

    name: str = ""
    config: SchedulerConfig
    # Jobs declare a time limit of this many times their run time, rounded up to the
    # hour (a user's generous guess; the core sees only the limit). None: no limits.
    time_limit_factor: float | None = None

    def __init__(self, cluster: Cluster):
        if cluster.teams is None:
            raise ValueError("the cluster needs its teams before a policy can use it (Cluster.with_teams_for)")
        self.cluster = cluster

    def workload(self, job: TraceJob) -> Workload:
        """The core's view of a job: what a user would submit, never how long it will run."""
        return Workload(
            id=job.id,
            user=job.user or job.team,
            team=self.team_of(job),
            kind=WorkloadKind.SESSION if job.kind == "session" else WorkloadKind.JOB,
            gpus=job.gpus,
            submitted_at=job.submitted_at,
            min_gpus=job.min_gpus,
            max_gpus=job.max_gpus,
            time_limit_s=self.time_limit_of(job),
        )

    def time_limit_of(self, job: TraceJob) -> float | None:
        if self.time_limit_factor is None or job.kind == "session" or job.min_gpus is not None:  # elastic: runs slower when shrunk
            return None
        return max(1.0, math.ceil(job.duration * self.time_limit_factor / 3600.0)) * 3600.0

    def team_of(self, job: TraceJob) -> str:
        return job.team

    def submitted(self, w: Workload) -> None:
        """``w`` joined the queue (new, or back after a preemption or reclaim)."""

    def started(self, w: Workload, allocation: Allocation) -> None:
        """``w`` left the queue and holds ``allocation``."""

    def stopped(self, w: Workload) -> None:
        """``w`` released its GPUs (finished, preempted, reclaimed)."""

    def resized(self, w: Workload, allocation: Allocation) -> None:
        """``w`` holds ``allocation`` instead of what it held."""

    def leaving(self, w: Workload) -> None:
        """``w`` was preempted with notice: it keeps its GPUs until it stops."""

    def attained(self, w: Workload) -> None:
        """Running ``w`` reports more attained service (``Workload.attained_gpu_s``); it keeps its GPUs."""

    def deciding(self, changed_teams: Iterable[str]) -> set[str] | None:
        """The core-side teams ``decide`` will decide for now (None: every team)."""
        return None

    @abc.abstractmethod
    def decide(self, state: QueueState, now: float, changed_teams: Iterable[str]) -> list[Decisions]:
        """Decisions for this moment; ``changed_teams`` are the core-side teams whose workloads changed."""


# The service's default (UsageDecay.half_life_seconds): a week.
USAGE_HALF_LIFE_S = 7 * 86400.0
MIN_RUNTIME_S = 60.0


class CorePolicy(Policy):
    """The scheduler core on one or more (sub-)pools, kept up to date by events.

    ``use_snapshots=True`` instead builds a full ``Snapshot`` per cycle and
    calls ``schedule`` (the pure form): slower, used to check both forms agree.
    """

    def __init__(self, cluster: Cluster, config: SchedulerConfig, pools: dict[str, tuple[Pool, dict[str, Team]]], use_snapshots: bool = False,
                 half_life_s: float | None = None):
        super().__init__(cluster)
        self.config = config
        self.pools = pools  # scheduler key -> (pool, teams)
        self.use_snapshots = use_snapshots
        self.schedulers = {key: core.Scheduler(pool, teams, config) for key, (pool, teams) in pools.items()}
        # Decayed past usage, as the service keeps it (scheduler/decay.py), on the virtual clock.
        self.decay = {key: DecayedUsage(half_life_s) for key in pools} if half_life_s else {}

    def scheduler_key(self, team: str) -> str:
        return "" if "" in self.schedulers else team

    def submitted(self, w):
        self.schedulers[self.scheduler_key(w.team)].submit(w)

    def started(self, w, allocation):
        self.schedulers[self.scheduler_key(w.team)].started(w, allocation)

    def stopped(self, w):
        self.schedulers[self.scheduler_key(w.team)].finished(w.id)

    def resized(self, w, allocation):
        self.schedulers[self.scheduler_key(w.team)].resized(w.id, allocation)

    def leaving(self, w):
        self.schedulers[self.scheduler_key(w.team)].leave(w.id)

    def attained(self, w):
        self.schedulers[self.scheduler_key(w.team)].attained(w)

    def deciding(self, changed_teams):
        return None if "" in self.schedulers else set(changed_teams)

    def decide(self, state, now, changed_teams):
        keys = [""] if "" in self.schedulers else sorted(changed_teams)
        history = {}
        for key in keys:
            if key in self.decay:
                s = self.schedulers[key]
                history[key] = self.decay[key].update(now, s.usage, s.user_usage)
                s.set_history(history[key])
        if not self.use_snapshots:
            return [self.schedulers[key].cycle(now) for key in keys]
        decisions = []
        for key in keys:
            pool, teams = self.pools[key]
            running = state.running if key == "" else state.running_by_team.get(key, {})
            pending = state.pending if key == "" else state.pending_by_team.get(key, {})
            snapshot = Snapshot(
                pool=pool, teams=teams, running=tuple(running.values()), pending=tuple(pending.values()), now=now, config=self.config,
                history=history.get(key),
            )
            decisions.append(core.schedule(snapshot))
        return decisions


class PoolPolicy(CorePolicy):
    name = "pool"

    def __init__(self, cluster: Cluster, use_snapshots: bool = False, time_limit_factor: float | None = None, time_backfill: bool = True,
                 las: bool = True):
        """``time_limit_factor``: jobs declare limits (see ``Policy``); ``time_backfill``: EASY backfill on them;
        ``las=False``: least attained service off (``las_thresholds_gpu_s=()``), to compare."""
        self.time_limit_factor = time_limit_factor
        # The service's defaults (service/preemption.py): a minute of minimum run-time.
        teams = {n: replace(t, min_runtime_reclaim_s=MIN_RUNTIME_S, min_runtime_shrink_s=MIN_RUNTIME_S) for n, t in cluster.teams.items()}
        config = SchedulerConfig(time_backfill=time_backfill) if las else SchedulerConfig(time_backfill=time_backfill, las_thresholds_gpu_s=())
        super().__init__(cluster, config, {"": (cluster.pool, teams)}, use_snapshots, half_life_s=USAGE_HALF_LIFE_S)


class FifoPolicy(CorePolicy):
    name = "fifo"

    def __init__(self, cluster: Cluster, use_snapshots: bool = False):
        teams = {FIFO_TEAM: Team(name=FIFO_TEAM, quota=float(cluster.total_gpus))}
        super().__init__(cluster, SchedulerConfig(ordering="fifo", preemption=False), {"": (cluster.pool, teams)}, use_snapshots)

    def team_of(self, job):
        return FIFO_TEAM


class StaticPolicy(CorePolicy):
    name = "static"

    def __init__(self, cluster: Cluster, use_snapshots: bool = False):
        self.slices = static_slices(cluster)
        pools = {
            team: (pool, {team: Team(name=team, quota=float(sum(len(n.gpus) for n in pool.nodes)))})
            for team, pool in self.slices.items()
        }
        super().__init__(cluster, SchedulerConfig(borrowing=False, preemption=False), pools, use_snapshots)


def static_slices(cluster: Cluster) -> dict[str, Pool]:
    """Each team's fixed sub-pool, as the module docstring describes."""
    quotas = {t.name: t.quota for t in cluster.teams.values()}
    if all(q >= 1 and q == int(q) for q in quotas.values()) and sum(quotas.values()) == cluster.total_gpus:
        sizes = {name: int(q) for name, q in quotas.items()}  # whole quotas that split the pool: exactly them
    else:
        sizes = proportional_split(quotas, cluster.total_gpus)
    nodes = sorted(cluster.pool.nodes, key=lambda n: -len(n.gpus))  # stable: file order among equals
    flat = [(node, gpu) for node in nodes for gpu in node.gpus]
    slices: dict[str, Pool] = {}
    at = 0
    for team in sorted(sizes, key=lambda t: (-sizes[t], t)):
        mine = flat[at : at + sizes[team]]
        at += sizes[team]
        by_node: dict[str, list] = {}
        node_of: dict[str, Node] = {}
        for node, gpu in mine:
            by_node.setdefault(node.name, []).append(gpu)
            node_of[node.name] = node
        slices[team] = Pool(
            nodes=tuple(
                Node(name=name, gpus=tuple(gpus), simulated=node_of[name].simulated, schedulable=node_of[name].schedulable)
                for name, gpus in by_node.items()
            )
        )
    return slices


POLICIES = {p.name: p for p in (PoolPolicy, StaticPolicy, FifoPolicy)}


def make_policy(name: str, cluster: Cluster, use_snapshots: bool = False, **options) -> Policy:
    """``options``: for ``pool`` only, ``time_limit_factor``, ``time_backfill`` and ``las`` (PoolPolicy)."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    if name != "pool":
        options = {}
    return POLICIES[name](cluster, use_snapshots=use_snapshots, **options)
