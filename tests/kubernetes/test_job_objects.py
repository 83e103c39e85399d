"""The Kubernetes objects the job runner builds for batch work, validated against the API schema."""

from __future__ import annotations

import pytest
from k8s_manifests import check_object, pod_env
from traitlets.config import Config

from hub_ext.service.runners.base import JobLaunch
from hub_ext.service.runners.kubernetes import KubernetesJobRunner

UUIDS = {node: [f"GPU-{node}-{i:02d}-7f1c" for i in range(16)] for node in ("dgx1-a", "dgx2-a", "dgx2-b")}


def launch(gpus_by_node: dict, gpu_count: float, **kw) -> JobLaunch:
    return JobLaunch(
        workload_id=kw.pop("workload_id", "w-120"),
        user=kw.pop("user", "alice"),
        command=("python", "train.py", "--epochs", "90"),
        gpus_by_node={n: tuple(g) for n, g in gpus_by_node.items()},
        gpu_count=gpu_count,
        env={"GPUPOOL_TEAM": "vision", **kw.pop("env", {})},
        **kw,
    )


def runner(**config) -> KubernetesJobRunner:
    c = Config()
    for key, value in config.items():
        cls, _, trait = key.partition("__")
        c[cls][trait] = value
    return KubernetesJobRunner(namespace="jhub", config=c)


def jobs_of(objects):
    return [o for o in objects if o["kind"] == "Job"]


@pytest.mark.parametrize("count", [1, 8])
def test_job_on_one_node_gets_exactly_its_gpus(count):
    gpus = UUIDS["dgx2-a"][:count]
    objects = runner().build_objects(launch({"dgx2-a": gpus}, count))
    for obj in objects:
        check_object(obj)
    (job,) = jobs_of(objects)
    assert not [o for o in objects if o["kind"] == "Service"]  # no rendezvous needed on one node
    spec = job["spec"]["template"]["spec"]
    env = pod_env(spec)
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["dgx2-a"]}]}
    ]
    assert env["NVIDIA_VISIBLE_DEVICES"].split(",") == gpus
    assert env["GPUPOOL_GPUS"] == str(count)
    assert env["GPUPOOL_TEAM"] == "vision"  # the service's own variables reach the job
    assert not (spec["containers"][0].get("resources") or {}).get("limits", {}).get("nvidia.com/gpu")
    # The pool requeues a preempted job; Kubernetes must not restart it on its own.
    assert job["spec"]["backoffLimit"] == 0
    assert spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["command"] == ["python", "train.py", "--epochs", "90"]


