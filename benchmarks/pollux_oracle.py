"""An oracle reference policy for the Pollux (OSDI'21) simulator: a bound, not a policy.

NOT the product and never used by it (nothing in hub_ext imports this). It
answers one question for docs/benchmarks.md: how low can the mean JCT go on
the simulator's workloads for ANY scheduler that keeps the TunedJobs batch
sizes (as our core, Tiresias and Optimus do), when it is told what no live
scheduler knows: each job's exact remaining run time.

    python benchmarks/pollux_oracle.py --simulator DIR --workload FILE --mode elastic --json OUT

(bench_pollux.py --oracle runs it beside our core.) The jobs are set up
exactly as benchmarks/pollux_adapter.py sets them up (its ``make_cluster``:
the workload file's ``batch_size`` on any number of replicas, fewer replicas
become gradient accumulation; ``num_replicas`` asked). Each 60 s step:

* **What it knows**: the simulator's own job objects (epoch, progress within
  it, the application's throughput and statistical efficiency per epoch), so
  ``remaining_s(job, placement)`` is the time the simulator itself would take
  to finish the job on that placement at its fixed batch size (the simulator's
  ``Job.step`` loop, run to the end without a clock).
* **Order**: shortest remaining GPU-time first (remaining seconds on the
  asked ``num_replicas`` GPUs packed on the fewest nodes, times
  ``num_replicas``), preemptive (SRPT-like); ties by submit time.
* **rigid**: in that order, each job gets exactly ``num_replicas`` GPUs if
  that many are still free (later, smaller jobs fill what is left), else it
  waits (and is preempted if it was running).
* **elastic**: in that order, each job gets min(``num_replicas``, free) GPUs,
  at least 1: the shortest remaining jobs get their full asks first and the
  last one running takes what is left.
* **Placement**: a job whose GPU count does not change keeps its GPUs (no
  30 s pause); the others, in order, take the free GPUs of the node with the
  most free first (as the simulator's Tiresias does), so a gang lands on the
  fewest nodes the free GPUs allow.
* **Costs**: the simulator's own: every start, resize or restart pauses the
  job 30 s; no work is lost.

Prints one JSON object shaped as pollux_adapter.py's: {"jcts", "makespan_s", ...}.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import pollux_adapter  # noqa: E402  (same mapping of jobs and cluster)

MODES = ("rigid", "elastic")
RESTART_S = 30  # the simulator's Job.reallocate pause


def packed(n: int, per_node: int = pollux_adapter.GPUS_PER_NODE) -> tuple:
    """``n`` replicas on the fewest nodes: (4, 4, ..., rest)."""
    full, rest = divmod(n, per_node)
    return tuple([per_node] * full + ([rest] if rest else []))


def batch_layout(app, target_batch_size: int, num_replicas: int) -> tuple:
    """(atomic_bsz, accum_steps) as the simulator's Job.update_local_bsz gives a fixed batch size."""
    local_bsz = math.ceil(target_batch_size / num_replicas - 1e-8)
    accum_steps = math.ceil(local_bsz / app.max_local_bsz - 1e-8) - 1
    if num_replicas == 1 and target_batch_size > app.init_batch_size:
        accum_steps = max(1, accum_steps)
    atomic_bsz = math.ceil(local_bsz / (accum_steps + 1) - 1e-8)
    count = num_replicas * (accum_steps + 1)
    atomic_bsz = min(atomic_bsz, int(app.max_batch_size / count))
    return atomic_bsz, accum_steps


class RemainingWork:
    """Exact remaining run time of a simulator job on a placement, from the simulator's own model."""

    def __init__(self):
        self._tables: dict = {}

    def epoch_times(self, app, target_batch_size: int, placement: tuple) -> tuple:
        """(seconds to run each whole epoch 0..completion, completion epoch) on ``placement``."""
        key = (app.name, target_batch_size, placement)
        if key not in self._tables:
            num_replicas = sum(placement)
            atomic_bsz, accum_steps = batch_layout(app, target_batch_size, num_replicas)
            batch_size = num_replicas * atomic_bsz * (accum_steps + 1)
            scale = batch_size / app.init_batch_size
            step_time, sync_time = app.get_throughput(placement, atomic_bsz)
            total_time = step_time + (step_time - sync_time) * accum_steps
            completion = app.get_completion_epoch(batch_size)
            times = []
            for epoch in range(min(completion + 1, app.max_epochs)):
                grad_sqr, grad_var = app.get_grad_stats(batch_size, epoch)
                gain = (grad_var + grad_sqr) / (grad_var / scale + grad_sqr)
                goodput = gain / total_time
                times.append(float((app.get_progress(epoch + 1) - app.get_progress(epoch)) / goodput))
            self._tables[key] = (tuple(times), completion)
        return self._tables[key]

    def seconds(self, job, placement: tuple) -> float:
        """Seconds the simulator would take to finish ``job`` from now, alone on ``placement`` (no pause)."""
        app = job.application
        times, _ = self.epoch_times(app, job.target_batch_size, tuple(placement))
        e = job.epoch
        if e >= len(times):
            return 0.0
        span = app.get_progress(e + 1) - app.get_progress(e)
        left_in_epoch = (app.get_progress(e + 1) - job.progress) / span if span > 0 else 0.0
        return times[e] * float(left_in_epoch) + sum(times[e + 1:])


