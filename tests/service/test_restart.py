"""Restart safety: kill -9 at any moment loses no workload and gives no GPU twice.

The hub restarts its managed service when it dies (the fixture makes it
check every second); on start the service reconciles the database with the
processes that are really running. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
import time

import pytest

from hub_ext.client import PoolClient, PoolError

from .conftest import wait_for
from tests.fixtures.hub import job_processes, start_hub

SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


def kill_service(hub) -> int:
    pid = hub.service_pid()
    assert pid, "the service wrote no pid file"
    os.kill(pid, signal.SIGKILL)
    return pid


def check_pool_consistent(client: PoolClient) -> dict:
    """No GPU beyond capacity; every running workload's GPUs are in the pool view; returns workloads by id."""
    pool = client.pool()
    holders_by_workload: dict[str, float] = {}
    for node in pool["nodes"]:
        for g in node["gpus"]:
            assert sum(h["fraction"] for h in g["holders"]) <= 1 + 1e-9, f"GPU {g['uuid']} given twice: {g['holders']}"
            for h in g["holders"]:
                holders_by_workload[h["workload_id"]] = holders_by_workload.get(h["workload_id"], 0) + h["fraction"]
    workloads = {w["id"]: w for w in client.workloads()["workloads"]}
    for wid, w in workloads.items():
        held = (w["allocation"] or {}).get("gpus", 0)
        assert holders_by_workload.get(wid, 0) == pytest.approx(held), f"{wid}: pool and workload disagree"
        if w["state"] == "pending":
            assert held == 0
    return workloads


def test_kill_9_during_allocation_loses_nothing_and_doubles_nothing(hub_factory, db_url):
    hub = hub_factory(db_url=db_url)
    admin = PoolClient(hub.service_url, hub.token("ada"))
    users = ["alice", "bob", "carol"]
    tokens = {u: hub.token(u) for u in users}
    accepted: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(users) + 1)

    def submit_many(user: str):
        client = PoolClient(hub.service_url, tokens[user], timeout=10)
        start.wait()
        for _ in range(8):
            try:
                w = client.submit(command=SLEEP, gpus=1)
            except PoolError:
                continue  # the service was killed under this request: it may or may not have been recorded
            with lock:
                accepted.append(w["id"])

    threads = [threading.Thread(target=submit_many, args=(u,)) for u in users]
    for t in threads:
        t.start()
    start.wait()
    wait_for(lambda: len(accepted) >= 3, timeout=30, what="the first submits")
    old = kill_service(hub)
    for t in threads:
        t.join(60)
    hub.wait_for_service(not_pid=old)

    workloads = check_pool_consistent(admin)
    lost = [wid for wid in accepted if wid not in workloads]
    assert not lost, f"accepted workloads lost by the kill: {lost}"
    running = [w for w in workloads.values() if w["state"] == "running"]
    assert sum(w["allocation"]["gpus"] for w in running) == min(6, len(workloads)), "free GPUs with work waiting"

    # Every running job has exactly one process; nothing pending or cancelled has one. The pool may still act
    # after the restart (carol's team takes its quota back from a vision borrower: notice, then the borrower's
    # stop), so the running set is read again on every poll rather than frozen at the first read.
    def one_each():
        now = {w["id"]: w for w in admin.workloads()["workloads"]}
        running_now = {wid for wid, w in now.items() if w["state"] == "running"}
        procs = job_processes(hub.service_url)
        settled = set(procs) == running_now and all(len(p) == 1 for p in procs.values())
        return (now, procs) if settled else None

    workloads, procs = wait_for(
        one_each, timeout=45, what="one process per running job and none for others",
        show=lambda: (job_processes(hub.service_url), {w["id"]: w["state"] for w in admin.workloads()["workloads"]}),
    )
    assert not any(len(p) > 1 for p in procs.values()), f"a job started twice: {procs}"
    check_pool_consistent(admin)
    for wid in workloads:
        admin.cancel(wid) if workloads[wid]["state"] in ("pending", "running") else None
    wait_for(lambda: not job_processes(hub.service_url), timeout=30, what="cancelled jobs' processes to end")


