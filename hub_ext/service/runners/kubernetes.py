"""Batch jobs as Kubernetes Jobs, and how any pod gets the GPUs the pool gave it.

Two pieces live here because both the service (batch jobs) and the hub's
spawner (notebook sessions) build pods on pool GPUs, and they must build them
the same way:

``KubernetesGpuPlacement`` turns an allocation (a node, GPU UUIDs, maybe a
fraction) into the parts of a pod that pin it there: node affinity on the
node's name, a toleration of the pool's taint, the NVIDIA container toolkit's
device selection, and for fractions the memory enforcement the nodes offer.

The pool, not the NVIDIA device plugin, decides which GPUs a pod gets: pool
nodes carry a label and a taint the pool owns, the device plugin does not
advertise ``nvidia.com/gpu`` on them, and pods name their GPUs by UUID through
the container toolkit (``NVIDIA_VISIBLE_DEVICES``, or the toolkit's
volume-mount list). So the two can never disagree about which card is in use:
only one of them hands cards out on a pool node. docs/kubernetes.md says why
this and not device-plugin requests.

``KubernetesJobRunner`` implements ``runners.base.Runner``: one Kubernetes Job
per node of the allocation (``backoffLimit: 0``: the pool requeues, not
Kubernetes), stopped by deleting its pods with the grace period the service
asks for, which Kubernetes delivers as SIGTERM, then SIGKILL when it runs out,
the same contract as local jobs.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import abc

from traitlets import Bool, Dict, Enum, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable
from traitlets.traitlets import MetaHasTraits

from .base import JobLaunch, JobStatus, Runner

# Label keys the pool owns on the objects it creates.
LABEL_WORKLOAD = "gpupool.io/workload"
LABEL_JOB_SET = "gpupool.io/job-set"
LABEL_RANK = "gpupool.io/rank"
LABEL_USER = "gpupool.io/user"
MANAGED_BY = {"app.kubernetes.io/managed-by": "gpupool"}

# A container waiting for one of these reasons will not start without someone
# changing the job; holding GPUs for it helps nobody.
FATAL_WAITING_REASONS = frozenset(
    {"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError", "ImagePullBackOff"}
)
# Exit status reported for a job whose container never started.
EXIT_COULD_NOT_START = 127


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

    def node_affinity_term(self) -> dict | None:
        """A required node-selector term on the node's name (``metadata.name`` is the one field Kubernetes matches)."""
        if not self.node_name:
            return None
        return {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [self.node_name]}]}


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
        ["envvar", "volume-mounts"],
        "envvar",
        help="""How the container toolkit is told which GPUs a container gets.
        "envvar": NVIDIA_VISIBLE_DEVICES holds the GPU UUIDs (the toolkit's default).
        "volume-mounts": one /dev/null mount per GPU under /var/run/nvidia-container-devices, for
        toolkits set to accept-nvidia-visible-devices-as-volume-mounts = true and
        accept-nvidia-visible-devices-envvar-when-unprivileged = false (needs hostPath volumes).""",
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
        parts.runtime_class_name = self.runtime_class_name or None
        parts.env["NVIDIA_DRIVER_CAPABILITIES"] = self.driver_capabilities
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


# ---------------------------------------------------------------- the job runner


class _ConfigurableRunnerMeta(MetaHasTraits, abc.ABCMeta):
    """A runner is both an abstract ``Runner`` and a traitlets configurable."""


