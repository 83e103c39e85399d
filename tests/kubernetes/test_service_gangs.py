"""Multi-node jobs on Kubernetes, driven by the real pool service under a real JupyterHub.

A job larger than any node runs as a gang: one Indexed Job with a pod on each
of its nodes and a headless Service for the rendezvous. Preempting it stops
the whole gang (every pod gets SIGTERM with the service's grace period) and
requeues it; it restarts whole.

The pool: three nodes with 2 real-looking cards each; vision is guaranteed 4
GPUs and nlp 2, so a 6-GPU vision job borrows nlp's two.
"""

from __future__ import annotations

import pytest
from apiserver_standin import ApiServerStandIn
from k8s_manifests import check_object, pod_env
from k8s_testenv import write_kubeconfig
from test_service_jobs import pods_of, submit, workload

from tests.fixtures.hub import start_hub
from tests.fixtures.waiting import wait_for

NODES = ("dgx-a", "dgx-b", "dgx-c")
POOL = [
    {"name": node, "simulated": False,
     "gpus": [{"uuid": f"GPU-3c9e{n}{i}a0-55e0-4b7e-9a41-00000000000{i}", "model": "A100-40GB", "memory_mib": 40960} for i in range(2)]}
    for n, node in enumerate(NODES)
]
TEAMS = {"vision": {"quota": 4, "over_quota_weight": 1}, "nlp": {"quota": 2, "over_quota_weight": 1}}
USERS = {"alice": ["vision"], "carol": ["nlp"], "ada": []}
GRACE = 3  # the hub fixture's JobSupervisor.grace_seconds


@pytest.fixture(scope="module")
def cluster():
    server = ApiServerStandIn()
    server.state.exit_after_sigterm = 0.5
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, cluster):
    tmp = tmp_path_factory.mktemp("k8s-gangs-hub")
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


def test_a_gang_across_three_nodes_is_preempted_and_restarted_whole(hub, cluster):
    gang = submit(hub, "alice", 6)  # larger than any node: accepted, as the Kubernetes runner spans nodes
    pods = wait_for(lambda: len(p := pods_of(cluster, gang["id"])) == 3 and p, 30, "a pod on each of the gang's nodes")
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(NODES)
    (job,) = [j for j in cluster.state.jobs.values() if j["metadata"]["annotations"]["gpupool.io/workload-id"] == gang["id"]]
    (service,) = [s for s in cluster.state.services.values() if s["metadata"]["annotations"]["gpupool.io/workload-id"] == gang["id"]]
    check_object(job)
    check_object(service)
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["parallelism"] == 3
    env = pod_env(job["spec"]["template"]["spec"])
    assert env["WORLD_SIZE"] == "3" and env["MASTER_ADDR"].startswith(f"{job['metadata']['name']}-0.{service['metadata']['name']}.")
    # The pool's three nodes hold the same card indices, so one template names them on each.
    assert env["NVIDIA_VISIBLE_DEVICES"] == "0,1"

    owner = submit(hub, "carol", 2)  # nlp wants its guaranteed GPUs back
    wait_for(lambda: pods_of(cluster, owner["id"]), 30, "the quota owner's pod")
    names = {p["metadata"]["name"] for p in pods}
    sigterms = {d.name: d.grace_seconds for d in cluster.state.deletions if d.kind == "Pod" and d.name in names}
    assert sigterms == {name: GRACE for name in names}  # the whole gang, not only the pod on nlp's node
    requeued = wait_for(lambda: (w := workload(hub, gang["id"]))["state"] == "pending" and w, 30, "the gang requeued")
    assert requeued["preemptions"] == 1
    hub.client(token=hub.spawner_token).cancel(owner["id"])
    restarted = wait_for(lambda: len(p := pods_of(cluster, gang["id"])) == 3 and p, 30, "the gang restarted whole")
    assert not names & {p["metadata"]["name"] for p in restarted}
    hub.client(token=hub.spawner_token).cancel(gang["id"])
