"""What a new user met on first use of the demo (issue 11), against the real service.

Default pool (tests/fixtures/hub.py): node-a with 4 A100s, node-b with 2 V100s;
teams vision (alice, bob) and nlp (carol) with a quota of 3 each; ada administers.
"""

from __future__ import annotations

import sys
import time

import requests

from .conftest import wait_for


def job(**fields) -> dict:
    return {"command": [sys.executable, "-c", "import time; time.sleep(600)"], **fields}


def gpus_of(pool: dict, node: str) -> list[dict]:
    return next(n["gpus"] for n in pool["nodes"] if n["name"] == node)


def test_patch_of_a_team_answers_the_same_pending_count_as_get(as_user, cleanup):
    """Bug 8: PATCH api/teams/{team} answered "pending": 0 while GET showed the queue."""
    alice, bob, ada = as_user("alice"), as_user("bob"), as_user("ada")
    held = alice.submit(job(gpus=4))
    cleanup.append(held["id"])
    waiting = bob.submit(job(gpus=4))
    cleanup.append(waiting["id"])
    assert waiting["state"] == "pending"
    listed = {t["name"]: t for t in ada.teams()["teams"]}["vision"]
    assert listed["pending"] == 1
    assert ada.team("vision")["pending"] == 1
    patched = ada.set_team("vision", over_quota_weight=1)
    assert patched["pending"] == 1


def test_raising_a_quota_clears_the_borrowed_marks_of_running_work(as_user, cleanup):
    """Bug 5: after a quota was raised, running jobs kept "borrowed" marks and reasons."""
    alice, ada = as_user("alice"), as_user("ada")
    first = alice.submit(job(gpus=2))
    cleanup.append(first["id"])
    second = alice.submit(job(gpus=2))
    cleanup.append(second["id"])
    assert (first["over_quota"], second["over_quota"]) == (False, True)
    assert second["reason"].startswith("borrowed idle GPUs beyond team vision's quota of 3")
    try:
        team = ada.set_team("vision", quota=4)
        assert team["borrowed"] == 0
        now = alice.workload(second["id"])
        assert now["over_quota"] is False
        assert now["reason"].startswith("within team vision's quota of 4"), now["reason"]
        # And back: a lowered quota marks the least protected work as borrowing again.
        ada.set_team("vision", quota=3)
        again = alice.workload(second["id"])
        assert again["over_quota"] is True and again["reason"].startswith("borrowed idle GPUs beyond team vision's quota of 3")
        assert alice.workload(first["id"])["over_quota"] is False
    finally:
        ada.set_team("vision", quota=3)


def test_a_preempted_job_keeps_saying_so_while_it_waits(as_user, cleanup):
    """Bug 9: after its first cycle back in the queue a preempted job showed the generic quota text."""
    carol, alice = as_user("carol"), as_user("alice")
    borrower = carol.submit(job(gpus=4))  # nlp's quota is 3: one GPU borrowed, all of node-a
    cleanup.append(borrower["id"])
    assert borrower["state"] == "running" and borrower["over_quota"]
    time.sleep(0.7)  # past the minimum run-time (0.5 s in the test hub): now it may be preempted
    owner = alice.submit(job(gpus=3))  # within vision's quota; only node-a can hold 3
    cleanup.append(owner["id"])
    # The borrower gets its notice (SIGTERM, at most the 3 s grace of the test hub), then the owner starts.
    wait_for(lambda: alice.workload(owner["id"])["state"] == "running", timeout=20, what="the owner's job to start")
    back = carol.workload(borrower["id"])
    assert back["state"] == "pending" and back["preemptions"] == 1
    # Several scheduling ticks (1 s each here) later it still says why it went back.
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        reason = carol.workload(borrower["id"])["reason"]
        assert reason.startswith("preempted and back in the queue: "), reason
        time.sleep(0.3)
    queued = next(e for e in carol.queue()["queue"] if e["id"] == borrower["id"])
    assert queued["reason"].startswith("preempted and back in the queue: ")


def test_a_gpu_idle_time_starts_again_with_a_new_holder(as_user, pool_hub, cleanup):
    """Bug 4: a GPU idle for minutes showed that idle time for a job started seconds before."""
    agent, alice = as_user("agent"), as_user("alice")
    cards = gpus_of(alice.pool(), "node-b")

    def report():
        agent.report_readings("node-b", [{"uuid": g["uuid"], "index": g["index"], "model": g["model"], "utilization": 0.0} for g in cards], simulated=True)

    report()
    wait_for(lambda: all(g["idle_seconds"] is not None and g["idle_seconds"] >= 3 for g in gpus_of(alice.pool(), "node-b")),
             timeout=20, what="node-b's GPUs idle for 3 s")
    w = alice.submit(job(gpus=2, gpu_model="V100-32GB"))
    cleanup.append(w["id"])
    assert w["state"] == "running" and {s["node"] for s in w["allocation"]["shares"]} == {"node-b"}
    report()  # still idle under the new holder: the streak counts from the start
    for g in gpus_of(alice.pool(), "node-b"):
        assert g["holders"] and g["idle_seconds"] is not None
        assert g["idle_seconds"] < 2.5, f"GPU {g['index']} shows {g['idle_seconds']} s idle for a job started just now"


def test_the_services_menu_link_is_a_page_for_people_and_json_for_programs(pool_hub):
    """Bug 11: the hub's Services menu sent everyone to raw JSON at the service's root."""
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    user = pool_hub.login("alice")
    r = user.get(pool_hub.pool_url, headers=html, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), (r.status_code, r.text[:300])
    assert 'id="gpupool-root"' in r.text and "GPU pool" in r.text and "api/openapi.json" in r.text
    admin = pool_hub.login("ada")
    r = admin.get(pool_hub.pool_url, headers=html, timeout=30)
    assert r.status_code == 200 and r.url.rstrip("/").endswith("/services/gpupool/admin"), r.url
    # Programs keep their JSON index.
    index = requests.get(pool_hub.service_url, timeout=10).json()
    assert index["openapi"].endswith("api/openapi.json")
