"""How fast the pool service answers, under a real JupyterHub, with a big pool.

Prints requests per second for the pool view (``GET api/pool``) with 1,000
GPUs and 5,000 workloads, and the latency of a submit (which runs a
scheduling cycle over all of them). The baseline in the same run is
``GET api/me`` (token check and a tiny answer, no pool): the ratio says what
the pool view itself costs.

    .venv/bin/python benchmarks/bench_api.py [--gpus 1000] [--workloads 5000] [--seconds 10] [--db-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hub_ext.service.inventory import Inventory, parse_declared_nodes  # noqa: E402
from hub_ext.service.store import ShareRow, Store, TeamRow, WorkloadRow  # noqa: E402
from hub_ext.service.store.orm import default_db_url  # noqa: E402
from tests.fixtures.hub import start_hub  # noqa: E402

TEAMS = ["vision", "nlp"]
USERS = {"vision": ["alice", "bob"], "nlp": ["carol"]}


def build_pool(gpus: int) -> list[dict]:
    nodes = gpus // 8
    return [{"name": f"dgx-{i:03d}", "gpus": 8, "model": "V100-SXM2-32GB", "memory_mib": 32768} for i in range(nodes)]


def populate(url: str, pool: list[dict], workloads: int) -> dict:
    """Fill the database: ~90% of the GPUs held, a long queue, and a finished history."""
    store = Store(url)
    store.migrate()
    nodes = parse_declared_nodes(pool)
    gpus = [(n.name, g) for n in nodes for g in n.gpus]
    running = int(len(gpus) * 0.9)
    pending = min(workloads - running, workloads // 8)
    finished = workloads - running - pending
    now = time.time()
    with store.write() as db:
        Inventory(nodes=pool).sync(db, nodes)
        for t in TEAMS:
            db.add(TeamRow(name=t, quota=len(gpus) / 2, over_quota_weight=1))
        seq = 0
        for i in range(workloads):
            team = TEAMS[i % 2]
            user = USERS[team][i % len(USERS[team])]
            if i < running:
                state = "running"
            elif i < running + pending:
                state = "pending"
            else:
                state = "completed"
            w = WorkloadRow(
                user=user, team=team, kind="session", state=state, gpus=1.0, priority=0, preemptible=True,
                submitted_at=now - 3600 + i * 0.1, started_at=now - 1800 if state != "pending" else None,
                finished_at=now - 60 if state == "completed" else None, preemptions=0, over_quota=False,
                reason="benchmark",
            )
            if state == "running":
                node, g = gpus[i]
                w.shares.append(ShareRow(node_name=node, gpu_uuid=g.uuid, gpu_index=g.index, fraction=1.0))
            db.add(w)
            seq += 1
    store.dispose()
    return {"running": running, "pending": pending, "finished": finished}


def rate(url: str, token: str, seconds: float, threads: int) -> tuple[float, float]:
    """Requests per second and median latency (ms) of GET ``url`` from ``threads`` clients."""
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    lock = threading.Lock()

    def worker():
        s = requests.Session()
        s.headers["Authorization"] = f"token {token}"
        mine = []
        while time.monotonic() < stop:
            t = time.perf_counter()
            r = s.get(url, timeout=60)
            r.raise_for_status()
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    return len(latencies) / elapsed, 1000 * statistics.median(latencies)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpus", type=int, default=1000)
    p.add_argument("--workloads", type=int, default=5000)
    p.add_argument("--seconds", type=float, default=10.0, help="how long each rate is measured")
    p.add_argument("--threads", type=int, default=4, help="concurrent clients")
    p.add_argument("--submits", type=int, default=30, help="submits timed one after another")
    p.add_argument("--db-url", help="database (default: SQLite in a temporary folder); must be empty")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    pool = build_pool(args.gpus)
    state_dir = tmp / "gpupool-state"
    state_dir.mkdir(parents=True)
    url = args.db_url or default_db_url(str(state_dir))
    t = time.perf_counter()
    counts = populate(url, pool, args.workloads)
    from hub_ext.service.views import pool_view

    store = Store(url)
    renders = []
    for _ in range(5):
        t0 = time.perf_counter()
        with store.read() as db:
            pool_view(db)
        renders.append(1000 * (time.perf_counter() - t0))
    store.dispose()
    print(f"database: {len(pool) * 8} GPUs on {len(pool)} nodes, {args.workloads} workloads "
          f"({counts['running']} running, {counts['pending']} pending, {counts['finished']} finished) "
          f"written in {time.perf_counter() - t:.1f}s")
    teams = {t: {"quota": args.gpus / 2} for t in TEAMS}
    users = {u: [team] for team, members in USERS.items() for u in members}
    users["ada"] = []
    # The default tick (5 s), not the 1 s the test fixture uses.
    hub = start_hub(tmp, pool=pool, teams=teams, users=users, db_url=args.db_url, timeout=300,
                    service_config="c.SchedulingLoop.tick_seconds = 5")
    try:
        token = hub.token("ada")
        base = hub.service_url
        size = len(requests.get(base + "api/pool", headers={"Authorization": f"token {token}"}, timeout=60).content)
        me_rps, me_ms = rate(base + "api/me", token, args.seconds, args.threads)
        pool_rps, pool_ms = rate(base + "api/pool", token, args.seconds, args.threads)
        print(f"GET api/me   (baseline): {me_rps:8.1f} requests/s, median {me_ms:7.1f} ms")
        print(f"GET api/pool ({size / 1e6:.1f} MB): {pool_rps:8.1f} requests/s, median {pool_ms:7.1f} ms "
              f"-> {pool_rps / me_rps:.3f} x baseline (rendered once per change; rendering it: median "
              f"{statistics.median(renders):.1f} ms, in-process)")

        alice = requests.Session()
        alice.headers["Authorization"] = f"token {hub.token('alice')}"
        submit_ms, me_single = [], []
        for i in range(args.submits):
            t = time.perf_counter()
            r = alice.post(base + "api/workloads", json={"kind": "session", "gpus": 1, "name": f"bench-{i}"}, timeout=120)
            r.raise_for_status()
            submit_ms.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            alice.get(base + "api/me", timeout=60).raise_for_status()
            me_single.append(1000 * (time.perf_counter() - t))
        submit_ms.sort()
        p95 = submit_ms[min(len(submit_ms) - 1, int(0.95 * len(submit_ms)))]
        print(f"POST api/workloads (submit + scheduling cycle over {args.workloads}+ workloads): "
              f"median {statistics.median(submit_ms):.1f} ms, p95 {p95:.1f} ms "
              f"({statistics.median(submit_ms) / statistics.median(me_single):.1f} x a GET api/me at {statistics.median(me_single):.1f} ms)")
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
