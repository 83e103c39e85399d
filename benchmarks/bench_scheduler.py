"""How long one scheduling cycle takes, and how that grows.

    .venv/bin/python benchmarks/bench_scheduler.py [--quick]

The issue's target: one cycle with 10,000 GPUs (1,250 nodes x 8) and 50,000
pending workloads from 200 teams under 100 ms, and a cycle after one event
(a job ends, a job arrives) far cheaper than a full recomputation.

Figures printed (median of several runs, this machine, one core):
* full: ``schedule(snapshot)``: index the snapshot, then decide (what a
  caller without state pays every time: the baseline);
* warm cycle: ``Scheduler.cycle()`` on an index kept by events;
* after one event: the event plus the cycle that follows it;
* reasons: reading all of ``Decisions.pending`` (positions and sentences for
  every pending workload; lazy, so only callers that read them pay).
Two pool states: "busy" (every GPU in use, the usual state with a queue this
long) and "cold" (an empty pool: the cycle starts ~10,000 GPUs' worth of work).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_ext.scheduler import (  # noqa: E402
    GPU,
    Node,
    Pool,
    Scheduler,
    SchedulerConfig,
    Snapshot,
    Team,
    Workload,
    WorkloadKind,
    schedule,
)


def make_pool(nodes: int) -> Pool:
    return Pool(tuple(Node(f"n{i:04d}", tuple(GPU(f"n{i:04d}/{k}", k, "V100-32GB", 32768) for k in range(8))) for i in range(nodes)))


def make_teams(count: int, gpus: int, rng: random.Random) -> dict[str, Team]:
    # Quotas add up to 80% of the pool; the rest is there to borrow.
    quota = 0.8 * gpus / count
    return {f"team{i:03d}": Team(f"team{i:03d}", round(quota), rng.choice([1.0, 1.0, 2.0, 3.0])) for i in range(count)}


def make_workloads(count: int, teams: list[str], rng: random.Random, start: int = 0, t0: float = 0.0) -> list[Workload]:
    out = []
    for i in range(start, start + count):
        r = rng.random()
        gpus = 0.5 if r < 0.05 else 1.0 if r < 0.65 else 2.0 if r < 0.8 else 4.0 if r < 0.9 else 8.0
        team = rng.choice(teams)
        out.append(
            Workload(
                id=f"w{i}",
                user=f"{team}-u{rng.randrange(5)}",
                team=team,
                kind=WorkloadKind.SESSION if rng.random() < 0.2 else WorkloadKind.JOB,
                gpus=gpus,
                submitted_at=t0 + i * 0.01,
                priority=rng.choice([0, 0, 0, 1]),
            )
        )
    return out


def timed(fn, repeat: int) -> tuple[float, object]:
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000.0, out


def build(gpus: int, pending: int, busy: bool, seed: int = 1):
    """A scheduler in the requested state, and the snapshot it represents."""
    rng = random.Random(seed)
    pool = make_pool(gpus // 8)
    teams = make_teams(200, gpus, rng)
    names = sorted(teams)
    config = SchedulerConfig(reservation_after_s=None)
    s = Scheduler(pool, teams, config)
    n = 0
    if busy:
        # Fill the pool by scheduling a first batch, then queue the benchmark's pending work.
        filler = make_workloads(int(gpus * 1.2), names, rng, 0, -1e6)
        n = len(filler)
        for w in filler:
            s.submit(w)
        s.apply(s.cycle(0.0))
        for w in list(s.fifo):
            s.cancel(w.id)
    for w in make_workloads(pending, names, rng, n, 0.0):
        s.submit(w)
    return s, s.snapshot(1000.0)


def measure(gpus: int, pending: int, busy: bool, repeat: int) -> dict:
    s, snap = build(gpus, pending, busy)
    full, d = timed(lambda: schedule(snap), max(1, repeat // 2))
    warm, d2 = timed(lambda: s.cycle(1000.0), repeat)
    reasons, _ = timed(lambda: tuple(s.cycle(1000.0).pending), 1)
    return {"full": full, "warm": warm, "reasons": reasons, "starts": len(d.starts), "pending": len(d.pending), "running": len(s.running), "same": d.starts == d2.starts}


def after_events(gpus: int, pending: int, repeat: int) -> dict:
    """Busy pool: one job ends (its GPUs go to the queue), or one job arrives."""
    s, snap = build(gpus, pending, True)
    s.apply(s.cycle(1000.0))
    rng = random.Random(7)
    ends = []
    arrivals = []
    for k in range(repeat):
        victim = sorted(s.running)[rng.randrange(len(s.running))]
        t = time.perf_counter()
        s.finished(victim)
        d = s.cycle(1000.0 + k)
        ends.append(time.perf_counter() - t)
        s.apply(d)
        w = make_workloads(1, sorted(s.teams), rng, 10_000_000 + k, 2000.0)[0]
        t = time.perf_counter()
        s.submit(w)
        d = s.cycle(1000.0 + k)
        arrivals.append(time.perf_counter() - t)
        s.apply(d)
    snap = s.snapshot(5000.0)
    full, _ = timed(lambda: schedule(snap), 3)
    return {"end": statistics.median(ends) * 1000, "arrive": statistics.median(arrivals) * 1000, "full": full}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (a smoke run)")
    args = ap.parse_args(argv)
    repeat = 3 if args.quick else 7
    big_gpus, big_pending = (2_000, 10_000) if args.quick else (10_000, 50_000)
    print(f"python {sys.version.split()[0]}; medians of {repeat} runs; times in ms\n")
    print("cost as the pool grows (pending fixed at %d, 200 teams)" % big_pending)
    print(f"{'GPUs':>7} {'state':>5} {'running':>8} {'starts':>7} {'full':>9} {'warm':>9} {'reasons':>9}")
    for gpus in ([500, 1_000, 2_000] if args.quick else [1_000, 2_500, 5_000, 10_000]):
        for busy in (True, False):
            m = measure(gpus, big_pending, busy, repeat)
            print(f"{gpus:>7} {'busy' if busy else 'cold':>5} {m['running']:>8} {m['starts']:>7} {m['full']:>9.1f} {m['warm']:>9.1f} {m['reasons']:>9.1f}")
    print("\ncost as the queue grows (GPUs fixed at %d)" % big_gpus)
    print(f"{'pending':>7} {'state':>5} {'running':>8} {'starts':>7} {'full':>9} {'warm':>9} {'reasons':>9}")
    for pending in ([2_000, 5_000, 10_000] if args.quick else [5_000, 12_500, 25_000, 50_000]):
        for busy in (True, False):
            m = measure(big_gpus, pending, busy, repeat)
            print(f"{pending:>7} {'busy' if busy else 'cold':>5} {m['running']:>8} {m['starts']:>7} {m['full']:>9.1f} {m['warm']:>9.1f} {m['reasons']:>9.1f}")
    print(f"\none event on a busy pool ({big_gpus} GPUs, {big_pending} pending): event + cycle vs full recomputation")
    e = after_events(big_gpus, big_pending, repeat * 3)
    print(f"  a job ends:     {e['end']:8.2f} ms   full schedule(snapshot): {e['full']:8.1f} ms   ratio {e['full'] / e['end']:6.0f}x")
    print(f"  a job arrives:  {e['arrive']:8.2f} ms   full schedule(snapshot): {e['full']:8.1f} ms   ratio {e['full'] / e['arrive']:6.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
