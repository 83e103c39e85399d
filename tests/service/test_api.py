"""The pool service's API end to end, under a real JupyterHub.

Default pool (tests/fixtures/hub.py): node-a with 4 A100s, node-b with 2
V100s, all simulated; teams vision (alice, bob, erin) and nlp (carol, erin)
with a quota of 3 each; ada administers. Every answer is checked against the
service's OpenAPI document (``CheckedClient``).
"""

from __future__ import annotations

import json
import sys

import pytest
import requests

from hub_ext.client import PoolBadRequest, PoolConflict, PoolError

from .conftest import wait_for


def gpus_by_uuid(pool: dict) -> dict:
    return {g["uuid"]: g for n in pool["nodes"] for g in n["gpus"]}


def job(seconds: float = 600, **fields) -> dict:
    return {"command": [sys.executable, "-c", f"import time; time.sleep({seconds})"], **fields}


def test_me_says_who_i_am_and_my_teams(as_user):
    assert as_user("alice").me() == {"user": "alice", "kind": "user", "teams": ["vision"], "admin": False}
    assert set(as_user("erin").me()["teams"]) == {"vision", "nlp"}
    assert as_user("ada").me()["admin"] is True


def test_local_runner_refuses_a_job_larger_than_one_node_saying_so(as_user):
    # Together node-a and node-b have 6 GPUs, but the local runner runs a job on one machine.
    with pytest.raises(PoolBadRequest, match=r"largest node has 4 GPUs; the local runner .* runs a job on one node, so ask for at most 4"):
        as_user("alice").submit(job(gpus=6))


def test_pool_lists_every_declared_gpu_as_simulated_and_free(as_user):
    pool = as_user("alice").pool()
    assert pool["simulated"] is True
    assert {n["name"]: len(n["gpus"]) for n in pool["nodes"]} == {"node-a": 4, "node-b": 2}
    gpus = gpus_by_uuid(pool)
    assert all(g["simulated"] for g in gpus.values())
    assert {g["model"] for g in gpus.values()} == {"A100-40GB", "V100-32GB"}
    assert all(g["state"] == "free" and g["holders"] == [] for g in gpus.values())


def test_a_job_runs_on_its_gpus_and_finishes(as_user, tmp_path):
    alice = as_user("alice")
    script = (
        "import os; print('CVD=' + os.environ['CUDA_VISIBLE_DEVICES']); "
        "print('ID=' + os.environ['GPUPOOL_WORKLOAD_ID']); print('N=' + os.environ['GPUPOOL_GPUS'])"
    )
    w = alice.submit(name="env-check", command=[sys.executable, "-c", script], gpus=2, workdir=str(tmp_path))
    assert w["state"] == "running", w
    assert w["allocation"]["gpus"] == 2
    indices = sorted(s["index"] for s in w["allocation"]["shares"])
    done = wait_for(lambda: (x := alice.workload(w["id"]))["state"] in ("completed", "failed") and x, what="the job to end")
    assert done["state"] == "completed" and done["exit_code"] == 0
    assert done["allocation"] is None, "a finished job must give its GPUs back"
    log = alice.logs(w["id"])["text"]
    assert f"CVD={','.join(map(str, indices))}" in log
    assert f"ID={w['id']}" in log and "N=2" in log
    kinds = [e["kind"] for e in alice.events(workload_id=w["id"])["events"]]
    assert kinds == ["submitted", "started", "finished"]
    pool = alice.pool()
    assert not any(h["workload_id"] == w["id"] for g in gpus_by_uuid(pool).values() for h in g["holders"])


def test_a_failing_job_is_failed_with_its_exit_code(as_user):
    alice = as_user("alice")
    w = alice.submit(command=[sys.executable, "-c", "raise SystemExit(3)"], gpus=1)
    done = wait_for(lambda: (x := alice.workload(w["id"]))["state"] in ("completed", "failed") and x, what="the job to end")
    assert done["state"] == "failed" and done["exit_code"] == 3
    assert "3" in done["reason"]


