"""Sessions whose JupyterHub server is gone give their GPUs back, under a real hub with real servers.

The spawner here never tells the pool when its server stops (as when the hub
stops the service before the servers at shutdown), so only the service's
comparison with the hub (``ServerReconcile``) can give the GPUs back.
"""

from __future__ import annotations

import time

import pytest

from tests.fixtures.hub import start_hub
from tests.fixtures.waiting import wait_for
from tests.spawner.hubtools import (
    SPAWNER_CONFIG,
    cancel_active_workloads,
    pool_admin,
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
INTERVAL, GRACE = 1.0, 2.0

FORGETFUL_SPAWNER = """
from spawner.local import SimpleGpuLocalProcessSpawner


class ForgetfulSpawner(SimpleGpuLocalProcessSpawner):
    async def _release(self, client=None, workload_id=None):
        pass  # as if the pool service could not be reached when the server stopped


c.JupyterHub.spawner_class = ForgetfulSpawner
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = start_hub(
        tmp_path_factory.mktemp("reconcilehub"), pool=POOL, teams=TEAMS, users=USERS, admins=("ada",),
        extra_config=SPAWNER_CONFIG + FORGETFUL_SPAWNER,
        service_config=f"c.ServerReconcile.interval_seconds = {INTERVAL}\nc.ServerReconcile.grace_seconds = {GRACE}\n",
    )
    yield hub
    hub.stop()


@pytest.fixture(autouse=True)
def clean_pool(hub):
    yield
    for user in ("alice", "bob"):
        if server_model(hub, user) is not None:
            stop_server(hub, user)
    cancel_active_workloads(pool_admin(hub))


def server_gone_events(hub, workload_id: str) -> list[dict]:
    return [e for e in pool_admin(hub).events(workload_id=workload_id)["events"] if "server gone" in (e.get("message") or "")]


def test_a_stopped_server_that_kept_its_gpus_gives_them_back_within_the_reconcile_period(hub):
    spawn(hub, "alice", gpus=2)
    wait_ready(hub, "alice")
    (session,) = workloads_of(hub, "alice", state="running")
    assert used_gpus(hub) == 2
    stop_server(hub, "alice")  # the spawner does not release: the session still holds both GPUs
    stopped_at = time.monotonic()
    ended = wait_for(lambda: (w := pool_admin(hub).workload(session["id"]))["state"] == "cancelled" and w,
                     timeout=INTERVAL + 15, what="the session of the stopped server to end")
    assert time.monotonic() - stopped_at < INTERVAL + 15
    assert ended["reason"].startswith("server gone") and ended["allocation"] is None
    assert used_gpus(hub) == 0
    (event,) = server_gone_events(hub, session["id"])
    assert event["kind"] == "cancelled"
    # The freed GPUs are usable at once: a new spawn gets them.
    spawn(hub, "bob", gpus=2)
    wait_ready(hub, "bob")
    assert [w["state"] for w in workloads_of(hub, "bob", state="running")] == ["running"]


def test_a_queued_spawn_is_kept_while_the_hub_waits_for_it_and_a_serverless_one_is_cancelled(hub):
    admin = pool_admin(hub)
    placeholder = admin.submit(user="carol", kind="session", name="placeholder", gpus=2)  # no server behind it: never touched
    assert placeholder["state"] == "running"
    # A session named as a default server's, with no spawn behind it (a hub restarted mid-spawn).
    orphan = admin.submit(user="carol", kind="session", name="notebook", gpus=1)
    assert orphan["state"] == "pending"
    spawn(hub, "bob", gpus=2)
    (queued,) = wait_for(lambda: workloads_of(hub, "bob", state="pending"), 20, "bob's spawn to queue")
    wait_for(lambda: admin.workload(orphan["id"])["state"] == "cancelled", GRACE + INTERVAL + 15, "the serverless request to leave the queue")
    assert server_gone_events(hub, orphan["id"])
    # Several reconcile periods past the grace: the hub still has bob's spawn pending, so it waits on.
    time.sleep(GRACE + 4 * INTERVAL)
    assert server_model(hub, "bob")["pending"] == "spawn"
    assert admin.workload(queued["id"])["state"] == "pending" and not server_gone_events(hub, queued["id"])
    assert admin.workload(placeholder["id"])["state"] == "running"
    admin.cancel(placeholder["id"])
    wait_ready(hub, "bob")
    assert admin.workload(queued["id"])["state"] == "running"
