"""How long a refresh of expected start times takes, and how that grows.

    .venv/bin/python benchmarks/bench_expected_start.py [--quick]

The issue's target: a refresh at 1,000 GPUs and 5,000 pending workloads under
1 s. A refresh is what the service's background task does (``ExpectedStarts``
without the database): estimate every workload's run time from a history of
past runs (``Estimator``), then run the queue forward with the same core
(``run_forward``) until every pending workload has started or the bounds are
hit. Figures are CPU time of this process (best of a few runs) for several
sizes, with the forward run's cycles, and how many pending workloads got a
time ("known") within its bounds (max_cycles 2000, horizon 30 days).

The pool is busy: every GPU is held by running jobs with estimates (a tenth of
them sessions with no history: their GPUs never free in the forward run).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_ext.scheduler import GPU, Allocation, GpuShare, Node, Pool, Running, SchedulerConfig, Snapshot, Team, Workload, WorkloadKind  # noqa: E402
from hub_ext.scheduler.estimates import Estimator, PastRun  # noqa: E402
from hub_ext.scheduler.forward import run_forward, with_estimates  # noqa: E402

SIZES = [(125, 625), (250, 1250), (500, 2500), (1000, 5000), (2000, 10000)]
QUICK = [(125, 625), (1000, 5000)]
TEAMS = 20
USERS = 200
SHAPES = [(1.0, 0.6), (2.0, 0.2), (4.0, 0.1), (8.0, 0.1)]


def shape(rng: random.Random) -> float:
    r = rng.random()
    for g, p in SHAPES:
        if r < p:
            return g
        r -= p
    return 1.0


def world(gpus: int, pending: int, seed: int = 1) -> tuple[Snapshot, list[PastRun]]:
    rng = random.Random(seed)
    nodes = gpus // 8
    pool = Pool(tuple(Node(f"n{i:04d}", tuple(GPU(f"n{i:04d}/{k}", k, "A100", 40960) for k in range(8))) for i in range(nodes)))
    teams = {f"t{i:02d}": Team(f"t{i:02d}", round(0.8 * gpus / TEAMS)) for i in range(TEAMS)}
    now = 1e6
    running = []
    for n in range(nodes):
        k = 0
        while k < 8:
            g = min(int(shape(rng)), 8 - k)
            g = 1 << (g.bit_length() - 1)
            user = rng.randrange(USERS)
            kind = WorkloadKind.SESSION if rng.random() < 0.1 else WorkloadKind.JOB
            w = Workload(f"r{n}-{k}", f"u{user}", f"t{user % TEAMS:02d}", kind, float(g), now - rng.uniform(0, 86400),
                         time_limit_s=rng.choice([None, None, 86400.0]) if kind is WorkloadKind.JOB else None)
            shares = tuple(GpuShare(f"n{n:04d}", f"n{n:04d}/{k + j}") for j in range(g))
            running.append(Running(w, Allocation(w.id, shares, w.submitted_at + rng.uniform(0, 600))))
            k += g
    waiting = []
    for i in range(pending):
        user = rng.randrange(USERS)
        waiting.append(Workload(f"p{i}", f"u{user}", f"t{user % TEAMS:02d}", WorkloadKind.JOB, shape(rng), now - rng.uniform(0, 7200),
                                priority=rng.choice([0, 0, 0, 1])))
    history = []
    for i in range(20000):
        user = rng.randrange(USERS)
        history.append(PastRun(f"u{user}", f"t{user % TEAMS:02d}", "job", shape(rng), rng.lognormvariate(8.5, 1.0), now - 1e5 + i))
    return Snapshot(pool, teams, tuple(running), tuple(waiting), now, SchedulerConfig()), history


def refresh(snapshot: Snapshot, history: list[PastRun]):
    estimator = Estimator(history)
    bases = {}

    def estimate_of(w):
        e = estimator.estimate(w)
        bases[w.id] = e.basis
        return e.seconds

    return run_forward(with_estimates(snapshot, estimate_of), bases)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two sizes only, one run each")
    args = ap.parse_args()
    sizes = QUICK if args.quick else SIZES
    repeats = 1 if args.quick else 3
    print(f"{'GPUs':>6} {'pending':>8} {'refresh (s)':>12} {'per pending (ms)':>17} {'known':>7}  target")
    rows = []
    for gpus, pending in sizes:
        snapshot, history = world(gpus, pending)
        best, found = float("inf"), None
        for _ in range(repeats):
            t0 = time.process_time()
            found = refresh(snapshot, history)
            best = min(best, time.process_time() - t0)
        known = sum(1 for f in found.values() if f.at is not None)
        target = ""
        if (gpus, pending) == (1000, 5000):
            target = "MET (under 1 s)" if best < 1.0 else "MISSED (target: under 1 s)"
        rows.append((gpus, pending, best))
        print(f"{gpus:>6} {pending:>8} {best:>12.3f} {1000 * best / pending:>17.3f} {known / pending:>7.0%}  {target}")
    if len(rows) > 1:
        (g0, p0, t0), (g1, p1, t1) = rows[0], rows[-1]
        print(f"growth: x{p1 / p0:g} workloads and GPUs -> x{t1 / t0:.1f} time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
