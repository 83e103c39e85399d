"""Our scheduler core as a policy of the Pollux (OSDI'21) cluster simulator.

Runs inside the simulator's own virtual environment (bench_pollux.py makes
it): the simulator's folder and this repository go on ``sys.path``; the core
(hub_ext/scheduler) is pure Python and needs nothing else.

    python benchmarks/pollux_adapter.py --simulator DIR --workload FILE --mode elastic --json OUT

The mapping (docs/benchmarks.md, "Our core in the Pollux simulator"):

* **Cluster**: the simulator's 16 nodes x 4 GPUs, each a node of the pool;
  a scheduling cycle at every simulator step (60 s), as for its policies.
* **Jobs** are set up as for the simulator's TunedJobs baselines (Tiresias,
  Optimus): each keeps the batch size the workload file gives it
  (``batch_size``) on any number of replicas; the simulator turns fewer
  replicas into gradient accumulation, as it does for Optimus.
* **Workloads**: one batch job per simulator job, asking for the file's
  ``num_replicas`` GPUs. ``rigid``: exactly that. ``elastic``: min 1, max
  ``num_replicas`` (the core starts it with what fits, grows it into idle
  GPUs and shrinks lent GPUs first).
* **Teams**: none: one team owns the pool (quota 64); every job is its own
  user (the workload file names no users).
* **What the core sees**: the job's asked GPUs, submit time and attained
  service (GPU-seconds held so far, which a live pool knows), never its
  remaining work or its throughput profile.
* **Costs**: the simulator's own: every start, resize or restart after a
  preemption pauses the job for 30 s; no work is lost (its jobs
  checkpoint at every reallocation).
* **Run-time estimates** (when the configuration uses them,
  ``las_on_estimates`` or ``backfill_on_estimates``, as the live service
  feeds them then): an ``estimates.Estimator`` learns from the jobs that
  have ended, as the live pool learns from past runs, and sets
  ``Workload.estimate_s`` (and its basis) on pending and running work with
  ``forward.with_estimates`` every cycle. A past run is what the pool saw
  of an ended job: its kind (job), its asked GPUs and its run time, defined
  for a job that changed size as **attained GPU-seconds / asked GPUs** (the
  run time at its asked size, which is what ``estimate_s`` means to the
  core). History is keyed by ``--estimates-by``: ``application`` (the
  default): the estimate's "user" is the job's ``application`` column (a
  live pool sees the program a job runs), so an estimate is the median of
  that application's past runs at the same GPU count, else of the pool's;
  ``shape``: the pool's past runs of the same GPU count only. An estimate
  needs ``--estimate-min-runs`` such runs (default 3, the live default of
  ``ExpectedStarts.min_runs``). ``--estimator`` passes further
  ``Estimator`` options as JSON (e.g. ``{"given_run": "quantile"}``: the
  estimate given what a job has already run, from the past runs longer than
  that; estimates.py). Never the job's remaining work, throughput or future.

Prints one JSON object: {"jcts": {job: seconds}, "makespan_s", "cycles", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPUS_PER_NODE = 4
TEAM = "pool"
MODES = ("rigid", "elastic")
ESTIMATES_BY = ("application", "shape")


def load(simulator_dir: str):
    """Import the simulator (from its folder) and our core (from this repository)."""
    sys.path[:0] = [os.path.abspath(simulator_dir), REPO]
    import simulator  # noqa: F401  (the simulator's own module)

    return simulator


def config_for(mode: str, overrides: dict | None = None):
    """The core's default configuration (elastic growth only in elastic mode), plus ``overrides``."""
    from hub_ext.scheduler import SchedulerConfig

    fields = {"elastic": mode == "elastic"}
    for k, v in (overrides or {}).items():
        fields[k] = tuple(v) if isinstance(v, list) else v
    return SchedulerConfig(**fields)


class JobView:
    """What the core may know of a simulator job (no remaining work, no profile)."""

    __slots__ = ("name", "submitted_at", "attained_gpu_s", "asked")

    def __init__(self, name, submitted_at, attained_gpu_s, asked):
        self.name = name
        self.submitted_at = submitted_at
        self.attained_gpu_s = attained_gpu_s
        self.asked = asked


