"""Preempting a session under a real hub: notice, grace, then its server lets go of the card.

A session borrowing beyond its team's quota is preempted when another team
reclaims its quota. It keeps its card through the notice (an event and
``preempt_at`` say when), the workload it was preempted for waits, then its
server is stopped (or restarted without GPUs, per team), its files kept, and
the card goes to the waiting work. At every step no live server or job
process computes on a card outside its workload's current allocation.
"""

from __future__ import annotations

import sys

import pytest

from tests.fixtures.cards import assert_cards_within_allocations, violations
from tests.fixtures.hub import start_hub
from tests.fixtures.waiting import wait_for
from tests.reclaim.readings import kinds, uuids
from tests.reclaim.test_reclaim_servers import SERVICE_MAY_STOP_SERVERS
from tests.spawner.hubtools import SPAWNER_CONFIG, cancel_active_workloads, pool_admin, server_environ, server_model, spawn, stop_server, wait_ready

POOL = [{"name": "node-a", "gpus": 1, "model": "A100-40GB", "memory_mib": 40960}]
# nlp and bio have no quota: their sessions borrow and may be preempted; vision owns the card.
TEAMS = {"vision": {"quota": 1}, "nlp": {"quota": 0}, "bio": {"quota": 0}, "physics": {"quota": 0}}
USERS = {"alice": ["vision"], "carol": ["nlp"], "erin": ["bio"], "frank": ["physics"], "ada": []}
NOTICE = """
c.Preemption.grace_seconds = 4
c.Preemption.team_overrides = {"bio": {"session_action": "restart_without_gpus", "grace_seconds": 2}}
# physics: sessions last at most 8 s (time_limits.py), warned 4 s before.
c.TimeLimits.team_session_max_s = {"physics": 8}
c.TimeLimits.session_warning_s = 4
"""
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = start_hub(
        tmp_path_factory.mktemp("preemptservers"), pool=POOL, teams=TEAMS, users=USERS, admins=("ada",),
        extra_config=SPAWNER_CONFIG + SERVICE_MAY_STOP_SERVERS, service_config=NOTICE,
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


def test_a_preempted_session_gets_notice_then_its_server_stops_and_no_card_is_used_twice(hub, admin):
    spawn(hub, "carol", gpus=1)
    wait_ready(hub, "carol")
    session = running_session(admin, "carol")
    assert session["over_quota"]
    home = hub.state_dir / "homes" / "carol"
    (home / "notes.ipynb").write_text('{"cells": []}')
    assert_cards_within_allocations(hub)

    # vision reclaims its quota with a job: carol's session is given notice, and keeps the card meanwhile.
    job = admin.submit(user="alice", kind="job", name="train", gpus=1, command=SLEEPER)
    noticed = wait_for(lambda: (w := admin.workload(session["id"]))["preempt_at"] and w, 30, "carol's session to get notice")
    assert noticed["state"] == "running" and noticed["reason"].startswith("preempting at")
    assert "preempting" in kinds(admin, session["id"])
    waiting = admin.workload(job["id"])
    assert waiting["state"] == "pending" and f"starts when {session['id']}" in waiting["reason"]
    assert server_model(hub, "carol")["ready"]
    assert_cards_within_allocations(hub)

    # At the end of the notice the server is stopped, files kept, and the job gets the card.
    wait_for(lambda: server_model(hub, "carol") is None, 60, "carol's server to stop")
    started = wait_for(lambda: (w := admin.workload(job["id"]))["state"] == "running" and w, 30, "alice's job to start")
    assert uuids(started) == uuids(session)
    ended = wait_for(lambda: (w := admin.workload(session["id"]))["state"] == "cancelled" and w["reason"].startswith("preempted") and w,
                     30, "carol's session to end as preempted")
    assert ended["preemptions"] == 1 and ended["preempt_at"] is None
    assert (home / "notes.ipynb").read_text() == '{"cells": []}'
    events = kinds(admin, session["id"])
    assert events.index("preempting") < events.index("preempted")
    wait_for(lambda: not violations(hub), 30, "every process to be within its allocation", show=lambda: violations(hub))


def test_a_team_set_to_restart_without_gpus_gets_its_server_back_with_none(hub, admin):
    spawn(hub, "erin", gpus=1)
    wait_ready(hub, "erin")
    session = running_session(admin, "erin")
    first_pid = server_environ(hub, "erin")["_pid"]
    job = admin.submit(user="alice", kind="job", name="train", gpus=1, command=SLEEPER)

    def restarted():
        model = server_model(hub, "erin")
        if not model or not model["ready"]:
            return None
        env = server_environ(hub, "erin")
        return env if env["_pid"] != first_pid else None

    env = wait_for(restarted, 90, "erin's server to come back")
    assert env.get("CUDA_VISIBLE_DEVICES") == "" and env.get("GPUPOOL_GPUS") == "0"
    wait_for(lambda: admin.workload(job["id"])["state"] == "running", 30, "alice's job to start")
    assert admin.workload(session["id"])["state"] == "cancelled"
    assert_cards_within_allocations(hub)


def test_a_session_at_its_teams_maximum_length_keeps_its_card_until_its_server_is_gone(hub, admin):
    spawn(hub, "frank", gpus=1)
    wait_ready(hub, "frank")
    session = running_session(admin, "frank")
    assert_cards_within_allocations(hub)
    # The pool ends it at 8 s: the card is given back only once the hub has stopped the server.
    ended = wait_for(lambda: (w := admin.workload(session["id"]))["state"] == "cancelled" and w, 60, "frank's session to end at its maximum length")
    model = server_model(hub, "frank")
    assert model is None or not (model.get("ready") or model.get("pending")), ("the session gave its card back while its server still ran", model)
    assert ended["reason"].startswith("time limit"), ended["reason"]
    assert {"time-limit-warning", "time-limit"} <= set(kinds(admin, session["id"]))
    assert_cards_within_allocations(hub)
