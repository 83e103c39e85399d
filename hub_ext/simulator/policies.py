"""The policies a replay compares: the same scheduler core, configured three ways.

- ``pool``: the core as the service runs it (``SchedulerConfig()``): one
  shared pool, guaranteed team quotas, over-quota borrowing, preemption,
  elastic resize, reservations against starvation.
- ``fifo``: one queue, first come first served, no preemption: every workload
  is put in one team that owns the whole pool, and the core runs with
  ``ordering="fifo", preemption=False``.
- ``static``: the world before pooling. Each team owns a fixed slice of GPUs
  and can use nothing else; the core runs once per team on that team's slice
  with ``borrowing=False, preemption=False``. Slices: the pool's GPUs are split
  in whole GPUs in proportion to the teams' quotas (at least one GPU per team,
  largest remainders); then, biggest slice first, each team takes the next
  GPUs of a list ordered by node (largest nodes first), so a slice is whole
  nodes plus at most two partial ones.

Each policy turns a trace job into the ``Workload`` the core sees (never with
its duration) and turns the engine's state into ``Decisions``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass

from .. import scheduler as core
from ..scheduler.model import Decisions, Node, Pool, Running, SchedulerConfig, Snapshot, Team, Workload, WorkloadKind
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
    name: str = ""
    config: SchedulerConfig

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
        )

    def team_of(self, job: TraceJob) -> str:
        return job.team

    @abc.abstractmethod
    def decide(self, state: QueueState, now: float, changed_teams: Iterable[str]) -> list[Decisions]:
        """Decisions for this moment; ``changed_teams`` are the core-side teams whose workloads changed."""


class PoolPolicy(Policy):
    name = "pool"

    def __init__(self, cluster: Cluster, config: SchedulerConfig | None = None):
        super().__init__(cluster)
        self.config = config or SchedulerConfig()
        self.teams = dict(cluster.teams)

    def decide(self, state, now, changed_teams):
        snapshot = Snapshot(
            pool=self.cluster.pool,
            teams=self.teams,
            running=tuple(state.running.values()),
            pending=tuple(state.pending.values()),
            now=now,
            config=self.config,
        )
        return [core.schedule(snapshot)]


class FifoPolicy(PoolPolicy):
    name = "fifo"

    def __init__(self, cluster: Cluster):
        super().__init__(cluster, SchedulerConfig(ordering="fifo", preemption=False))
        self.teams = {FIFO_TEAM: Team(name=FIFO_TEAM, quota=float(cluster.total_gpus))}

    def team_of(self, job):
        return FIFO_TEAM


class StaticPolicy(Policy):
    name = "static"

    def __init__(self, cluster: Cluster):
        super().__init__(cluster)
        self.config = SchedulerConfig(borrowing=False, preemption=False)
        self.slices = static_slices(cluster)
        self.teams = {name: Team(name=name, quota=float(sum(len(n.gpus) for n in pool.nodes))) for name, pool in self.slices.items()}

    def decide(self, state, now, changed_teams):
        decisions = []
        for team in changed_teams:
            snapshot = Snapshot(
                pool=self.slices[team],
                teams={team: self.teams[team]},
                running=tuple(state.running_by_team.get(team, {}).values()),
                pending=tuple(state.pending_by_team.get(team, {}).values()),
                now=now,
                config=self.config,
            )
            decisions.append(core.schedule(snapshot))
        return decisions


def static_slices(cluster: Cluster) -> dict[str, Pool]:
    """Each team's fixed sub-pool, as the module docstring describes."""
    sizes = proportional_split({t.name: t.quota for t in cluster.teams.values()}, cluster.total_gpus)
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


def make_policy(name: str, cluster: Cluster) -> Policy:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    return POLICIES[name](cluster)
