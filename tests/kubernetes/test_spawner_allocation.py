"""GpuPoolKubeSpawner against the real pool service under a real JupyterHub.

The spawner takes its allocation exactly as the local one does (the same
mixin, the same queue, the same progress messages), then KubeSpawner builds
the pod for what the service allocated. There is no Kubernetes API server
here, so the pod is built and validated, not created.
"""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

import pytest
from k8s_manifests import check_object, pod_env
from kubernetes_asyncio.client import ApiClient
from traitlets.config import Config

from spawner.kubernetes import GpuPoolKubeSpawner
from spawner.pool_allocation import SpawnException
from tests.fixtures.hub import start_hub


def cards(node: str, n: int) -> list[dict]:
    return [{"uuid": f"GPU-{node}-{i}-6c1e4b7a-93d2", "model": "A100-40GB", "memory_mib": 40960} for i in range(n)]


# Declared as real cards ("simulated": False), as node agents would report them.
POOL = [
    {"name": "dgx-a", "gpus": cards("dgx-a", 2), "simulated": False},
    {"name": "dgx-b", "gpus": cards("dgx-b", 2), "simulated": False},
]
TEAMS = {"vision": {"quota": 2, "over_quota_weight": 1}, "nlp": {"quota": 2, "over_quota_weight": 1}}
USERS = {"alice": ["vision"], "bob": ["vision"], "carol": ["nlp"], "ada": []}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = start_hub(tmp_path_factory.mktemp("k8s-spawner-hub"), pool=POOL, teams=TEAMS, users=USERS)
    yield hub
    hub.stop()


def make_spawner(hub, user: str, c: Config | None = None) -> GpuPoolKubeSpawner:
    c = c or Config()
    c.GpuPoolKubeSpawner.pool_url = hub.service_url
    c.GpuPoolKubeSpawner.pool_token = hub.spawner_token
    c.GpuPoolKubeSpawner.max_whole_gpus = 4
    c.GpuPoolKubeSpawner.queue_poll_interval = 0.3
    c.GpuPoolKubeSpawner.events_enabled = False  # no cluster to watch events in
    hub_obj = SimpleNamespace(public_host="", url="http://hub:8081/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api")
    user_obj = SimpleNamespace(name=user, id=1, url=f"/user/{user}/", escaped_name=user, groups=[], settings={})
    return GpuPoolKubeSpawner(user=user_obj, hub=hub_obj, namespace="jhub", config=c)


async def pod_of(spawner: GpuPoolKubeSpawner) -> dict:
    pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    pod.update(apiVersion="v1", kind="Pod")
    check_object(pod)
    return pod


def running_gpus(hub, user: str) -> float:
    workloads = hub.client(token=hub.spawner_token).workloads(user=user)
    items = workloads.get("workloads", workloads) if isinstance(workloads, dict) else workloads
    return sum((w.get("allocation") or {}).get("gpus") or 0 for w in items if w["state"] == "running")


async def test_pod_gets_the_node_and_cards_the_service_allocated(hub):
    spawner = make_spawner(hub, "alice")
    spawner.user_options = {"gpus": "2"}
    await spawner.allocate_gpus()
    try:
        workload = hub.client(token=hub.spawner_token).workload(spawner.workload_id)
        shares = workload["allocation"]["shares"]
        pod = await pod_of(spawner)
        spec = pod["spec"]
        pin = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0]
        assert pin["values"] == [shares[0]["node"]]
        assert pod_env(spec)["NVIDIA_VISIBLE_DEVICES"].split(",") == [s["gpu_uuid"] for s in shares]
        assert running_gpus(hub, "alice") == 2
        # The spawn page's log: the pool's messages, then (on a cluster) the pod's events.
        messages = [e["message"] async for e in spawner.progress()]
        assert messages[-2].startswith("Got 2 GPUs") and "from the pool: " in messages[-2]
        assert messages[-1] == "Starting the server"
    finally:
        await spawner._release()
    assert running_gpus(hub, "alice") == 0


