"""Our core as a Pollux-simulator policy (benchmarks/pollux_adapter.py): the mapping, end to end on a tiny workload.

Needs ../shared/pollux-simulator and the simulator's own virtual environment
(bench_pollux.make_venv: made once under .gpupool/bench, from PyPI); skips,
saying why, where either cannot be had.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess

import pytest

from .helpers import REPO

SIMULATOR = os.path.join(os.path.dirname(REPO), "shared", "pollux-simulator")
# Four jobs of workload-1 that never contend for GPUs (22 of 64 at most).
WORKLOAD = """name,time,application,num_replicas,batch_size
cifar10-0,107,cifar10,6,2048
ncf-2,135,ncf,1,32768
cifar10-4,356,cifar10,16,4096
ncf-5,839,ncf,1,32768
"""


def _bench():
    spec = importlib.util.spec_from_file_location("bench_pollux", os.path.join(REPO, "benchmarks", "bench_pollux.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sim():
    if not os.path.isdir(SIMULATOR):
        pytest.skip(f"the Pollux simulator ({SIMULATOR}) is absent: it needs ../shared/pollux-simulator beside the checkout")
    bench = _bench()
    try:
        bench.check_simulator(SIMULATOR)
        python = bench.make_venv()
    except bench.SetupError as e:
        pytest.skip(f"the simulator's environment cannot be made here: {e}")
    return bench, python


def test_alone_our_rigid_and_elastic_jobs_finish_as_the_simulators_tiresias_runs_them(sim, tmp_path):
    bench, python = sim
    path = tmp_path / "tiny.csv"
    path.write_text(WORKLOAD)
    # The simulator's own TunedJobs baseline on the same jobs: with no contention every policy
    # runs each job at its num_replicas and batch size, so the JCTs must agree exactly.
    out = subprocess.run([python, "simulator.py", "--policy", "tiresias", str(path)], cwd=SIMULATOR, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    tiresias = float([line for line in out.stdout.splitlines() if line.startswith("Average JCT:")][-1].split(":")[1])
    submits = bench.submit_times(str(path))
    for mode in ("rigid", "elastic"):
        r = bench.run_one(python, SIMULATOR, str(path), mode)
        assert sorted(r["jcts"]) == sorted(submits), mode
        fig = bench.figures(r["jcts"], submits)
        assert fig["mean_jct_s"] == pytest.approx(tiresias, abs=0.1), mode
        assert r["preemptions"] == 0 and r["resizes"] == 0, mode
        assert r["config"]["elastic"] is (mode == "elastic")