class GpupoolPolicy:
    """``optimize(jobs, nodes, prev_allocations, node_template)`` over ``schedule(snapshot)``."""

    def __init__(self, mode: str, time_fn, overrides: dict | None = None, estimates_by: str = "application", apps: dict | None = None,
                 min_runs: int = 3, estimator: dict | None = None):
        from hub_ext.scheduler import Team
        from hub_ext.scheduler.estimates import Estimator

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if estimates_by not in ESTIMATES_BY:
            raise ValueError(f"estimates_by must be one of {ESTIMATES_BY}")
        self.mode = mode
        self.estimates_by = estimates_by
        self.apps = apps or {}  # job -> application (the program it runs)
        self.time_fn = time_fn
        self.config = config_for(mode, overrides)
        # Run-time estimates from ended jobs, fed as the live service feeds them (only when used).
        self.estimator = Estimator(min_runs=min_runs, **(estimator or {})) if self.config.las_on_estimates or self.config.backfill_on_estimates else None
        self.past_runs = 0
        self.shares: dict[str, tuple] = {}  # job -> the GpuShares our last decision gave it
        self.started_at: dict[str, float] = {}
        self.pool = None
        self.team = Team(name=TEAM, quota=0.0)
        self.cycles = 0
        self.core_seconds = 0.0
        self.preemptions = 0
        self.resizes = 0

    def _pool(self, nodes):
        from hub_ext.scheduler import GPU, Node, Pool

        if self.pool is None or len(self.pool.nodes) != len(nodes):
            self.pool = Pool(
                nodes=tuple(
                    Node(
                        name=f"node-{idx}",
                        gpus=tuple(GPU(f"node-{idx}/gpu-{k}", k, "simulated", 16384) for k in range(int(node.resources["nvidia.com/gpu"]))),
                        simulated=True,
                    )
                    for idx, node in sorted(nodes.items())
                )
            )
            total = sum(len(n.gpus) for n in self.pool.nodes)
            self.team = type(self.team)(name=TEAM, quota=float(total))
        return self.pool

    def ended(self, name: str, attained_gpu_s: float, asked: int, at: float) -> None:
        """A job ended: one past run for the estimates (run time = attained GPU-seconds / asked GPUs)."""
        from hub_ext.scheduler.estimates import PastRun

        if self.estimator is None:
            return
        who = self.apps.get(name, name) if self.estimates_by == "application" else name
        self.estimator.add(PastRun(user=who, team=TEAM, kind="job", gpus=float(asked), ran_s=attained_gpu_s / max(asked, 1), ended_at=at))
        self.past_runs += 1

    def _estimate_of(self, w):
        if self.estimates_by == "application":
            from dataclasses import replace

            return self.estimator.estimate(replace(w, user=self.apps.get(w.id, w.id)))
        return self.estimator.estimate(w)  # user = the job itself: never in history, so the pool's runs of its shape

    def workload(self, name: str, info):
        from hub_ext.scheduler import Workload, WorkloadKind

        asked = int(info.max_replicas)
        elastic = self.mode == "elastic" and asked > 1
        return Workload(
            id=name,
            user=name,
            team=TEAM,
            kind=WorkloadKind.JOB,
            gpus=float(asked),
            submitted_at=float(info.creation_timestamp),
            min_gpus=1 if elastic else None,
            max_gpus=asked if elastic else None,
            attained_gpu_s=float(info.attained_service),
        )

    def optimize(self, jobs, nodes, prev_allocations, node_template):
        from hub_ext.scheduler import Allocation, Running, Snapshot, schedule
        from hub_ext.scheduler.forward import with_estimates

        now = float(self.time_fn())
        pool = self._pool(nodes)
        # Jobs that finished are gone from ``jobs``; what we gave the others is what they hold.
        self.shares = {k: v for k, v in self.shares.items() if k in jobs and prev_allocations.get(k)}
        running, pending = [], []
        for name in sorted(jobs):
            w = self.workload(name, jobs[name])
            if name in self.shares:
                running.append(Running(w, Allocation(name, self.shares[name], self.started_at[name])))
            else:
                pending.append(w)
        snap = Snapshot(pool=pool, teams={TEAM: self.team}, running=tuple(running), pending=tuple(pending), now=now, config=self.config)
        t0 = time.process_time()
        if self.estimator is not None:
            snap = with_estimates(snap, self._estimate_of)
        d = schedule(snap)
        self.core_seconds += time.process_time() - t0
        self.cycles += 1
        for p in d.preemptions:
            self.shares.pop(p.workload_id, None)
            self.preemptions += 1
        for rz in d.resizes:
            self.shares[rz.workload_id] = rz.allocation.shares
            self.resizes += 1
        for s in d.starts:
            self.shares[s.workload_id] = s.allocation.shares
            self.started_at[s.workload_id] = now
        index = {n.name: i for i, n in enumerate(pool.nodes)}
        allocations = {}
        for name, shares in self.shares.items():
            # The simulator counts a job's replicas per node from a sorted list of node indices.
            allocations[name] = sorted(index[s.node] for s in shares)
        return allocations, len(nodes)


