"""A KubeSpawner whose notebook pods hold GPUs from the pool.

``GpuPoolKubeSpawner`` is KubeSpawner behind ``PoolAllocationMixin``: the same
spawn form, the same queue and the same progress messages as the local
spawners. Once the pool has allocated GPUs, the pod is built by KubeSpawner as
usual and then pinned to the allocated node with exactly the allocated cards
(``KubernetesGpuPlacement``, shared with the Kubernetes job runner so sessions
and batch jobs reach their GPUs the same way):

- node affinity on the node's name, the pool's node label, and a toleration of
  the pool's taint;
- the GPUs by UUID through the NVIDIA container toolkit (``NVIDIA_VISIBLE_DEVICES``
  or its volume-mount list), never ``nvidia.com/gpu`` requests: on pool nodes the
  pool, not the device plugin, hands out cards;
- for a fraction, the memory enforcement the nodes offer (HAMi-core or MPS),
  or only the recorded share and framework hints where they offer none;
- a server without GPUs gets ``NVIDIA_VISIBLE_DEVICES=void`` and is kept off the
  pool's nodes by their taint;
- with Dynamic Resource Allocation (``device_list_strategy = "dra"``), a
  ResourceClaim selecting exactly the allocated cards by UUID, created before
  the pod and owned by it (Kubernetes deletes it with the pod; the spawner
  deletes it when the server stops).

While the pool holds a spawn in its queue no pod exists; once it has GPUs, the
pod's events (scheduling, image pulls, failures) reach the spawn page in words.

docs/kubernetes.md explains the choices.
"""

from __future__ import annotations

import asyncio

from kubernetes_asyncio.client.models import (
    V1PodResourceClaim,
    V1ResourceRequirements,
    V1Affinity,
    V1NodeAffinity,
    V1NodeSelector,
    V1NodeSelectorRequirement,
    V1NodeSelectorTerm,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)
from kubespawner import KubeSpawner
from kubespawner.utils import get_k8s_model

from hub_ext.client import PoolError
from hub_ext.kube_placement import (
    DRA_GROUP,
    DRA_PLURAL,
    DRA_VERSION,
    LABEL_WORKLOAD,
    MANAGED_BY,
    KubernetesGpuPlacement,
    PodGpus,
    dns_label,
    ensure_claim,
    label_value,
    owner_reference,
)

from .pool_allocation import PROGRESS_STARTING, PoolAllocationMixin, SpawnException, iter_pool_gpus