def test_pool_shows_who_holds_each_gpu_and_fractions(as_user, cleanup):
    alice, carol = as_user("alice"), as_user("carol")
    a = alice.submit(kind="session", gpus=0.5, name="notebook-half")
    cleanup.append(a["id"])
    c = carol.submit(job(gpus=1))
    cleanup.append(c["id"])
    assert a["state"] == c["state"] == "running"
    gpus = gpus_by_uuid(alice.pool())
    half = gpus[a["allocation"]["shares"][0]["gpu_uuid"]]
    assert half["state"] in ("partial", "used")
    assert {"workload_id": a["id"], "user": "alice", "team": "vision", "kind": "session", "fraction": 0.5} in half["holders"]
    whole = gpus[c["allocation"]["shares"][0]["gpu_uuid"]]
    assert whole["state"] == "used" and whole["used_fraction"] == 1
    assert [h["user"] for h in whole["holders"]] == ["carol"]
    for g in gpus.values():
        assert sum(h["fraction"] for h in g["holders"]) <= 1 + 1e-9


def test_full_pool_queues_with_position_and_reason_and_cancel_frees_at_once(as_user, cleanup):
    alice, carol, bob = as_user("alice"), as_user("carol"), as_user("bob")
    # 3 of node-a's 4 GPUs and both of node-b's: no node has 2 free.
    running = [alice.submit(job(gpus=3)), carol.submit(job(gpus=2))]
    cleanup.extend(w["id"] for w in running)
    assert [w["state"] for w in running] == ["running", "running"]
    waiting = bob.submit(job(gpus=2))
    cleanup.append(waiting["id"])
    assert waiting["state"] == "pending"
    assert waiting["queue_position"] == 1
    assert waiting["reason"] and "waiting for the scheduler" not in waiting["reason"]
    queue = bob.queue()
    assert [e["id"] for e in queue["queue"]] == [waiting["id"]]
    assert queue["queue"][0]["queue_position"] == 1 and queue["queue"][0]["reason"] == waiting["reason"]
    # Others see that something waits, not its command.
    assert "command" not in alice.queue()["queue"][0]

    cancelled = alice.cancel(running[0]["id"])
    assert cancelled["state"] == "cancelled" and cancelled["allocation"] is None
    now = bob.workload(waiting["id"])
    assert now["state"] == "running", "the cancel must hand the freed GPUs out at once"
    assert bob.queue()["length"] == 0
    with pytest.raises(PoolConflict, match="already been cancelled"):
        alice.cancel(running[0]["id"])


def test_positions_and_reasons_come_from_the_services_kept_queue_and_others_see_no_details(pool_hub, as_user, cleanup):
    """Queue positions and reasons of pending work are kept in the service's memory (queue_state.py), not
    written to the rows every cycle: the API shows them, they move when the head of the queue starts, and
    another user sees that work waits, not its details."""
    import sqlalchemy

    alice, carol, bob = as_user("alice"), as_user("carol"), as_user("bob")
    running = [alice.submit(job(gpus=3)), carol.submit(job(gpus=2))]
    cleanup.extend(w["id"] for w in running)
    first, second = bob.submit(job(gpus=2)), bob.submit(job(gpus=2))
    cleanup.extend([first["id"], second["id"]])
    assert (first["queue_position"], second["queue_position"]) == (1, 2)
    queue = bob.queue()["queue"]
    assert [(e["id"], e["queue_position"]) for e in queue] == [(first["id"], 1), (second["id"], 2)]
    assert queue[1]["reason"] == bob.workload(second["id"])["reason"] and queue[1]["reason"]
    engine = sqlalchemy.create_engine(pool_hub.pool_db_url)  # SQLite or PostgreSQL (test_api_postgresql.py)
    try:
        with engine.connect() as db:
            stored = dict(db.execute(sqlalchemy.text("SELECT seq, queue_position FROM workloads WHERE state = 'pending'")).fetchall())
    finally:
        engine.dispose()
    assert set(stored.values()) == {None}, "positions are not written to the rows"
    # Others see that bob's work waits, and where, but not its command; they cannot open it.
    others = {e["id"]: e for e in alice.queue()["queue"]}
    assert others[second["id"]]["queue_position"] == 2 and "command" not in others[second["id"]]
    with pytest.raises(PoolError):
        alice.workload(second["id"])
    # The head of the queue starts: the next moves up, with no write of its row.
    carol.cancel(running[1]["id"])
    assert bob.workload(first["id"])["state"] == "running"
    now = bob.workload(second["id"])
    assert now["state"] == "pending" and now["queue_position"] == 1 and now["reason"]


