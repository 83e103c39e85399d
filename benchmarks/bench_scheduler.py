"""How long one scheduling cycle takes, and how that grows.

    .venv/bin/python benchmarks/bench_scheduler.py [--quick]

The issue's target: one cycle with 10,000 GPUs (1,250 nodes x 8) and 50,000
pending workloads from 200 teams under 100 ms, and a cycle after one event
(a job ends, a job arrives) far cheaper than a full recomputation.

Figures printed (CPU time of this process, best of several runs):
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
import gc
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
    """Best CPU time of ``repeat`` runs, in ms.

    CPU time of this process, best of several: the machine this runs on may
    be shared, and other processes' load should not count against the core.
    """
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best * 1000.0, out


def reference_loop_ms() -> float:
    """A fixed pure-Python loop, to compare this machine with others."""
    best = float("inf")
    for _ in range(3):
        t = time.process_time()
        x = 0
        for i in range(1_000_000):
            x += i
        best = min(best, time.process_time() - t)
    return best * 1000.0


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
        for _ in range(5):  # until settled: the second cycle reclaims quotas from the first's borrowers
            d = s.cycle(0.0)
            s.apply(d)
            if not (d.starts or d.preemptions or d.resizes):
                break
        for w in list(s.fifo):
            s.cancel(w.id)
    for w in make_workloads(pending, names, rng, n, 0.0):
        s.submit(w)
    snap = s.snapshot(1000.0)
    # Long-lived objects (the queue, the pool) out of the cyclic collector's
    # sight, as a long-running service would do after loading: otherwise a
    # full collection over ~100,000 objects lands in whichever cycle it hits.
    gc.collect()
    gc.freeze()
    return s, snap


def measure(gpus: int, pending: int, busy: bool, repeat: int) -> dict:
    s, snap = build(gpus, pending, busy)
    full, d = timed(lambda: schedule(snap), max(2, repeat // 2))
    warm, d2 = timed(lambda: s.cycle(1000.0), repeat)
    reasons, _ = timed(lambda: tuple(s.cycle(1000.0).pending), 1)
    assert d.starts == d2.starts and d.preemptions == d2.preemptions, "stateful and full cycles disagree"
    return {"full": full, "warm": warm, "reasons": max(0.0, reasons - warm), "starts": len(d.starts), "running": len(s.running)}


def after_events(gpus: int, pending: int, repeat: int) -> dict:
    """Busy pool: one job ends (its GPUs go to the queue), or one job arrives."""
    s, _ = build(gpus, pending, True)
    s.apply(s.cycle(1000.0))
    rng = random.Random(7)
    ends, arrivals, fulls = [], [], []
    for k in range(repeat):
        victim = sorted(s.running)[rng.randrange(len(s.running))]
        t = time.process_time()
        s.finished(victim)
        d = s.cycle(1000.0 + k)
        ends.append(time.process_time() - t)
        s.apply(d)
        w = make_workloads(1, sorted(s.teams), rng, 10_000_000 + k, 2000.0)[0]
        t = time.process_time()
        s.submit(w)
        d = s.cycle(1000.0 + k)
        arrivals.append(time.process_time() - t)
        if k < 3:
            snap = s.snapshot(1000.0 + k)
            t = time.process_time()
            full = schedule(snap)
            fulls.append(time.process_time() - t)
            assert full.starts == d.starts and full.preemptions == d.preemptions, "incremental and full cycles disagree"
        s.apply(d)
    return {"end": min(ends) * 1000, "end_med": statistics.median(ends) * 1000, "arrive": min(arrivals) * 1000, "arrive_med": statistics.median(arrivals) * 1000, "full": min(fulls) * 1000}


def service_cycle(gpus: int, pending: int, repeat: int) -> dict:
    """The service loop's core step (loop.IncrementalCore.decide) on the snapshot it read, with the
    revisions the same read gives (WorkloadRow.revision, turned into a dict as the loop does): cold
    (first cycle: index everything) and after one job ended and one arrived (the revisions say which
    pending workloads to read again; running work is compared field by field), and the same cycle
    comparing every pending workload field by field (no revisions, or the periodic check). The
    database read that builds the snapshot is not included."""
    from dataclasses import replace

    from hub_ext.scheduler import Running
    from hub_ext.service.loop import IncrementalCore
    from hub_ext.service.snapshot import ActiveWorkload

    def rows_of(snapshot):
        # What build_snapshot returns beside the snapshot (every revision 0: nothing rewritten yet).
        return {w.id: ActiveWorkload(i, "pending", None, None, 0.0, 0) for i, w in enumerate(list(snapshot.pending) + [r.workload for r in snapshot.running])}

    s, _ = build(gpus, pending, True)
    s.apply(s.cycle(1000.0))
    snap = s.snapshot(1000.0)
    rows = rows_of(snap)
    colds, warms, fulls = [], [], []
    rng = random.Random(11)
    for k in range(repeat):
        gone = rng.randrange(len(snap.running))
        # As read from the database: new objects with the same values.
        fresh_run = tuple(Running(replace(r.workload), replace(r.allocation, shares=tuple(replace(x) for x in r.allocation.shares))) for r in snap.running)
        arrival = make_workloads(1, sorted(snap.teams), rng, 20_000_000 + k, 1000.5)[0]
        after = replace(snap, running=fresh_run[:gone] + fresh_run[gone + 1 :], pending=tuple(replace(w) for w in snap.pending) + (arrival,), now=1001.0)
        rows_after = dict(rows)
        del rows_after[snap.running[gone].workload.id]
        rows_after[arrival.id] = ActiveWorkload(10**9, "pending", None, None, 0.0, 0)
        for kind, times in (("revisions", warms), ("full", fulls)):
            core = IncrementalCore()
            t = time.process_time()
            core.decide(snap, {wid: a.revision for wid, a in rows.items()})
            if kind == "revisions":
                colds.append(time.process_time() - t)
            t = time.process_time()
            d = core.decide(after, {wid: a.revision for wid, a in rows_after.items()} if kind == "revisions" else None)
            times.append(time.process_time() - t)
            if k == 0:
                full = schedule(after)
                assert full.starts == d.starts and full.preemptions == d.preemptions and full.resizes == d.resizes, "kept and pure cycles disagree"
                assert tuple(full.pending) == tuple(d.pending), "kept and pure cycles disagree (pending reasons)"
    return {"cold": min(colds) * 1000, "warm": min(warms) * 1000, "warm_med": statistics.median(warms) * 1000,
            "full": min(fulls) * 1000, "full_med": statistics.median(fulls) * 1000}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (a smoke run)")
    args = ap.parse_args(argv)
    repeat = 3 if args.quick else 5
    big_gpus, big_pending = (2_000, 10_000) if args.quick else (10_000, 50_000)
    print(f"python {sys.version.split()[0]}; CPU ms, best of {repeat}; reference loop (1M additions): {reference_loop_ms():.0f} ms")
    print("full = schedule(snapshot) from scratch; warm = Scheduler.cycle() on a kept index;")
    print("reasons = reading all of Decisions.pending (lazy: only readers pay)\n")
    header = f"{'state':>5} {'running':>8} {'starts':>7} {'full':>8} {'warm':>8} {'reasons':>8}"
    print(f"cost as the pool grows ({big_pending:,} pending, 200 teams)")
    print(f"{'GPUs':>7} " + header)
    for gpus in [500, 1_000, 2_000] if args.quick else [1_000, 2_500, 5_000, 10_000]:
        for busy in (True, False):
            m = measure(gpus, big_pending, busy, repeat)
            print(f"{gpus:>7,} {'busy' if busy else 'cold':>5} {m['running']:>8} {m['starts']:>7} {m['full']:>8.1f} {m['warm']:>8.1f} {m['reasons']:>8.1f}")
    print(f"\ncost as the queue grows ({big_gpus:,} GPUs, 200 teams)")
    print(f"{'pending':>7} " + header)
    for pending in [2_000, 5_000, 10_000] if args.quick else [5_000, 12_500, 25_000, 50_000]:
        for busy in (True, False):
            m = measure(big_gpus, pending, busy, repeat)
            print(f"{pending:>7,} {'busy' if busy else 'cold':>5} {m['running']:>8} {m['starts']:>7} {m['full']:>8.1f} {m['warm']:>8.1f} {m['reasons']:>8.1f}")
    e = after_events(big_gpus, big_pending, repeat * 4)
    print(f"\none event on a busy pool ({big_gpus:,} GPUs, {big_pending:,} pending): the event and the cycle after it")
    print(f"  a job ends:    {e['end']:7.2f} ms (median {e['end_med']:6.2f})  vs full recomputation {e['full']:7.1f} ms: {e['full'] / e['end']:5.0f}x less")
    print(f"  a job arrives: {e['arrive']:7.2f} ms (median {e['arrive_med']:6.2f})  vs full recomputation {e['full']:7.1f} ms: {e['full'] / e['arrive']:5.0f}x less")
    sc = service_cycle(big_gpus, big_pending, max(2, repeat // 2))
    print(f"\nthe service loop's kept core (loop.IncrementalCore, snapshot read from the database not included), {big_gpus:,} GPUs, {big_pending:,} pending:")
    print(f"  cold start (index everything, decide): {sc['cold']:7.1f} ms")
    print(f"  next cycle after a job ended and one arrived, by revisions (re-read what changed, update, decide): {sc['warm']:7.1f} ms (median {sc['warm_med']:.1f})")
    print(f"  the same cycle comparing every pending workload field by field (the periodic check): {sc['full']:7.1f} ms (median {sc['full_med']:.1f})")
    print("\nhow the service cycle grows (busy pool, 200 teams; ms, best of the runs): cold | by revisions | field by field")
    steps = [(g, big_pending) for g in ([500, 1_000] if args.quick else [2_500, 5_000])] + [(big_gpus, big_pending)]
    steps += [(big_gpus, p) for p in ([2_500, 5_000] if args.quick else [12_500, 25_000])]
    print(f"{'GPUs':>7} {'pending':>8} {'cold':>8} {'revisions':>10} {'field':>8}")
    for gpus, pend in steps:
        m = sc if (gpus, pend) == (big_gpus, big_pending) else service_cycle(gpus, pend, max(2, repeat // 2))
        print(f"{gpus:>7,} {pend:>8,} {m['cold']:>8.1f} {m['warm']:>10.1f} {m['full']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
