"""Notebook servers that hold GPUs from the pool, under a real JupyterHub with real servers.

The pool is one simulated node with 2 GPUs. The pool is filled where a test
needs it full with a session submitted straight to the pool (no server
behind it), which is cheaper than a second real server.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from tests.fixtures.hub import start_hub
from tests.fixtures.waiting import wait_for
from tests.spawner.hubtools import (
    SPAWNER_CONFIG,
    ProgressReader,
    cancel_active_workloads,
    gpupool_cli,
    pool_admin,
    server_environ,
    server_model,
    spawn,
    stop_server,
    used_gpus,
    wait_ready,
    workloads_of,
)

POOL = [{"name": "node-a", "gpus": 2, "model": "A100-40GB", "memory_mib": 40960}]
TEAMS = {"vision": {"quota": 2, "over_quota_weight": 1}, "nlp": {"quota": 2, "over_quota_weight": 1}}
USERS = {"alice": ["vision"], "bob": ["vision"], "carol": ["nlp"], "ada": []}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    # start_timeout is short on purpose: a queued spawn must outlive it.
    hub = start_hub(
        tmp_path_factory.mktemp("spawnhub"),
        pool=POOL,
        teams=TEAMS,
        users=USERS,
        admins=("ada",),
        extra_config=SPAWNER_CONFIG + "\nc.Spawner.start_timeout = 4\n",
    )
    yield hub
    hub.stop()


@pytest.fixture(autouse=True)
def clean_pool(hub):
    yield
    for user in ("alice", "bob", "carol"):
        if server_model(hub, user) is not None:
            stop_server(hub, user)
    cancel_active_workloads(pool_admin(hub))


def fill_pool(hub, gpus: int, user: str = "carol") -> dict:
    """A session holding ``gpus`` with no server behind it: the pool is busy."""
    w = pool_admin(hub).submit(user=user, kind="session", name="placeholder", gpus=gpus)
    assert w["state"] == "running", w
    return w


def test_server_gets_its_gpus_its_terminal_can_use_gpupool_and_stop_gives_them_back(hub):
    spawn(hub, "alice", gpus=2)
    wait_ready(hub, "alice")
    (session,) = workloads_of(hub, "alice", state="running")
    assert session["kind"] == "session" and session["name"] == "notebook" and session["allocation"]["gpus"] == 2

    env = server_environ(hub, "alice")
    indices = sorted(str(s["index"]) for s in session["allocation"]["shares"])
    assert sorted(env["CUDA_VISIBLE_DEVICES"].split(",")) == indices  # simulated cards: named by index
    assert env["GPUPOOL_GPUS"] == "2" and env["GPUPOOL_WORKLOAD_ID"] == session["id"]

    # `gpupool` in the server's terminal works with the server's own token: no extra login.
    out = gpupool_cli("ls", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert [w["id"] for w in json.loads(out.stdout)] == [session["id"]]

    stop_server(hub, "alice")
    # Given back by the time the hub says the server stopped.
    assert used_gpus(hub) == 0
    assert pool_admin(hub).workload(session["id"])["state"] in ("completed", "cancelled")


def test_a_queued_spawn_shows_its_place_outlives_start_timeout_and_starts_when_gpus_free(hub):
    placeholder = fill_pool(hub, 2)
    spawn(hub, "bob", gpus=1)
    progress = ProgressReader(hub, "bob")
    try:
        queued = progress.wait_for(lambda e: "Queued" in e.get("message", ""), timeout=30)
        assert "Queued for 1 GPU for team vision, position 1 in the queue" in queued["message"]
        assert "waiting because" in queued["message"]  # the pool's reason, in its words
        assert "Stop Server" in queued["message"]

        time.sleep(6)  # longer than start_timeout (4 s): still queued, not failed
        model = server_model(hub, "bob")
        assert model is not None and model["pending"] == "spawn"
        (pending,) = workloads_of(hub, "bob", state="pending")

        pool_admin(hub).cancel(placeholder["id"])
        got = progress.wait_for(lambda e: e.get("message", "").startswith("Got 1 GPU for team vision"), timeout=30)
        assert "node-a GPU" in got["message"]
        wait_ready(hub, "bob")
        assert pool_admin(hub).workload(pending["id"])["state"] == "running"
        assert server_environ(hub, "bob")["GPUPOOL_GPUS"] == "1"
    finally:
        progress.close()


def test_stop_server_on_the_spawn_page_leaves_the_queue(hub):
    fill_pool(hub, 2)
    spawn(hub, "bob", gpus=1)
    (pending,) = wait_for(lambda: workloads_of(hub, "bob", state="pending"), 20, "bob's request in the queue")
    # What the spawn page's "Stop Server" button does.
    r = hub.hub_api("DELETE", "/users/bob/server")
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: pool_admin(hub).workload(pending["id"])["state"] == "cancelled", 20, "the queued request cancelled")
    wait_for(lambda: server_model(hub, "bob") is None, 20, "no pending spawn left")
    assert pool_admin(hub).queue()["length"] == 0


def test_a_killed_server_gives_its_gpus_back_without_waiting_for_the_hub(hub):
    spawn(hub, "alice", gpus=1)
    wait_ready(hub, "alice")
    (session,) = workloads_of(hub, "alice", state="running")
    os.kill(int(server_environ(hub, "alice")["_pid"]), signal.SIGKILL)
    started = time.monotonic()
    # JupyterHub itself would notice at its next poll (30 s); the spawner checks every 0.5 s here.
    wait_for(lambda: pool_admin(hub).workload(session["id"])["state"] != "running", 10, "the session released")
    assert time.monotonic() - started < 10
    assert used_gpus(hub) == 0


def test_two_users_racing_for_the_last_gpu_one_starts_one_queues(hub):
    fill_pool(hub, 1)
    threads = [threading.Thread(target=spawn, args=(hub, user), kwargs={"gpus": 1}) for user in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def active_states():
        return sorted(w["state"] for u in ("alice", "bob") for w in workloads_of(hub, u) if w["state"] in ("pending", "running"))

    wait_for(lambda: active_states() == ["pending", "running"], 20, "one request running, one pending")
    assert used_gpus(hub) == 2  # never more than the pool has
    winner = next(u for u in ("alice", "bob") if workloads_of(hub, u, state="running"))
    loser = "bob" if winner == "alice" else "alice"
    wait_ready(hub, winner)
    model = server_model(hub, loser)
    assert model is not None and model["pending"] == "spawn" and not model["ready"]


def test_a_session_the_pool_ends_stops_its_server(hub):
    spawn(hub, "alice", gpus=1)
    wait_ready(hub, "alice")
    (session,) = workloads_of(hub, "alice", state="running")
    pid = int(server_environ(hub, "alice")["_pid"])
    pool_admin(hub).cancel(session["id"])  # an admin stops the session in the pool

    def server_process_gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"

    # The server does not keep using cards the pool has given to someone else.
    wait_for(server_process_gone, 20, "the server stopped")
    assert used_gpus(hub) == 0