async def test_queued_spawn_shows_the_same_progress_and_starts_when_gpus_free(hub):
    holders = []
    for user in ("alice", "carol"):  # every card of the pool, each team within its quota
        s = make_spawner(hub, user)
        s.user_options = {"gpus": "2"}
        await s.allocate_gpus()
        holders.append(s)
    bob = make_spawner(hub, "bob")
    bob.user_options = {"gpus": "1"}
    waiting = asyncio.ensure_future(bob.allocate_gpus())
    try:
        messages = []

        async def read_progress():
            async for event in bob.progress():
                messages.append(event["message"])
                if "Queued" in event["message"]:
                    return

        await asyncio.wait_for(read_progress(), timeout=30)
        assert not waiting.done()
        queued = next(m for m in messages if "Queued" in m)
        assert "Queued for 1 GPU" in queued and "position 1 in the queue" in queued
        await holders[0]._release()  # alice stops her server: her team's GPUs go to bob
        await asyncio.wait_for(waiting, timeout=30)
        pod = await pod_of(bob)
        alice_cards = {g["uuid"] for g in cards("dgx-a", 2) + cards("dgx-b", 2)}
        assert pod_env(pod["spec"])["NVIDIA_VISIBLE_DEVICES"] in alice_cards
    finally:
        waiting.cancel()
        for s in holders + [bob]:
            await s._release()


async def test_a_session_never_spans_nodes(hub):
    spawner = make_spawner(hub, "alice")
    spawner.user_options = {"gpus": "4"}  # no node has 4 cards
    spawner.queue_timeout = 5
    with pytest.raises(SpawnException):
        await spawner.allocate_gpus()
    assert spawner.workload_id is None
    assert running_gpus(hub, "alice") == 0


async def test_fraction_pod_is_capped_at_its_share_of_the_card(hub):
    spawner = make_spawner(hub, "carol")
    spawner.gpu_placement.fraction_enforcement = "hami-core"
    spawner.user_options = {"gpus": "0.5"}
    await spawner.allocate_gpus()
    try:
        (share,) = hub.client(token=hub.spawner_token).workload(spawner.workload_id)["allocation"]["shares"]
        env = pod_env((await pod_of(spawner))["spec"])
        assert env["NVIDIA_VISIBLE_DEVICES"] == share["gpu_uuid"]
        # Half of a 40 GB card, whether the service states the share or the spawner derives it.
        assert env["CUDA_DEVICE_MEMORY_LIMIT"] == "20480m"
        assert env["CUDA_DEVICE_SM_LIMIT"] == "50"
    finally:
        await spawner._release()


def pod_event(pod: str, kind: str, reason: str, message: str, n: int) -> dict:
    return {"metadata": {"uid": f"ev-{n}"}, "involvedObject": {"kind": "Pod", "name": pod}, "type": kind, "reason": reason,
            "message": message, "lastTimestamp": f"2026-12-04T10:00:0{n}Z", "eventTime": None}


