"""Closed-loop replays: researchers who submit the next experiment when a result comes back.

An open-loop replay submits a trace's jobs at their recorded times, whatever
the pool does. People do not work that way: a researcher keeps a few
experiments in flight and starts the next one a while (the **think time**)
after a result returns, so faster turnaround means more experiments. The case
study's headline figure (300 experiments in 40 days against 162 without
pooling) is of this kind.

The model:

* Each team (a research group) has **researchers**; each keeps up to
  ``in_flight`` experiments submitted and unfinished. At time 0 every
  researcher submits ``in_flight`` experiments; each time one of theirs
  finishes, the next is submitted ``think_s`` seconds later.
* An experiment's **shape and run time** are drawn from that team's jobs in a
  real trace, in submit order (the team's stream; shared by its researchers,
  wrapping around at its end). Its GPUs are capped at what its team could
  ever get (``cap_gpus``: the pool, or its slice in the static world), the
  run time scaled so the GPU-hours stay those of the trace job.
* The scheduler core sees only what a user submits (never the run time), as
  in every replay (engine.py); preempted experiments lose the work since
  their last checkpoint and are resubmitted by the engine, not by the
  researcher.

``run_closed_loop`` replays one policy and returns the figures; docs/simulator.md
("Closed loop") and docs/benchmarks.md give the case study's parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..scheduler.model import Team
from .cluster import Cluster
from .engine import FINISHED, Simulation, SimulationHooks
from .policies import make_policy, static_slices
from .trace import Trace, TraceError, TraceJob

DAY = 86400.0


@dataclass(frozen=True)
class Researcher:
    name: str
    team: str
    in_flight: int  # experiments kept submitted and unfinished at once
    think_s: float  # from a result to the next submission


@dataclass
class ClosedLoopResult:
    policy: str
    gpus: int
    days: float
    experiments: int  # finished within the window
    submitted: int
    utilisation: float  # GPU-seconds held / GPU-seconds in the window
    mean_jct_s: float | None
    by_team: dict[str, int]
    by_researcher: dict[str, int]
    preemptions: int
    samples: list = field(default_factory=list)  # (time, GPUs held, pending)

    def as_dict(self) -> dict:
        return {
            "policy": self.policy,
            "gpus": self.gpus,
            "days": self.days,
            "experiments": self.experiments,
            "submitted": self.submitted,
            "utilisation": round(self.utilisation, 4),
            "mean_jct_s": None if self.mean_jct_s is None else round(self.mean_jct_s, 1),
            "by_team": dict(self.by_team),
            "by_researcher": dict(self.by_researcher),
            "preemptions": self.preemptions,
        }


class Streams:
    """Each team's experiments, in the trace's order, wrapping around at the end."""

    def __init__(self, trace: Trace, teams):
        self.jobs: dict[str, list[TraceJob]] = {t: [] for t in teams}
        for j in trace.jobs:
            if j.team in self.jobs and j.duration > 0:
                self.jobs[j.team].append(j)
        empty = [t for t, js in self.jobs.items() if not js]
        if empty:
            raise TraceError(f"{trace.name}: no jobs of team(s) {', '.join(empty)} to draw experiments from")
        self.at = {t: 0 for t in teams}

    def next(self, team: str) -> TraceJob:
        js = self.jobs[team]
        j = js[self.at[team] % len(js)]
        self.at[team] += 1
        return j


class ClosedLoop(SimulationHooks):
    """The researchers, driving a ``Simulation`` through its extension points."""

    def __init__(self, researchers: list[Researcher], streams: Streams, cap_gpus: dict[str, int]):
        self.researchers = {r.name: r for r in researchers}
        self.streams = streams
        self.cap_gpus = cap_gpus
        self.in_flight = {r.name: 0 for r in researchers}
        self.count = {r.name: 0 for r in researchers}
        self.submitted = 0

    def start(self, sim: Simulation) -> None:
        for r in self.researchers.values():
            for _ in range(r.in_flight):
                self.submit(sim, r)

    def submit(self, sim: Simulation, r: Researcher) -> None:
        if self.in_flight[r.name] >= r.in_flight:
            return
        src = self.streams.next(r.team)
        gpus = src.gpus
        cap = self.cap_gpus.get(r.team)
        duration = src.duration
        if cap is not None and gpus > cap:
            duration = src.duration * gpus / cap  # same GPU-hours on the GPUs it could ever get
            gpus = float(cap)
        self.count[r.name] += 1
        self.in_flight[r.name] += 1
        self.submitted += 1
        sim.submit(
            TraceJob(
                id=f"{r.name}/{self.count[r.name]}",
                submitted_at=sim.now,
                duration=duration,
                gpus=gpus,
                team=r.team,
                user=r.name,
            )
        )

    def on_stop(self, sim, job, now, outcome) -> None:
        if outcome not in ("finished", "stopped"):
            return  # preempted or reclaimed: back in the queue, still in flight
        r = self.researchers.get(job.job.user)
        if r is None:
            return
        self.in_flight[r.name] -= 1
        sim.call_at(now + r.think_s, lambda s, r=r: self.submit(s, r))


def equal_teams(cluster: Cluster, teams: list[str]) -> Cluster:
    """Every group owns an equal share of the pool (whole GPUs, largest first)."""
    from dataclasses import replace

    from .cluster import proportional_split

    quotas = proportional_split({t: 1.0 for t in teams}, cluster.total_gpus)
    return replace(cluster, teams={t: Team(name=t, quota=float(q)) for t, q in quotas.items()})


def run_closed_loop(
    trace: Trace,
    cluster: Cluster,
    researchers: list[Researcher],
    policy: str,
    days: float,
    checkpoint_interval: float = 1800.0,
    policy_options: dict | None = None,
) -> ClosedLoopResult:
    """``policy_options``: for the pool policy (``make_policy``), e.g. ``{"las": False}``."""
    teams = sorted({r.team for r in researchers})
    cluster = equal_teams(cluster, teams)
    pol = make_policy(policy, cluster, **(policy_options or {}))
    if policy == "static":
        caps = {t: sum(len(n.gpus) for n in pool.nodes) for t, pool in static_slices(cluster).items()}
    else:
        caps = {t: cluster.total_gpus for t in teams}
    loop = ClosedLoop(researchers, Streams(trace, teams), caps)
    end = days * DAY
    empty = Trace(name=f"{trace.name} (closed loop)", format=trace.format, jobs=[], origin=trace.origin, notes=list(trace.notes))
    sim = Simulation(empty, pol, checkpoint_interval=checkpoint_interval, end=end, hooks=[loop])
    sim.call_at(0.0, loop.start)
    res = sim.run()
    done = [js for js in sim.jobs.values() if js.state == FINISHED and js.finished_at is not None and js.finished_at <= end]
    by_team: dict[str, int] = {t: 0 for t in teams}
    by_res: dict[str, int] = {r.name: 0 for r in researchers}
    for js in done:
        by_team[js.job.team] += 1
        by_res[js.job.user] += 1
    jcts = [js.finished_at - js.job.submitted_at for js in done]
    return ClosedLoopResult(
        policy=policy,
        gpus=cluster.total_gpus,
        days=days,
        experiments=len(done),
        submitted=loop.submitted,
        utilisation=res.allocated_gpu_seconds / (cluster.total_gpus * end) if end > 0 else 0.0,
        mean_jct_s=sum(jcts) / len(jcts) if jcts else None,
        by_team=by_team,
        by_researcher=by_res,
        preemptions=sum(js.preemptions for js in sim.jobs.values()),
        samples=[(s.time, s.allocated, s.pending) for s in res.samples],
    )


# ---------------------------------------------------------------- the case study's world

# Six research groups: Philly's six virtual clusters with most jobs (their jobs are the experiments).
CASE_STUDY_GROUPS = ("6214e9", "b436b2", "11cb48", "6c71a0", "0e4a51", "103959")


@dataclass(frozen=True)
class CaseStudy:
    """The parameters docs/benchmarks.md argues for (see there)."""

    researchers_per_group: int = 1
    in_flight: int = 1  # an ordinary researcher's experiments at once
    think_h: float = 72.0  # an ordinary researcher: from a result to the next experiment
    power_in_flight: int = 50  # the one researcher with 50+ experiments at once
    power_think_h: float = 0.5
    days: float = 40.0

    def researchers(self, groups=CASE_STUDY_GROUPS) -> list[Researcher]:
        out = [Researcher(f"{groups[0]}/power", groups[0], self.power_in_flight, self.power_think_h * 3600)]
        for g in groups:
            for i in range(1, self.researchers_per_group + 1):
                out.append(Researcher(f"{g}/r{i}", g, self.in_flight, self.think_h * 3600))
        return out


def busiest_teams(trace: Trace, n: int) -> list[str]:
    """The ``n`` teams with most jobs in ``trace`` (ties by name)."""
    counts: dict[str, int] = {}
    for j in trace.jobs:
        counts[j.team] = counts.get(j.team, 0) + 1
    return sorted(counts, key=lambda t: (-counts[t], t))[:n]


def case_study_cluster() -> Cluster:
    """A DGX-1/DGX-2 cluster of the case study's kind: 4 DGX-1 + 2 DGX-2 = 64 GPUs (data/case-study-dgx.yaml)."""
    from .cluster import load_cluster
    from .data import CLUSTERS, resolve

    return load_cluster(resolve("case-study-dgx", CLUSTERS))


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or (isinstance(b, float) and math.isnan(b)):
        return None
    return a / b