@pytest.mark.parametrize("version", ["1.32.0", "1.33.0", "1.34.0"])
def test_three_node_gang_is_one_indexed_job_and_a_headless_service_with_the_rendezvous(version):
    # As the service launches it: each node's card indices, and their UUIDs.
    by_node = {node: UUIDS[node][:4] for node in ("dgx1-a", "dgx2-a", "dgx2-b")}
    gang = JobLaunch("w-300", "alice", ("torchrun", "--nproc-per-node=4", "train.py"),
                     {n: ("0", "1", "2", "3") for n in by_node}, 12, env={"GPUPOOL_TEAM": "vision"},
                     uuids_by_node={n: tuple(u) for n, u in by_node.items()})
    objects = runner().build_objects(gang, "gpupool-w-300-k2x9a")
    for obj in objects:
        check_object(obj, version)
    (service,) = [o for o in objects if o["kind"] == "Service"]
    (job,) = jobs_of(objects)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == ("Indexed", 3, 3, 0)
    pod = spec["template"]["spec"]
    # One pod on each of the three nodes, any order, never two on one.
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert sorted(term["matchFields"][0]["values"]) == sorted(by_node)
    (anti,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"] == {"gpupool.io/job-set": "gpupool-w-300-k2x9a"}
    # The headless Service names the pods <job>-<index>.<service>: rank 0 is the master.
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["selector"] == {"gpupool.io/job-set": "gpupool-w-300-k2x9a"}
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    master = f"{job['metadata']['name']}-0.{service['metadata']['name']}.jhub.svc"
    values = {k: e.get("value") for k, e in env.items()}
    assert values["MASTER_ADDR"] == values["PET_MASTER_ADDR"] == master
    assert values["MASTER_PORT"] == values["PET_MASTER_PORT"] == "29500"
    assert {p["port"] for p in service["spec"]["ports"]} == {29500}
    assert values["WORLD_SIZE"] == values["PET_NNODES"] == values["GPUPOOL_NUM_NODES"] == "3"
    # Each pod's rank is its completion index (torchrun reads PET_NODE_RANK; RANK for plain scripts).
    index = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    for name in ("RANK", "PET_NODE_RANK", "GPUPOOL_NODE_RANK"):
        assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == index
    assert values["NVIDIA_VISIBLE_DEVICES"] == "0,1,2,3" and values["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"


def test_gang_whose_nodes_cards_differ_is_one_job_per_node():
    # Different card indices per node cannot be one pod template in the toolkit modes.
    gang = JobLaunch("w-301", "alice", ("python", "train.py"), {"dgx2-a": ("0", "1"), "dgx2-b": ("5", "6")}, 4,
                     uuids_by_node={"dgx2-a": tuple(UUIDS["dgx2-a"][:2]), "dgx2-b": tuple(UUIDS["dgx2-b"][5:7])})
    objects = runner().build_objects(gang, "gpupool-w-301-aaaaa")
    for obj in objects:
        check_object(obj)
    jobs = jobs_of(objects)
    envs = [pod_env(j["spec"]["template"]["spec"]) for j in jobs]
    assert [e["RANK"] for e in envs] == ["0", "1"] and {e["WORLD_SIZE"] for e in envs} == {"2"}
    assert [e["NVIDIA_VISIBLE_DEVICES"].split(",") for e in envs] == [UUIDS["dgx2-a"][:2], UUIDS["dgx2-b"][5:7]]
    assert envs[0]["MASTER_ADDR"] == f"{jobs[0]['spec']['template']['spec']['hostname']}.gpupool-w-301-aaaaa.jhub.svc"


def test_gang_across_two_nodes_is_one_job_per_node_with_ranks_and_rendezvous():
    objects = runner().build_objects(launch({"dgx2-a": UUIDS["dgx2-a"], "dgx2-b": UUIDS["dgx2-b"]}, 32))
    for obj in objects:
        check_object(obj)
    jobs = jobs_of(objects)
    (service,) = [o for o in objects if o["kind"] == "Service"]
    assert [j["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchFields"][0]["values"] for j in jobs] == [["dgx2-a"], ["dgx2-b"]]
    envs = [pod_env(j["spec"]["template"]["spec"]) for j in jobs]
    assert [e["GPUPOOL_NODE_RANK"] for e in envs] == ["0", "1"]
    assert {e["GPUPOOL_NUM_NODES"] for e in envs} == {"2"}
    assert [e["NVIDIA_VISIBLE_DEVICES"].split(",") for e in envs] == [UUIDS["dgx2-a"], UUIDS["dgx2-b"]]
    master = envs[0]["GPUPOOL_MASTER_ADDR"]
    first = jobs[0]["spec"]["template"]["spec"]
    assert master == f"{first['hostname']}.{first['subdomain']}.jhub.svc"
    assert service["spec"]["clusterIP"] == "None" and first["subdomain"] == service["metadata"]["name"]


def test_fractional_job_with_hami_core():
    r = runner(KubernetesGpuPlacement__fraction_enforcement="hami-core")
    objects = r.build_objects(launch({"dgx1-a": UUIDS["dgx1-a"][:1]}, 0.5, env={"GPUPOOL_GPU_MEMORY_MIB": "16000"}))
    (job,) = jobs_of(objects)
    check_object(job)
    env = pod_env(job["spec"]["template"]["spec"])
    assert env["CUDA_DEVICE_MEMORY_LIMIT"] == "16000m"
    assert env["GPUPOOL_GPU_FRACTION"] == "0.5"


def test_names_and_labels_are_valid_for_awkward_users_and_ids():
    objects = runner().build_objects(
        launch({"dgx1-a": UUIDS["dgx1-a"][:2]}, 2, workload_id="W_12/Résumé", user="alice.o'neil@example.org")
    )
    for obj in objects:
        check_object(obj)  # names are DNS labels, label values legal
    (job,) = jobs_of(objects)
    assert job["metadata"]["annotations"]["gpupool.io/user"] == "alice.o'neil@example.org"
    assert job["metadata"]["annotations"]["gpupool.io/workload-id"] == "W_12/Résumé"


def test_configured_image_grace_volumes_and_ttl():
    r = runner(
        KubernetesJobRunner__image="registry.example.org/lab/notebook:2026.11",
        KubernetesJobRunner__termination_grace_period_seconds=300,
        KubernetesJobRunner__extra_volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "home-alice"}}],
        KubernetesJobRunner__extra_volume_mounts=[{"name": "home", "mountPath": "/home/jovyan"}],
        KubernetesJobRunner__resources={"requests": {"cpu": "4", "memory": "32Gi"}},
    )
    (job,) = jobs_of(r.build_objects(launch({"dgx1-a": UUIDS["dgx1-a"][:1]}, 1, workdir="/home/jovyan/project")))
    check_object(job)
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == "registry.example.org/lab/notebook:2026.11"
    assert spec["terminationGracePeriodSeconds"] == 300
    assert spec["containers"][0]["workingDir"] == "/home/jovyan/project"
    assert {"name": "home", "mountPath": "/home/jovyan"} in spec["containers"][0]["volumeMounts"]
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400


