"""A job run by the local runner never gets GPUs on two nodes: elastic growth stops at its node."""

from __future__ import annotations

import sys
import time

from hub_ext.client import PoolClient

from .conftest import wait_for

TWO_SMALL_NODES = [{"name": "n1", "gpus": 1, "model": "T4"}, {"name": "n2", "gpus": 1, "model": "T4"}]


def test_an_elastic_job_does_not_grow_onto_another_node(hub_factory):
    hub = hub_factory(pool=TWO_SMALL_NODES, teams={"vision": {"quota": 2}})
    alice = PoolClient(hub.service_url, hub.token("alice"))
    w = alice.submit(command=[sys.executable, "-c", "import time; time.sleep(600)"], gpus=1, min_gpus=1, max_gpus=2)
    assert w["state"] == "running"
    wait_for(lambda: hub.job_processes().get(w["id"]), what="the job's process")
    time.sleep(3)  # several scheduling ticks, each of which would like to grow it
    now = alice.workload(w["id"])
    assert now["state"] == "running" and now["allocation"]["gpus"] == 1
    assert len({s["node"] for s in now["allocation"]["shares"]}) == 1
    assert len(hub.job_processes()[w["id"]]) == 1
    # The other node's GPU is still there for others.
    other = alice.submit(command=[sys.executable, "-c", "pass"], gpus=1)
    assert other["state"] == "running"
    alice.cancel(w["id"])