class GpuPoolKubeSpawner(PoolAllocationMixin, KubeSpawner):
    """KubeSpawner whose pods run on the node and GPUs the gpupool pool allocated.

    GPU placement is configured on ``c.KubernetesGpuPlacement`` (shared with the
    job runner); ``PoolAllocationMixin.mps_enabled`` is not used here:
    ``KubernetesGpuPlacement.fraction_enforcement = "mps"`` is its Kubernetes form.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gpu_placement = KubernetesGpuPlacement(parent=self)
        self._card_memory_mib: dict[str, int] = {}
        self._allocation_done = asyncio.Event()

    # ------------------------------------------------------------ allocation

    async def allocate_gpus(self) -> None:
        self._allocation_done.clear()
        try:
            await self._allocate_on_one_node()
        finally:
            self._allocation_done.set()

    async def _allocate_on_one_node(self) -> None:
        await super().allocate_gpus()
        shares = self._shares()
        nodes = list(dict.fromkeys(str(s.get("node")) for s in shares))
        if len(nodes) > 1:
            # A pod lives on one node; a session split across nodes cannot run.
            await self._release()
            raise SpawnException(
                f"The pool placed this server's GPUs on several nodes ({', '.join(nodes)}); "
                "a notebook server runs on one node. Ask for fewer GPUs.",
                reason="gpupool-multi-node",
            )
        if self._is_fraction(shares) and not shares[0].get("memory_mib"):
            await self._learn_card_memory()

    async def _learn_card_memory(self) -> None:
        try:
            pool = await self._pool_client().pool()
        except PoolError as e:
            self.log.warning("%s: could not read card memory from the pool (%s)", self._log_name, e)
            return
        self._card_memory_mib = {
            str(g.get("uuid")): int(g["memory_mib"]) for g in iter_pool_gpus(pool) if g.get("memory_mib")
        }

    def _shares(self) -> list[dict]:
        if not self.workload_id:
            return []
        return list((self.allocation or {}).get("shares") or [])

    @staticmethod
    def _is_fraction(shares: list[dict]) -> bool:
        return len(shares) == 1 and float(shares[0].get("fraction") or 1.0) < 1

    def pod_gpus(self) -> PodGpus:
        """What this server's pod needs for its allocation (or for having none)."""
        shares = self._shares()
        if not shares:
            return self.gpu_placement.without_gpus()
        known = [(self._gpu_uuids_real or {}).get(s.get("gpu_uuid")) for s in shares]
        # Unknown (restored after a hub restart, or the pool could not be read): tell real cards by their UUIDs.
        real = None if any(k is None for k in known) else all(known)
        ids = [str(s.get("index")) if real is False else str(s.get("gpu_uuid")) for s in shares]
        fraction = memory = None
        if self._is_fraction(shares):
            share = shares[0]
            fraction = float(share["fraction"])
            memory = share.get("memory_mib")
            if not memory and share.get("gpu_uuid") in self._card_memory_mib:
                memory = int(self._card_memory_mib[share["gpu_uuid"]] * fraction)
        return self.gpu_placement.for_gpus(str(shares[0].get("node")), ids, real=real, fraction=fraction, memory_mib=memory)

    # ------------------------------------------------------------ progress

    async def progress(self):
        """The pool's events (queue, allocation), then KubeSpawner's (scheduling, image pull, start)."""
        sent = 0
        while True:
            events = getattr(self, "_progress_events", None) or []
            while sent < len(events):
                yield events[sent]
                sent += 1
            if self._allocation_done.is_set():
                break
            await asyncio.sleep(0.3)
        async for event in KubeSpawner.progress(self):
            # KubeSpawner counts from 0; the pool's phases took the bar to PROGRESS_STARTING.
            if "progress" in event:
                event = {**event, "progress": PROGRESS_STARTING + (100 - PROGRESS_STARTING) * event["progress"] / 100}
            if "raw_event" in event:
                event = {**event, "message": pod_event_words(event["raw_event"])}
            yield event

    # ------------------------------------------------------------ the claim (DRA)

    def claim_name(self, gpus: PodGpus | None = None) -> str | None:
        """The ResourceClaim of this server's pod (None without one): its own, named after the
        pod and the workload (a new allocation never meets an old claim), or its card's shared one."""
        gpus = gpus or self.pod_gpus()
        if not self.workload_id:
            return None
        return gpus.claim_name(dns_label(f"{self.pod_name}-{self.workload_id}", limit=253))

    def claim_manifest(self) -> dict | None:
        gpus = self.pod_gpus()
        name = self.claim_name(gpus)
        if name is None:
            return None
        labels = {**MANAGED_BY, LABEL_WORKLOAD: label_value(self.workload_id), "gpupool.io/user": label_value(self.user.name)}
        if gpus.claim_shared:
            labels = {**MANAGED_BY, "gpupool.io/shared-card": "true"}
        return gpus.claim_object(name, labels, {"gpupool.io/workload-id": self.workload_id})

    async def start(self):
        claim = self.claim_manifest()
        if claim is None:
            return await super().start()
        api = self.api.api_client
        # Before the pod: the scheduler places a pod only once its claims exist.
        await ensure_claim(api, self.namespace, claim)
        try:
            result = await super().start()
        except BaseException:
            await asyncio.shield(self._delete_claim(claim))
            raise
        try:
            pod = await self.api.read_namespaced_pod(self.pod_name, self.namespace)
            # Owned by the pod: Kubernetes deletes the claim with it, whatever happens to the hub.
            owner = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod.metadata.name, "uid": pod.metadata.uid}}
            await ensure_claim(api, self.namespace, claim, owner_reference(owner))
        except Exception:
            self.log.exception("%s: could not make the pod own its ResourceClaim", self._log_name)
        return result

    async def stop(self, now=False):
        try:
            claim = self.claim_manifest() if self.workload_id else None
        except ValueError:  # nothing to delete that this spawner could name; the pod owns it
            claim = None
        try:
            await super().stop(now=now)
        finally:
            if claim is not None:
                await self._delete_claim(claim)

    async def _delete_claim(self, claim: dict) -> None:
        """Delete this server's own claim (a card's shared claim goes with its last owner)."""
        from kubernetes_asyncio.client import CustomObjectsApi
        from kubernetes_asyncio.client.exceptions import ApiException

        if claim["metadata"]["labels"].get("gpupool.io/shared-card"):
            return
        try:
            await CustomObjectsApi(self.api.api_client).delete_namespaced_custom_object(
                DRA_GROUP, DRA_VERSION, self.namespace, DRA_PLURAL, claim["metadata"]["name"]
            )
        except ApiException as e:
            if e.status != 404:
                self.log.warning("%s: could not delete ResourceClaim %s: %s", self._log_name, claim["metadata"]["name"], e)

    # ------------------------------------------------------------ the pod

    def get_env(self):
        env = super().get_env()
        # The pool's variables go in last, so a server cannot be started on other GPUs.
        env.update(self.allocation_env())
        env.update(self.pod_gpus().env)
        return env

    async def get_pod_manifest(self):
        pod = await super().get_pod_manifest()
        gpus = self.pod_gpus()
        spec = pod.spec
        if self.workload_id:
            pod.metadata.labels = {**(pod.metadata.labels or {}), LABEL_WORKLOAD: label_value(self.workload_id)}
            pod.metadata.annotations = {**(pod.metadata.annotations or {}), "gpupool.io/workload-id": self.workload_id}
        if gpus.node_selector:
            spec.node_selector = {**(spec.node_selector or {}), **gpus.node_selector}
        if gpus.node_name:
            _require_node(spec, gpus.node_name)
        if gpus.tolerations:
            spec.tolerations = list(spec.tolerations or []) + [get_k8s_model(V1Toleration, t) for t in gpus.tolerations]
        if gpus.volumes:
            spec.volumes = list(spec.volumes or []) + [get_k8s_model(V1Volume, v) for v in gpus.volumes]
            notebook = spec.containers[0]
            notebook.volume_mounts = list(notebook.volume_mounts or []) + [
                get_k8s_model(V1VolumeMount, m) for m in gpus.volume_mounts
            ]
        if gpus.runtime_class_name:
            spec.runtime_class_name = gpus.runtime_class_name
        if gpus.host_ipc:
            spec.host_ipc = True
        claim = self.claim_name(gpus)
        if claim is not None:
            spec.resource_claims = list(spec.resource_claims or []) + [
                get_k8s_model(V1PodResourceClaim, c) for c in gpus.pod_resource_claims(claim)
            ]
            _add_container_claims(spec.containers[0], gpus.container_claims())
        return pod

    # ------------------------------------------------------------ the form

    async def get_options_form(self):
        if self.options_form or self.profile_list:  # an admin's own form wins
            return await super().get_options_form()
        return await self.gpu_options_form()


