"""Dynamic Resource Allocation (``device_list_strategy = "dra"``): claims that select exactly the pool's cards.

The real KubeSpawner builds the session pods, the real runner builds the job
objects; every pod, ResourceClaim and ResourceClaimTemplate is validated
against the Kubernetes 1.34 schema (resource.k8s.io/v1 is GA there). The
runner's claims are then created, owned and deleted through the real
kubernetes_asyncio client against the API-server stand-in.
"""

from __future__ import annotations

import re

import pytest
from apiserver_standin import ApiServerStandIn
from k8s_manifests import check_object, pod_env
from k8s_testenv import write_kubeconfig
from test_spawner_pods import DGX2_UUIDS, allocation, make_spawner
from traitlets.config import Config

from hub_ext.kube_placement import dra_gpu_selector
from hub_ext.service.runners.base import JobLaunch
from hub_ext.service.runners.kubernetes import KubernetesJobRunner

DRA_VERSION = "1.34.0"


def dra_config() -> Config:
    c = Config()
    c.KubernetesGpuPlacement.device_list_strategy = "dra"
    return c


async def session_pod(spawner, workload_id: str, alloc: dict) -> dict:
    from kubernetes_asyncio.client import ApiClient

    spawner.load_state({"gpupool_workload_id": workload_id, "gpupool_allocation": alloc})
    pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    pod.update(apiVersion="v1", kind="Pod")
    check_object(pod, DRA_VERSION)
    return pod


def selected_uuids(claim_spec: dict) -> tuple[list[str], int, str]:
    (request,) = claim_spec["devices"]["requests"]
    exactly = request["exactly"]
    (selector,) = exactly["selectors"]
    expression = selector["cel"]["expression"]
    assert "device.attributes['gpu.nvidia.com'].type == 'gpu'" in expression
    uuids = re.findall(r"'(GPU-[^']+)'", expression)
    assert expression.endswith(f"device.attributes['gpu.nvidia.com'].uuid in [{', '.join(repr(u) for u in uuids)}]")
    return uuids, exactly["count"], exactly["deviceClassName"]


async def test_session_pod_references_a_claim_that_selects_exactly_its_cards():
    uuids = DGX2_UUIDS[4:6]
    spawner = make_spawner(dra_config())
    pod = await session_pod(spawner, "w-51", allocation("dgx2-a", uuids))
    spec = pod["spec"]
    claim = spawner.claim_manifest()
    check_object(claim, DRA_VERSION)
    assert spec["resourceClaims"] == [{"name": "gpupool-gpus", "resourceClaimName": claim["metadata"]["name"]}]
    assert spec["containers"][0]["resources"]["claims"] == [{"name": "gpupool-gpus"}]
    assert selected_uuids(claim["spec"]) == (uuids, 2, "gpu.nvidia.com")
    # The driver gives the cards: no toolkit runtime class, and the toolkit's own hook gives none.
    assert "runtimeClassName" not in spec
    env = pod_env(spec)
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"  # the two cards it sees, not the host's indices
    # Still pinned to the node and kept on the pool's nodes.
    assert spec["nodeSelector"]["gpupool.io/pool"] == "true"
    # A new allocation of the same user gets a claim of its own.
    assert "w-51" in claim["metadata"]["name"] and claim["metadata"]["labels"]["gpupool.io/workload"] == "w-51"


async def test_claim_survives_extra_container_config_replacing_the_resources_block():
    config = dra_config()
    config.KubeSpawner.extra_container_config = {"resources": {"limits": {"memory": "32Gi"}, "requests": {"cpu": "4"}}}
    spawner = make_spawner(config)
    pod = await session_pod(spawner, "w-52", allocation("dgx2-a", DGX2_UUIDS[:1]))
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {"memory": "32Gi"} and resources["requests"] == {"cpu": "4"}
    assert resources["claims"] == [{"name": "gpupool-gpus"}]


async def test_fractions_of_one_card_share_that_cards_claim():
    config = dra_config()
    config.KubernetesGpuPlacement.fraction_enforcement = "hami-core"
    card = DGX2_UUIDS[7]
    first, second = make_spawner(config, user="alice"), make_spawner(config, user="bob")
    pods = [await session_pod(first, "w-61", allocation("dgx1-a", [card], fraction=0.5, memory_mib=20480)),
            await session_pod(second, "w-62", allocation("dgx1-a", [card], fraction=0.25, memory_mib=10240))]
    names = {p["spec"]["resourceClaims"][0]["resourceClaimName"] for p in pods}
    assert len(names) == 1  # one device, one claim; both pods use it
    claim = first.claim_manifest()
    check_object(claim, DRA_VERSION)
    assert selected_uuids(claim["spec"]) == ([card], 1, "gpu.nvidia.com")
    assert pod_env(pods[1]["spec"])["CUDA_DEVICE_MEMORY_LIMIT"] == "10240m"  # the share is still enforced


def test_the_selector_cannot_be_widened_by_an_odd_uuid():
    assert dra_gpu_selector(["GPU-1' || true || '"]).endswith("uuid in ['GPU-1true']")


# ---------------------------------------------------------------- batch jobs


