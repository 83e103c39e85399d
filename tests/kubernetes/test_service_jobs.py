"""Batch jobs as Kubernetes Jobs, driven by the real pool service under a real JupyterHub.

The service runs with ``KubernetesJobRunner``; the Kubernetes API server is the
stand-in of apiserver_standin.py (no cluster here), served from a thread so
the service, a separate process, can reach it. The contract is the local one:
a preempted job gets SIGTERM with the service's grace period and is requeued;
a resized job restarts with its new GPU count; GPUs are handed out again only
once the old pods are gone.

The pool: one node with 2 real-looking cards; vision and nlp are each
guaranteed 1 GPU, so a 2-GPU vision job borrows nlp's.
"""

from __future__ import annotations

import time

import pytest
from apiserver_standin import ApiServerStandIn
from k8s_testenv import write_kubeconfig
from k8s_manifests import check_object, pod_env

from tests.fixtures.hub import start_hub

CARDS = [{"uuid": f"GPU-8d2f{i}c1a-55e0-4b7e-9a41-00000000000{i}", "model": "A100-40GB", "memory_mib": 40960} for i in range(2)]
POOL = [{"name": "dgx-a", "gpus": CARDS, "simulated": False}]
TEAMS = {"vision": {"quota": 1, "over_quota_weight": 1}, "nlp": {"quota": 1, "over_quota_weight": 1}}
USERS = {"alice": ["vision"], "carol": ["nlp"], "ada": []}
GRACE = 3  # the hub fixture's JobSupervisor.grace_seconds


@pytest.fixture(scope="module")
def cluster():
    server = ApiServerStandIn()
    server.state.exit_after_sigterm = 0.5  # jobs write a checkpoint on SIGTERM, then exit
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, cluster):
    tmp = tmp_path_factory.mktemp("k8s-jobs-hub")
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", cluster.url)
    service_config = f"""
c.GpuPoolService.runner_class = "hub_ext.service.runners.kubernetes.KubernetesJobRunner"
c.KubernetesJobRunner.kube_config_file = {str(kubeconfig)!r}
c.KubernetesJobRunner.in_cluster = False
c.KubernetesJobRunner.namespace = "jhub"
c.KubernetesJobRunner.status_poll_interval = 0.2
c.KubernetesJobRunner.stop_poll_interval = 0.1
"""
    hub = start_hub(tmp, pool=POOL, teams=TEAMS, users=USERS, service_config=service_config)
    yield hub
    hub.stop()


@pytest.fixture(autouse=True)
def clean_pool(hub, cluster):
    yield
    admin = hub.client(token=hub.spawner_token)
    for w in admin.workloads()["workloads"]:
        if w["state"] in ("pending", "running"):
            admin.cancel(w["id"])
    # Finished pods stay (as in Kubernetes, until the Job's TTL); running ones must go.
    wait_for(lambda: not [p for p in list(cluster.state.pods.values()) if p["status"]["phase"] in ("Pending", "Running")],
             30, "every running job pod gone")


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def submit(hub, user: str, gpus: int, **extra) -> dict:
    return hub.client(user).submit({"kind": "job", "gpus": gpus, "command": ["python", "train.py"], **extra})


def workload(hub, workload_id: str) -> dict:
    return hub.client(token=hub.spawner_token).workload(workload_id)


def pods_of(cluster, workload_id: str) -> list[dict]:
    return [p for p in list(cluster.state.pods.values())
            if p["metadata"]["annotations"].get("gpupool.io/workload-id") == workload_id and not p["metadata"].get("deletionTimestamp")]


def job_objects(cluster, workload_id: str) -> list[dict]:
    return [j for j in list(cluster.state.jobs.values()) if j["metadata"]["annotations"]["gpupool.io/workload-id"] == workload_id]


