"""The pods the real KubeSpawner code builds for sessions holding pool GPUs.

The spawner is given its allocation the way the hub restores it after a
restart (``load_state`` with the workload and allocation the pool returned),
then KubeSpawner builds the pod; every pod is validated against the API schema.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from k8s_manifests import check_object, pod_env
from kubernetes_asyncio.client import ApiClient

from spawner.kubernetes import GpuPoolKubeSpawner
from traitlets.config import Config

DGX2_UUIDS = [f"GPU-5e1f0a2c-0000-4000-8000-{i:012d}" for i in range(16)]


def allocation(node: str, uuids: list[str], fraction: float = 1.0, memory_mib: int | None = None) -> dict:
    shares = [
        {"node": node, "gpu_uuid": uuid, "index": DGX2_UUIDS.index(uuid) if uuid in DGX2_UUIDS else i, "fraction": fraction, "memory_mib": memory_mib}
        for i, uuid in enumerate(uuids)
    ]
    return {"gpus": sum(s["fraction"] for s in shares), "shares": shares}


def make_spawner(config: Config | None = None, user: str = "alice") -> GpuPoolKubeSpawner:
    # The attributes JupyterHub's User and Hub give a spawner (as in KubeSpawner's own tests).
    hub = SimpleNamespace(public_host="", url="http://hub:8081/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api")
    user_obj = SimpleNamespace(name=user, id=7, url=f"/user/{user}/", escaped_name=user, groups=[], settings={})
    config = config or Config()
    config.GpuPoolKubeSpawner.pool_url = "http://gpupool.jhub.svc:8080/services/gpupool/"
    config.GpuPoolKubeSpawner.max_whole_gpus = 8
    return GpuPoolKubeSpawner(user=user_obj, hub=hub, namespace="jhub", config=config)


async def build_pod(spawner: GpuPoolKubeSpawner, workload_id: str | None, alloc: dict | None) -> dict:
    if workload_id:
        spawner.load_state({"gpupool_workload_id": workload_id, "gpupool_allocation": alloc})
    pod = await spawner.get_pod_manifest()
    manifest = ApiClient().sanitize_for_serialization(pod)
    manifest.setdefault("apiVersion", "v1")
    manifest.setdefault("kind", "Pod")
    check_object(manifest)
    return manifest


def pinned_node(spec: dict) -> list[str]:
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    nodes = []
    for term in terms:
        fields = [f for f in term.get("matchFields", []) if f["key"] == "metadata.name"]
        assert len(fields) == 1, f"term {term} is not pinned to one node"
        nodes.append(tuple(fields[0]["values"]))
    return nodes


def gpu_resources(spec: dict) -> set[str]:
    resources = spec["containers"][0].get("resources") or {}
    names = set((resources.get("limits") or {})) | set((resources.get("requests") or {}))
    return {n for n in names if "gpu" in n}


async def test_session_without_gpus_stays_off_pool_and_sees_no_card():
    pod = await build_pod(make_spawner(), None, None)
    spec = pod["spec"]
    env = pod_env(spec)
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"  # even a CUDA image on a GPU node sees no card
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert "gpupool.io/pool" not in (spec.get("nodeSelector") or {})
    assert not any(t.get("key") == "gpupool.io/pool" for t in spec.get("tolerations") or [])
    assert "runtimeClassName" not in spec
    assert not gpu_resources(spec)


@pytest.mark.parametrize("count", [1, 8])
async def test_whole_gpus_pinned_to_allocated_node_with_exactly_those_cards(count):
    uuids = DGX2_UUIDS[3 : 3 + count]
    pod = await build_pod(make_spawner(), "w-41", allocation("dgx2-b", uuids))
    spec = pod["spec"]
    env = pod_env(spec)
    assert pinned_node(spec) == [("dgx2-b",)]
    assert spec["nodeSelector"]["gpupool.io/pool"] == "true"
    assert {"key": "gpupool.io/pool", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in spec["tolerations"]
    assert env["NVIDIA_VISIBLE_DEVICES"].split(",") == uuids
    assert env["CUDA_VISIBLE_DEVICES"].split(",") == uuids
    assert env["GPUPOOL_GPUS"] == str(count)
    assert env["GPUPOOL_WORKLOAD_ID"] == "w-41"
    assert spec["runtimeClassName"] == "nvidia"
    # The device plugin is not asked: the pool alone hands out cards on its nodes.
    assert not gpu_resources(spec)
    assert pod["metadata"]["labels"]["gpupool.io/workload"] == "w-41"


async def test_fraction_without_enforcement_records_share_and_tames_frameworks():
    pod = await build_pod(make_spawner(), "w-7", allocation("dgx1-a", DGX2_UUIDS[:1], fraction=0.25, memory_mib=8192))
    spec = pod["spec"]
    env = pod_env(spec)
    assert pinned_node(spec) == [("dgx1-a",)]
    assert env["NVIDIA_VISIBLE_DEVICES"] == DGX2_UUIDS[0]
    assert env["GPUPOOL_GPU_FRACTION"] == "0.25"
    assert env["GPUPOOL_GPU_MEMORY_MIB"] == "8192"
    assert env["GPUPOOL_GPU_ENFORCEMENT"] == "none"
    assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.25"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert "LD_PRELOAD" not in env and "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT" not in env


async def test_fraction_with_hami_core_caps_memory_from_the_node_library():
    config = Config()
    config.KubernetesGpuPlacement.fraction_enforcement = "hami-core"
    pod = await build_pod(make_spawner(config), "w-8", allocation("dgx1-a", DGX2_UUIDS[:1], fraction=0.5, memory_mib=16384))
    spec = pod["spec"]
    env = pod_env(spec)
    assert env["LD_PRELOAD"] == "/usr/local/vgpu/libvgpu.so"
    assert env["CUDA_DEVICE_MEMORY_LIMIT"] == "16384m"
    assert env["CUDA_DEVICE_SM_LIMIT"] == "50"
    volumes = {v["name"]: v for v in spec["volumes"]}
    # A node without the library fails the pod instead of running it unenforced.
    assert volumes["gpupool-hami-core"]["hostPath"] == {"path": "/usr/local/vgpu/libvgpu.so", "type": "File"}
    mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert "/usr/local/vgpu/libvgpu.so" in mounts


async def test_fraction_with_mps_joins_the_node_daemon():
    config = Config()
    config.KubernetesGpuPlacement.fraction_enforcement = "mps"
    pod = await build_pod(make_spawner(config), "w-9", allocation("dgx1-a", DGX2_UUIDS[:1], fraction=0.5, memory_mib=16384))
    spec = pod["spec"]
    env = pod_env(spec)
    assert env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == "0=16384M"
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "50"
    assert spec["hostIPC"] is True
    assert {"name": "gpupool-mps", "mountPath": "/tmp/nvidia-mps"} in spec["containers"][0]["volumeMounts"]


async def test_volume_mount_device_list_for_toolkits_that_refuse_the_envvar():
    config = Config()
    config.KubernetesGpuPlacement.device_list_strategy = "volume-mounts"
    uuids = DGX2_UUIDS[:2]
    pod = await build_pod(make_spawner(config), "w-10", allocation("dgx2-a", uuids))
    spec = pod["spec"]
    assert pod_env(spec)["NVIDIA_VISIBLE_DEVICES"] == "/var/run/nvidia-container-devices"
    mounts = sorted(m["mountPath"] for m in spec["containers"][0]["volumeMounts"] if "nvidia-container-devices" in m["mountPath"])
    assert mounts == sorted(f"/var/run/nvidia-container-devices/{u}" for u in uuids)


async def test_admin_node_affinity_is_kept_and_the_pin_added_to_every_term():
    config = Config()
    config.KubeSpawner.node_affinity_required = [
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]},
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["b"]}]},
    ]
    pod = await build_pod(make_spawner(config), "w-11", allocation("dgx2-a", DGX2_UUIDS[:1]))
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert pinned_node(pod["spec"]) == [("dgx2-a",), ("dgx2-a",)]
    assert [t["matchExpressions"][0]["values"] for t in terms] == [["a"], ["b"]]


async def test_simulated_pool_gives_no_real_card():
    # A declared pool (demo on a cluster without GPUs): its UUIDs name no hardware.
    alloc = {"gpus": 1, "shares": [{"node": "sim-1", "gpu_uuid": "GPU-sim-sim-1-2", "index": 2, "fraction": 1.0}]}
    pod = await build_pod(make_spawner(), "w-12", alloc)
    env = pod_env(pod["spec"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert pinned_node(pod["spec"]) == [("sim-1",)]
    assert "runtimeClassName" not in pod["spec"]


async def test_user_environment_cannot_override_the_allocation():
    config = Config()
    config.KubeSpawner.environment = {"NVIDIA_VISIBLE_DEVICES": "all", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    uuids = DGX2_UUIDS[:1]
    pod = await build_pod(make_spawner(config), "w-13", allocation("dgx2-a", uuids))
    env = pod_env(pod["spec"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == uuids[0]
    assert env["CUDA_VISIBLE_DEVICES"] == uuids[0]


def test_the_spawner_places_pods_without_importing_the_service():
    # The hub runs the spawner; the pool service's internals (its ORM, its runners) stay out of it.
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, spawner.kubernetes; print(sorted(m for m in sys.modules if m.startswith('hub_ext.service')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