def test_a_session_submitted_by_the_spawner_for_a_user(as_user, cleanup):
    spawner = as_user("spawner")
    w = spawner.submit(user="carol", kind="session", gpus=1, name="notebook")
    cleanup.append(w["id"])
    assert (w["user"], w["team"], w["state"]) == ("carol", "nlp", "running")
    assert w["id"] in [x["id"] for x in as_user("carol").workloads()["workloads"]]
    with pytest.raises(PoolBadRequest, match="no user"):
        spawner.submit(user="nobody-here", kind="session", gpus=1)
    with pytest.raises(PoolBadRequest, match="which user"):
        spawner.submit(kind="session", gpus=1)


def test_resize_an_elastic_job(as_user, cleanup):
    alice = as_user("alice")
    w = alice.submit(job(gpus=2, min_gpus=1, max_gpus=2))
    cleanup.append(w["id"])
    assert w["state"] == "running" and w["allocation"]["gpus"] == 2
    small = alice.resize(w["id"], 1)
    assert small["gpus"] == 1 and small["allocation"]["gpus"] == 1
    kinds = [e["kind"] for e in alice.events(workload_id=w["id"])["events"]]
    assert "resized" in kinds
    # The job was restarted on its smaller allocation.
    wait_for(lambda: alice.logs(w["id"])["text"].count("--- gpupool:") == 2, what="the restart on 1 GPU")
    with pytest.raises(PoolBadRequest, match="1 to 2 GPUs"):
        alice.resize(w["id"], 3)
    fixed = alice.submit(job(gpus=1))
    cleanup.append(fixed["id"])
    with pytest.raises(PoolConflict, match="not elastic"):
        alice.resize(fixed["id"], 2)


def test_resize_of_a_finished_job_is_refused(as_user):
    alice = as_user("alice")
    w = alice.submit(command=[sys.executable, "-c", "pass"], gpus=1, min_gpus=1, max_gpus=2)
    wait_for(lambda: alice.workload(w["id"])["state"] == "completed", what="the job to finish",
             show=lambda: (alice.workload(w["id"]), alice.events(workload_id=w["id"])))
    with pytest.raises(PoolConflict, match="already completed"):
        alice.resize(w["id"], 2)


def test_admin_changes_quotas_and_it_is_logged(as_user):
    ada = as_user("ada")
    before = {t["name"]: t for t in ada.teams()["teams"]}["nlp"]
    try:
        changed = ada.set_team("nlp", quota=2, limit=5)
        assert (changed["quota"], changed["limit"]) == (2, 5)
        assert {t["name"]: t for t in as_user("carol").teams()["teams"]}["nlp"]["quota"] == 2
        created = ada.set_team("robotics", quota=1)
        assert created["name"] == "robotics" and created["usage"] == 0
        events = ada.events()["events"]
        assert any(e["kind"] == "team-changed" and e["team"] == "nlp" and "quota 2" in e["message"] for e in events)
        with pytest.raises(PoolBadRequest, match="below the quota"):
            ada.set_team("nlp", quota=4, limit=3)
        assert {t["name"]: t for t in ada.teams()["teams"]}["nlp"]["quota"] == 2, "a refused change changes nothing"
    finally:
        ada.set_team("nlp", quota=before["quota"], clear_limit=True)


