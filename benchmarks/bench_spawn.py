"""What taking GPUs from the pool adds to starting a notebook server.

    .venv/bin/python benchmarks/bench_spawn.py [--rounds 5] [--allocations 50]

Starts a real JupyterHub with the gpupool service and the local GPU spawner
(tests/fixtures/hub.py), then measures in the same run:

1. spawn-to-ready of a real single-user server, without GPUs (the baseline:
   the spawner never asks the pool) and with 1 GPU, alternating, several
   rounds each;
2. the allocation alone, as the spawner does it (submit the session, see it
   running, read the pool, release it), repeated, against the same service.

It prints medians side by side and the milliseconds the pool adds. Server
start-up dominates (1) and varies by seconds on a busy machine; (2) isolates
the pool's share of it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.hub import start_hub  # noqa: E402
from tests.spawner.hubtools import SPAWNER_CONFIG, pool_admin, spawn, stop_server, wait_ready  # noqa: E402

POOL = [{"name": "node-a", "gpus": 8, "model": "A100-40GB", "memory_mib": 40960}]
TEAMS = {"vision": {"quota": 8, "over_quota_weight": 1}}
USERS = {"alice": ["vision"], "ada": []}


def spawn_seconds(hub, gpus: float) -> float:
    started = time.perf_counter()
    spawn(hub, "alice", gpus=gpus)
    wait_ready(hub, "alice", timeout=180)
    elapsed = time.perf_counter() - started
    stop_server(hub, "alice")
    return elapsed


class _User:
    """The little of JupyterHub's User the allocation reads."""

    name = "alice"
    groups: list = []
    url = "/user/alice/"


async def allocation_seconds(hub, rounds: int) -> list[float]:
    from spawner.local import SimpleGpuLocalProcessSpawner

    times = []
    for _ in range(rounds):
        spawner = SimpleGpuLocalProcessSpawner(user=_User(), pool_url=hub.service_url, pool_token=hub.spawner_token)
        spawner.user_options = {"gpus": 1}
        started = time.perf_counter()
        await spawner.allocate_gpus()
        spawner.allocation_env()
        await spawner._release()
        times.append(time.perf_counter() - started)
    return times


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:9.1f}"


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="server spawns of each kind")
    parser.add_argument("--allocations", type=int, default=50, help="allocation round trips to time")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-spawn-") as tmp:
        hub = start_hub(Path(tmp), pool=POOL, teams=TEAMS, users=USERS, admins=("ada",), extra_config=SPAWNER_CONFIG)
        try:
            spawn_seconds(hub, 0)  # warm-up: first server start pays for cold caches
            without, with_gpu = [], []
            for _ in range(args.rounds):
                without.append(spawn_seconds(hub, 0))
                with_gpu.append(spawn_seconds(hub, 1))
            alloc = asyncio.run(allocation_seconds(hub, args.allocations))
            leaked = [w["id"] for w in pool_admin(hub).workloads()["workloads"] if w["state"] in ("pending", "running")]
        finally:
            hub.stop()

    print(f"spawn to ready, real single-user server ({args.rounds} rounds each, median ms):")
    print(f"  {'without GPUs (baseline)':28s}{ms(without)}")
    print(f"  {'with 1 GPU from the pool':28s}{ms(with_gpu)}")
    added = (statistics.median(with_gpu) - statistics.median(without)) * 1000
    print(f"  {'added by the pool':28s}{added:9.1f}   (ratio {statistics.median(with_gpu) / statistics.median(without):.3f})")
    print(f"  spread without GPUs: {min(without) * 1000:.0f}..{max(without) * 1000:.0f} ms")
    print()
    print(f"allocation alone, as the spawner does it ({args.allocations} times: submit, running, read pool, release):")
    print(f"  median {statistics.median(alloc) * 1000:.1f} ms, p90 {p90(alloc) * 1000:.1f} ms, "
          f"= {statistics.median(alloc) / statistics.median(without) * 100:.2f}% of a baseline spawn")
    if leaked:
        print(f"WARNING: workloads left holding GPUs: {leaked}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