def _add_container_claims(container, claims: list[dict]) -> None:
    """Add ``claims`` to the container's ``resources``, keeping what is there: KubeSpawner's
    ``extra_container_config`` may have replaced the whole block (as a model or a plain dict)."""
    resources = container.resources
    if resources is None:
        resources = V1ResourceRequirements()
    elif isinstance(resources, dict):
        resources = get_k8s_model(V1ResourceRequirements, resources)
    claim_type = V1ResourceRequirements.openapi_types["claims"][len("list["):-1]
    from kubernetes_asyncio import client

    model = getattr(client, claim_type)
    resources.claims = list(resources.claims or []) + [get_k8s_model(model, c) for c in claims]
    container.resources = resources


# What a pod's events mean, for the spawn page (KubeSpawner shows the raw event text).
_EVENT_WORDS = {
    "Scheduled": "The pod is placed on its node",
    "FailedScheduling": "Waiting for the pod to be placed",
    "Pulling": "Pulling the image",
    "Pulled": "The image is here",
    "Created": "Created the container",
    "Started": "Started the server",
    "BackOff": "The container keeps failing",
    "Failed": "The pod failed",
    "FailedMount": "A volume could not be mounted",
    "FailedCreatePodSandBox": "The node could not set the pod up",
    "FailedPrepareDynamicResources": "The node could not prepare the pod's GPUs",
    "Killing": "Stopping the container",
}


def pod_event_words(event: dict) -> str:
    """A pod event in words for the spawn page: what it means, then what Kubernetes said."""
    reason = event.get("reason") or ""
    message = (event.get("message") or "").strip()
    words = _EVENT_WORDS.get(reason)
    if words is None:
        words = reason or "Kubernetes"
    if event.get("type") == "Warning" and reason not in ("FailedScheduling",):
        words = f"{words} (warning)"
    return f"{words}: {message}" if message else words


def _require_node(spec, node_name: str) -> None:
    """Pin ``spec`` to ``node_name``, ANDed with any required node affinity the admin set."""
    pin = V1NodeSelectorRequirement(key="metadata.name", operator="In", values=[node_name])
    affinity = spec.affinity or V1Affinity()
    node_affinity = affinity.node_affinity or V1NodeAffinity()
    required = node_affinity.required_during_scheduling_ignored_during_execution
    if required is None or not required.node_selector_terms:
        required = V1NodeSelector(node_selector_terms=[V1NodeSelectorTerm(match_fields=[pin])])
    else:
        # Terms are ORed: the pin goes into every one of them.
        terms = []
        for term in required.node_selector_terms:
            term = get_k8s_model(V1NodeSelectorTerm, term)
            term.match_fields = list(term.match_fields or []) + [pin]
            terms.append(term)
        required.node_selector_terms = terms
    node_affinity.required_during_scheduling_ignored_during_execution = required
    affinity.node_affinity = node_affinity
    spec.affinity = affinity
