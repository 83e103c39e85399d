"""The environment a server starts with: the GPUs it holds, and nothing else."""

from __future__ import annotations

import datetime as dt

from spawner.gpu_choices import GpuRequest
from spawner.local import SimpleGpuLocalProcessSpawner
from spawner.pool_allocation import expected_start_text, format_expected_start


def spawner_holding(shares, real=False, **config):
    s = SimpleGpuLocalProcessSpawner(server_pool_url="http://hub.example/services/gpupool/", **config)
    s.workload_id = "w-7"
    s.gpu_request = GpuRequest(sum(sh["fraction"] for sh in shares))
    s.allocation = {"gpus": s.gpu_request.gpus, "shares": shares}
    s._gpu_uuids_real = {sh["gpu_uuid"]: real for sh in shares}
    return s


def share(index, fraction=1.0, memory=None, node="dgx1-1"):
    return {"node": node, "gpu_uuid": f"GPU-{node}-{index}", "index": index, "fraction": fraction, "memory_mib": memory}


def test_whole_simulated_gpus_are_named_by_index():
    env = spawner_holding([share(2), share(5)]).allocation_env()
    assert env["CUDA_VISIBLE_DEVICES"] == "2,5"
    assert env["GPUPOOL_GPUS"] == "2"
    assert env["GPUPOOL_WORKLOAD_ID"] == "w-7"
    assert env["GPUPOOL_URL"] == "http://hub.example/services/gpupool/"
    assert "GPUPOOL_GPU_FRACTION" not in env and "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE" not in env


def test_real_gpus_are_named_by_uuid_so_a_reordered_bus_cannot_swap_cards():
    env = spawner_holding([share(3)], real=True).allocation_env()
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-dgx1-1-3"


def test_a_fraction_records_its_share_and_gets_mps_limits_only_where_mps_runs():
    plain = spawner_holding([share(1, 0.25, memory=4096)]).allocation_env()
    assert plain["GPUPOOL_GPU_FRACTION"] == "0.25" and plain["GPUPOOL_GPU_MEMORY_MIB"] == "4096"
    assert plain["GPUPOOL_GPUS"] == "0.25"  # a number frameworks and scripts can read
    assert "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE" not in plain
    mps = spawner_holding([share(1, 0.25, memory=4096)], mps_enabled=True, mps_pipe_directory="/run/mps").allocation_env()
    assert mps["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "25"
    assert mps["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == "0=4096M"
    assert mps["CUDA_MPS_PIPE_DIRECTORY"] == "/run/mps"


def test_a_server_without_gpus_sees_no_cards():
    s = SimpleGpuLocalProcessSpawner()
    s.gpu_request = GpuRequest(0)
    env = s.allocation_env()
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["GPUPOOL_GPUS"] == "0"


def test_expected_start_is_said_in_words():
    now = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone.utc)
    assert format_expected_start("2026-11-25T10:12:00Z", now) == "in about 12 min (10:12 UTC)"
    assert format_expected_start("2026-11-25T10:00:10Z", now) == "any moment now (10:00 UTC)"
    assert format_expected_start(None, now) == ""


def test_the_spawn_page_labels_an_expected_start_as_an_estimate_with_its_basis():
    now = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone.utc)
    basis = "GPUs expected to free up when w-3 ends (median of team vision's last 9 one-GPU sessions)"
    known = {"expected_start": "2026-11-25T10:25:00Z", "expected_start_basis": basis}
    assert expected_start_text(known, now) == f"expected to start in about 25 min (10:25 UTC), an estimate ({basis})"
    unknown = {"expected_start": None, "expected_start_basis": "not known: the GPUs it waits for are held by work with no time limit"}
    assert expected_start_text(unknown, now) == "start time not known: the GPUs it waits for are held by work with no time limit"
    assert expected_start_text({}, now) == ""
