"""How a pod on Kubernetes gets exactly the GPUs the pool allocated.

Both the hub's spawner (notebook sessions) and the service's Kubernetes job
runner (batch jobs) build pods on pool GPUs, and they must build them the same
way, so the placement lives here, outside both: the spawner imports it without
importing the service.

``KubernetesGpuPlacement`` turns an allocation (a node, GPU UUIDs, maybe a
fraction) into the parts of a pod that pin it there (``PodGpus``): node
affinity on the node's name, a toleration of the pool's taint, the GPUs
themselves, and for fractions the memory enforcement the nodes offer.

The pool, not the NVIDIA device plugin, decides which GPUs a pod gets. The
GPUs reach the pod in one of two ways (``device_list_strategy``):

- through the NVIDIA container toolkit (``envvar``, ``volume-mounts``): pool
  nodes carry a label and a taint the pool owns, the device plugin does not
  advertise ``nvidia.com/gpu`` on them, and pods name their GPUs by UUID;
- through Dynamic Resource Allocation (``dra``, Kubernetes 1.34+ and the
  NVIDIA DRA driver): a ResourceClaim selects exactly the allocated cards by
  UUID, and the scheduler, the kubelet and the driver give the pod those.

docs/kubernetes.md says why, and the trade-offs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from traitlets import Dict, Enum, Unicode
from traitlets.config import LoggingConfigurable

# Label keys the pool owns on the objects it creates.
LABEL_WORKLOAD = "gpupool.io/workload"
LABEL_JOB_SET = "gpupool.io/job-set"
LABEL_RANK = "gpupool.io/rank"
LABEL_USER = "gpupool.io/user"
MANAGED_BY = {"app.kubernetes.io/managed-by": "gpupool"}


def dns_label(text: str, limit: int = 63) -> str:
    """``text`` as a DNS-1123 label (object names, label values): lowercase, [a-z0-9-]."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return label[:limit].rstrip("-") or "x"


def label_value(text: str) -> str:
    """``text`` as a label value: [A-Za-z0-9._-], at most 63, alphanumeric at both ends."""
    value = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:63]
    return value.strip("._-") or "x"


def is_gpu_uuid(identifier: str) -> bool:
    """Real GPUs are named by UUID (``GPU-…``, ``MIG-…``); simulated ones by index (or ``GPU-sim-…``)."""
    return identifier.startswith(("GPU-", "MIG-")) and not identifier.startswith("GPU-sim-")