async def test_queued_spawn_has_no_pod_and_then_shows_the_pods_events_in_words(hub, monkeypatch):
    holders = []
    for user in ("alice", "carol"):  # every card of the pool
        s = make_spawner(hub, user)
        s.user_options = {"gpus": "2"}
        await s.allocate_gpus()
        holders.append(s)
    bob = make_spawner(hub, "bob")
    bob.events_enabled = True
    bob.user_options = {"gpus": "1"}
    # The events Kubernetes would send about bob's pod once it exists (no cluster here to watch).
    events = [
        pod_event(bob.pod_name, "Warning", "FailedScheduling",
                  "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.", 1),
        pod_event(bob.pod_name, "Normal", "Scheduled", f"Successfully assigned jhub/{bob.pod_name} to dgx-a", 2),
        pod_event(bob.pod_name, "Normal", "Pulling", 'Pulling image "quay.io/jupyter/base-notebook:latest"', 3),
        pod_event("jupyter-someone-else", "Normal", "Pulling", "not bob's", 4),
    ]
    monkeypatch.setitem(GpuPoolKubeSpawner.reflectors, bob._get_reflector_key("events"), SimpleNamespace(events=events))

    async def watching_events(replace=False):
        return None

    monkeypatch.setattr(bob, "_start_watching_events", watching_events)
    waiting = asyncio.ensure_future(bob.allocate_gpus())
    seen: list[dict] = []

    async def read_progress():
        async for event in bob.progress():
            seen.append(event)

    reader = asyncio.ensure_future(read_progress())
    try:
        await wait_until(lambda: any("Queued" in e["message"] for e in seen), 30)
        # While the pool holds the spawn in its queue, KubeSpawner has not begun to make a pod.
        assert not waiting.done() and bob._start_future is None
        await holders[0]._release()
        await asyncio.wait_for(waiting, timeout=30)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        bob._start_future = done  # the pod is up: KubeSpawner's progress reads its events once more and ends
        await asyncio.wait_for(reader, timeout=30)
    finally:
        waiting.cancel()
        reader.cancel()
        for s in holders + [bob]:
            await s._release()
    messages = [e["message"] for e in seen]
    got = next(i for i, m in enumerate(messages) if m.startswith("Got 1 GPU"))
    assert messages[got + 1:] == [
        "Starting the server",
        "Waiting for the pod to be placed: 0/3 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }.",
        f"The pod is placed on its node: Successfully assigned jhub/{bob.pod_name} to dgx-a",
        'Pulling the image: Pulling image "quay.io/jupyter/base-notebook:latest"',
    ]
    bar = [e["progress"] for e in seen if "progress" in e]
    assert bar == sorted(bar) and bar[-1] < 100  # the bar only moves on, from the pool's phases into the pod's


async def wait_until(predicate, timeout: float) -> None:
    """tests.fixtures.waiting.wait_for, for a test whose event loop must keep running meanwhile."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_dra_session_claim_comes_before_its_pod_is_owned_by_it_and_goes_with_the_server(hub):
    from apiserver_standin import ApiServerStandIn

    server = ApiServerStandIn()
    await server.start()
    c = Config()
    c.KubeSpawner.k8s_api_host = server.url  # KubeSpawner's client talks to the stand-in
    c.KubernetesGpuPlacement.device_list_strategy = "dra"
    spawner = make_spawner(hub, "alice", c)
    spawner.user_options = {"gpus": "2"}
    try:
        await spawner.allocate_gpus()
        shares = hub.client(token=hub.spawner_token).workload(spawner.workload_id)["allocation"]["shares"]
        await asyncio.wait_for(spawner.start(), timeout=60)
        state = server.state
        (pod,) = state.pods.values()
        ((_, name), claim), = state.claims.items()
        assert pod["spec"]["resourceClaims"] == [{"name": "gpupool-gpus", "resourceClaimName": name}]
        expression = claim["spec"]["devices"]["requests"][0]["exactly"]["selectors"][0]["cel"]["expression"]
        assert sorted(re.findall(r"'(GPU-[^']+)'", expression)) == sorted(s["gpu_uuid"] for s in shares)
        # Owned by the pod: Kubernetes deletes it with the pod even if the hub is gone.
        assert claim["metadata"]["ownerReferences"] == [
            {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}]
        await asyncio.wait_for(spawner.stop(), timeout=60)
        assert not state.claims and running_gpus(hub, "alice") == 0
        assert ("resourceclaims", name) in {(d.kind, d.name) for d in state.deletions}
    finally:
        await spawner._release()
        for key, reflector in list(GpuPoolKubeSpawner.reflectors.items()):
            await reflector.stop()  # the class keeps them; this test's loop ends here
            GpuPoolKubeSpawner.reflectors.pop(key, None)
        await server.stop()
