"""Batch jobs as local processes: environment, logs, SIGTERM then kill, and finding jobs again after a restart."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from hub_ext.service.runners.base import JobLaunch
from hub_ext.service.runners.local import LocalRunner

CHECKPOINTS_ON_TERM = """
import signal, sys, time
def term(*_):
    print("checkpoint written", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("training", flush=True)
while True:
    time.sleep(0.1)
"""

IGNORES_TERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("stubborn", flush=True)
while True:
    time.sleep(0.1)
"""


def launch(code: str, wid: str = "w-1", **kw) -> JobLaunch:
    return JobLaunch(
        workload_id=wid,
        user="alice",
        command=(sys.executable, "-c", code),
        gpus_by_node={"node-a": ("2", "3")},
        gpu_count=2,
        env={"GPUPOOL_WORKLOAD_ID": wid, "GPUPOOL_GPUS": "2"},
        **kw,
    )


async def wait_for_text(runner: LocalRunner, wid: str, text: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(runner.log_path_for(wid)) as f:
            log = f.read()
        if text in log:
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in the log")


async def test_job_sees_its_gpus_and_not_the_service_token(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "service-secret")
    runner = LocalRunner(state_dir=str(tmp_path))
    code = "import os; print(os.environ['CUDA_VISIBLE_DEVICES'], os.environ['GPUPOOL_GPUS'], os.environ.get('JUPYTERHUB_API_TOKEN'))"
    handle = await runner.start(launch(code))
    status = await runner.wait(handle)
    assert (status.running, status.exit_code) == (False, 0)
    log = open(runner.log_path_for("w-1")).read()
    assert "2,3 2 None" in log, log
    assert "service-secret" not in log


async def test_stop_gives_the_job_its_grace_period_to_checkpoint(tmp_path):
    runner = LocalRunner(state_dir=str(tmp_path))
    handle = await runner.start(launch(CHECKPOINTS_ON_TERM))
    await wait_for_text(runner, "w-1", "training")
    await runner.stop(handle, grace_seconds=10)
    status = await runner.status(handle)
    assert (status.running, status.exit_code) == (False, 0)
    assert "checkpoint written" in open(runner.log_path_for("w-1")).read()


async def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    runner = LocalRunner(state_dir=str(tmp_path))
    handle = await runner.start(launch(IGNORES_TERM))
    await wait_for_text(runner, "w-1", "stubborn")
    started = time.monotonic()
    await runner.stop(handle, grace_seconds=1)
    assert time.monotonic() - started >= 1, "killed before its grace period was over"
    status = await runner.status(handle)
    assert not status.running
    assert await runner.find("w-1") == []


async def test_a_new_runner_finds_running_jobs_and_reads_how_they_ended(tmp_path):
    first = LocalRunner(state_dir=str(tmp_path))
    handle = await first.start(launch(CHECKPOINTS_ON_TERM, wid="w-7"))
    await wait_for_text(first, "w-7", "training")
    # A restarted service: a new runner, not the job's parent.
    second = LocalRunner(state_dir=str(tmp_path))
    assert await second.find("w-7") == [handle]
    assert (await second.status(handle)).running
    await second.stop(handle, grace_seconds=10)
    await first.wait(handle)  # reap the child of the "old service"
    status = await second.status(handle)
    assert (status.running, status.exit_code) == (False, 0)
    assert await second.find("w-7") == []


async def test_exit_code_of_a_job_reaches_a_runner_that_did_not_start_it(tmp_path):
    first = LocalRunner(state_dir=str(tmp_path))
    handle = await first.start(launch("raise SystemExit(7)", wid="w-8"))
    await first.wait(handle)
    status = await LocalRunner(state_dir=str(tmp_path)).status(handle)
    assert (status.running, status.exit_code) == (False, 7)


async def test_a_missing_command_fails_with_127(tmp_path):
    runner = LocalRunner(state_dir=str(tmp_path))
    handle = await runner.start(JobLaunch("w-9", "alice", ("no-such-program-here",), {"n": ("0",)}, 1))
    status = await runner.wait(handle)
    assert status.exit_code == 127
    assert "cannot run" in open(runner.log_path_for("w-9")).read()


async def test_an_allocation_across_nodes_is_refused(tmp_path):
    runner = LocalRunner(state_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="spans nodes"):
        await runner.start(JobLaunch("w-10", "alice", ("true",), {"a": ("0",), "b": ("0",)}, 2))
    assert not os.path.exists(runner.log_path_for("w-10"))


PRINTS_MPS = """
import os
print("mps:", os.environ.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"), os.environ.get("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"),
      os.environ.get("CUDA_MPS_PIPE_DIRECTORY"), flush=True)
"""


@pytest.mark.parametrize("daemon,setting,expected", [
    (True, "auto", "mps: 25 0=4096M PIPE"),
    (False, "auto", "mps: None None None"),
    (True, "off", "mps: None None None"),
])
async def test_a_job_on_a_fraction_gets_the_mps_limits_where_a_daemon_runs(tmp_path, monkeypatch, daemon, setting, expected):
    pipes = tmp_path / "mps-pipes"
    pipes.mkdir()
    if daemon:
        (pipes / "control").write_text("")  # what nvidia-cuda-mps-control -d creates
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    runner = LocalRunner(state_dir=str(tmp_path / "state"), mps=setting, mps_pipe_directory=str(pipes))
    quarter = JobLaunch(
        workload_id="w-7", user="alice", command=(sys.executable, "-c", PRINTS_MPS), gpus_by_node={"node-a": ("1",)},
        gpu_count=0.25, env={"GPUPOOL_WORKLOAD_ID": "w-7", "GPUPOOL_GPUS": "0.25", "GPUPOOL_GPU_MEMORY_MIB": "4096"},
    )
    handle = await runner.start(quarter)
    await runner.wait(handle)
    log = await wait_for_text(runner, "w-7", "mps:")
    assert expected.replace("PIPE", str(pipes)) in log


async def test_a_handle_names_its_gpus_so_a_stop_after_a_restart_holds_up_only_their_next_job(tmp_path):
    from hub_ext.service.jobs import _gpus_in_handle

    runner = LocalRunner(state_dir=str(tmp_path))
    job = launch("print('hi')", wid="w-11")
    job.env["GPUPOOL_GPU_UUIDS"] = "GPU-a,GPU-b"
    handle = await runner.start(job)
    await runner.wait(handle)
    assert _gpus_in_handle(handle) == {"GPU-a", "GPU-b"}
    assert _gpus_in_handle('{"name": "a-pod"}') == set()  # unknown cards: every start waits for this stop
