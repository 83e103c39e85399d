"""What idle reclaim adds to a scheduling cycle and to a node agent's report.

The service runs the idle policy inside every scheduling cycle (before and
after the scheduler core, in the same transaction) and advances each GPU's
idle streak on every reading. This prints, on a big pool (SQLite in a
temporary folder, like the embedded default):

- a scheduling cycle's time without reclaim (the baseline: snapshot, core,
  apply) and with it, and the ratio;
- the time to apply one node's readings (8 GPUs) with the reclaim's streak
  update, against the same rows written without it.

    .venv/bin/python benchmarks/bench_reclaim.py [--gpus 1000] [--sessions 600] [--cycles 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from hub_ext.scheduler import schedule  # noqa: E402
from hub_ext.scheduler.model import SchedulerConfig  # noqa: E402
from hub_ext.service.apply import apply_decisions  # noqa: E402
from hub_ext.service.reclaim import IdleReclaim  # noqa: E402
from hub_ext.service.snapshot import build_snapshot  # noqa: E402
from hub_ext.service.store import GpuRow, NodeRow, ShareRow, Store, TeamRow, WorkloadRow  # noqa: E402


def build(store: Store, gpus: int, sessions: int, now: float) -> None:
    with store.write() as db:
        db.add(TeamRow(name="vision", quota=gpus / 2))
        db.add(TeamRow(name="nlp", quota=gpus / 2))
        cards = []
        for n in range(gpus // 8):
            node = NodeRow(name=f"dgx-{n:03d}", simulated=True, source="declared")
            for i in range(8):
                g = GpuRow(uuid=f"GPU-sim-dgx-{n:03d}-{i}", index=i, model="V100", memory_mib=32768)
                node.gpus.append(g)
                cards.append((node.name, g))
            db.add(node)
        for k in range(sessions):
            node_name, g = cards[k]
            w = WorkloadRow(name="notebook", user=f"user{k}", team=("vision", "nlp")[k % 2], kind="session", state="running",
                            gpus=1, submitted_at=now - 7200, started_at=now - 7200)
            w.shares.append(ShareRow(node_name=node_name, gpu_uuid=g.uuid, gpu_index=g.index))
            db.add(w)
        for k in range(sessions // 10):  # a queue: work waiting for GPUs
            db.add(WorkloadRow(name=f"job{k}", user=f"user{k}", team="nlp", kind="job", state="pending", gpus=8,
                               submitted_at=now - 60, command=["true"]))


def cycle(store: Store, reclaim: IdleReclaim | None, now: float) -> float:
    started = time.perf_counter()
    with store.write() as db:
        if reclaim is not None:
            reclaim.before_cycle(db, now)
        snapshot, rows = build_snapshot(db, now, SchedulerConfig())
        apply_decisions(db, schedule(snapshot), rows, now)
        if reclaim is not None:
            reclaim.after_cycle(db, now)
    return time.perf_counter() - started


def report_node(store: Store, reclaim: IdleReclaim | None, node: str, now: float, utilization: float = 0.0) -> float:
    started = time.perf_counter()
    with store.write() as db:
        for g in db.scalars(select(GpuRow).where(GpuRow.node_name == node)):
            if reclaim is not None:
                reclaim.apply_reading(g, utilization, now)
            else:
                g.utilization, g.reading_at = utilization, now
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=600, help="running sessions, one GPU each (default 600)")
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args()
    if args.sessions > args.gpus:
        parser.error("--sessions cannot exceed --gpus")
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.sqlite")
        store.migrate()
        build(store, args.gpus, args.sessions, now)
        # Warn after 10 min idle, never reclaim within the run: every cycle does the full policy work.
        reclaim = IdleReclaim(store, threshold_percent=1.0, idle_limit_seconds=600, grace_seconds=10**9, mode="immediate",
                              stale_after_seconds=10**6, check_seconds=0, hub_api_url="")
        nodes = sorted({f"dgx-{n:03d}" for n in range(args.gpus // 8)})
        for node in nodes:  # every GPU has been idle for an hour
            report_node(store, reclaim, node, now - 3600)
        without, with_reclaim = [], []
        for k in range(args.cycles):
            t = now + k
            without.append(cycle(store, None, t))
            with_reclaim.append(cycle(store, reclaim, t))
        for node in nodes:  # now every GPU computes (and every warning is withdrawn once)
            report_node(store, reclaim, node, now + args.cycles, utilization=80.0)
        cycle(store, reclaim, now + args.cycles)
        busy_without, busy_with = [], []
        for k in range(args.cycles):
            t = now + args.cycles + 1 + k
            busy_without.append(cycle(store, None, t))
            busy_with.append(cycle(store, reclaim, t))
        plain_reads = [report_node(store, None, nodes[k % len(nodes)], now + k) for k in range(args.cycles)]
        reclaim_reads = [report_node(store, reclaim, nodes[k % len(nodes)], now + k) for k in range(args.cycles)]
        store.dispose()
    a, b = statistics.median(without), statistics.median(with_reclaim)
    c, d = statistics.median(plain_reads), statistics.median(reclaim_reads)
    print(f"pool: {args.gpus} GPUs, {args.sessions} running sessions (all idle and warned), {args.sessions // 10} pending jobs; "
          f"median of {args.cycles}; the policy runs in every cycle here (IdleReclaim.check_seconds = 0; default 5 s)")
    print(f"scheduling cycle without reclaim (baseline) {a * 1000:8.1f} ms")
    print(f"scheduling cycle with reclaim               {b * 1000:8.1f} ms   ratio {b / a:.2f}")
    e, f = statistics.median(busy_without), statistics.median(busy_with)
    print("the same pool with every GPU busy:")
    print(f"scheduling cycle without reclaim (baseline) {e * 1000:8.1f} ms")
    print(f"scheduling cycle with reclaim               {f * 1000:8.1f} ms   ratio {f / e:.2f}")
    print(f"one node's readings (8 GPUs), plain write   {c * 1000:8.2f} ms")
    print(f"one node's readings with idle streaks       {d * 1000:8.2f} ms   ratio {d / c:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
