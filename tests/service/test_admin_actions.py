"""What admins do to workloads and read about usage: preempt, change priority, the usage report, event search.

Each action is refused to a plain user (403, nothing changes) and recorded
as an event when an admin does it; the report's CSV holds what the pool did.
"""

from __future__ import annotations

import csv
import io
import sys

import pytest
import requests

from hub_ext.client import PoolConflict, PoolError

from .conftest import wait_for


def sleeper(**fields) -> dict:
    return {"command": [sys.executable, "-c", "import time; time.sleep(600)"], **fields}


@pytest.fixture(scope="module")
def running_job(as_user):
    alice = as_user("alice")
    w = alice.submit(name="admin-target", gpus=1, **sleeper())
    wait_for(lambda: alice.workload(w["id"])["state"] == "running", what="alice's job to run")
    yield w
    alice.cancel(w["id"])


def events_of(client, workload_id: str, kind: str) -> list[dict]:
    return [e for e in client.events(workload_id=workload_id)["events"] if e["kind"] == kind]


def test_a_user_may_not_preempt_or_reprioritise_even_her_own_job(as_user, running_job):
    alice = as_user("alice")
    for call in (lambda: alice.preempt(running_job["id"]), lambda: alice.set_priority(running_job["id"], 50)):
        with pytest.raises(PoolError) as refused:
            call()
        assert refused.value.status == 403
        assert "admin" in refused.value.message
    after = alice.workload(running_job["id"])
    assert (after["state"], after["priority"], after["preemptions"]) == ("running", 0, 0)
    assert not events_of(alice, running_job["id"], "preempted")


def test_admin_changes_a_priority_and_the_event_says_who(as_user, running_job):
    ada = as_user("ada")
    w = ada.set_priority(running_job["id"], 7)
    assert w["priority"] == 7
    [event] = events_of(ada, running_job["id"], "priority-changed")
    assert event["details"] == {"from": 0, "to": 7, "by": "ada"}
    with pytest.raises(PoolError) as bad:
        ada.set_priority(running_job["id"], 1.5)
    assert bad.value.status == 400
    r = requests.patch(ada.base_url + f"api/workloads/{running_job['id']}", json={"gpus": 4},
                       headers={"Authorization": f"token {ada.token}"}, timeout=10)
    assert r.status_code == 400 and "priority" in r.json()["error"]
    assert ada.workload(running_job["id"])["priority"] == 7


def test_admin_preempts_a_running_job_back_into_the_queue(as_user):
    alice, ada = as_user("alice"), as_user("ada")
    w = alice.submit(name="to-preempt", gpus=1, **sleeper())
    wait_for(lambda: alice.workload(w["id"])["state"] == "running", what="the job to run")
    after = ada.preempt(w["id"])
    # Notice first (as any preemption): it keeps its GPU until its process has gone.
    assert after["state"] == "running" and after["preempt_at"], after
    [notice] = events_of(ada, w["id"], "preempting")
    assert "by admin ada" in notice["message"]
    with pytest.raises(PoolConflict):
        ada.preempt(w["id"])  # already being preempted
    # Back in the queue, or already restarted by the next cycle on the free GPUs: either way preempted once.
    wait_for(lambda: ada.workload(w["id"])["preemptions"] == 1, what="the job to go back to the queue after its notice")
    [event] = events_of(ada, w["id"], "preempted")
    assert "by admin ada" in event["message"]
    alice.cancel(w["id"])
    with pytest.raises(PoolConflict):
        ada.preempt(w["id"])