def test_team_limit_caps_what_a_workload_may_ask(as_user):
    ada = as_user("ada")
    ada.set_team("nlp", limit=3)
    try:
        with pytest.raises(PoolBadRequest, match="limit of 3"):
            as_user("carol").submit(job(gpus=4))
    finally:
        ada.set_team("nlp", clear_limit=True)


BAD_SUBMISSIONS = [
    pytest.param(job(team="no-such-team"), 400, "unknown team 'no-such-team'", id="unknown team"),
    pytest.param(job(team="nlp"), 403, "not a member of team 'nlp'", id="someone else's team"),
    pytest.param(job(gpus=5), 400, "largest node has 4 GPUs", id="more GPUs than any node"),
    pytest.param(job(gpus=3, gpu_model="V100-32GB"), 400, "largest node has 2 GPUs of model", id="more of a model than a node has"),
    pytest.param(job(gpu_model="H100"), 400, "no GPU in the pool is of model 'H100'", id="unknown GPU model"),
    pytest.param(job(gpus=0.01), 400, "not a sensible share", id="tiny fraction"),
    pytest.param(job(gpus=1.5), 400, "not a sensible share", id="fraction above one"),
    pytest.param(job(gpus=0), 400, "more than 0", id="zero GPUs"),
    pytest.param(job(gpus=-1), 400, "more than 0", id="negative GPUs"),
    pytest.param(job(gpus="two"), 400, "must be a number", id="GPUs as text"),
    pytest.param(job(gpus=True), 400, "must be a number", id="GPUs as a boolean"),
    pytest.param({"kind": "job", "gpus": 1}, 400, "needs a command", id="job without command"),
    pytest.param(job(kind="session"), 400, "takes no command", id="session with a command"),
    pytest.param(job(min_gpus=1), 400, "both min_gpus and max_gpus", id="half an elastic range"),
    pytest.param(job(gpus=3, min_gpus=1, max_gpus=2), 400, "between min_gpus", id="gpus outside the elastic range"),
    pytest.param(job(gpus_count=2), 400, "unknown field(s): gpus_count", id="misspelt field"),
    pytest.param(job(priority=10**9), 400, "priority", id="absurd priority"),
    pytest.param(job(user="bob"), 403, "on behalf of another user", id="user submits for someone else"),
    pytest.param(job(kind="batch"), 400, "kind must be", id="unknown kind"),
    pytest.param([1, 2], 400, "JSON object", id="not an object"),
]