class KubernetesJobRunner(Runner, LoggingConfigurable, metaclass=_ConfigurableRunnerMeta):
    """Batch jobs as Kubernetes Jobs, created by the pool service through kubernetes_asyncio."""

    namespace = Unicode(
        help="Namespace of the job objects. Default: the service's own namespace (in a pod), else 'default'.",
    ).tag(config=True)

    @default("namespace")
    def _default_namespace(self):
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                return f.read().strip()
        except OSError:
            return "default"

    image = Unicode(
        "quay.io/jupyter/base-notebook:latest",
        help="Container image of job pods (usually the notebook image, so a job runs what the notebook ran).",
    ).tag(config=True)

    image_pull_policy = Enum(["Always", "IfNotPresent", "Never"], "IfNotPresent", help="Image pull policy of job pods.").tag(
        config=True
    )

    service_account_name = Unicode(
        "",
        help="Service account of job pods (one without API access); empty: the namespace's default.",
    ).tag(config=True)

    uid = Integer(1000, help="User id job processes run as (jovyan in the Jupyter images).").tag(config=True)
    gid = Integer(100, help="Group id job processes run as.").tag(config=True)

    termination_grace_period_seconds = Integer(
        120,
        help="""Seconds between SIGTERM and SIGKILL when a job pod is deleted by anyone but the pool
        (node drain, kubectl); the pool's own stops pass the service's grace period.""",
    ).tag(config=True)

    ttl_seconds_after_finished = Integer(
        86400,
        allow_none=True,
        help="Finished Job objects (and their logs) are deleted this many seconds after they end; None keeps them.",
    ).tag(config=True)

    resources = Dict(
        help="Container resources (requests/limits of cpu and memory) of job pods; GPUs come from the pool, never from here.",
    ).tag(config=True)

    extra_volumes = List(Dict(), help="Volumes every job pod gets (e.g. users' home volumes).").tag(config=True)
    extra_volume_mounts = List(Dict(), help="Volume mounts of the job container.").tag(config=True)
    extra_labels = Dict(help="Extra labels of job objects and their pods.").tag(config=True)

    stop_poll_interval = Float(1.0, help="Seconds between looks while waiting for a stopped job's pods to go.").tag(config=True)

    status_poll_interval = Float(
        5.0,
        help="""Seconds between looks at a running job (two list calls to the API server each); a
        job's end, and its GPUs' release, is noticed within this time.""",
    ).tag(config=True)

    kill_slack_seconds = Float(
        15.0,
        help="""Seconds past the grace period to wait for pods to go before force-deleting them
        (the kubelet may be slow); the GPUs are not handed out again before the pods are gone.""",
    ).tag(config=True)

    in_cluster = Bool(
        None,
        allow_none=True,
        help="Load the in-cluster service-account config (True), a kube config file (False), or try in-cluster first (None).",
    ).tag(config=True)

    kube_config_file = Unicode(
        "",
        help="Kube config file used outside a cluster; empty: $KUBECONFIG, else ~/.kube/config.",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.placement = KubernetesGpuPlacement(parent=self)
        self._api_client = None

    # ------------------------------------------------------------ building objects

    def job_set_name(self, workload_id: str) -> str:
        """A fresh name for one start of ``workload_id``: a requeued or resized job starts again
        while the pods of its previous start may still be shutting down, so the two never share names."""
        suffix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5))
        # Room for "-<rank>" and the pods' own suffixes within 63 characters.
        return f"{dns_label(f'gpupool-{workload_id}', limit=40)}-{suffix}"

    def build_objects(self, launch: JobLaunch, base: str | None = None) -> list[dict]:
        """The Kubernetes objects for ``launch``: one Job per node, plus a headless Service
        for rendezvous when the job spans several nodes. ``base`` names this start (default: a fresh name)."""
        base = base or self.job_set_name(launch.workload_id)
        nodes = list(launch.gpus_by_node.items())
        if not nodes:
            raise ValueError(f"{launch.workload_id}: an allocation without GPUs cannot run on pool nodes")
        labels = {
            **self.extra_labels,
            **MANAGED_BY,
            LABEL_WORKLOAD: label_value(launch.workload_id),
            LABEL_JOB_SET: base,
            LABEL_USER: label_value(launch.user),
        }
        annotations = {"gpupool.io/workload-id": launch.workload_id, "gpupool.io/user": launch.user}
        fraction = launch.gpu_count if 0 < launch.gpu_count < 1 else None
        memory = launch.env.get("GPUPOOL_GPU_MEMORY_MIB")
        objects: list[dict] = []
        multi_node = len(nodes) > 1
        if multi_node:
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": base, "labels": labels, "annotations": annotations},
                    "spec": {"clusterIP": "None", "selector": {LABEL_JOB_SET: base}, "publishNotReadyAddresses": True},
                }
            )
        for rank, (node, gpu_ids) in enumerate(nodes):
            ids, real = launch_gpu_ids(launch, node)
            gpus = self.placement.for_gpus(node, ids, real=real, fraction=fraction, memory_mib=int(memory) if memory else None)
            env = {
                **launch.env,
                **gpus.env,
                "GPUPOOL_WORKLOAD_ID": launch.workload_id,
                "GPUPOOL_GPUS": f"{launch.gpu_count:g}",
                "GPUPOOL_NODE_RANK": str(rank),
                "GPUPOOL_NUM_NODES": str(len(nodes)),
            }
            pod_labels = {**labels, LABEL_RANK: str(rank)}
            pod_spec: dict[str, Any] = {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": self.termination_grace_period_seconds,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": {"runAsUser": self.uid, "runAsGroup": self.gid, "runAsNonRoot": self.uid != 0},
                "nodeSelector": gpus.node_selector,
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [gpus.node_affinity_term()]}}},
                "tolerations": gpus.tolerations,
                "containers": [
                    {
                        "name": "job",
                        "image": self.image,
                        "imagePullPolicy": self.image_pull_policy,
                        "command": list(launch.command),
                        "env": [{"name": k, "value": str(v)} for k, v in sorted(env.items())],
                        "securityContext": {"allowPrivilegeEscalation": False},
                        "volumeMounts": [*self.extra_volume_mounts, *gpus.volume_mounts],
                    }
                ],
                "volumes": [*self.extra_volumes, *gpus.volumes],
            }
            container = pod_spec["containers"][0]
            if launch.workdir:
                container["workingDir"] = launch.workdir
            if self.resources:
                container["resources"] = self.resources
            if self.service_account_name:
                pod_spec["serviceAccountName"] = self.service_account_name
            if gpus.runtime_class_name:
                pod_spec["runtimeClassName"] = gpus.runtime_class_name
            if gpus.host_ipc:
                pod_spec["hostIPC"] = True
            if multi_node:
                pod_spec["hostname"] = f"{base}-{rank}"
                pod_spec["subdomain"] = base
                container["env"].append({"name": "GPUPOOL_MASTER_ADDR", "value": f"{base}-0.{base}.{self.namespace}.svc"})
                container["env"].sort(key=lambda e: e["name"])
            job_spec: dict[str, Any] = {
                # The pool decides about retries (requeue after preemption), not Kubernetes.
                "backoffLimit": 0,
                "completions": 1,
                "parallelism": 1,
                "template": {"metadata": {"labels": pod_labels, "annotations": annotations}, "spec": pod_spec},
            }
            if self.ttl_seconds_after_finished is not None:
                job_spec["ttlSecondsAfterFinished"] = self.ttl_seconds_after_finished
            if launch.time_limit_s is not None:
                # A backstop: the pool stops the job at its limit (SIGTERM, then the grace period) first.
                job_spec["activeDeadlineSeconds"] = int(math.ceil(launch.time_limit_s)) + int(self.termination_grace_period_seconds or 0)
            objects.append(
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": f"{base}-{rank}", "labels": pod_labels, "annotations": annotations},
                    "spec": job_spec,
                }
            )
        return objects

    # ------------------------------------------------------------ the API

    async def _client(self):
        if self._api_client is None:
            from kubernetes_asyncio import client, config

            # A private configuration: the process may talk to other clusters too.
            configuration = client.Configuration()
            if self.in_cluster or self.in_cluster is None:
                try:
                    config.load_incluster_config(client_configuration=configuration)
                except config.ConfigException:
                    if self.in_cluster:
                        raise
                    await config.load_kube_config(
                        config_file=self.kube_config_file or None, client_configuration=configuration, persist_config=False
                    )
            else:
                await config.load_kube_config(
                    config_file=self.kube_config_file or None, client_configuration=configuration, persist_config=False
                )
            self._api_client = client.ApiClient(configuration=configuration)
        return self._api_client

    async def _apis(self):
        from kubernetes_asyncio import client

        api = await self._client()
        return client.BatchV1Api(api), client.CoreV1Api(api)

    async def close(self) -> None:
        if self._api_client is not None:
            await self._api_client.close()
            self._api_client = None

    @staticmethod
    def _parse_handle(handle: str) -> tuple[str, str]:
        namespace, _, base = handle.partition("/")
        if not base:
            raise ValueError(f"not a Kubernetes job handle: {handle!r}")
        return namespace, base

    async def start(self, launch: JobLaunch) -> str:
        from kubernetes_asyncio.client.exceptions import ApiException

        batch, core = await self._apis()
        base = self.job_set_name(launch.workload_id)
        objects = self.build_objects(launch, base)
        created: list[dict] = []
        try:
            for obj in objects:
                try:
                    if obj["kind"] == "Service":
                        await core.create_namespaced_service(self.namespace, obj)
                    else:
                        await batch.create_namespaced_job(self.namespace, obj)
                except ApiException as e:
                    if e.status != 409:  # 409: left from a start the service did not see finish; it is ours
                        raise
                created.append(obj)
        except BaseException:
            # A gang starts whole or not at all.
            await self._delete_set(self.namespace, base, grace_seconds=0)
            raise
        handle = f"{self.namespace}/{base}"
        self.log.info("started %s as %d Kubernetes object(s) %s", launch.workload_id, len(created), handle)
        return handle

    async def _delete_set(self, namespace: str, base: str, grace_seconds: float) -> list:
        """Delete the Jobs, their pods and the Service of a job set; return the pods still present."""
        from kubernetes_asyncio.client.exceptions import ApiException

        batch, core = await self._apis()
        selector = f"{LABEL_JOB_SET}={base}"
        grace = max(0, int(math.ceil(grace_seconds)))
        jobs = await batch.list_namespaced_job(namespace, label_selector=selector)
        for job in jobs.items:
            try:
                # Foreground: the Job stays (and its controller stops replacing pods) until its pods are gone.
                await batch.delete_namespaced_job(job.metadata.name, namespace, propagation_policy="Foreground")
            except ApiException as e:
                if e.status != 404:
                    raise
        pods = await core.list_namespaced_pod(namespace, label_selector=selector)
        for pod in pods.items:
            try:
                # Deleting a pod is Kubernetes' SIGTERM; SIGKILL follows after ``grace`` seconds.
                await core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=grace)
            except ApiException as e:
                if e.status != 404:
                    raise
        services = await core.list_namespaced_service(namespace, label_selector=selector)
        for service in services.items:
            try:
                await core.delete_namespaced_service(service.metadata.name, namespace)
            except ApiException as e:
                if e.status != 404:
                    raise
        return pods.items

    async def find(self, workload_id: str) -> list[str]:
        """Handles of a workload's job objects (a start the service did not see finish)."""
        batch, core = await self._apis()
        selector = f"{LABEL_WORKLOAD}={label_value(workload_id)}"
        jobs = await batch.list_namespaced_job(self.namespace, label_selector=selector)
        pods = await core.list_namespaced_pod(self.namespace, label_selector=selector)
        # Only sets still running: one being deleted is a stop, not a lost start.
        sets = [
            o.metadata.labels.get(LABEL_JOB_SET)
            for o in [*jobs.items, *pods.items]
            if o.metadata.labels and o.metadata.deletion_timestamp is None
        ]
        live = [
            base for base in dict.fromkeys(sets)
            if base and (await self.status(f"{self.namespace}/{base}")).running
        ]
        return [f"{self.namespace}/{base}" for base in live]

    async def stop(self, handle: str, grace_seconds: float) -> None:
        namespace, base = self._parse_handle(handle)
        _, core = await self._apis()
        selector = f"{LABEL_JOB_SET}={base}"
        await self._delete_set(namespace, base, grace_seconds)
        # The GPUs are free only once the processes are gone: wait for the pods.
        deadline = asyncio.get_running_loop().time() + grace_seconds + self.kill_slack_seconds
        forced = False
        while True:
            pods = await core.list_namespaced_pod(namespace, label_selector=selector)
            if not pods.items:
                return
            now = asyncio.get_running_loop().time()
            if now >= deadline:
                if forced:
                    names = ", ".join(p.metadata.name for p in pods.items)
                    self.log.error("%s: pods %s still present after force deletion", handle, names)
                    return
                self.log.warning("%s: pods outlived the grace period; force-deleting them", handle)
                await self._delete_set(namespace, base, grace_seconds=0)
                forced = True
                deadline = now + self.kill_slack_seconds
            await asyncio.sleep(self.stop_poll_interval)

    async def status(self, handle: str) -> JobStatus:
        namespace, base = self._parse_handle(handle)
        batch, core = await self._apis()
        selector = f"{LABEL_JOB_SET}={base}"
        jobs = (await batch.list_namespaced_job(namespace, label_selector=selector)).items
        pods = (await core.list_namespaced_pod(namespace, label_selector=selector)).items
        if not jobs and not pods:
            # Deleted (by the pool's stop, a TTL, or by hand): it has ended, how is unknown.
            return JobStatus(handle=handle, running=False, exit_code=None)
        exit_code = job_set_exit_code(pods)
        if exit_code is None and jobs:
            if any(not _job_finished(job) for job in jobs):
                return JobStatus(handle=handle, running=True)
            if all((job.status.succeeded or 0) >= 1 for job in jobs):
                return JobStatus(handle=handle, running=False, exit_code=0)
            return JobStatus(handle=handle, running=False, exit_code=1)  # failed; its pod is already gone
        if exit_code is None:
            return JobStatus(handle=handle, running=True)  # pods of a Job being deleted
        if exit_code != 0 and any(_pod_running(p) for p in pods):
            # One rank failed: the gang cannot go on, stop the rest and report the failure.
            await self._delete_set(namespace, base, grace_seconds=self.termination_grace_period_seconds)
        return JobStatus(handle=handle, running=False, exit_code=exit_code)

    async def wait(self, handle: str, poll_seconds: float = 1.0) -> JobStatus:
        # Every running job is polled: spare the API server.
        return await super().wait(handle, poll_seconds=max(poll_seconds, self.status_poll_interval))

    async def logs(self, handle: str, offset: int = 0) -> str:
        from kubernetes_asyncio.client.exceptions import ApiException

        namespace, base = self._parse_handle(handle)
        _, core = await self._apis()
        pods = (await core.list_namespaced_pod(namespace, label_selector=f"{LABEL_JOB_SET}={base},{LABEL_RANK}=0")).items
        if not pods:
            return ""
        try:
            text = await core.read_namespaced_pod_log(pods[0].metadata.name, namespace, container="job")
        except ApiException as e:
            if e.status in (400, 404):  # not started yet, or gone
                return ""
            raise
        return text.encode()[offset:].decode(errors="replace")


