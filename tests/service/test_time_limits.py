"""Time limits and expected starts, end to end under a real JupyterHub.

Its own hub: one node of 2 GPUs, team vision (alice, bob) with a default
time limit of 1 h and a maximum of 1 day; expected starts refreshed every
second. Answers are checked against the OpenAPI document.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import pytest
import requests

from tests.fixtures.hub import start_hub

from .conftest import wait_for
from .openapi_check import CheckedClient, OpenAPIDocument

POOL = [{"name": "node-a", "gpus": 2, "model": "A100-40GB", "memory_mib": 40960}]
TEAMS = {"vision": {"quota": 2}, "nlp": {"quota": 2}}
SERVICE_CONFIG = """
c.TimeLimits.team_default_s = {"vision": 3600}
c.TimeLimits.team_maximum_s = {"vision": 86400}
c.ExpectedStarts.refresh_seconds = 1
c.TimeLimits.team_session_max_s = {"vision": 10}
c.TimeLimits.session_warning_s = 5
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = start_hub(tmp_path_factory.mktemp("hub-time"), pool=POOL, teams=TEAMS, service_config=SERVICE_CONFIG)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def as_user(hub):
    doc = OpenAPIDocument(requests.get(hub.service_url + "api/openapi.json", timeout=10).json())
    clients = {}

    def make(name):
        if name not in clients:
            clients[name] = CheckedClient(hub.service_url, hub.token(name), doc)
        return clients[name]

    return make


def sleeper(seconds: float, **fields) -> dict:
    return {"command": [sys.executable, "-c", f"import time; time.sleep({seconds})"], **fields}


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


BAD_LIMITS = [
    pytest.param(0, "more than 0", id="zero"),
    pytest.param(-60, "more than 0", id="negative"),
    pytest.param("2h", "must be a number of seconds", id="text"),
    pytest.param(True, "must be a number of seconds", id="boolean"),
    pytest.param(float("nan"), "finite", id="NaN"),
    pytest.param(400 * 86400, "over a year", id="over a year"),
    pytest.param(2 * 86400, "above team vision's maximum of 24 h", id="above the team maximum"),
]


@pytest.mark.parametrize("limit, message", BAD_LIMITS)
def test_bad_time_limits_are_refused_and_leave_nothing(as_user, limit, message):
    alice = as_user("alice")
    before = len(alice.workloads()["workloads"])
    before_events = alice.events()["last_id"]
    r = requests.post(
        alice.base_url + "api/workloads", data=json.dumps(sleeper(1, time_limit_s=limit)),
        headers={"Authorization": f"token {alice.token}"}, timeout=30,
    )
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert len(alice.workloads()["workloads"]) == before
    assert alice.events()["last_id"] == before_events


def test_teams_show_their_time_limits(as_user):
    teams = {t["name"]: t for t in as_user("alice").teams()["teams"]}
    assert (teams["vision"]["default_time_limit_s"], teams["vision"]["max_time_limit_s"]) == (3600, 86400)
    assert (teams["nlp"]["default_time_limit_s"], teams["nlp"]["max_time_limit_s"]) == (None, None)
    assert (teams["vision"]["max_session_s"], teams["nlp"]["max_session_s"]) == (10, None)


def test_a_job_past_its_limit_is_stopped_and_fails_with_the_reason(as_user):
    alice = as_user("alice")
    w = alice.submit(sleeper(120, gpus=1, time_limit_s=2))
    assert w["time_limit_s"] == 2
    done = wait_for(lambda: (x := alice.workload(w["id"]))["state"] == "failed" and x, timeout=40, what="the time limit to stop the job")
    assert done["reason"].startswith("time limit")
    kinds = [e["kind"] for e in alice.events(workload_id=w["id"])["events"]]
    assert "time-limit" in kinds
    # A job that declares no limit gets its team's default.
    d = alice.submit(sleeper(1, gpus=1))
    assert d["time_limit_s"] == 3600
    alice.cancel(d["id"])


def test_a_queued_workloads_expected_start_comes_from_the_forward_run(as_user):
    carol = as_user("carol")  # team nlp: no default limit
    holder = carol.submit(sleeper(600, gpus=2, time_limit_s=900))
    try:
        holder = wait_for(lambda: (x := carol.workload(holder["id"]))["state"] == "running" and x, what="the holder to start")
        waiting = carol.submit(sleeper(1, gpus=2))
        fresh = wait_for(lambda: (x := carol.workload(waiting["id"]))["expected_start"] and x, timeout=30, what="an expected start")
        # The GPUs free up when the holder reaches its time limit: that is when the forward run starts it.
        assert abs(ts(fresh["expected_start"]) - (ts(holder["started_at"]) + 900)) <= 2
        assert "time limit" in fresh["expected_start_basis"] and holder["id"] in fresh["expected_start_basis"]
        queue = carol.queue()["queue"]
        assert [q["expected_start"] for q in queue if q["id"] == waiting["id"]] == [fresh["expected_start"]]
        # A holder with no limit and no history: the start is not known, and said so.
        carol.cancel(waiting["id"])
        carol.cancel(holder["id"])
        holder = carol.submit(sleeper(600, gpus=2))
        wait_for(lambda: carol.workload(holder["id"])["state"] == "running", what="the second holder to start")
        waiting = carol.submit(sleeper(1, gpus=2))
        unknown = wait_for(lambda: (x := carol.workload(waiting["id"]))["expected_start_basis"] and x, timeout=30, what="a basis")
        assert unknown["expected_start"] is None and unknown["expected_start_basis"].startswith("not known")
    finally:
        for w in carol.workloads()["workloads"]:
            if w["state"] in ("pending", "running"):
                carol.cancel(w["id"])


def test_a_session_is_warned_then_ended_at_its_teams_maximum_length(as_user):
    bob = as_user("bob")  # team vision: sessions last at most 10 s here, warned 5 s before
    s = bob.submit({"kind": "session", "gpus": 1})
    assert s["state"] == "running"
    # Work queued behind it expects to start when the session reaches its maximum length.
    behind = bob.submit(sleeper(1, gpus=2))
    try:
        fresh = wait_for(lambda: (x := bob.workload(behind["id"]))["expected_start"] and x, timeout=20, what="an expected start")
        assert "maximum session length" in fresh["expected_start_basis"]
    finally:
        bob.cancel(behind["id"])
    warned = wait_for(
        lambda: [e for e in bob.events(workload_id=s["id"])["events"] if e["kind"] == "time-limit-warning"], timeout=20,
        what="the warning",
    )
    assert "this session ends in" in warned[0]["message"] and "save your work" in warned[0]["message"]
    ended = wait_for(lambda: (x := bob.workload(s["id"]))["state"] == "cancelled" and x, timeout=20, what="the session to end")
    assert ended["reason"].startswith("time limit") and ended["allocation"] is None
    assert len([e for e in bob.events(workload_id=s["id"])["events"] if e["kind"] == "time-limit-warning"]) == 1
