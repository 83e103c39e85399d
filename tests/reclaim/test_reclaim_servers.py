"""Reclaiming real notebook servers: the service stops (or restarts without GPUs) a user's
server through the JupyterHub API, under a real hub with the pool's local spawner."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.cards import assert_cards_within_allocations
from tests.fixtures.hub import start_hub
from tests.fixtures.waiting import wait_for
from tests.reclaim.readings import Reporter, kinds, uuids
from tests.spawner.hubtools import SPAWNER_CONFIG, cancel_active_workloads, pool_admin, server_environ, server_model, spawn, stop_server, wait_ready

POOL = [{"name": "node-a", "gpus": 1, "model": "A100-40GB", "memory_mib": 40960}]
TEAMS = {"vision": {"quota": 1}, "nlp": {"quota": 1}}
USERS = {"alice": ["vision"], "bob": ["vision"], "carol": ["nlp"], "ada": []}
RECLAIM = """
c.IdleReclaim.idle_limit_seconds = 2
c.IdleReclaim.grace_seconds = 2
c.IdleReclaim.stale_after_seconds = 5
c.IdleReclaim.mode = "immediate"
c.IdleReclaim.team_overrides = {"nlp": {"action": "restart_without_gpus"}}
"""
# The service stops and starts users' servers: its role needs these scopes (docs/idle-reclaim.md).
SERVICE_MAY_STOP_SERVERS = """
for _role in c.JupyterHub.load_roles:
    if _role["name"] == "gpupool-service":
        _role["scopes"] = sorted(set(_role["scopes"]) | {"admin:servers", "read:servers"})
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = start_hub(
        tmp_path_factory.mktemp("reclaimservers"), pool=POOL, teams=TEAMS, users=USERS, admins=("ada",),
        extra_config=SPAWNER_CONFIG + SERVICE_MAY_STOP_SERVERS, service_config=RECLAIM,
    )
    yield hub
    hub.stop()


@pytest.fixture
def admin(hub):
    client = pool_admin(hub)
    yield client
    for user in USERS:
        if server_model(hub, user) is not None:
            stop_server(hub, user)
    cancel_active_workloads(client)


def running_session(admin, user):
    return wait_for(lambda: next((w for w in admin.workloads(user=user)["workloads"] if w["state"] == "running"), None), 30, f"{user}'s session")


def test_an_idle_server_is_stopped_its_files_kept_and_its_gpu_goes_to_the_waiting_user(hub, admin):
    spawn(hub, "alice", gpus=1)
    wait_ready(hub, "alice")
    session = running_session(admin, "alice")
    home = hub.state_dir / "homes" / "alice"
    (home / "analysis.ipynb").write_text('{"cells": []}')
    waiting = admin.submit(user="bob", kind="session", name="waiting", gpus=1)
    assert waiting["state"] == "pending"
    with Reporter(hub, "node-a", {uuids(session)[0]: 0.0}, "A100-40GB"):
        wait_for(lambda: "reclaimed" in kinds(admin, session["id"]), 60, "alice's idle server to be reclaimed")
        wait_for(lambda: server_model(hub, "alice") is None, 60, "alice's server to stop")
        started = wait_for(lambda: (w := admin.workload(waiting["id"]))["state"] == "running" and w, 30, "bob's session to start")
    assert uuids(started) == uuids(session)
    assert_cards_within_allocations(hub)
    assert (home / "analysis.ipynb").read_text() == '{"cells": []}'
    events = kinds(admin, session["id"])
    assert events.index("warned") < events.index("reclaimed")


def test_a_team_set_to_restart_without_gpus_gets_its_server_back_with_none(hub, admin):
    spawn(hub, "carol", gpus=1)
    wait_ready(hub, "carol")
    session = running_session(admin, "carol")
    first_pid = server_environ(hub, "carol")["_pid"]
    with Reporter(hub, "node-a", {uuids(session)[0]: 0.0}, "A100-40GB"):
        wait_for(lambda: "reclaimed" in kinds(admin, session["id"]), 60, "carol's idle server to be reclaimed")

    def restarted():
        model = server_model(hub, "carol")
        if not model or not model["ready"]:
            return None
        env = server_environ(hub, "carol")
        return env if env["_pid"] != first_pid else None

    env = wait_for(restarted, 90, "carol's server to come back")
    assert env.get("CUDA_VISIBLE_DEVICES") == "" and env.get("GPUPOOL_GPUS") == "0"
    assert not [w for w in admin.workloads(user="carol")["workloads"] if w["state"] in ("pending", "running", "stopping")]
    time.sleep(0.5)
    pool = admin.pool()
    assert all(g["state"] == "free" for n in pool["nodes"] for g in n["gpus"])