@dataclass
class PodGpus:
    """The parts of a pod that give it its GPUs (plain Kubernetes API dicts)."""

    env: dict[str, str] = field(default_factory=dict)
    node_name: str | None = None  # pinned to this node (None: anywhere off the pool)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    volume_mounts: list[dict] = field(default_factory=list)
    runtime_class_name: str | None = None
    host_ipc: bool = False
    # Dynamic Resource Allocation: the ResourceClaim ``spec`` that selects exactly these cards
    # (None: the toolkit modes). ``claim_shared``: one claim per card, shared by every workload
    # on a fraction of it (a device is allocated to one claim; pods may share a claim).
    claim_spec: dict | None = None
    claim_shared: bool = False
    claim_uuids: tuple[str, ...] = ()

    def node_affinity_term(self) -> dict | None:
        """A required node-selector term on the node's name (``metadata.name`` is the one field Kubernetes matches)."""
        if not self.node_name:
            return None
        return {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [self.node_name]}]}

    def claim_name(self, own_name: str) -> str | None:
        """Name of the ResourceClaim this pod uses: ``own_name`` (a workload's own), or the
        card's shared claim for a fraction; None without a claim."""
        if self.claim_spec is None:
            return None
        if self.claim_shared:
            return dns_label(f"gpupool-card-{self.claim_uuids[0]}", limit=253)
        return own_name

    def pod_resource_claims(self, claim_name: str) -> list[dict]:
        """``spec.resourceClaims`` of the pod (empty without a claim)."""
        if self.claim_spec is None:
            return []
        return [{"name": DRA_POD_CLAIM, "resourceClaimName": claim_name}]

    def container_claims(self) -> list[dict]:
        """``resources.claims`` of the container that uses the GPUs (empty without a claim)."""
        return [{"name": DRA_POD_CLAIM}] if self.claim_spec is not None else []

    def claim_object(self, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict:
        """The ResourceClaim named ``name`` (resource.k8s.io/v1)."""
        assert self.claim_spec is not None, "no claim in the toolkit modes"
        return {
            "apiVersion": f"{DRA_GROUP}/{DRA_VERSION}",
            "kind": "ResourceClaim",
            "metadata": {"name": name, "labels": dict(labels), "annotations": dict(annotations or {})},
            "spec": self.claim_spec,
        }


# Dynamic Resource Allocation (resource.k8s.io/v1, GA in Kubernetes 1.34).
DRA_GROUP = "resource.k8s.io"
DRA_VERSION = "v1"
DRA_PLURAL = "resourceclaims"
DRA_TEMPLATE_PLURAL = "resourceclaimtemplates"
# The pod's name for its claim (spec.resourceClaims[].name, container resources.claims[].name).
DRA_POD_CLAIM = "gpupool-gpus"
# The NVIDIA DRA driver's attribute domain (its driver name).
NVIDIA_DRA_DOMAIN = "gpu.nvidia.com"


def dra_gpu_selector(uuids, domain: str = NVIDIA_DRA_DOMAIN) -> str:
    """A CEL device selector matching exactly the GPUs ``uuids`` of the NVIDIA DRA driver
    (its devices carry ``type`` "gpu" and the card's ``uuid`` under the driver's domain)."""
    quoted = ", ".join("'" + re.sub(r"[^A-Za-z0-9-]", "", u) + "'" for u in uuids)
    return f"device.attributes['{domain}'].type == 'gpu' && device.attributes['{domain}'].uuid in [{quoted}]"


def dra_claim_spec(uuids, count: int, device_class_name: str, domain: str = NVIDIA_DRA_DOMAIN) -> dict:
    """The ``spec`` of a ResourceClaim (or of a template's claim) for ``count`` of the cards ``uuids``:
    exactly those cards when ``count`` is their number; on a gang, one node's share of them."""
    return {
        "devices": {
            "requests": [
                {
                    "name": "gpus",
                    "exactly": {
                        "deviceClassName": device_class_name,
                        "allocationMode": "ExactCount",
                        "count": int(count),
                        "selectors": [{"cel": {"expression": dra_gpu_selector(uuids, domain)}}],
                    },
                }
            ]
        }
    }


class KubernetesGpuPlacement(LoggingConfigurable):
    """How a pod on Kubernetes gets exactly the GPUs the pool allocated.

    Used by the Kubernetes spawner (sessions) and the Kubernetes job runner
    (batch jobs); configure it once as ``c.KubernetesGpuPlacement``.
    """

    pool_node_label = Dict(
        {"gpupool.io/pool": "true"},
        help="""Label every pool GPU node carries; pods on pool GPUs select it. The pool owns these
        nodes' GPUs: the NVIDIA device plugin must not advertise nvidia.com/gpu on them.""",
    ).tag(config=True)

    pool_taint = Dict(
        {"key": "gpupool.io/pool", "value": "true", "effect": "NoSchedule"},
        help="""Taint on every pool GPU node (key, value, effect). Only pods the pool placed tolerate
        it, so nothing else lands on the pool's GPUs; an empty dict means the nodes are not tainted.""",
    ).tag(config=True)

    runtime_class_name = Unicode(
        "nvidia",
        allow_none=True,
        help="""RuntimeClass that runs containers through the NVIDIA container toolkit ("nvidia" with
        the GPU operator). None where the nvidia runtime is the node's default.""",
    ).tag(config=True)

    device_list_strategy = Enum(
        ["envvar", "volume-mounts", "dra"],
        "envvar",
        help="""How a container gets the GPUs the pool allocated.
        "envvar": NVIDIA_VISIBLE_DEVICES holds the GPU UUIDs (the container toolkit's default).
        "volume-mounts": one /dev/null mount per GPU under /var/run/nvidia-container-devices, for
        toolkits set to accept-nvidia-visible-devices-as-volume-mounts = true and
        accept-nvidia-visible-devices-envvar-when-unprivileged = false (needs hostPath volumes).
        "dra": Dynamic Resource Allocation (Kubernetes 1.34+, resource.k8s.io/v1) with the NVIDIA
        DRA driver on the pool nodes: a ResourceClaim selects exactly the allocated cards by UUID
        (CEL on the driver's device attributes) and the pod references it.""",
    ).tag(config=True)

    dra_device_class_name = Unicode(
        "gpu.nvidia.com",
        help="""DeviceClass of whole GPUs that the NVIDIA DRA driver installs (device_list_strategy "dra").""",
    ).tag(config=True)

    dra_attribute_domain = Unicode(
        NVIDIA_DRA_DOMAIN,
        help="""Domain of the DRA driver's device attributes (``device.attributes[domain].uuid``).""",
    ).tag(config=True)

    fraction_enforcement = Enum(
        ["none", "hami-core", "mps"],
        "none",
        help="""How a workload on a fraction of a card is held to its share.
        "hami-core": HAMi-core's libvgpu.so (installed on every pool node at hami_core_library) is
        preloaded and caps device memory and SM share. "mps": an NVIDIA MPS control daemon runs on
        every pool node (pipe directory mps_pipe_directory) and caps memory and threads.
        "none": nothing enforces the share; it is recorded in the environment (GPUPOOL_GPU_FRACTION,
        GPUPOOL_GPU_MEMORY_MIB) and framework hints keep JAX/TensorFlow from taking the whole card.""",
    ).tag(config=True)

    hami_core_library = Unicode(
        "/usr/local/vgpu/libvgpu.so",
        help="Path of HAMi-core's libvgpu.so on the pool nodes (mounted at the same path in pods).",
    ).tag(config=True)

    hami_core_lock_directory = Unicode(
        "/tmp/vgpulock",
        help="Host directory HAMi-core uses to coordinate processes sharing a card.",
    ).tag(config=True)

    mps_pipe_directory = Unicode(
        "/tmp/nvidia-mps",
        help="CUDA_MPS_PIPE_DIRECTORY of the MPS control daemon on the pool nodes (mounted into pods).",
    ).tag(config=True)

    driver_capabilities = Unicode(
        "compute,utility",
        help="NVIDIA_DRIVER_CAPABILITIES of pods on pool GPUs (utility: nvidia-smi works inside).",
    ).tag(config=True)

    def without_gpus(self) -> PodGpus:
        """A pod with no GPUs: kept off the pool's nodes, and blind to GPUs wherever it lands
        (a CUDA image sets NVIDIA_VISIBLE_DEVICES=all, and nvidia may be a node's default runtime)."""
        return PodGpus(env={"NVIDIA_VISIBLE_DEVICES": "void", "CUDA_VISIBLE_DEVICES": ""})

    def for_gpus(
        self,
        node: str,
        gpu_ids: list[str] | tuple[str, ...],
        *,
        real: bool | None = None,
        fraction: float | None = None,
        memory_mib: int | None = None,
    ) -> PodGpus:
        """The pod parts for ``gpu_ids`` (UUIDs, or indices of a simulated pool) on ``node``.

        ``real``: whether the ids are cards present on the node (None: tell by their form).
        ``fraction`` < 1 means one shared card; ``memory_mib`` is its memory share.
        """
        if not gpu_ids:
            raise ValueError(f"no GPUs given for node {node}")
        parts = PodGpus(node_name=node, node_selector=dict(self.pool_node_label))
        if self.pool_taint:
            toleration = {"key": self.pool_taint["key"], "operator": "Equal", "effect": self.pool_taint.get("effect", "NoSchedule")}
            if self.pool_taint.get("value") is not None:
                toleration["value"] = str(self.pool_taint["value"])
            else:
                toleration["operator"] = "Exists"
            parts.tolerations.append(toleration)
        if real is None:
            real = all(is_gpu_uuid(g) for g in gpu_ids)
        if not real:
            # A declared (simulated) pool: there is no card to give, so give none.
            parts.env.update({"NVIDIA_VISIBLE_DEVICES": "void", "GPUPOOL_SIMULATED_GPUS": ",".join(gpu_ids)})
            self._fraction_hints(parts, fraction, memory_mib, enforce=False)
            return parts
        parts.env["NVIDIA_DRIVER_CAPABILITIES"] = self.driver_capabilities
        if self.device_list_strategy == "dra":
            self._dra(parts, [str(g) for g in gpu_ids], fraction)
            self._fraction_hints(parts, fraction, memory_mib, enforce=True)
            return parts
        parts.runtime_class_name = self.runtime_class_name or None
        # The toolkit takes UUIDs or the node's NVML indices (the pool's indices come from NVML).
        devices = [str(g) for g in gpu_ids]
        if self.device_list_strategy == "envvar":
            parts.env["NVIDIA_VISIBLE_DEVICES"] = ",".join(devices)
        else:
            parts.env["NVIDIA_VISIBLE_DEVICES"] = "/var/run/nvidia-container-devices"
            for i, device in enumerate(devices):
                name = f"gpupool-gpu-{i}"
                parts.volumes.append({"name": name, "hostPath": {"path": "/dev/null"}})
                parts.volume_mounts.append(
                    {"name": name, "mountPath": f"/var/run/nvidia-container-devices/{device}", "readOnly": True}
                )
        # Inside the container the toolkit shows only these cards, numbered from 0; CUDA
        # knows them by UUID as well, but host indices would name the wrong cards.
        if all(is_gpu_uuid(d) for d in devices):
            parts.env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        else:
            parts.env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(devices)))
        self._fraction_hints(parts, fraction, memory_mib, enforce=True)
        return parts

    def _dra(self, parts: PodGpus, uuids: list[str], fraction: float | None) -> None:
        """The cards through a ResourceClaim: the scheduler allocates exactly these UUIDs and the
        driver gives them to the container (CDI); no runtime class, no NVIDIA_VISIBLE_DEVICES."""
        if not all(is_gpu_uuid(u) for u in uuids):
            raise ValueError(f"Dynamic Resource Allocation selects cards by UUID; got {uuids}")
        parts.claim_uuids = tuple(uuids)
        parts.claim_shared = fraction is not None and 0 < fraction < 1
        parts.claim_spec = self.claim_spec_for(uuids, len(uuids))
        # The driver's CDI edits give the cards; the toolkit's legacy hook (a CUDA image sets
        # NVIDIA_VISIBLE_DEVICES=all) must give none besides them.
        parts.env["NVIDIA_VISIBLE_DEVICES"] = "void"
        self.set_claimed_count(parts, len(uuids))

    def set_claimed_count(self, parts: PodGpus, count: int) -> None:
        """The container sees only its ``count`` claimed cards, which CUDA numbers from 0 (host
        indices or other nodes' UUIDs, as on a gang's one template, would name no card)."""
        parts.claim_spec = self.claim_spec_for(parts.claim_uuids, count)
        parts.env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(count))

    def claim_spec_for(self, uuids, count: int) -> dict:
        """A ResourceClaim ``spec`` for ``count`` of the cards ``uuids`` (see ``dra_claim_spec``)."""
        return dra_claim_spec(uuids, count, self.dra_device_class_name, self.dra_attribute_domain)

    def _fraction_hints(self, parts: PodGpus, fraction: float | None, memory_mib: int | None, enforce: bool) -> None:
        if fraction is None or not 0 < fraction < 1:
            return
        env = parts.env
        env["GPUPOOL_GPU_FRACTION"] = f"{fraction:g}"
        if memory_mib:
            env["GPUPOOL_GPU_MEMORY_MIB"] = str(int(memory_mib))
        # Both frameworks grab (most of) a card's memory at start by default,
        # which on a shared card starves the neighbours.
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        percent = max(1, int(round(fraction * 100)))
        mode = self.fraction_enforcement if enforce else "none"
        if mode != "hami-core":
            # HAMi-core makes the card look as big as the share; elsewhere JAX sees the whole card.
            env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{fraction:.2f}"
        env["GPUPOOL_GPU_ENFORCEMENT"] = mode
        if mode == "hami-core":
            env["LD_PRELOAD"] = self.hami_core_library
            env["CUDA_DEVICE_SM_LIMIT"] = str(percent)
            if memory_mib:
                env["CUDA_DEVICE_MEMORY_LIMIT"] = f"{int(memory_mib)}m"
            env["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = "/tmp/vgpu/gpupool.cache"
            # type File: a node without the library fails the pod visibly instead of running unenforced.
            parts.volumes += [
                {"name": "gpupool-hami-core", "hostPath": {"path": self.hami_core_library, "type": "File"}},
                {"name": "gpupool-hami-lock", "hostPath": {"path": self.hami_core_lock_directory, "type": "DirectoryOrCreate"}},
            ]
            parts.volume_mounts += [
                {"name": "gpupool-hami-core", "mountPath": self.hami_core_library, "readOnly": True},
                {"name": "gpupool-hami-lock", "mountPath": self.hami_core_lock_directory},
            ]
        elif mode == "mps":
            env["CUDA_MPS_PIPE_DIRECTORY"] = self.mps_pipe_directory
            env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = str(percent)
            if memory_mib:
                # Device 0 is the one card the container sees.
                env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = f"0={int(memory_mib)}M"
            parts.host_ipc = True  # MPS clients share memory with the node's daemon
            parts.volumes.append({"name": "gpupool-mps", "hostPath": {"path": self.mps_pipe_directory, "type": "Directory"}})
            parts.volume_mounts.append({"name": "gpupool-mps", "mountPath": self.mps_pipe_directory})


# ---------------------------------------------------------------- claims on the API server


def owner_reference(obj: dict) -> dict:
    """An ownerReference to the created object ``obj`` (its kind, name and uid)."""
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "uid": meta["uid"]}


