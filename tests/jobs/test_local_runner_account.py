"""On a real install the service runs as root: a job then runs as its user's own account."""

from __future__ import annotations

import asyncio
import os
import pwd

import pytest

from hub_ext.service.runners.base import JobLaunch
from hub_ext.service.runners.local import LocalRunner


def _nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


@pytest.mark.skipif(os.geteuid() != 0, reason="running jobs as another account needs the service to run as root")
@pytest.mark.skipif(_nobody() is None, reason="no 'nobody' account on this machine to run a job as")
def test_a_job_runs_as_its_users_account(tmp_path):
    state = tmp_path / "state"
    workdir = tmp_path / "work"
    workdir.mkdir()
    os.chmod(workdir, 0o777)  # the job's own account writes here
    runner = LocalRunner(state_dir=str(state))
    launch = JobLaunch(workload_id="w-1", user="nobody", command=("sh", "-c", "id -u; echo $USER; touch made-by-job"),
                       gpus_by_node={"node-a": ("0",)}, gpu_count=1, workdir=str(workdir))

    async def run():
        handle = await runner.start(launch)
        return await runner.wait(handle, poll_seconds=0.1), handle

    status, handle = asyncio.run(run())
    assert status.exit_code == 0
    log = open(runner.log_path_for("w-1")).read()
    assert f"\n{_nobody().pw_uid}\nnobody\n" in log
    assert (workdir / "made-by-job").stat().st_uid == _nobody().pw_uid


def test_without_such_an_account_a_job_runs_as_the_service(tmp_path):
    runner = LocalRunner(state_dir=str(tmp_path / "state"))
    launch = JobLaunch(workload_id="w-2", user="no-such-user-here", command=("sh", "-c", "id -u"),
                       gpus_by_node={"node-a": ("0",)}, gpu_count=1, workdir=str(tmp_path))

    async def run():
        return await runner.wait(await runner.start(launch), poll_seconds=0.1)

    assert asyncio.run(run()).exit_code == 0
    assert f"\n{os.geteuid()}\n" in open(runner.log_path_for("w-2")).read()
