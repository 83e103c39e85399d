"""Processes on a GPU are attributed to workloads from their (or an ancestor's) environment,
or from the allocation when they cannot be inspected."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from hub_ext.agent import NodeAgent, attribute, holders_by_gpu, workload_of_process
from hub_ext.gpus import GpuInfo, GpuProcess, GpuReading
from hub_ext.gpus.simulated import SimulatedBackend

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs a Linux /proc")


@pytest.fixture
def session_tree():
    """A 'session' process with GPUPOOL_WORKLOAD_ID, whose child runs with an empty environment
    (as a kernel started by a tool that cleans its environment would)."""
    code = "import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], env={}); print(c.pid, flush=True); time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, GPUPOOL_WORKLOAD_ID="w-41"), stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    yield parent.pid, child_pid
    os.kill(child_pid, 9)
    parent.kill()
    parent.wait()


def test_workload_found_in_the_process_environment(session_tree):
    parent, _ = session_tree
    assert workload_of_process(parent) == "w-41"


def test_workload_found_through_the_parent_when_the_child_dropped_its_environment(session_tree):
    _, child = session_tree
    with open(f"/proc/{child}/environ", "rb") as f:
        assert b"GPUPOOL_WORKLOAD_ID" not in f.read()
    assert workload_of_process(child) == "w-41"


def test_a_process_outside_any_workload_has_none():
    assert os.environ.get("GPUPOOL_WORKLOAD_ID") is None
    assert workload_of_process(os.getpid()) is None


def test_a_vanished_process_has_none():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    time.sleep(0.05)
    assert workload_of_process(p.pid) is None


def reading(*pids):
    return GpuReading(0, "GPU-x", "m", 100, 0, 0.0, tuple(GpuProcess(p, None) for p in pids))


def test_uninspectable_process_on_a_card_with_one_holder_belongs_to_that_holder(session_tree, tmp_path):
    parent, _ = session_tree
    empty_proc = tmp_path  # nothing to read: as for a process in another PID namespace
    by_env = attribute(reading(parent), ("w-99",))
    by_allocation = attribute(reading(parent), ("w-99",), proc_root=str(empty_proc))
    shared = attribute(reading(parent), ("w-1", "w-2"), proc_root=str(empty_proc))
    assert (by_env[0]["workload_id"], by_env[0]["attributed_by"]) == ("w-41", "environment")
    assert (by_allocation[0]["workload_id"], by_allocation[0]["attributed_by"]) == ("w-99", "allocation")
    assert (shared[0]["workload_id"], shared[0]["attributed_by"]) == (None, None)


def test_holders_are_read_from_the_pool_api_shape():
    pool = {
        "nodes": [
            {"name": "n1", "gpus": [{"uuid": "GPU-a", "index": 0, "holders": [{"workload_id": "w-1"}]}, {"uuid": "GPU-b", "index": 1, "holders": []}]},
            {"name": "n2", "gpus": [{"uuid": "GPU-c", "index": 0, "holders": [{"workload_id": "w-2"}]}]},
        ]
    }
    assert holders_by_gpu(pool, "n1") == {"GPU-a": ("w-1",), "GPU-b": ()}


def test_agent_payload_carries_readings_and_attributed_processes(session_tree):
    parent, child = session_tree
    backend = SimulatedBackend(
        (GpuInfo(0, "GPU-a", "V100", 32768), GpuInfo(1, "GPU-b", "V100", 32768)),
        utilization={"*": [[0, 37]]},
        processes={"GPU-a": [[0, [child]]]},
    )
    payload = NodeAgent(backend, "n1").collect()
    assert payload["node"] == "n1" and payload["simulated"] is True
    a, b = payload["gpus"]
    assert (a["uuid"], a["utilization"], a["memory_total_mib"]) == ("GPU-a", 37.0, 32768)
    assert a["processes"] == [{"pid": child, "used_memory_mib": None, "workload_id": "w-41", "attributed_by": "environment"}]
    assert b["processes"] == []
