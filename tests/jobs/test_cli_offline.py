"""What `gpupool` prints and refuses before any request reaches the pool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hub_ext.cli.jobs import format_table

REPO = Path(__file__).resolve().parents[2]


def gpupool(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("GPUPOOL_URL", "JUPYTERHUB_API_TOKEN")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "hub_ext.cli.main", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_table_shows_where_running_work_is_and_why_pending_work_waits():
    now = 1_764_064_800.0  # 2025-11-25T10:00:00Z
    workloads = [
        {"id": "w-12", "name": "train.py", "kind": "job", "user": "alice", "team": "vision", "gpus": 2, "state": "running",
         "allocation": {"gpus": 2, "shares": [{"node": "dgx1-1", "index": 0}, {"node": "dgx1-1", "index": 1}]},
         "submitted_at": "2025-11-25T09:57:00Z", "preemptions": 1, "attained_gpu_s": 27 * 3600 + 900},
        {"id": "w-13", "name": "sweep", "kind": "job", "user": "alice", "team": "vision", "gpus": 4, "min_gpus": 2,
         "max_gpus": 8, "state": "pending", "queue_position": 2, "reason": "team vision is at its quota of 12",
         "submitted_at": "2025-11-25T09:59:30Z", "attained_gpu_s": 0.0},
        {"id": "w-3", "name": "old", "kind": "job", "user": "alice", "team": "vision", "gpus": 1, "state": "failed",
         "exit_code": 3, "submitted_at": "2025-11-24T09:00:00Z"},
    ]
    lines = format_table(workloads, now=now).splitlines()
    assert lines[0].split() == ["ID", "NAME", "KIND", "USER", "TEAM", "GPUS", "GPU-H", "STATE", "WHERE", "/", "WHY", "AGE", "EXPECTED"]
    assert "dgx1-1:0,1 (preempted 1x)" in lines[1] and lines[1].rstrip().endswith("3m")
    assert lines[1].split()[6] == "27.25"  # GPU-hours held so far, over all its runs
    assert "4 [2-8]" in lines[2] and "pending #2" in lines[2] and "team vision is at its quota of 12" in lines[2]
    assert lines[2].split()[7] == "0" and lines[3].split()[5:7] == ["1", "-"]  # never ran; a pool that does not say
    assert lines[2].rstrip().endswith("unknown")  # no expected start: said so, not invented
    assert "failed (3)" in lines[3] and lines[3].rstrip().endswith("25h")
    assert format_table([]).startswith("no workloads")


def test_expected_column_is_labelled_an_estimate():
    now = 1_764_064_800.0  # 2025-11-25T10:00:00Z
    w = {"id": "w-13", "kind": "job", "gpus": 1, "state": "pending", "reason": "waits", "submitted_at": "2025-11-25T09:59:30Z"}
    cases = [("2025-11-25T10:25:00Z", "in ~25m (est.)"), ("2025-11-25T13:00:00Z", "in ~3h (est.)"), ("2025-11-25T10:00:20Z", "now (est.)")]
    for at, text in cases:
        assert format_table([{**w, "expected_start": at}], now=now).splitlines()[1].rstrip().endswith(text)


def test_submit_time_limit_is_parsed_before_asking_the_pool():
    out = gpupool("submit", "--gpus", "1", "--time", "90", "--", "true")
    assert out.returncode == 2 and "say the unit" in out.stderr
    out = gpupool("submit", "--gpus", "1", "--time", "soon", "--", "true")
    assert out.returncode == 2 and "not a duration" in out.stderr
    from hub_ext.cli.jobs import parse_duration

    assert [parse_duration(t) for t in ("2h", "45m", "1d", "1h30m", "1:30:00", "30:00")] == [7200, 2700, 86400, 5400, 5400, 1800]


def test_a_workload_preempted_with_notice_says_when_it_stops():
    now = 1_764_064_800.0  # 2025-11-25T10:00:00Z
    w = {"id": "w-12", "name": "train.py", "kind": "job", "user": "alice", "team": "vision", "gpus": 1, "state": "running",
         "allocation": {"gpus": 1, "shares": [{"node": "dgx1-1", "index": 0}]}, "submitted_at": "2025-11-25T09:57:00Z",
         "preempt_at": "2025-11-25T10:02:00Z"}
    assert "preempting in 2 min, on dgx1-1:0" in format_table([w], now=now)
    assert "preempting in 45 s" in format_table([{**w, "preempt_at": "2025-11-25T10:00:45Z"}], now=now)


def test_submit_without_a_command_says_how():
    out = gpupool("submit", "--gpus", "1", env_extra={"GPUPOOL_URL": "http://127.0.0.1:9/"})
    assert out.returncode == 2
    assert "give the command to run after --" in out.stderr


def test_submit_refuses_a_nonsense_gpu_count_before_asking_the_pool():
    out = gpupool("submit", "--gpus", "1.5", "--", "true")
    assert out.returncode == 2 and "ask for whole GPUs" in out.stderr
    out = gpupool("submit", "--gpus", "2", "--min", "1", "--", "true", env_extra={"GPUPOOL_URL": "http://127.0.0.1:9/"})
    assert out.returncode == 2 and "needs both --min and --max" in out.stderr


def test_an_unreachable_pool_is_reported_not_a_traceback():
    env = {"GPUPOOL_URL": "http://127.0.0.1:9/services/gpupool/", "JUPYTERHUB_API_TOKEN": "x", "GPUPOOL_RETRY_SECONDS": "0"}
    out = gpupool("ls", env_extra=env)
    assert out.returncode == 1
    assert out.stderr.startswith("gpupool: cannot reach the pool service at http://127.0.0.1:9/services/gpupool/")
    assert "the pool is restarting" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_pool_address_says_what_to_set():
    out = gpupool("ls")
    assert out.returncode == 1 and "set GPUPOOL_URL" in out.stderr
