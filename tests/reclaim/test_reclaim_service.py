"""Idle reclaim through the real service: a real hub, the gpupool service, readings over HTTP.

Each test uses its own node (asked for by GPU model) so readings of one test
never touch another's GPUs. The policy is shortened to seconds: warn after
2 s idle, reclaim 4 s later; readings older than 2 s are missing data.
"""

from __future__ import annotations

import json
import signal
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.hub import start_hub
from tests.fixtures.waiting import wait_for
from tests.reclaim.readings import Reporter, kinds, uuids
from tests.spawner.hubtools import cancel_active_workloads, pool_admin

REPO = Path(__file__).resolve().parents[2]
LIMIT, GRACE, STALE = 2.0, 4.0, 2.0
QUICK_RECLAIM = f"""
c.IdleReclaim.idle_limit_seconds = {LIMIT}
c.IdleReclaim.grace_seconds = {GRACE}
c.IdleReclaim.stale_after_seconds = {STALE}
c.IdleReclaim.mode = "immediate"
c.IdleReclaim.job_flag_after_seconds = 3
c.IdleReclaim.team_overrides = {{"hpc": {{"mode": "when_waiting"}}}}
c.Inventory.idle_threshold_percent = 5
"""
POOL = [
    {"name": "quiet", "gpus": 1, "model": "P100", "memory_mib": 16384},
    {"name": "control", "gpus": 1, "model": "K80", "memory_mib": 12288},
    {"name": "mixed", "gpus": 3, "model": "V100", "memory_mib": 32768},
    {"name": "agentnode", "gpus": 2, "model": "T4", "memory_mib": 16384},
]
TEAMS = {"vision": {"quota": 8}, "nlp": {"quota": 8}, "hpc": {"quota": 8}}
USERS = {"alice": ["vision"], "bob": ["vision"], "carol": ["nlp"], "erin": ["nlp"], "frank": ["hpc"], "ada": []}