def job_runner(**kw) -> KubernetesJobRunner:
    return KubernetesJobRunner(namespace="jhub", config=dra_config(), **kw)


def launch(by_node: dict[str, list[str]], count: float, workload_id: str = "w-70") -> JobLaunch:
    return JobLaunch(workload_id, "alice", ("python", "train.py"), {n: tuple(str(i) for i in range(len(u))) for n, u in by_node.items()},
                     count, env={}, uuids_by_node={n: tuple(u) for n, u in by_node.items()})


def test_job_on_one_node_gets_a_claim_of_its_own():
    uuids = DGX2_UUIDS[:4]
    objects = job_runner().build_objects(launch({"dgx2-a": uuids}, 4), "gpupool-w-70-abcde")
    for obj in objects:
        check_object(obj, DRA_VERSION)
    (claim,) = [o for o in objects if o["kind"] == "ResourceClaim"]
    (job,) = [o for o in objects if o["kind"] == "Job"]
    spec = job["spec"]["template"]["spec"]
    assert spec["resourceClaims"] == [{"name": "gpupool-gpus", "resourceClaimName": claim["metadata"]["name"]}]
    assert spec["containers"][0]["resources"]["claims"] == [{"name": "gpupool-gpus"}]
    assert selected_uuids(claim["spec"]) == (uuids, 4, "gpu.nvidia.com")


def test_a_gang_claims_each_nodes_share_of_its_cards_from_one_template():
    a, b, c = DGX2_UUIDS[0:2], DGX2_UUIDS[8:10], ["GPU-7d0c" + str(i) for i in range(2)]
    objects = job_runner().build_objects(launch({"n1": a, "n2": b, "n3": c}, 6), "gpupool-w-70-abcde")
    for obj in objects:
        check_object(obj, DRA_VERSION)
    (template,) = [o for o in objects if o["kind"] == "ResourceClaimTemplate"]
    (job,) = [o for o in objects if o["kind"] == "Job"]
    # Each pod's claim asks for 2 among the gang's 6 cards: on its node, only that node's 2 match.
    assert selected_uuids(template["spec"]["spec"]) == ([*a, *b, *c], 2, "gpu.nvidia.com")
    assert pod_env(job["spec"]["template"]["spec"])["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert job["spec"]["template"]["spec"]["resourceClaims"] == [
        {"name": "gpupool-gpus", "resourceClaimTemplateName": template["metadata"]["name"]}]


def test_a_gang_with_different_counts_per_node_gets_a_job_and_claim_per_node():
    a, b = DGX2_UUIDS[0:4], DGX2_UUIDS[8:10]
    objects = job_runner().build_objects(launch({"n1": a, "n2": b}, 6), "gpupool-w-70-abcde")
    for obj in objects:
        check_object(obj, DRA_VERSION)
    claims = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ResourceClaim"}
    jobs = [o for o in objects if o["kind"] == "Job"]
    assert [selected_uuids(claims[j["spec"]["template"]["spec"]["resourceClaims"][0]["resourceClaimName"]]["spec"])
            for j in jobs] == [(a, 4, "gpu.nvidia.com"), (b, 2, "gpu.nvidia.com")]
    assert [pod_env(j["spec"]["template"]["spec"])["RANK"] for j in jobs] == ["0", "1"]


@pytest.fixture
async def cluster(tmp_path):
    server = ApiServerStandIn()
    await server.start()
    config = dra_config()
    config.KubernetesJobRunner.kube_config_file = str(write_kubeconfig(tmp_path / "kubeconfig", server.url))
    config.KubernetesJobRunner.in_cluster = False
    config.KubernetesJobRunner.stop_poll_interval = 0.05
    runner = KubernetesJobRunner(namespace="jhub", config=config)
    yield runner, server.state
    await runner.close()
    await server.stop()


async def test_the_service_owns_a_jobs_claim_and_deletes_it_with_the_job(cluster):
    runner, state = cluster
    handle = await runner.start(launch({"dgx2-a": DGX2_UUIDS[:2]}, 2))
    ((plural, name), claim), = state.claims.items()
    (job,) = state.jobs.values()
    assert plural == "resourceclaims"
    # Owned by its Job: Kubernetes deletes it with the Job even if the service never gets to.
    assert claim["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"], "uid": job["metadata"]["uid"]}]
    await runner.stop(handle, grace_seconds=1)
    assert not state.claims and not state.jobs and not state.pods
    assert ("resourceclaims", name) in {(d.kind, d.name) for d in state.deletions}


async def test_jobs_on_fractions_of_one_card_join_its_shared_claim(cluster):
    runner, state = cluster
    card = {"dgx1-a": DGX2_UUIDS[3:4]}
    first = await runner.start(launch(card, 0.5, workload_id="w-81"))
    await runner.start(launch(card, 0.25, workload_id="w-82"))
    ((_, name), claim), = state.claims.items()
    owners = [o["name"] for o in claim["metadata"]["ownerReferences"]]
    assert len(owners) == 2 and len({o["uid"] for o in claim["metadata"]["ownerReferences"]}) == 2
    # Stopping one job leaves the card's claim to the other (Kubernetes deletes it with its last owner).
    await runner.stop(first, grace_seconds=1)
    assert ("resourceclaims", name) in state.claims