async def ensure_claim(api_client, namespace: str, claim: dict, owner: dict | None = None) -> None:
    """Create ``claim`` (a ResourceClaim or ResourceClaimTemplate) owned by ``owner``.

    Kubernetes deletes an object once every owner is gone, so a workload's claim
    goes with its pod or Job even where the pool never gets to delete it. A card's
    shared claim (fractions) may exist already: then ``owner`` joins its owners.
    """
    from kubernetes_asyncio.client import CustomObjectsApi
    from kubernetes_asyncio.client.exceptions import ApiException

    custom = CustomObjectsApi(api_client)
    plural = DRA_PLURAL if claim["kind"] == "ResourceClaim" else DRA_TEMPLATE_PLURAL
    name = claim["metadata"]["name"]
    body = {**claim, "metadata": {**claim["metadata"], "namespace": namespace}}
    if owner is not None:
        body["metadata"]["ownerReferences"] = [owner]
    for _ in range(5):
        try:
            await custom.create_namespaced_custom_object(DRA_GROUP, DRA_VERSION, namespace, plural, body)
            return
        except ApiException as e:
            if e.status != 409:
                raise
        if owner is None:
            return
        try:
            live = await custom.get_namespaced_custom_object(DRA_GROUP, DRA_VERSION, namespace, plural, name)
        except ApiException as e:
            if e.status == 404:  # its last owner went meanwhile: create it again
                continue
            raise
        owners = live["metadata"].get("ownerReferences") or []
        if any(o.get("uid") == owner["uid"] for o in owners):
            return
        live["metadata"]["ownerReferences"] = [*owners, owner]
        try:
            await custom.replace_namespaced_custom_object(DRA_GROUP, DRA_VERSION, namespace, plural, name, live)
            return
        except ApiException as e:
            if e.status not in (404, 409):  # gone, or changed meanwhile: look again
                raise
    raise RuntimeError(f"could not create or join the ResourceClaim {namespace}/{name}")


async def delete_claims(api_client, namespace: str, label_selector: str) -> None:
    """Delete the ResourceClaims and ResourceClaimTemplates with ``label_selector``."""
    from kubernetes_asyncio.client import CustomObjectsApi
    from kubernetes_asyncio.client.exceptions import ApiException

    custom = CustomObjectsApi(api_client)
    for plural in (DRA_PLURAL, DRA_TEMPLATE_PLURAL):
        listing = await custom.list_namespaced_custom_object(DRA_GROUP, DRA_VERSION, namespace, plural, label_selector=label_selector)
        for item in listing.get("items") or []:
            try:
                await custom.delete_namespaced_custom_object(DRA_GROUP, DRA_VERSION, namespace, plural, item["metadata"]["name"])
            except ApiException as e:
                if e.status != 404:
                    raise