def test_usage_report_csv_counts_held_gpu_hours_preemptions_and_waits(as_user, pool_hub, running_job):
    ada = as_user("ada")
    # A reading of alice's GPU at 80% busy, twice, so measured use has an interval to count.
    gpu = next(g for n in ada.pool()["nodes"] for g in n["gpus"] if any(h["workload_id"] == running_job["id"] for h in g["holders"]))
    agent = as_user("agent")

    def measured_rows():
        agent.report_readings(gpu["node"], [{"uuid": gpu["uuid"], "index": gpu["index"], "utilization": 80.0}])
        text = ada.report(format="csv")
        rows = {r["team"]: r for r in csv.DictReader(io.StringIO(text))}
        return float(rows.get("vision", {}).get("gpu_hours_busy") or 0) > 0 and (text, rows)

    text, rows = wait_for(measured_rows, what="the readings to count as measured use")
    assert text.splitlines()[0].startswith("team,period_start,period_end,gpu_hours_held,gpu_hours_busy")
    vision = rows["vision"]
    assert float(vision["gpu_hours_held"]) > 0
    assert float(vision["gpu_hours_busy"]) > 0
    assert float(vision["busy_percent_of_held"]) == pytest.approx(80.0, abs=0.5)
    assert int(vision["preemptions"]) >= 1  # the previous test's preemption
    assert int(vision["starts"]) >= 2 and vision["mean_wait_minutes"] != ""
    with pytest.raises(PoolError) as refused:
        as_user("alice").report(format="csv")
    assert refused.value.status == 403
    with pytest.raises(PoolError) as bad:
        ada.report(start="2026-13-01")
    assert bad.value.status == 400


def test_event_search_and_paging_backwards(as_user, running_job):
    ada = as_user("ada")
    headers = {"Authorization": f"token {ada.token}"}
    url = ada.base_url + "api/events"
    page = requests.get(url, params={"order": "desc", "limit": 2}, headers=headers, timeout=10).json()
    assert len(page["events"]) == 2 and page["events"][0]["id"] > page["events"][1]["id"]
    older = requests.get(url, params={"order": "desc", "limit": 2, "before": page["next_before"]}, headers=headers, timeout=10).json()
    assert older["events"][0]["id"] < page["events"][1]["id"]
    found = requests.get(url, params={"q": "ASKS FOR"}, headers=headers, timeout=10).json()["events"]
    assert len(found) >= 2 and {e["kind"] for e in found} == {"submitted"}
    found = requests.get(url, params={"q": "priority 0 -> 7"}, headers=headers, timeout=10).json()["events"]
    assert [e["kind"] for e in found] == ["priority-changed"]
    bob = requests.get(url, params={"q": "priority"}, headers={"Authorization": f"token {as_user('bob').token}"}, timeout=10)
    assert bob.json()["events"] == [], "search never shows another user's events"


def test_restart_is_for_sessions_with_a_server_and_sane_gpus(as_user, running_job):
    """Restart with other GPUs (the panel's): refused for a job, for a hand-made session, for a bad GPU count."""
    alice = as_user("alice")
    with pytest.raises(PoolConflict) as job:
        alice.restart(running_job["id"], 2)
    assert "only notebook sessions" in job.value.message
    session = alice.submit(name="by-hand", kind="session", gpus=1)
    try:
        with pytest.raises(PoolConflict) as by_hand:
            alice.restart(session["id"], 2)
        assert "no server to restart" in by_hand.value.message
    finally:
        alice.cancel(session["id"])
    with pytest.raises(PoolError) as bad:
        alice.restart(running_job["id"], -1)
    assert bad.value.status in (400, 409)


def test_agent_errors_show_as_node_health_until_a_clean_reading(as_user):
    agent, ada = as_user("agent"), as_user("ada")
    node = next(n for n in ada.pool()["nodes"] if n["name"] == "node-b")
    gpu = node["gpus"][0]
    reading = [{"uuid": gpu["uuid"], "index": gpu["index"], "utilization": 10.0}]
    agent.report_readings("node-b", reading, errors=["GPU 0: memory not readable: GPU is lost"])
    node = next(n for n in ada.pool()["nodes"] if n["name"] == "node-b")
    assert node["agent_errors"] == ["GPU 0: memory not readable: GPU is lost"]
    agent.report_readings("node-b", reading, errors=[])
    assert next(n for n in ada.pool()["nodes"] if n["name"] == "node-b")["agent_errors"] is None
    with pytest.raises(PoolError) as bad:
        agent.report_readings("node-b", reading, errors="not a list")
    assert bad.value.status == 400