# This hub's service may not stop users' servers (as when an admin forgot the scopes):
# a reclaim of a session named like a server must fail visibly and keep the session.
SERVICE_MAY_NOT_STOP_SERVERS = """
for _role in c.JupyterHub.load_roles:
    if _role["name"] == "gpupool-service":
        _role["scopes"] = [s for s in _role["scopes"] if s not in ("admin:servers", "servers")]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = start_hub(
        tmp_path_factory.mktemp("reclaimhub"), pool=POOL, teams=TEAMS, users=USERS, admins=("ada",),
        service_config=QUICK_RECLAIM + "c.IdleReclaim.retry_seconds = 3\n", extra_config=SERVICE_MAY_NOT_STOP_SERVERS,
    )
    yield hub
    hub.stop()


@pytest.fixture
def admin(hub):
    client = pool_admin(hub)
    yield client
    cancel_active_workloads(client)


def test_nothing_happens_to_a_session_when_the_agent_stops_reporting(hub, admin):
    quiet = admin.submit(user="erin", kind="session", name="quiet", gpus=1, gpu_model="P100")
    control = admin.submit(user="carol", kind="session", name="control", gpus=1, gpu_model="K80")
    assert quiet["state"] == control["state"] == "running"
    with Reporter(hub, "control", {uuids(control)[0]: 0.0}, "K80"):
        with Reporter(hub, "quiet", {uuids(quiet)[0]: 0.0}, "P100") as quiet_agent:
            wait_for(lambda: "warned" in kinds(admin, quiet["id"]), 30, "the quiet session's warning")
            quiet_agent.stop()  # the node's agent dies after the warning
        stopped_at = time.monotonic()
        # The control session, idle and reported, is reclaimed in the meantime: the wait was long enough.
        wait_for(lambda: "reclaimed" in kinds(admin, control["id"]), 30, "the reported idle session to be reclaimed")
        while time.monotonic() - stopped_at < GRACE + STALE + 2:
            time.sleep(0.3)
    after = admin.workload(quiet["id"])
    assert "reclaimed" not in kinds(admin, quiet["id"])
    assert after["state"] == "running" and uuids(after) == uuids(quiet)
    assert after["idle_seconds"] is None  # no recent reading: not idle, unknown
    gpu = next(g for n in admin.pool()["nodes"] if n["name"] == "quiet" for g in n["gpus"])
    assert gpu["idle_seconds"] is None


def test_busy_sessions_and_one_idle_on_one_of_two_gpus_are_never_warned(hub, admin):
    busy = admin.submit(user="alice", kind="session", name="busy", gpus=1, gpu_model="V100")
    half = admin.submit(user="bob", kind="session", name="half", gpus=2, gpu_model="V100")
    control = admin.submit(user="carol", kind="session", name="control", gpus=1, gpu_model="K80")
    readings = {uuids(busy)[0]: 60.0, uuids(half)[0]: 0.0, uuids(half)[1]: 40.0}
    started = time.monotonic()
    with Reporter(hub, "mixed", readings, "V100"), Reporter(hub, "control", {uuids(control)[0]: 0.0}, "K80"):
        wait_for(lambda: "reclaimed" in kinds(admin, control["id"]), 30, "the idle control session to be reclaimed")
        while time.monotonic() - started < LIMIT + GRACE + 2:
            time.sleep(0.3)
        for w in (busy, half):
            assert not {"warned", "reclaimed"} & set(kinds(admin, w["id"])), kinds(admin, w["id"])
            assert admin.workload(w["id"])["state"] == "running"
        assert admin.workload(busy["id"])["idle_seconds"] == 0.0


def test_the_agent_reports_and_an_idle_sessions_gpu_goes_to_the_waiting_user(hub, admin, tmp_path):
    idle = admin.submit(user="alice", kind="session", name="idle", gpus=1, gpu_model="T4")
    busy = admin.submit(user="carol", kind="session", name="busy", gpus=1, gpu_model="T4")
    waiting = admin.submit(user="bob", kind="session", name="waiting", gpus=1, gpu_model="T4")
    assert (idle["state"], busy["state"], waiting["state"]) == ("running", "running", "pending")
    script = tmp_path / "t4.json"
    # The agent's token has only the agent scope, so the script declares the node's cards
    # (a declared count gives the same UUIDs the service gives them).
    cards = [{"model": "T4", "memory_mib": 16384}] * 2
    script.write_text(json.dumps({"gpus": cards, "utilization": {uuids(idle)[0]: [[0, 0]], uuids(busy)[0]: [[0, 85]]}}))
    env = dict(os.environ, GPUPOOL_URL=hub.service_url, GPUPOOL_TOKEN=hub.agent_token, PYTHONPATH=str(REPO))
    agent = subprocess.Popen(
        [sys.executable, "-m", "hub_ext.cli.main", "agent", "--backend", "simulated", "--script", str(script), "--node", "agentnode", "--interval", "0.5"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(lambda: "reclaimed" in kinds(admin, idle["id"]), 40, "the idle session to be reclaimed")
        events = kinds(admin, idle["id"])
        assert events.index("warned") < events.index("reclaimed")
        got = wait_for(lambda: (w := admin.workload(waiting["id"]))["state"] == "running" and w, 30, "the waiting session to start")
        assert uuids(got) == uuids(idle)
        assert admin.workload(idle["id"])["allocation"] is None
        assert not {"warned", "reclaimed"} & set(kinds(admin, busy["id"]))
        # The user is told why, in words, in their own event log.
        mine = hub.client("alice").events(workload_id=idle["id"])["events"]
        reclaimed = next(e for e in mine if e["kind"] == "reclaimed")
        assert "idle" in reclaimed["message"] and "GPU" in reclaimed["message"]
    finally:
        agent.terminate()  # SIGTERM, as the hub, systemd or the kubelet stop it
        out, _ = agent.communicate(timeout=10)
        print(out)  # shown by pytest when the test fails
    assert agent.returncode == 0, out


def test_idle_time_per_gpu_and_per_session_in_the_pool_api_and_metrics(hub, admin):
    idle = admin.submit(user="erin", kind="session", name="measured", gpus=1, gpu_model="P100")
    uuid = uuids(idle)[0]
    with Reporter(hub, "quiet", {uuid: 0.0}, "P100"):
        wait_for(lambda: (admin.workload(idle["id"])["idle_seconds"] or 0) >= 1, 20, "idle time to show")
        gpu = next(g for n in admin.pool()["nodes"] if n["name"] == "quiet" for g in n["gpus"])
        assert gpu["idle_seconds"] >= 1 and gpu["utilization"] == 0.0
        text = admin.metrics()
    # Idle time per team and kind (bounded labels: no workload ids, no user names).
    lines = [line for line in text.splitlines() if line.startswith('gpupool_workload_idle_seconds_max{kind="session",team="nlp"}')]
    assert lines and float(lines[0].rsplit(" ", 1)[1]) >= 1
    assert idle["id"] not in text and 'user="' not in text
    assert any(line.startswith("gpupool_gpu_idle_seconds{") and uuid in line for line in text.splitlines())


def test_a_reclaim_the_hub_refuses_keeps_the_session_running_and_tells_admins_once(hub, admin):
    # Named as the spawners name a default server's session: the service asks the hub to stop it.
    session = admin.submit(user="alice", kind="session", name="notebook", gpus=1, gpu_model="K80")
    waiting = admin.submit(user="bob", kind="session", name="waiting", gpus=1, gpu_model="K80")
    assert (session["state"], waiting["state"]) == ("running", "pending")
    with Reporter(hub, "control", {uuids(session)[0]: 0.0}, "K80"):
        wait_for(lambda: "reclaim-failed" in kinds(admin, session["id"]), 40, "the refused reclaim to be reported")
        time.sleep(8)  # two more retries (retry_seconds = 3) fail too
        events = kinds(admin, session["id"])
        now = admin.workload(session["id"])
    assert events.count("reclaim-failed") == 1 and "reclaimed" not in events  # it never was
    assert now["state"] == "running" and uuids(now) == uuids(session) and "reclaim failed" in now["reason"]
    assert admin.workload(waiting["id"])["state"] == "pending"  # the GPU is still in use: nobody else gets it


def test_a_restarted_service_remembers_the_warning_and_the_idle_time(hub_factory):
    # Readings must not go stale while the service restarts, or the idle time would rightly start over.
    config = "c.IdleReclaim.idle_limit_seconds = 2\nc.IdleReclaim.grace_seconds = 6\nc.IdleReclaim.stale_after_seconds = 60\nc.IdleReclaim.mode = 'immediate'\n"
    hub = hub_factory(pool=[{"name": "solo", "gpus": 1, "model": "T4"}], teams={"vision": {"quota": 1}}, service_config=config)
    admin = hub.client(token=hub.spawner_token)
    session = admin.submit(user="alice", kind="session", name="remembered", gpus=1)
    with Reporter(hub, "solo", {uuids(session)[0]: 0.0}, "T4"):
        wait_for(lambda: "warned" in kinds(admin, session["id"]), 30, "the warning")
        old = hub.service_pid()
        os.kill(old, signal.SIGKILL)  # no chance to save anything on the way out
        hub.wait_for_service(timeout=60, not_pid=old)
        wait_for(lambda: "reclaimed" in kinds(admin, session["id"]), 30, "the reclaim after the restart")
    events = kinds(admin, session["id"])
    assert events.count("warned") == 1, events  # the new process knew of the warning


def test_when_waiting_keeps_an_idle_session_until_someone_needs_its_gpu(hub, admin):
    # Team hpc reclaims only when someone waits (a team override of the pool's "immediate").
    idle = admin.submit(user="frank", kind="session", name="patient", gpus=1, gpu_model="K80")
    with Reporter(hub, "control", {uuids(idle)[0]: 0.0}, "K80"):
        wait_for(lambda: "warned" in kinds(admin, idle["id"]), 30, "the warning")
        time.sleep(GRACE + 2)
        assert "reclaimed" not in kinds(admin, idle["id"])  # nobody waits: kept
        assert admin.workload(idle["id"])["state"] == "running"
        waiting = admin.submit(user="bob", kind="session", name="needs-k80", gpus=1, gpu_model="K80")
        assert waiting["state"] == "pending"
        got = wait_for(lambda: (w := admin.workload(waiting["id"]))["state"] == "running" and w, 30, "the waiting session to get the GPU")
    assert uuids(got) == uuids(idle) and "reclaimed" in kinds(admin, idle["id"])


def test_an_idle_batch_job_is_flagged_to_admins_and_never_reclaimed(hub, admin):
    job = admin.submit(user="erin", kind="job", name="stuck", gpus=1, gpu_model="P100",
                       command=[sys.executable, "-c", "import time; time.sleep(120)"])
    assert job["state"] == "running"
    with Reporter(hub, "quiet", {uuids(job)[0]: 0.0}, "P100"):
        wait_for(lambda: "flagged" in kinds(admin, job["id"]), 30, "the idle job to be flagged")
        time.sleep(LIMIT + GRACE + 1)
        events = kinds(admin, job["id"])
        assert events.count("flagged") == 1 and not {"warned", "reclaimed"} & set(events)
        assert admin.workload(job["id"])["state"] == "running"


def test_a_simulated_agent_with_pool_access_takes_its_cards_from_the_service(hub, tmp_path):
    script = tmp_path / "no-cards.json"
    script.write_text(json.dumps({"utilization": {"*": [[0, 12]]}}))  # no "gpus": the service's declaration counts
    env = dict(os.environ, GPUPOOL_URL=hub.service_url, GPUPOOL_TOKEN=hub.spawner_token, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-m", "hub_ext.cli.main", "agent", "--backend", "simulated", "--script", str(script), "--node", "agentnode", "--once", "--print"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    cards = json.loads(out.stdout)["gpus"]
    declared = {g["uuid"]: g["model"] for n in hub.client(token=hub.spawner_token).pool()["nodes"] if n["name"] == "agentnode" for g in n["gpus"]}
    assert {g["uuid"]: g["model"] for g in cards} == declared and len(cards) == 2
    assert all(g["utilization"] == 12.0 and g["memory_total_mib"] == 16384 for g in cards)
