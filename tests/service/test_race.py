"""Two requests racing for the last GPU: exactly one gets it (SQLite and PostgreSQL).

First through the API of one service under a real hub, then two separate
processes scheduling on the same database at the same instant, which only
the database's write serialisation keeps apart.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time

import pytest
from sqlalchemy import func, select

from hub_ext.client import PoolClient
from hub_ext.scheduler.model import SchedulerConfig

SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]
ONE_GPU = [{"name": "solo", "gpus": 1, "model": "T4", "memory_mib": 15360}]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


def test_two_submits_for_the_last_gpu_one_wins(hub_factory, db_url):
    hub = hub_factory(pool=ONE_GPU, teams={"vision": {"quota": 1}}, db_url=db_url)
    clients = [PoolClient(hub.service_url, hub.token(u)) for u in ("alice", "bob")]
    for _ in range(4):
        barrier = threading.Barrier(2)
        results = [None, None]

        def go(i):
            barrier.wait()
            results[i] = clients[i].submit(command=SLEEP, gpus=1)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        states = sorted(r["state"] for r in results)
        assert states == ["pending", "running"], results
        winner = next(r for r in results if r["state"] == "running")
        loser = next(r for r in results if r["state"] == "pending")
        pool = clients[0].pool()
        holders = pool["nodes"][0]["gpus"][0]["holders"]
        assert [h["workload_id"] for h in holders] == [winner["id"]]
        # The loser gets the GPU as soon as the winner lets go, and not before.
        owner = clients[0] if winner["user"] == "alice" else clients[1]
        other = clients[1] if owner is clients[0] else clients[0]
        owner.cancel(winner["id"])
        assert other.workload(loser["id"])["state"] == "running"
        other.cancel(loser["id"])


# ---------------------------------------------------------------- two processes, one database


def _schedule_rounds(url: str, rounds: int, barrier, errors) -> None:
    from hub_ext.scheduler import schedule
    from hub_ext.service.apply import OvercommitError, apply_decisions
    from hub_ext.service.snapshot import build_snapshot
    from hub_ext.service.store import Store

    store = Store(url)
    for _ in range(rounds):
        barrier.wait()  # the main process has queued two workloads for the one GPU
        try:
            with store.write() as db:
                snapshot, rows = build_snapshot(db, time.time(), SchedulerConfig())
                apply_decisions(db, schedule(snapshot), rows, time.time())
        except OvercommitError as e:
            errors.put(str(e))
        barrier.wait()  # both are done: the main process checks
    store.dispose()


def test_two_service_processes_never_give_the_last_gpu_twice(tmp_path, db_url):
    from hub_ext.service.inventory import Inventory, parse_declared_nodes
    from hub_ext.service.store import ShareRow, Store, TeamRow, WorkloadRow
    from hub_ext.service.workloads import WorkloadRules

    url = db_url or f"sqlite:///{tmp_path / 'race.sqlite'}"
    store = Store(url)
    store.migrate()
    with store.write() as db:
        Inventory(nodes=ONE_GPU).sync(db, parse_declared_nodes(ONE_GPU))
        db.add(TeamRow(name="vision", quota=1, over_quota_weight=1))
    rules = WorkloadRules()
    rounds = 12
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    errors = ctx.Queue()
    workers = [ctx.Process(target=_schedule_rounds, args=(url, rounds, barrier, errors)) for _ in range(2)]
    for p in workers:
        p.start()
    try:
        for _ in range(rounds):
            with store.write() as db:
                for w in db.scalars(select(WorkloadRow).where(WorkloadRow.state.in_(("pending", "running")))):
                    rules.cancel(db, w, by="test")
                team = db.get(TeamRow, "vision")
                for user in ("alice", "bob"):
                    rules.create(db, rules.check_shape({"kind": "session", "gpus": 1}), user, team)
            barrier.wait(60)
            barrier.wait(60)
            with store.read() as db:
                running = db.scalar(select(func.count()).select_from(WorkloadRow).where(WorkloadRow.state == "running"))
                shares = db.scalar(select(func.count()).select_from(ShareRow))
            assert (running, shares) == (1, 1), "the last GPU was given twice (or not at all)"
    finally:
        for p in workers:
            p.join(30)
            if p.is_alive():
                p.kill()
        store.dispose()
    assert errors.empty(), errors.get()