def test_a_running_job_survives_a_kill_and_is_adopted(hub_factory, db_url):
    hub = hub_factory(db_url=db_url)
    alice = PoolClient(hub.service_url, hub.token("alice"))
    w = alice.submit(command=SLEEP, gpus=2)
    pids = wait_for(lambda: job_processes(hub.service_url).get(w["id"]), what="the job's process")
    old = kill_service(hub)
    hub.wait_for_service(not_pid=old)
    after = alice.workload(w["id"])
    assert after["state"] == "running" and after["allocation"] == w["allocation"]
    assert job_processes(hub.service_url).get(w["id"]) == pids, "the job must keep running, not be restarted"
    alice.cancel(w["id"])
    wait_for(lambda: not job_processes(hub.service_url).get(w["id"]), what="the adopted job to be stopped")


def test_a_job_that_ends_while_the_service_is_down_is_finished_with_its_exit_code(hub_factory):
    """...and one killed with the service (no exit code: a machine or demo restart) is requeued and runs
    again, not "failed: the job's process vanished" (issue 11, bug 10)."""
    hub = hub_factory()
    alice = PoolClient(hub.service_url, hub.token("alice"))
    w = alice.submit(command=[sys.executable, "-c", "import time; time.sleep(2); raise SystemExit(5)"], gpus=1)
    killed = alice.submit(command=SLEEP, gpus=1)
    wait_for(lambda: job_processes(hub.service_url).get(w["id"]), what="the job's process")
    pids = wait_for(lambda: job_processes(hub.service_url).get(killed["id"]), what="the other job's process")
    hub.process.send_signal(signal.SIGSTOP)  # the hub must not restart the service before the job ends
    try:
        kill_service(hub)
        for pid in pids:
            os.killpg(os.getpgid(pid), signal.SIGKILL)  # the job and its wrapper: no exit code written
        time.sleep(3)
    finally:
        hub.process.send_signal(signal.SIGCONT)
    hub.wait_for_service()
    done = wait_for(lambda: (x := alice.workload(w["id"]))["state"] != "running" and x, what="the job to be finished")
    assert (done["state"], done["exit_code"]) == ("failed", 5)
    assert done["allocation"] is None

    again = wait_for(lambda: job_processes(hub.service_url).get(killed["id"]), what="the requeued job to run again")
    assert again != pids
    assert alice.workload(killed["id"])["state"] == "running"
    kinds = [e["kind"] for e in alice.events(workload_id=killed["id"])["events"]]
    assert "requeued" in kinds and "failed" not in kinds, kinds
    alice.cancel(killed["id"])


def test_gpus_committed_but_never_started_are_started_after_a_restart(tmp_path):
    """The service died between committing an allocation and starting the job: the restart starts it, once."""
    hub = start_hub(tmp_path)
    try:
        alice = PoolClient(hub.service_url, hub.token("alice"))
        w = alice.submit(command=SLEEP, gpus=1)
        wait_for(lambda: job_processes(hub.service_url).get(w["id"]), what="the job's process")
        alice.cancel(w["id"])
        wait_for(lambda: not job_processes(hub.service_url).get(w["id"]), what="the job to stop")
        alice.submit(command=SLEEP, gpus=1)
    finally:
        hub.process.send_signal(signal.SIGTERM)
        hub.process.wait(30)
    # As if killed after the commit: the database says running, no process was started.
    db = sqlite3.connect(hub.state_dir / "gpupool.sqlite")
    seq = db.execute("SELECT max(seq) FROM workloads").fetchone()[0]
    handle = db.execute("SELECT runner_handle FROM workloads WHERE seq = ?", (seq,)).fetchone()[0]
    assert handle, "the job should have been started before the hub stopped"
    for pid in job_processes(hub.service_url).get(f"w-{seq}", []):
        os.kill(pid, signal.SIGKILL)
    db.execute("UPDATE workloads SET runner_handle = NULL WHERE seq = ?", (seq,))
    db.commit()
    db.close()

    hub2 = start_hub(tmp_path)
    try:
        alice = PoolClient(hub2.service_url, hub2.token("alice"))
        w = alice.workload(f"w-{seq}")
        assert w["state"] == "running"
        procs = wait_for(lambda: job_processes(hub2.service_url).get(w["id"]), what="the restart to start the job")
        assert len(procs) == 1
        time.sleep(1.5)  # a tick later: still exactly one
        assert len(job_processes(hub2.service_url).get(w["id"], [])) == 1
        alice.cancel(w["id"])
    finally:
        hub2.stop()
