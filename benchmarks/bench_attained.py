"""What live attained service costs the service's incremental cycle.

    .venv/bin/python benchmarks/bench_attained.py [--gpus 2000] [--pending 5000] [--cycles 24] [--tick 5]

A running workload's attained service grows every second with no write to its
row; the service gives it to the scheduler core rounded down to a grid
(service/attained.py, ``SchedulingLoop.attained_step``) and re-reads a running
workload only when its value reaches the next grid point (loop.attained_revisions).
This replays ``--cycles`` service cycles ``--tick`` seconds apart over a busy
pool (bench_scheduler.py's world: every GPU in use, a queue behind), each
running workload having run for 0 to 48 hours and held 0 to 48 GPU-hours
before, and prints per cycle: how many running workloads are re-read and the
CPU time of ``IncrementalCore.decide`` (best and median), for

* frozen: the same attained service, never growing (the baseline: the
  decisions least attained service makes here cost the same in all three,
  as decisions are not applied between cycles);
* grid 1%: the service's default;
* exact: ``attained_step = 0`` (every running workload re-read every cycle);

and, for scale, none: no attained service at all (every workload level 0, so
least attained service decides nothing: a cheaper cycle for another reason).

The database read that builds the snapshot is not included (it reads every
active row every cycle in all three cases).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_scheduler import build, reference_loop_ms  # noqa: E402

from hub_ext.scheduler import Running  # noqa: E402
from hub_ext.service.attained import on_grid  # noqa: E402
from hub_ext.service.loop import IncrementalCore  # noqa: E402

H = 3600.0


def replay(gpus: int, pending: int, cycles: int, tick: float, step, seed: int = 3) -> dict:
    """``step`` None: no attained service; "frozen": what was held when the replay began, never growing;
    0: exact; else the grid's relative step. Decisions are applied between cycles (preempted work back
    to pending at once, keeping what it held), as the service applies them."""
    s, snap = build(gpus, pending, True)
    s.apply(s.cycle(1000.0))
    snap = s.snapshot(1000.0)
    las = snap.config.las_thresholds_gpu_s
    rng = random.Random(seed)
    # Per workload, as the store keeps it (service/attained.py): held so far = stored + GPUs x (now - since).
    stored = {r.workload.id: rng.uniform(0, 48) * H * rng.random() for r in snap.running}
    since = {r.workload.id: 1000.0 - rng.uniform(0, 48) * H for r in snap.running}
    revision: dict[str, int] = {}  # as WorkloadRow.revision: bumped by every applied change
    running, pend = list(snap.running), list(snap.pending)
    core = IncrementalCore()
    kept: dict = {}
    rereads, times, changes = [], [], 0
    for c in range(cycles + 1):
        now = 1000.0 + c * tick
        revisions = {w.id: revision.get(w.id, 0) for w in pend}
        view = []
        for r in running:
            wid = r.workload.id
            w = r.workload
            if step is not None:
                held = stored.get(wid, 0.0) + r.allocation.gpus * (min(now, 1000.0) if step == "frozen" else now) - r.allocation.gpus * min(since[wid], now)
                value = on_grid(max(0.0, held), las, 0.01 if step == "frozen" else step)
                if value != w.attained_gpu_s:
                    w = replace(w, attained_gpu_s=value)
            view.append(Running(w, r.allocation))
            revisions[wid] = (revision.get(wid, 0), w.attained_gpu_s)
        t = time.process_time()
        d = core.decide(replace(snap, running=tuple(view), pending=tuple(pend), now=now), revisions)
        spent = time.process_time() - t
        if c:  # the first cycle indexes everything (cold): not what this measures
            times.append(spent * 1000)
            # Running work read again only because its attained service moved (no applied change of its own).
            rereads.append(sum(1 for r in view if isinstance(kept.get(r.workload.id), tuple)
                               and kept[r.workload.id][0] == revisions[r.workload.id][0] and kept[r.workload.id] != revisions[r.workload.id]))
        kept = revisions
        # Apply, as the service does (and as it keeps attained service).
        gone = {p.workload_id for p in d.preemptions}
        resized = {z.workload_id: z.allocation for z in d.resizes}
        running = []
        for r in view:
            wid = r.workload.id
            if wid in gone:
                stored[wid] = stored.get(wid, 0.0) + r.allocation.gpus * (now - since[wid])
                pend.append(replace(r.workload, attained_gpu_s=stored[wid] if step is not None else 0.0))
            elif wid in resized:
                stored[wid] = stored.get(wid, 0.0) + (r.allocation.gpus - resized[wid].gpus) * (now - since[wid])
                running.append(Running(r.workload, resized[wid]))
            else:
                running.append(r)
                continue
            revision[wid] = revision.get(wid, 0) + 1
        started = {x.workload_id: x.allocation for x in d.starts}
        for w in pend:
            if w.id in started:
                since[w.id] = now
                revision[w.id] = revision.get(w.id, 0) + 1
                running.append(Running(w, started[w.id]))
        pend = [w for w in pend if w.id not in started]
        changes += len(gone) + len(resized) + len(started)
    return {"running": len(running), "rereads": statistics.mean(rereads), "best": min(times), "median": statistics.median(times),
            "changes": changes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpus", type=int, default=2000)
    p.add_argument("--pending", type=int, default=5000)
    p.add_argument("--cycles", type=int, default=24)
    p.add_argument("--tick", type=float, default=5.0, help="seconds between cycles (SchedulingLoop.tick_seconds)")
    a = p.parse_args(argv)
    print(f"reference loop: {reference_loop_ms():.1f} ms (1M additions; compare machines with it)")
    print(f"{a.gpus:,} GPUs, {a.pending:,} pending, {a.cycles} cycles {a.tick:g} s apart; CPU ms of IncrementalCore.decide per cycle\n")
    print(f"{'attained':>10} {'running':>8} {'decided':>8} {'re-read/cycle':>14} {'best ms':>8} {'median ms':>10} {'x frozen':>9}")
    base = None
    for name, step in (("frozen", "frozen"), ("grid 1%", 0.01), ("exact", 0.0), ("none", None)):
        m = replay(a.gpus, a.pending, a.cycles, a.tick, step)
        base = base or m["median"]
        print(f"{name:>10} {m['running']:>8} {m['changes']:>8} {m['rereads']:>14.1f} {m['best']:>8.1f} {m['median']:>10.1f} {m['median'] / base:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
