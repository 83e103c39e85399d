"""The idle reclaim policy runs inside the service's scheduling cycle: readings in, warning, reclaim, GPUs back."""

from __future__ import annotations

from hub_ext.client import PoolClient

from .conftest import wait_for

QUICK_RECLAIM = """
c.IdleReclaim.idle_limit_seconds = 1
c.IdleReclaim.grace_seconds = 1
c.IdleReclaim.mode = "immediate"
"""


def test_an_idle_session_is_warned_then_reclaimed_and_its_gpu_given_to_the_queue(hub_factory):
    hub = hub_factory(pool=[{"name": "solo", "gpus": 1, "model": "T4"}], teams={"vision": {"quota": 1}}, service_config=QUICK_RECLAIM)
    alice = PoolClient(hub.service_url, hub.token("alice"))
    bob = PoolClient(hub.service_url, hub.token("bob"))
    agent = PoolClient(hub.service_url, hub.agent_token)
    idle = alice.submit(kind="session", gpus=1, name="by-hand")  # no server behind it: given back at once
    waiting = bob.submit(kind="session", gpus=1)
    assert (idle["state"], waiting["state"]) == ("running", "pending")
    uuid = idle["allocation"]["shares"][0]["gpu_uuid"]

    def report_idle():
        agent.report_readings("solo", [{"index": 0, "uuid": uuid, "model": "T4", "utilization": 0.0, "memory_used_mib": 0}])
        kinds = [e["kind"] for e in alice.events(workload_id=idle["id"])["events"]]
        return "reclaimed" in kinds and kinds

    kinds = wait_for(report_idle, timeout=60, interval=0.5, what="the idle session to be reclaimed")
    assert kinds.index("warned") < kinds.index("reclaimed")
    wait_for(lambda: bob.workload(waiting["id"])["state"] == "running", timeout=30, what="the GPU to go to the waiting session")
    assert alice.workload(idle["id"])["allocation"] is None
