"""`gpupool queue`, `gpupool pool`, `gpupool usage` and `-o wide`: what Slurm users look for.

The formatting is checked offline on answers shaped like the API's; the commands run against a
real service in tests/jobs/test_batch_jobs.py (test_queue_pool_and_usage_views_of_a_real_pool).
"""

from __future__ import annotations

from hub_ext.cli.jobs import format_table
from hub_ext.cli.pool import format_pool
from hub_ext.cli.queue import format_queue
from hub_ext.cli.usage import format_usage

NOW = 1_764_064_800.0  # 2025-11-25T10:00:00Z
LONG_REASON = ("team vision is at its quota of 12 GPUs (12 in use; this needs 4) and no GPUs are idle to borrow; "
               "no other team's over-quota work can be preempted to make room")


def queued(position, wid, user, team, gpus, reason, expected=None, submitted="2025-11-25T09:50:00Z"):
    return {"id": wid, "user": user, "team": team, "kind": "job", "gpus": gpus, "state": "pending", "queue_position": position,
            "reason": reason, "expected_start": expected, "submitted_at": submitted}


def test_queue_shows_position_user_team_gpus_wait_estimate_and_reason():
    entries = [
        queued(1, "w-7", "alice", "vision", 4, LONG_REASON, expected="2025-11-25T10:12:00Z"),
        queued(2, "w-9", "carol", "nlp", 0.5, "needs 0.5 of a GPU", expected=None, submitted="2025-11-25T09:59:00Z"),
    ]
    lines = format_queue(entries, now=NOW).splitlines()
    assert lines[0].split()[:6] == ["POS", "ID", "USER", "TEAM", "KIND", "GPUS"]
    assert lines[1].split()[:6] == ["1", "w-7", "alice", "vision", "job", "4"]
    assert "10m" in lines[1] and "in 12m (est.)" in lines[1]
    assert "unknown" in lines[2] and "0.5" in lines[2]
    # The table cuts long reasons; -o wide does not.
    assert LONG_REASON not in lines[1] and "…" in lines[1]
    assert LONG_REASON in format_queue(entries, now=NOW, wide=True).splitlines()[1]
    assert format_queue([], now=NOW).startswith("the queue is empty")


def test_ls_wide_does_not_cut_reasons_or_names():
    w = {"id": "w-3", "name": "a-very-long-experiment-name-for-the-sweep", "kind": "job", "user": "alice", "team": "vision",
         "gpus": 4, "state": "pending", "queue_position": 1, "reason": LONG_REASON, "submitted_at": "2025-11-25T09:59:00Z"}
    assert LONG_REASON not in format_table([w], now=NOW)
    wide = format_table([w], now=NOW, wide=True)
    assert LONG_REASON in wide and "a-very-long-experiment-name-for-the-sweep" in wide


def card(node, index, model, used=0.0, holders=(), idle=None, simulated=False):
    return {"node": node, "index": index, "model": model, "used_fraction": used, "holders": list(holders),
            "idle_seconds": idle, "simulated": simulated}


def test_pool_shows_nodes_and_models_with_free_used_and_idle():
    held = [{"workload_id": "w-1", "team": "vision", "fraction": 1.0}]
    pool = {"nodes": [
        {"name": "dgx1-1", "schedulable": True, "last_reading_at": "2025-11-25T09:59:58Z", "gpus": [
            card("dgx1-1", 0, "V100-16GB", 1.0, held, idle=None), card("dgx1-1", 1, "V100-16GB", 1.0, held, idle=600),
            card("dgx1-1", 2, "V100-16GB", 0.5, held, idle=None), card("dgx1-1", 3, "V100-16GB")]},
        {"name": "a100-1", "schedulable": False, "last_reading_at": None, "gpus": [card("a100-1", 0, "A100-80GB")]},
    ]}
    out = format_pool(pool)
    assert out.splitlines()[0] == "5 GPUs: 2.5 free, 2.5 used, 1 held but idle"
    node_line = next(line for line in out.splitlines() if line.startswith("dgx1-1"))
    assert node_line.split()[:6] == ["dgx1-1", "V100-16GB", "4", "1.5", "2.5", "1"]
    a100 = next(line for line in out.splitlines() if line.startswith("a100-1"))
    assert "unschedulable" in a100 and "no reading" in a100
    model = next(line for line in out.splitlines() if line.startswith("V100-16GB"))
    assert model.split() == ["V100-16GB", "1", "4", "1.5", "2.5", "1"]


def test_usage_draws_my_team_against_its_quota_hour_by_hour():
    times = [f"2025-11-24T{h:02d}:{m:02d}:00Z" for h in range(10, 34) for m in (0, 15, 30, 45) if h < 24] + \
            [f"2025-11-25T{h - 24:02d}:{m:02d}:00Z" for h in range(24, 34) for m in (0, 15, 30, 45)]
    values = [0.0] * 92 + [6.0, 6.0, 6.0, 6.0]  # the last hour: 6 GPUs
    history = {"window": "day", "bucket_seconds": 900, "times": times, "teams": {"vision": values}, "now": {"vision": 6.0}}
    out = format_usage("vision", 4.0, history)
    lines = out.splitlines()
    assert lines[0].startswith("team vision: quota 4 GPUs; holds 6 now; last 24 hours: average 0.25")
    assert "peak 6.00" in lines[0]
    hours = [line for line in lines[2:] if line.strip()]
    assert len(hours) == 24
    last = hours[-1]
    assert "09:00 UTC" in last and "6.00" in last and "|" in last and last.count("#") == 40
    assert hours[0].rstrip().endswith("|")  # nothing held then: only the quota mark
