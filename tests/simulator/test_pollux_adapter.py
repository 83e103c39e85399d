"""Our core as a Pollux-simulator policy (benchmarks/pollux_adapter.py): the mapping, end to end on a tiny workload.

Needs ../shared/pollux-simulator and the simulator's own virtual environment
(bench_pollux.make_venv: made once under .gpupool/bench, from PyPI); skips,
saying why, where either cannot be had.
"""

from __future__ import annotations

import ast
import importlib.util
import json
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


# --- the oracle reference (benchmarks/pollux_oracle.py: knows remaining work; a bound, not a policy) ---

# Four 16-GPU cifar10 jobs fill the 64 GPUs; a one-GPU ncf job (about a minute of work) arrives while they run.
CROWDED = """name,time,application,num_replicas,batch_size
cifar10-0,0,cifar10,16,4096
cifar10-1,1,cifar10,16,4096
cifar10-2,2,cifar10,16,4096
cifar10-3,3,cifar10,16,4096
ncf-4,150,ncf,1,32768
"""

ORACLE = os.path.join(REPO, "benchmarks", "pollux_oracle.py")


def test_the_oracle_runs_uncontended_jobs_as_the_simulator_does_and_knows_their_remaining_time(sim, tmp_path):
    bench, python = sim
    path = tmp_path / "tiny.csv"
    path.write_text(WORKLOAD)
    submits = bench.submit_times(str(path))
    alone = {}
    for mode in ("rigid", "elastic"):
        r = bench.run_one(python, SIMULATOR, str(path), mode, script=bench.ORACLE)
        assert r["policy"] == "oracle" and sorted(r["jcts"]) == sorted(submits), mode
        assert r["preemptions"] == 0 and r["resizes"] == 0, mode
        alone[mode] = r["jcts"]
    assert alone["rigid"] == alone["elastic"]
    # What the oracle knows at submission (remaining run time on the asked GPUs, packed) is what the job then
    # takes: its JCT less the wait for the next 60 s step and the simulator's 30 s start pause.
    probe = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import pollux_oracle as o, pandas;"
        "sim = o.pollux_adapter.load(sys.argv[2]);"
        "c = o.pollux_adapter.make_cluster(sim, pandas.read_csv(sys.argv[3]), None); w = o.RemainingWork();"
        "print(json.dumps({j.name: w.seconds(j, o.packed(j.target_num_replicas)) for j in c.jobs}))"
    )
    out = subprocess.run([python, "-c", probe, os.path.dirname(ORACLE), SIMULATOR, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    known = json.loads(out.stdout.strip().splitlines()[-1])
    for name, jct in alone["rigid"].items():
        ran = jct - (-submits[name] % 60) - 30
        assert known[name] == pytest.approx(ran, rel=0.03, abs=3), name


def test_the_oracle_lets_a_short_job_overtake_a_full_pool_where_tiresias_makes_it_wait(sim, tmp_path):
    bench, python = sim
    path = tmp_path / "crowded.csv"
    path.write_text(CROWDED)
    out = subprocess.run([python, "simulator.py", "--policy", "tiresias", str(path)], cwd=SIMULATOR, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    tiresias = ast.literal_eval([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    assert tiresias["ncf-4"] > 300  # waits for a cifar10 job to finish
    for mode in ("rigid", "elastic"):
        r = bench.run_one(python, SIMULATOR, str(path), mode, script=bench.ORACLE)
        assert len(r["jcts"]) == 5, mode
        assert r["jcts"]["ncf-4"] < 150, (mode, r["jcts"])  # starts at the next step, beside or instead of a long job
        if mode == "rigid":
            assert r["preemptions"] == 1 and r["resizes"] == 0
        else:
            assert r["preemptions"] == 0 and r["resizes"] >= 1  # one cifar10 job gives up a GPU, then grows back


# --- run-time estimates fed as the live service feeds them (pollux_adapter.GpupoolPolicy, no simulator needed) ---


def _adapter():
    spec = importlib.util.spec_from_file_location("pollux_adapter", os.path.join(REPO, "benchmarks", "pollux_adapter.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("by,basis", [("application", "median of cifar10's last 3 four-GPU jobs"), ("shape", "median of team pool's last 4 four-GPU jobs")])
def test_the_adapter_learns_estimates_from_ended_jobs_only(by, basis):
    from types import SimpleNamespace

    from hub_ext.scheduler import Workload, WorkloadKind

    ad = _adapter()
    apps = {"cifar10-1": "cifar10", "cifar10-2": "cifar10", "cifar10-3": "cifar10", "bert-4": "bert", "cifar10-9": "cifar10"}
    seen = []
    policy = ad.GpupoolPolicy("elastic", lambda: 5000.0, {"las_on_estimates": True}, by, apps)
    # An elastic job's run time is its attained GPU-seconds over its asked GPUs: 4 GPUs asked, 1,200 GPU-s held: 300 s.
    for name, attained in (("cifar10-1", 1200.0), ("cifar10-2", 2000.0), ("cifar10-3", 1600.0), ("bert-4", 400.0)):
        policy.ended(name, attained, 4, 100.0)
    w = Workload("cifar10-9", "cifar10-9", ad.TEAM, WorkloadKind.JOB, 4.0, 10.0, min_gpus=1, max_gpus=4)
    e = policy._estimate_of(w)
    assert e.basis == basis
    assert e.seconds == (400.0 if by == "application" else 300.0)  # cifar10's median (300, 400, 500); with bert's 100 s, the pool's
    # The core gets it on the snapshot: pending work carries the estimate, never the simulator's remaining work.
    import hub_ext.scheduler as core

    real = core.schedule
    core.schedule = lambda snap: seen.append(snap) or real(snap)
    try:
        node = SimpleNamespace(resources={"nvidia.com/gpu": 4})
        info = SimpleNamespace(max_replicas=4, creation_timestamp=10.0, attained_service=0.0)
        policy.optimize({"cifar10-9": info}, {0: node}, {}, None)
    finally:
        core.schedule = real
    (pending,) = seen[0].pending
    assert pending.estimate_s == e.seconds and pending.estimate_basis == basis


def test_without_a_switch_that_uses_them_the_adapter_feeds_no_estimates():
    ad = _adapter()
    policy = ad.GpupoolPolicy("elastic", lambda: 0.0, {}, "application", {})
    assert policy.estimator is None
    policy.ended("cifar10-1", 1200.0, 4, 100.0)
    assert policy.past_runs == 0


def test_estimator_options_reach_the_estimate_of_a_job_that_has_run():
    from hub_ext.scheduler import Workload, WorkloadKind

    ad = _adapter()
    apps = {"cifar10-1": "cifar10", "cifar10-2": "cifar10", "cifar10-3": "cifar10", "cifar10-9": "cifar10"}
    # cifar10's past runs at 4 GPUs: 300, 400, 500 s; cifar10-9 has run 450 s at its ask (1,800 GPU-s on 4 asked).
    w = Workload("cifar10-9", "cifar10-9", ad.TEAM, WorkloadKind.JOB, 4.0, 10.0, min_gpus=1, max_gpus=4, attained_gpu_s=1800.0)
    for options, seconds in (({}, 400.0), ({"given_run": "mean", "beyond": "overrun"}, 500.0)):
        policy = ad.GpupoolPolicy("elastic", lambda: 5000.0, {"las_on_estimates": True}, "application", apps, 1, options)
        for name, attained in (("cifar10-1", 1200.0), ("cifar10-2", 2000.0), ("cifar10-3", 1600.0)):
            policy.ended(name, attained, 4, 100.0)
        assert policy._estimate_of(w).seconds == seconds, options
