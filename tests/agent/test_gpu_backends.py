"""The GPU backends: the simulated one plays its script; NVML fails clearly without a driver."""

from __future__ import annotations

import json
import types

import pytest

from hub_ext.gpus import GpuBackendUnavailable, open_backend
from hub_ext.gpus.nvml import merge_processes
from hub_ext.gpus.simulated import ScriptError, SimulatedBackend


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def nvml_available() -> bool:
    try:
        open_backend("nvml").close()
        return True
    except GpuBackendUnavailable:
        return False


HAS_NVML = nvml_available()


def test_simulated_utilisation_follows_the_script_over_time():
    clock = Clock()
    backend = SimulatedBackend.from_script(
        {"gpus": 2, "utilization": {"0": [[0, 0], [600, 85], [900, 3]], "*": [[0, 40]]}, "memory_used_mib": {"0": [[600, 12000]]}},
        node="n1",
        clock=clock,
    )
    seen = []
    for t in (0, 599, 600, 899, 900, 5000):
        clock.t = 1000.0 + t
        g0, g1 = backend.readings()
        seen.append((t, g0.utilization, g0.memory_used_mib, g1.utilization))
    assert seen == [(0, 0.0, 0, 40.0), (599, 0.0, 0, 40.0), (600, 85.0, 12000, 40.0), (899, 85.0, 12000, 40.0), (900, 3.0, 12000, 40.0), (5000, 3.0, 12000, 40.0)]
    assert [g.uuid for g in backend.list_gpus()] == ["GPU-sim-n1-0", "GPU-sim-n1-1"]
    assert backend.simulated


def test_simulated_script_repeats():
    clock = Clock()
    backend = SimulatedBackend.from_script({"gpus": 1, "utilization": {"0": [[0, 0], [60, 90]]}, "repeat_s": 100}, clock=clock)
    utils = []
    for t in (10, 70, 110, 170):
        clock.t = 1000.0 + t
        utils.append(backend.readings()[0].utilization)
    assert utils == [0.0, 90.0, 0.0, 90.0]


def test_gpu_not_in_script_has_no_figure_rather_than_zero():
    clock = Clock()
    backend = SimulatedBackend.from_script({"gpus": 2, "utilization": {"0": [[30, 10]]}}, clock=clock)
    g0, g1 = backend.readings()
    assert g0.utilization is None  # before its first step
    assert g1.utilization is None  # not scripted at all


def test_simulated_gpus_can_be_named_by_uuid_and_given_by_the_service():
    from hub_ext.gpus import GpuInfo

    declared = (GpuInfo(0, "GPU-aaa", "V100", 32768), GpuInfo(1, "GPU-bbb", "V100", 32768))
    backend = SimulatedBackend.from_script({"utilization": {"GPU-bbb": [[0, 77]]}, "processes": {"GPU-bbb": [[0, [4242]]]}}, gpus=declared, clock=Clock())
    g0, g1 = backend.readings()
    assert (g0.uuid, g0.utilization, g0.processes) == ("GPU-aaa", None, ())
    assert (g1.uuid, g1.utilization, [p.pid for p in g1.processes]) == ("GPU-bbb", 77.0, [4242])


@pytest.mark.parametrize(
    "script, words",
    [
        ({"gpus": 1, "utilization": {"3": [[0, 5]]}}, "no GPU '3'"),
        ({"gpus": 1, "utilization": {"0": [[0, 150]]}}, "percentage"),
        ({"gpus": 1, "utilization": {"0": [[10, 5], [5, 0]]}}, "increasing"),
        ({"gpus": 1, "utilization": {"0": [[-1, 5]]}}, "seconds >= 0"),
        ({"gpus": 1, "utilization": {"0": [5, 0]}}, "[from_seconds, value]"),
        ({"gpus": 1, "repeat_s": 0}, "repeat_s"),
        ({"gpus": 1, "utilisation": {}}, "unknown keys"),
        ({"gpus": 1, "processes": {"0": [[0, ["x"]]]}}, "pids"),
    ],
)
def test_bad_scripts_are_refused_with_the_bad_part_named(script, words):
    with pytest.raises(ScriptError, match=None) as e:
        SimulatedBackend.from_script(script, clock=Clock())
    assert words in str(e.value)


def test_script_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "gpus.json"
    bad.write_text("{not json")
    with pytest.raises(ScriptError, match="gpus.json"):
        SimulatedBackend.from_file(bad)
    with pytest.raises(ScriptError, match="cannot read"):
        SimulatedBackend.from_file(tmp_path / "missing.json")
    good = tmp_path / "ok.json"
    good.write_text(json.dumps({"gpus": 3, "utilization": {"*": [[0, 50]]}}))
    assert [r.utilization for r in open_backend("simulated", str(good)).readings()] == [50.0] * 3


def test_simulated_backend_needs_a_script():
    with pytest.raises(GpuBackendUnavailable, match="--script"):
        open_backend("simulated")


def test_unknown_backend_is_refused():
    with pytest.raises(GpuBackendUnavailable, match="nvml, simulated"):
        open_backend("rocm")


def test_a_process_listed_twice_by_nvml_counts_once():
    compute = [types.SimpleNamespace(pid=7, usedGpuMemory=2 * 1024**3), types.SimpleNamespace(pid=9, usedGpuMemory=None)]
    graphics = [types.SimpleNamespace(pid=7, usedGpuMemory=2 * 1024**3), types.SimpleNamespace(pid=9, usedGpuMemory=512 * 1024**2)]
    assert [(p.pid, p.used_memory_mib) for p in merge_processes(compute, graphics)] == [(7, 2048), (9, 512)]


@pytest.mark.skipif(HAS_NVML, reason="this machine has an NVIDIA driver")
def test_nvml_without_a_driver_says_so():
    with pytest.raises(GpuBackendUnavailable, match="no NVIDIA driver") as e:
        open_backend("nvml")
    assert type(e.value.__cause__).__name__ == "NVMLError_LibraryNotFound"


@pytest.mark.skipif(not HAS_NVML, reason="needs an NVIDIA GPU and driver (NVML); none on this machine")
def test_nvml_reads_every_card():
    with open_backend("nvml") as backend:
        gpus = backend.list_gpus()
        readings = backend.readings()
    assert gpus and [r.uuid for r in readings] == [g.uuid for g in gpus]
    for r in readings:
        assert r.uuid.startswith(("GPU-", "MIG-")) and r.memory_total_mib > 0
        assert r.utilization is None or 0 <= r.utilization <= 100
        assert r.memory_used_mib is None or 0 <= r.memory_used_mib <= r.memory_total_mib