def test_a_launch_without_gpus_is_refused():
    with pytest.raises(ValueError, match="without GPUs"):
        runner().build_objects(launch({}, 0))


def supervisor_launch(shares: list[tuple[str, int, str]], count: float) -> JobLaunch:
    """A launch shaped as the service's JobSupervisor makes it: indices per node, UUIDs in share order."""
    by_node: dict[str, list[str]] = {}
    for node, index, _ in shares:
        by_node.setdefault(node, []).append(str(index))
    return launch(by_node, count, env={"GPUPOOL_GPU_UUIDS": ",".join(u for _, _, u in shares)})


def test_indices_from_the_service_become_the_cards_uuids_on_one_node():
    uuids = UUIDS["dgx1-a"]
    (job,) = jobs_of(runner().build_objects(supervisor_launch([("dgx1-a", 5, uuids[5]), ("dgx1-a", 6, uuids[6])], 2)))
    check_object(job)
    env = pod_env(job["spec"]["template"]["spec"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == f"{uuids[5]},{uuids[6]}"
    assert job["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"


def test_indices_across_nodes_name_host_cards_and_cuda_counts_from_zero():
    a, b = UUIDS["dgx2-a"], UUIDS["dgx2-b"]
    shares = [("dgx2-a", 2, a[2]), ("dgx2-b", 7, b[7]), ("dgx2-a", 3, a[3]), ("dgx2-b", 9, b[9])]
    jobs = jobs_of(runner().build_objects(supervisor_launch(shares, 4)))
    envs = [pod_env(j["spec"]["template"]["spec"]) for j in jobs]
    # The toolkit takes the node's NVML indices; inside, the cards are 0 and 1.
    assert [e["NVIDIA_VISIBLE_DEVICES"] for e in envs] == ["2,3", "7,9"]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0,1", "0,1"]


def test_declared_pool_jobs_get_no_real_card():
    shares = [("sim-1", 0, "GPU-sim-sim-1-0")]
    (job,) = jobs_of(runner().build_objects(supervisor_launch(shares, 1)))
    check_object(job)
    spec = job["spec"]["template"]["spec"]
    assert pod_env(spec)["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert "runtimeClassName" not in spec  # a cluster without GPUs has no nvidia RuntimeClass


def test_a_time_limit_becomes_active_deadline_seconds_after_the_pools_own_stop():
    objects = runner(KubernetesJobRunner__termination_grace_period_seconds=30).build_objects(
        launch({"dgx2-a": UUIDS["dgx2-a"][:2]}, 2, time_limit_s=7200.5)
    )
    for obj in objects:
        check_object(obj)
    (job,) = jobs_of(objects)
    # A backstop: the pool stops the job at its limit (SIGTERM, then the grace period) first.
    assert job["spec"]["activeDeadlineSeconds"] == 7201 + 30
    (plain,) = jobs_of(runner().build_objects(launch({"dgx2-a": UUIDS["dgx2-a"][:2]}, 2)))
    assert "activeDeadlineSeconds" not in plain["spec"]
