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
  pool's nodes by their taint.

docs/kubernetes.md explains the choices.
"""

from __future__ import annotations

import asyncio

from kubernetes_asyncio.client.models import (
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
from hub_ext.kube_placement import LABEL_WORKLOAD, KubernetesGpuPlacement, PodGpus, label_value

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
            yield event

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
        return pod

    # ------------------------------------------------------------ the form

    async def get_options_form(self):
        if self.options_form or self.profile_list:  # an admin's own form wins
            return await super().get_options_form()
        return await self.gpu_options_form()


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