@pytest.mark.parametrize("body, status, message", BAD_SUBMISSIONS)
def test_bad_submissions_are_refused_with_a_message_and_leave_nothing(as_user, pool_hub, body, status, message):
    alice = as_user("alice")
    before_workloads = len(alice.workloads()["workloads"])
    before_events = alice.events()["last_id"]
    r = requests.post(
        alice.base_url + "api/workloads",
        data=json.dumps(body),
        headers={"Authorization": f"token {alice.token}"},
        timeout=30,
    )
    assert r.status_code == status, r.text
    alice.document.check("POST", "/api/workloads", status, r.json())
    assert message in r.json()["error"]
    assert len(alice.workloads()["workloads"]) == before_workloads
    assert alice.events()["last_id"] == before_events


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "api/workloads", "{not json"),
        ("POST", "api/workloads", ""),
        ("PATCH", "api/teams/vision", "[quota: 3"),
        ("POST", "api/workloads/w-1/resize", "gpus=2"),
    ],
)
def test_malformed_json_is_a_400_with_a_message(as_user, method, path, body):
    token = as_user("ada").token
    r = requests.request(method, as_user("ada").base_url + path, data=body, headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 400
    assert "JSON" in r.json()["error"]


def test_bad_team_changes_are_refused(as_user):
    ada = as_user("ada")
    for kwargs, message in [
        ({"quota": -1}, "0 or more"),
        ({"quota": "lots"}, "must be a number"),
        ({"over_quota_weight": -2}, "0 or more"),
    ]:
        with pytest.raises(PoolBadRequest, match=message):
            ada.set_team("vision", **kwargs)
    with pytest.raises(PoolBadRequest, match="give its quota"):
        ada.set_team("brand-new-team", over_quota_weight=2)
    assert "brand-new-team" not in [t["name"] for t in ada.teams()["teams"]]


def test_unknown_workload_and_endpoint_are_404s(as_user):
    alice = as_user("alice")
    with pytest.raises(PoolError) as e:
        alice.workload("w-999999")
    assert e.value.status == 404 and "no workload" in str(e.value)
    r = requests.get(alice.base_url + "api/nothing-here", headers={"Authorization": f"token {alice.token}"}, timeout=10)
    assert r.status_code == 404 and "no such API endpoint" in r.json()["error"]


def test_list_filters(as_user, cleanup):
    alice, ada = as_user("alice"), as_user("ada")
    w = alice.submit(job(gpus=1))
    cleanup.append(w["id"])
    mine = alice.workloads(state="running")["workloads"]
    assert w["id"] in [x["id"] for x in mine] and all(x["user"] == "alice" for x in mine)
    assert all(x["user"] == "alice" for x in ada.workloads(user="alice")["workloads"])
    assert {x["user"] for x in ada.workloads()["workloads"]} > {"alice"}
    with pytest.raises(PoolBadRequest, match="state must be one of"):
        alice.workloads(state="sleeping")


def test_agent_readings_show_in_the_pool(as_user):
    agent = as_user("agent")
    gpus = [
        {"index": 0, "uuid": "GPU-sim-node-a-0", "model": "A100-40GB", "memory_total_mib": 40960,
         "memory_used_mib": 1000, "utilization": 37.0, "processes": [{"pid": 42, "used_memory_mib": 1000}]},
        {"index": 1, "uuid": "GPU-sim-node-a-1", "model": "A100-40GB", "memory_total_mib": 40960,
         "memory_used_mib": 0, "utilization": 0.0, "processes": []},
    ]
    answer = agent.report_readings("node-a", gpus, simulated=True)
    assert answer["accepted"] == 2
    pool = gpus_by_uuid(as_user("alice").pool())
    assert pool["GPU-sim-node-a-0"]["utilization"] == 37.0 and pool["GPU-sim-node-a-0"]["memory_used_mib"] == 1000
    assert pool["GPU-sim-node-a-0"]["idle_seconds"] is None
    assert pool["GPU-sim-node-a-1"]["idle_seconds"] is not None
    with pytest.raises(PoolBadRequest, match="utilization"):
        agent.report_readings("node-a", [{**gpus[0], "utilization": 250}])
    # A new node reported by an agent joins the pool.
    agent.report_readings("node-new", [{"index": 0, "uuid": "GPU-real-1", "model": "L4", "memory_total_mib": 23034, "utilization": 5}], simulated=False)
    nodes = {n["name"]: n for n in as_user("alice").pool()["nodes"]}
    assert nodes["node-new"]["simulated"] is False and nodes["node-new"]["gpus"][0]["model"] == "L4"


def test_metrics_report_gpus_and_queue(pool_hub, as_user, cleanup):
    w = as_user("alice").submit(job(gpus=1))
    cleanup.append(w["id"])
    text = requests.get(pool_hub.service_url + "metrics", headers={"Authorization": f"token {pool_hub.token('ada')}"}, timeout=10).text
    assert 'gpupool_node_gpus{node="node-a",simulated="true"} 4.0' in text
    assert "gpupool_team_gpus_used" in text and "gpupool_queue_length" in text
    used = [line for line in text.splitlines() if line.startswith('gpupool_team_gpus_used{team="vision"}')]
    assert used and float(used[0].split()[-1]) >= 1


def test_every_answer_so_far_matched_the_openapi_document(as_user):
    # Each CheckedClient call above validated its answer; make sure they really ran.
    assert as_user("alice").checked > 20
