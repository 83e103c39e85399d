"""The Kubernetes job runner's contract, through the real kubernetes_asyncio client.

Same contract as local jobs: start whole or not at all, report how a job
ended, and on preemption or resize deliver SIGTERM with the grace period the
service asks for, then SIGKILL, returning only once the GPUs are really free.
The API server is a stand-in (no cluster here; see apiserver_standin.py).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from apiserver_standin import ApiServerStandIn
from k8s_testenv import write_kubeconfig
from traitlets.config import Config

from hub_ext.service.runners.base import JobLaunch
from hub_ext.service.runners.kubernetes import EXIT_COULD_NOT_START, KubernetesJobRunner

GPUS = tuple(f"GPU-0b7d{i:02d}-aaaa-bbbb-cccc-0000000000{i:02d}" for i in range(8))


@pytest.fixture
async def cluster(tmp_path):
    server = ApiServerStandIn()
    await server.start()
    config = Config()
    config.KubernetesJobRunner.kube_config_file = str(write_kubeconfig(tmp_path / "kubeconfig", server.url))
    config.KubernetesJobRunner.in_cluster = False
    config.KubernetesJobRunner.namespace = "jhub"
    config.KubernetesJobRunner.stop_poll_interval = 0.05
    config.KubernetesJobRunner.kill_slack_seconds = 1.0
    config.KubernetesJobRunner.status_poll_interval = 0.1
    runner = KubernetesJobRunner(config=config)
    yield runner, server.state
    await runner.close()
    await server.stop()


def launch(workload_id="w-7", gpus_by_node=None, count=2.0) -> JobLaunch:
    return JobLaunch(
        workload_id=workload_id,
        user="alice",
        command=("python", "train.py"),
        gpus_by_node=gpus_by_node or {"dgx1-a": GPUS[:2]},
        gpu_count=count,
    )


async def test_started_job_runs_on_its_node_and_reports_its_exit(cluster):
    runner, state = cluster
    handle = await runner.start(launch())
    (pod,) = state.pods.values()
    assert pod["spec"]["nodeName"] == "dgx1-a"
    assert (await runner.status(handle)).running
    state.finish_pod(pod["metadata"]["name"], 0)
    status = await runner.status(handle)
    assert (status.running, status.exit_code) == (False, 0)


async def test_failed_job_reports_its_exit_code(cluster):
    runner, state = cluster
    handle = await runner.start(launch())
    state.finish_pod(next(iter(state.pods)), 3)
    status = await runner.status(handle)
    assert (status.running, status.exit_code) == (False, 3)


async def test_handle_survives_a_service_restart(cluster):
    runner, state = cluster
    handle = await runner.start(launch())
    fresh = KubernetesJobRunner(config=runner.config)  # the service restarted: only the stored handle is left
    try:
        assert (await fresh.status(handle)).running
    finally:
        await fresh.close()


async def test_preemption_sends_sigterm_with_the_grace_period_and_waits_for_exit(cluster):
    runner, state = cluster
    state.exit_after_sigterm = 0.5  # the job writes its checkpoint, then exits
    handle = await runner.start(launch())
    started = time.monotonic()
    await runner.stop(handle, grace_seconds=30)
    took = time.monotonic() - started
    pod_deletions = [d for d in state.deletions if d.kind == "Pod"]
    assert [d.grace_seconds for d in pod_deletions] == [30]
    # Returned only once the process was gone: the GPUs are free for the next workload.
    assert not state.pods
    assert took >= 0.5
    # The Job went too, and its controller had no chance to start a replacement pod.
    assert not state.jobs
    assert [d.propagation_policy for d in state.deletions if d.kind == "Job"] == ["Foreground"]
    status = await runner.status(handle)
    assert not status.running


async def test_job_ignoring_sigterm_is_killed_after_the_grace_period(cluster):
    runner, state = cluster
    state.exit_after_sigterm = 60  # never checkpoints
    handle = await runner.start(launch())
    started = time.monotonic()
    await runner.stop(handle, grace_seconds=1)
    assert 0.9 <= time.monotonic() - started < 10
    assert not state.pods


async def test_pods_outliving_grace_are_force_deleted(cluster):
    runner, state = cluster
    state.kubelet_delay = 30  # an unreachable node never confirms
    handle = await runner.start(launch())
    await runner.stop(handle, grace_seconds=0.2)
    assert not state.pods
    assert [d.grace_seconds for d in state.deletions if d.kind == "Pod"] == [1, 0]


async def test_gang_over_two_nodes_starts_and_stops_as_one(cluster):
    runner, state = cluster
    handle = await runner.start(launch(gpus_by_node={"dgx2-a": GPUS, "dgx2-b": GPUS}, count=16))
    assert sorted(p["spec"]["nodeName"] for p in state.pods.values()) == ["dgx2-a", "dgx2-b"]
    assert len(state.services) == 1
    await runner.stop(handle, grace_seconds=5)
    assert not state.pods and not state.jobs and not state.services


async def test_one_failed_rank_ends_the_gang(cluster):
    runner, state = cluster
    handle = await runner.start(launch(gpus_by_node={"dgx2-a": GPUS, "dgx2-b": GPUS}, count=16))
    # One Indexed Job: the pod of index 1 is rank 1.
    rank1 = next(n for n, p in state.pods.items() if p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "1")
    state.finish_pod(rank1, 137)
    status = await runner.status(handle)
    assert (status.running, status.exit_code) == (False, 137)
    # The surviving rank was told to stop rather than left holding its GPUs.
    assert any(d.kind == "Pod" and d.name != rank1 for d in state.deletions)


async def test_job_whose_container_cannot_start_does_not_hold_gpus(cluster):
    runner, state = cluster
    state.new_pod_waiting_reason = "InvalidImageName"
    handle = await runner.start(launch())
    status = await runner.status(handle)
    assert (status.running, status.exit_code) == (False, EXIT_COULD_NOT_START)


async def test_wait_returns_when_the_job_ends(cluster):
    runner, state = cluster
    handle = await runner.start(launch())
    waiting = asyncio.ensure_future(runner.wait(handle))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    state.finish_pod(next(iter(state.pods)), 0)
    status = await asyncio.wait_for(waiting, timeout=5)
    assert (status.running, status.exit_code) == (False, 0)


async def test_a_gangs_logs_are_rank_zeros(cluster):
    runner, state = cluster
    handle = await runner.start(launch(gpus_by_node={"dgx2-a": GPUS, "dgx2-b": GPUS}, count=16))
    for name, pod in state.pods.items():
        state.logs[name] = f"rank {pod['metadata']['labels']['batch.kubernetes.io/job-completion-index']}\n"
    assert await runner.logs(handle) == "rank 0\n"


async def test_logs_from_an_offset(cluster):
    runner, state = cluster
    handle = await runner.start(launch())
    state.logs[next(iter(state.pods))] = "epoch 1\nepoch 2\n"
    assert await runner.logs(handle) == "epoch 1\nepoch 2\n"
    assert await runner.logs(handle, offset=len("epoch 1\n")) == "epoch 2\n"


async def test_vanished_job_is_reported_ended(cluster):
    runner, state = cluster
    handle = await runner.start(launch())
    state.jobs.clear()
    state.pods.clear()  # deleted by hand, or its TTL ran out
    status = await runner.status(handle)
    assert not status.running


async def test_find_recovers_a_handle_the_service_never_saved(cluster):
    runner, state = cluster
    handle = await runner.start(launch(workload_id="w-99"))
    assert await runner.find("w-99") == [handle]
    assert await runner.find("w-100") == []


async def test_restart_after_preemption_does_not_touch_the_stopping_start(cluster):
    runner, state = cluster
    state.exit_after_sigterm = 1.0  # the first start is still writing its checkpoint...
    first = await runner.start(launch(workload_id="w-5"))
    stopping = asyncio.ensure_future(runner.stop(first, grace_seconds=10))
    await asyncio.sleep(0.2)
    # ...when the service starts the requeued job again on other GPUs.
    second = await runner.start(launch(workload_id="w-5", gpus_by_node={"dgx1-b": GPUS[2:4]}))
    await stopping
    assert first != second
    assert (await runner.status(second)).running
    (pod,) = state.pods.values()
    assert pod["spec"]["nodeName"] == "dgx1-b"
    assert await runner.find("w-5") == [second]
