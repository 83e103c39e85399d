"""Batch jobs from the `gpupool` CLI, run by the service's local runner under a real JupyterHub.

The pool is one simulated node with 2 GPUs; teams vision and nlp are each
guaranteed 1, so a vision job on 2 GPUs borrows one of nlp's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.fixtures.cards import assert_cards_within_allocations
from tests.fixtures.hub import start_hub
from tests.fixtures.waiting import wait_for
from tests.spawner.hubtools import cancel_active_workloads, gpupool_cli, pool_admin, used_gpus

REPO = Path(__file__).resolve().parents[2]
TRAIN = str(REPO / "examples" / "train.py")
POOL = [{"name": "node-a", "gpus": 2, "model": "A100-40GB", "memory_mib": 40960}]
TEAMS = {"vision": {"quota": 1, "over_quota_weight": 1}, "nlp": {"quota": 1, "over_quota_weight": 1}}
USERS = {"alice": ["vision"], "carol": ["nlp"], "ada": []}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = start_hub(tmp_path_factory.mktemp("jobshub"), pool=POOL, teams=TEAMS, users=USERS, admins=("ada",))
    yield hub
    hub.stop()


@pytest.fixture(autouse=True)
def clean_pool(hub):
    yield
    cancel_active_workloads(pool_admin(hub))
    wait_for(lambda: used_gpus(hub) == 0, 30, "the pool empty again")


def terminal_of(hub, user: str) -> dict:
    """What a user's JupyterLab terminal has: the pool's URL and a token of theirs."""
    return {"GPUPOOL_URL": hub.service_url, "JUPYTERHUB_API_TOKEN": hub.token(user)}


def submit(hub, user: str, *args, cwd) -> dict:
    out = gpupool_cli("submit", "--json", *args, env=terminal_of(hub, user), cwd=cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def state_of(hub, workload_id: str) -> dict:
    return pool_admin(hub).workload(workload_id)


def log_of(hub, user: str, workload_id: str) -> str:
    out = gpupool_cli("logs", workload_id, env=terminal_of(hub, user))
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_job_runs_to_completion_and_its_log_is_readable(hub, tmp_path):
    job = submit(hub, "alice", "--gpus", "1", "--", sys.executable, TRAIN, "--steps", "30", "--backend", "python", cwd=tmp_path)
    assert job["kind"] == "job" and job["user"] == "alice" and job["name"] == "train.py"

    # `gpupool logs -f` follows the output until the job ends.
    follow = gpupool_cli("logs", "-f", job["id"], env=terminal_of(hub, "alice"), timeout=120)
    assert follow.returncode == 0, follow.stderr
    assert "done: 30 steps (started at step 0)" in follow.stdout

    assert state_of(hub, job["id"])["state"] == "completed"
    log = log_of(hub, "alice", job["id"])
    assert f"--- gpupool: {job['id']} started" in log
    assert "training on gpus=1 (devices 0)" in log or "training on gpus=1 (devices 1)" in log
    assert (tmp_path / f"train-{job['id']}.ckpt.json").exists()  # ran in the directory it was submitted from

    listed = gpupool_cli("ls", "-a", env=terminal_of(hub, "alice"))
    assert job["id"] in listed.stdout and "completed (0)" in listed.stdout

    # Another user may not read it.
    refused = gpupool_cli("logs", job["id"], env=terminal_of(hub, "carol"))
    assert refused.returncode == 1 and refused.stderr.startswith("gpupool: ")


def test_fifty_jobs_drain_within_fair_share_and_another_teams_job_is_not_stuck_behind_them(hub, tmp_path):
    alice = hub.client("alice")
    ids = [alice.submit(kind="job", gpus=1, command=["sleep", "1"], name=f"bulk-{i}", workdir=str(tmp_path))["id"]
           for i in range(50)]
    carol = submit(hub, "carol", "--gpus", "1", "--", "sleep", "1", cwd=tmp_path)

    # Carol's team is within its quota: her job starts long before alice's queue drains.
    wait_for(lambda: state_of(hub, carol["id"])["state"] in ("running", "completed"), 30, "carol's job to start")
    assert used_gpus(hub) <= 2

    def drained():
        assert used_gpus(hub) <= 2  # never more than the pool has, at any look
        states = [w["state"] for w in alice.workloads()["workloads"] if w["id"] in ids]
        return states.count("completed") == 50

    wait_for(drained, 300, "all 50 jobs completed", interval=1.0)
    assert state_of(hub, carol["id"])["state"] == "completed"
    # First come, first served would have started all 50 of alice's jobs before carol's.
    carol_started = state_of(hub, carol["id"])["started_at"]
    started_before = [w for w in alice.workloads()["workloads"] if w["id"] in ids and w["started_at"] < carol_started]
    assert len(started_before) < 25, f"carol's job waited behind {len(started_before)} of alice's"


def test_a_preempted_job_is_requeued_and_finishes_from_its_checkpoint(hub, tmp_path):
    # Two GPUs for vision: one within its quota, one borrowed from nlp.
    job = submit(hub, "alice", "--gpus", "2", "--", sys.executable, "-u", TRAIN, "--steps", "60", "--step-seconds", "0.1",
                 "--checkpoint-every", "1000", "--backend", "python", cwd=tmp_path)
    wait_for(lambda: "step 10/60" in log_of(hub, "alice", job["id"]), 60, "alice's job training")

    # Carol's team wants its guaranteed GPU back.
    carol = submit(hub, "carol", "--gpus", "1", "--", "sleep", "3", cwd=tmp_path)
    wait_for(lambda: state_of(hub, carol["id"])["state"] in ("running", "completed"), 60, "carol's job started")
    log = wait_for(lambda: (t := log_of(hub, "alice", job["id"])) and "checkpoint saved at step" in t and t, 30,
                   "alice's job checkpointed on SIGTERM")
    saved_step = int(log.split("checkpoint saved at step ")[1].split(";")[0])
    # The notice file told the script when it would be stopped, and why.
    assert "preemption notice: stopped in " in log and "reclaims its guaranteed GPUs" in log
    wait_for(lambda: state_of(hub, job["id"])["preemptions"] >= 1, 30, "alice's job requeued")
    assert_cards_within_allocations(hub)

    wait_for(lambda: state_of(hub, job["id"])["state"] == "completed", 120, "alice's job finished after requeue")
    log = log_of(hub, "alice", job["id"])
    assert log.count(f"--- gpupool: {job['id']} started") >= 2
    assert f"resumed from step {saved_step}" in log
    assert "done: 60 steps" in log and "(started at step 0)" not in log.split("resumed from step")[1]


def test_a_resized_job_restarts_with_its_new_gpu_count(hub, tmp_path):
    job = submit(hub, "alice", "--gpus", "2", "--min", "1", "--max", "2", "--", sys.executable, "-u", TRAIN, "--steps", "80",
                 "--step-seconds", "0.1", "--backend", "python", cwd=tmp_path)
    wait_for(lambda: "step 10/80" in log_of(hub, "alice", job["id"]), 60, "the job training on 2 GPUs")
    out = gpupool_cli("resize", job["id"], "1", env=terminal_of(hub, "alice"))
    assert out.returncode == 0, out.stderr

    log = wait_for(lambda: (t := log_of(hub, "alice", job["id"])) and "training on gpus=1" in t and t, 60,
                   "the job restarted on 1 GPU")
    after = log.split("checkpoint saved at step", 1)[1]
    assert "resumed from step" in after and "GPU count changed from 2 to 1" in after
    wait_for(lambda: state_of(hub, job["id"])["state"] == "completed", 120, "the resized job finished")
    assert "done: 80 steps" in log_of(hub, "alice", job["id"])


def test_queue_pool_and_usage_views_of_a_real_pool(hub):
    """gpupool queue / pool / usage (docs/cli.md) against the service: alice's 2-GPU job holds the
    node (1 borrowed from nlp's quota), carol's waits."""
    sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
    running = pool_admin(hub).submit(user="alice", kind="job", command=sleep, gpus=2)
    waiting = pool_admin(hub).submit(user="carol", kind="job", command=sleep, gpus=2)
    assert (running["state"], waiting["state"]) == ("running", "pending")
    env = terminal_of(hub, "carol")

    out = gpupool_cli("queue", "-o", "wide", env=env)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if waiting["id"] in line)
    assert line.split()[:6] == ["1", waiting["id"], "carol", "nlp", "job", "2"]
    reason = pool_admin(hub).workload(waiting["id"])["reason"]
    assert reason in line and ("unknown" in line or "(est.)" in line)

    out = gpupool_cli("pool", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("2 GPUs: 0 free, 2 used")
    assert any(line.split()[:5] == ["node-a", "A100-40GB", "2", "0", "2"] for line in out.stdout.splitlines())

    out = gpupool_cli("usage", env=terminal_of(hub, "alice"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("team vision: quota 1 GPUs; holds 2 now"), out.stdout
    assert "nlp" not in out.stdout  # a user sees their own teams' usage