def launch_gpu_ids(launch: JobLaunch, node: str) -> tuple[list[str], bool]:
    """The GPU identifiers of ``launch`` on ``node``, and whether they are real cards.

    ``gpus_by_node`` holds UUIDs for real cards, or indices with the cards'
    UUIDs (in share order) in ``GPUPOOL_GPU_UUIDS``. On one node the UUIDs are
    used; across nodes the indices (the toolkit takes NVML indices too).
    Declared (simulated) cards have no hardware behind them.
    """
    ids = [str(g) for g in launch.gpus_by_node[node]]
    if all(is_gpu_uuid(g) for g in ids):
        return ids, True
    uuids = [u for u in launch.env.get("GPUPOOL_GPU_UUIDS", "").split(",") if u]
    real = bool(uuids) and all(is_gpu_uuid(u) for u in uuids)
    if real and len(launch.gpus_by_node) == 1 and len(uuids) == len(ids):
        return uuids, True
    return ids, real


def _job_finished(job) -> bool:
    status = job.status
    return bool(status and ((status.succeeded or 0) >= 1 or (status.failed or 0) >= 1))


def _pod_running(pod) -> bool:
    return (pod.status.phase if pod.status else None) in ("Pending", "Running")


def job_set_exit_code(pods) -> int | None:
    """Exit status of a job set from its pods: the first failure, 0 when every rank succeeded,
    None while any still runs. A container that cannot start counts as a failure."""
    if not pods:
        return None
    codes: list[int] = []
    for pod in pods:
        statuses = (pod.status.container_statuses if pod.status else None) or []
        state = statuses[0].state if statuses else None
        if state is not None and state.terminated is not None:
            codes.append(int(state.terminated.exit_code))
        elif state is not None and state.waiting is not None and state.waiting.reason in FATAL_WAITING_REASONS:
            codes.append(EXIT_COULD_NOT_START)
        elif pod.status is not None and pod.status.phase == "Failed":
            codes.append(1)
        elif pod.status is not None and pod.status.phase == "Succeeded":
            codes.append(0)
        else:
            codes.append(-1)  # still running
    failures = [c for c in codes if c > 0]
    if failures:
        return failures[0]
    if all(c == 0 for c in codes):
        return 0
    return None