class OraclePolicy:
    """``optimize(jobs, nodes, prev_allocations, node_template)`` knowing each job's remaining work."""

    def __init__(self, mode: str, jobs_fn):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.jobs_fn = jobs_fn  # name -> the simulator's Job (its true state)
        self.work = RemainingWork()
        self.cycles = 0
        self.policy_seconds = 0.0
        self.preemptions = 0
        self.resizes = 0

    def order(self, names, sim_jobs, asked) -> list:
        """Shortest remaining GPU-time (on the asked GPUs, packed) first; ties by submit time, name."""

        def key(name):
            job = sim_jobs[name]
            return (self.work.seconds(job, packed(asked[name])) * asked[name], job.submission_time, name)

        return sorted(names, key=key)

    def counts(self, ordered, asked, total: int) -> dict:
        """GPUs per job this step."""
        free, out = total, {}
        for name in ordered:
            if self.mode == "rigid":
                if asked[name] <= free:
                    out[name] = asked[name]
                    free -= asked[name]
            elif free > 0:
                out[name] = min(asked[name], free)
                free -= out[name]
        return out

    def optimize(self, jobs, nodes, prev_allocations, node_template):
        t0 = time.process_time()
        sim_jobs = self.jobs_fn()
        capacity = {idx: int(node.resources["nvidia.com/gpu"]) for idx, node in nodes.items()}
        asked = {name: int(info.max_replicas) for name, info in jobs.items()}
        ordered = self.order(list(jobs), sim_jobs, asked)
        want = self.counts(ordered, asked, sum(capacity.values()))
        prev = {k: list(v) for k, v in prev_allocations.items() if k in jobs and v}
        allocations = {k: v for k, v in prev.items() if want.get(k) == len(v)}
        for k in prev:
            if k not in want:
                self.preemptions += 1
            elif k not in allocations:
                self.resizes += 1
        free = collections.Counter(capacity) - collections.Counter(sum(allocations.values(), []))
        for name in ordered:
            if name not in want or name in allocations:
                continue
            alloc = []
            while len(alloc) < want[name]:
                # The node with the most free GPUs first (ties: lowest index), as Tiresias does.
                node_idx, count = max(free.items(), key=lambda kv: (kv[1], -kv[0]))
                num = min(count, want[name] - len(alloc))
                alloc.extend([node_idx] * num)
                free[node_idx] -= num
            allocations[name] = sorted(alloc)
        self.policy_seconds += time.process_time() - t0
        self.cycles += 1
        return allocations, len(nodes)


def run(simulator_dir: str, workload_path: str, mode: str, interval: int = 60) -> dict:
    simulator = pollux_adapter.load(simulator_dir)
    import pandas

    workload = pandas.read_csv(workload_path)
    holder = {}
    policy = OraclePolicy(mode, lambda: holder["by_name"])
    cluster = pollux_adapter.make_cluster(simulator, workload, policy)
    holder["by_name"] = {job.name: job for job in cluster.jobs}
    started = time.process_time()
    while not cluster.all_complete():
        cluster.step(interval)
    jcts = cluster.get_jcts()
    submits = {job.name: job.submission_time for job in cluster.jobs}
    return {
        "workload": os.path.basename(workload_path)[:-4],
        "mode": mode,
        "policy": "oracle",
        "jcts": jcts,
        "makespan_s": max(submits[k] + v for k, v in jcts.items()) - min(submits.values()),
        "cycles": policy.cycles,
        "preemptions": policy.preemptions,
        "resizes": policy.resizes,
        "restarts": sum(job.num_restarts or 0 for job in cluster.jobs),
        "config": {"oracle": mode},
        "core_cpu_s": round(policy.policy_seconds, 3),
        "cpu_s": round(time.process_time() - started, 3),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulator", required=True, help="the Pollux simulator's folder")
    ap.add_argument("--workload", required=True, help="one workload CSV")
    ap.add_argument("--mode", choices=MODES, default="elastic")
    ap.add_argument("--json", help="write the result here (default: stdout)")
    args = ap.parse_args(argv)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the simulator prints per event; keep stdout for the result
    try:
        result = run(args.simulator, args.workload, args.mode)
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