def make_cluster(simulator, workload, policy):
    """The simulator's Cluster with jobs set up as for its TunedJobs baselines."""
    from utils import JobInfo

    class Cluster(simulator.Cluster):
        def __init__(self, workload, policy):
            super().__init__(workload, policy, 16, num_gpus=GPUS_PER_NODE)
            self.jobs = [
                simulator.Job(
                    row.name,
                    simulator.APPLICATIONS[row.application],
                    row.time,
                    target_num_replicas=row.num_replicas,
                    target_batch_size=row.batch_size,
                )
                for row in workload.itertuples()
            ]

        def get_job_infos(self):
            infos = {}
            for job in self.jobs:
                if self.current_time >= job.submission_time and job.completion_time is None:
                    infos[job.name] = JobInfo(
                        resources={"nvidia.com/gpu": 1},
                        speedup_fn=None,
                        creation_timestamp=job.submission_time,
                        attained_service=job.attained_service,
                        min_replicas=0,
                        max_replicas=job.target_num_replicas,
                        preemptible=True,
                    )
            return infos

    return Cluster(workload, policy)


def run(simulator_dir: str, workload_path: str, mode: str, interval: int = 60, overrides: dict | None = None,
        estimates_by: str = "application", min_runs: int = 3, estimator: dict | None = None) -> dict:
    simulator = load(simulator_dir)
    import pandas

    workload = pandas.read_csv(workload_path)
    holder = {}
    apps = dict(zip(workload["name"], workload["application"]))
    policy = GpupoolPolicy(mode, lambda: holder["cluster"].current_time, overrides, estimates_by, apps, min_runs, estimator)
    cluster = holder["cluster"] = make_cluster(simulator, workload, policy)
    started = time.process_time()
    reported: set[str] = set()
    while not cluster.all_complete():
        cluster.step(interval)
        for job in cluster.jobs:  # what ended in this step: the pool records its run
            if job.completion_time is not None and job.name not in reported:
                reported.add(job.name)
                policy.ended(job.name, float(job.attained_service), int(job.target_num_replicas), float(job.completion_time))
    jcts = cluster.get_jcts()
    submits = {job.name: job.submission_time for job in cluster.jobs}
    restarts = sum(job.num_restarts or 0 for job in cluster.jobs)
    return {
        "workload": os.path.basename(workload_path)[:-4],
        "mode": mode,
        "jcts": jcts,
        "makespan_s": max(submits[k] + v for k, v in jcts.items()) - min(submits.values()),
        "cycles": policy.cycles,
        "preemptions": policy.preemptions,
        "resizes": policy.resizes,
        "restarts": restarts,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(policy.config).items()},
        "core_cpu_s": round(policy.core_seconds, 3),
        "estimates_by": estimates_by if policy.estimator is not None else None,
        "estimate_min_runs": min_runs,
        "estimator": estimator or {},
        "past_runs": policy.past_runs,
        "cpu_s": round(time.process_time() - started, 3),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulator", required=True, help="the Pollux simulator's folder")
    ap.add_argument("--workload", required=True, help="one workload CSV")
    ap.add_argument("--mode", choices=MODES, default="elastic")
    ap.add_argument("--json", help="write the result here (default: stdout)")
    ap.add_argument("--config", default="{}", help="SchedulerConfig fields to override, as JSON (default: none)")
    ap.add_argument("--estimates-by", choices=ESTIMATES_BY, default="application",
                    help="run-time history keyed by the job's application (default) or by its shape (GPU count) only")
    ap.add_argument("--estimate-min-runs", type=int, default=3, help="fewest past runs an estimate is made from (default 3, as ExpectedStarts.min_runs)")
    ap.add_argument("--estimator", default="{}", help="further estimates.Estimator options, as JSON (default: none), e.g. '{\"given_run\": \"quantile\"}'")
    args = ap.parse_args(argv)
    # The simulator prints a line per event (demotions, autoscaling); keep our stdout for the result.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        result = run(args.simulator, args.workload, args.mode, overrides=json.loads(args.config), estimates_by=args.estimates_by, min_runs=args.estimate_min_runs,
                     estimator=json.loads(args.estimator))
    finally:
        sys.stdout = real_stdout
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