def test_a_job_runs_as_a_kubernetes_job_on_its_gpus_and_completes(hub, cluster):
    job = submit(hub, "alice", 1)
    (pod,) = wait_for(lambda: pods_of(cluster, job["id"]), 30, "the job's pod")
    (obj,) = job_objects(cluster, job["id"])
    check_object(obj)  # what the service really sent, against the API schema
    shares = workload(hub, job["id"])["allocation"]["shares"]
    env = pod_env(pod["spec"])
    assert pod["spec"]["nodeName"] == shares[0]["node"] == "dgx-a"
    assert env["NVIDIA_VISIBLE_DEVICES"] == shares[0]["gpu_uuid"]
    assert env["GPUPOOL_GPUS"] == "1" and env["GPUPOOL_WORKLOAD_ID"] == job["id"]
    cluster.state.finish_pod(pod["metadata"]["name"], 0)
    done = wait_for(lambda: (w := workload(hub, job["id"]))["state"] == "completed" and w, 30, "the job completed")
    assert done["exit_code"] == 0


def test_a_failing_job_is_reported_failed_with_its_exit_code(hub, cluster):
    job = submit(hub, "alice", 1)
    (pod,) = wait_for(lambda: pods_of(cluster, job["id"]), 30, "the job's pod")
    cluster.state.finish_pod(pod["metadata"]["name"], 2)
    failed = wait_for(lambda: (w := workload(hub, job["id"]))["state"] == "failed" and w, 30, "the job failed")
    assert failed["exit_code"] == 2


def test_preempted_job_gets_sigterm_with_grace_and_is_requeued_before_its_gpu_is_reused(hub, cluster):
    borrower = submit(hub, "alice", 2)  # vision borrows nlp's idle GPU
    (old_pod,) = wait_for(lambda: pods_of(cluster, borrower["id"]), 30, "the borrowing job's pod")
    owner = submit(hub, "carol", 1)  # nlp wants its guaranteed GPU back
    (new_pod,) = wait_for(lambda: pods_of(cluster, owner["id"]), 30, "the quota owner's pod")
    old_name = old_pod["metadata"]["name"]
    sigterm = [d for d in cluster.state.deletions if d.kind == "Pod" and d.name == old_name]
    assert [d.grace_seconds for d in sigterm] == [GRACE]
    # The owner's Job was created only after the preempted pod had gone.
    created = dict(cluster.state.created)[new_pod["metadata"]["labels"]["job-name"]]
    assert cluster.state.gone[old_name] <= created
    requeued = wait_for(lambda: (w := workload(hub, borrower["id"]))["state"] == "pending" and w, 30, "the preempted job requeued")
    assert requeued["preemptions"] == 1
    # When the GPU comes back, the requeued job starts again as a new Job.
    cluster.state.finish_pod(new_pod["metadata"]["name"], 0)
    (restarted,) = wait_for(lambda: pods_of(cluster, borrower["id"]), 30, "the requeued job restarted")
    assert restarted["metadata"]["name"] != old_name
    assert pod_env(restarted["spec"])["GPUPOOL_PREEMPTIONS"] == "1"


def test_resized_job_restarts_with_its_new_gpu_count(hub, cluster):
    job = submit(hub, "alice", 2, min_gpus=1, max_gpus=2)
    (old_pod,) = wait_for(lambda: pods_of(cluster, job["id"]), 30, "the elastic job's pod")
    assert len(pod_env(old_pod["spec"])["NVIDIA_VISIBLE_DEVICES"].split(",")) == 2
    hub.client("alice").resize(job["id"], 1)
    (new_pod,) = wait_for(
        lambda: [p for p in pods_of(cluster, job["id"]) if p["metadata"]["name"] != old_pod["metadata"]["name"]],
        30, "the job restarted on 1 GPU",
    )
    env = pod_env(new_pod["spec"])
    assert env["GPUPOOL_GPUS"] == "1"
    assert len(env["NVIDIA_VISIBLE_DEVICES"].split(",")) == 1
    old_name = old_pod["metadata"]["name"]
    assert [d.grace_seconds for d in cluster.state.deletions if d.kind == "Pod" and d.name == old_name] == [GRACE]
    created = dict(cluster.state.created)[new_pod["metadata"]["labels"]["job-name"]]
    assert cluster.state.gone[old_name] <= created  # its GPU was free before the new pod got it
