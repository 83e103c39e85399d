"""Batch jobs as Kubernetes Jobs.

``KubernetesJobRunner`` implements ``runners.base.Runner``: a job's pods get
their GPUs the way a notebook pod does (``hub_ext.kube_placement``, shared
with the hub's spawner), a Job has ``backoffLimit: 0`` (the pool requeues,
not Kubernetes), and a job is stopped by deleting its pods with the grace
period the service asks for, which Kubernetes delivers as SIGTERM, then
SIGKILL when it runs out, the same contract as local jobs.
"""

from __future__ import annotations

import abc
import asyncio
import math
import secrets
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable
from traitlets.traitlets import MetaHasTraits

from hub_ext.kube_placement import (  # noqa: F401  (re-exported: the runner's public names)
    LABEL_JOB_SET,
    LABEL_RANK,
    LABEL_USER,
    LABEL_WORKLOAD,
    MANAGED_BY,
    KubernetesGpuPlacement,
    PodGpus,
    delete_claims,
    dns_label,
    ensure_claim,
    is_gpu_uuid,
    label_value,
    owner_reference,
)

from .base import JobLaunch, JobStatus, Runner

# A container waiting for one of these reasons will not start without someone
# changing the job; holding GPUs for it helps nobody.
FATAL_WAITING_REASONS = frozenset(
    {"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError", "ImagePullBackOff"}
)
# The label and annotation an Indexed Job's pod carries its index in.
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
# Exit status reported for a job whose container never started.
EXIT_COULD_NOT_START = 127


# ---------------------------------------------------------------- the job runner


class _ConfigurableRunnerMeta(MetaHasTraits, abc.ABCMeta):
    """A runner is both an abstract ``Runner`` and a traitlets configurable."""


class KubernetesJobRunner(Runner, LoggingConfigurable, metaclass=_ConfigurableRunnerMeta):
    """Batch jobs as Kubernetes Jobs, created by the pool service through kubernetes_asyncio."""

    max_nodes = None  # a gang runs across nodes: an Indexed Job, one pod per node
    description = "the Kubernetes runner"

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

    rendezvous_port = Integer(
        29500,
        help="""Port of a multi-node job's rendezvous (MASTER_PORT; PyTorch's default), on its rank-0 pod.""",
    ).tag(config=True)

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
        """The Kubernetes objects for ``launch``, ``base`` naming this start (default: a fresh name).

        One node: one Job. Several nodes (a gang): a headless Service for the
        rendezvous and one Indexed Job with a pod per node, or, where the nodes'
        GPUs cannot be named by one pod template (toolkit modes with different
        card indices per node, different GPU counts per node), one Job per node.
        With Dynamic Resource Allocation, the ResourceClaims (or, for an Indexed
        Job, the ResourceClaimTemplate) that select the cards come first.
        """
        base = base or self.job_set_name(launch.workload_id)
        nodes = list(launch.gpus_by_node)
        if not nodes:
            raise ValueError(f"{launch.workload_id}: an allocation without GPUs cannot run on pool nodes")
        if self.max_nodes is not None and len(nodes) > self.max_nodes:
            raise ValueError(f"{launch.workload_id}: spans {len(nodes)} nodes; this runner runs a job on at most {self.max_nodes}")
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
        memory_mib = int(memory) if memory else None
        placements, reals = {}, {}
        for node in nodes:
            ids, reals[node] = launch_gpu_ids(launch, node)
            placements[node] = self.placement.for_gpus(node, ids, real=reals[node], fraction=fraction, memory_mib=memory_mib)
        objects: list[dict] = []
        if len(nodes) > 1:
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": base, "labels": labels, "annotations": annotations},
                    "spec": {
                        "clusterIP": "None",
                        "selector": {LABEL_JOB_SET: base},
                        # Ranks find each other before they are ready.
                        "publishNotReadyAddresses": True,
                        "ports": [{"name": "rendezvous", "port": self.rendezvous_port, "targetPort": self.rendezvous_port}],
                    },
                }
            )
            gang = self._gang_placement(launch, placements, reals)
            if gang is not None:
                return objects + self._indexed_job(launch, base, labels, annotations, nodes, gang)
        for rank, node in enumerate(nodes):
            gpus = placements[node]
            name = f"{base}-{rank}"
            claim = gpus.claim_name(name)
            if claim is not None:
                objects.append(gpus.claim_object(claim, self._claim_labels(labels, gpus), annotations))
            env = self._rendezvous_env(launch, gpus, base, len(nodes), rank=rank)
            pod_spec = self._pod_spec(launch, gpus, env, claim)
            pod_spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [gpus.node_affinity_term()]}}}
            pod_labels = {**labels, LABEL_RANK: str(rank)}
            if len(nodes) > 1:
                pod_spec["hostname"] = name
                pod_spec["subdomain"] = base
            objects.append(self._job(name, pod_labels, annotations, pod_spec, pods=1, time_limit_s=launch.time_limit_s))
        return objects

    def _claim_labels(self, labels: dict, gpus: PodGpus) -> dict:
        if gpus.claim_shared:
            # A card's claim outlives one workload: it carries no workload's labels, and goes
            # (garbage-collected) once the last workload owning it has gone.
            return {**MANAGED_BY, "gpupool.io/shared-card": "true"}
        return labels

    def _gang_placement(self, launch: JobLaunch, placements: dict, reals: dict) -> PodGpus | None:
        """One pod template's GPU parts for every node of a gang, or None where none fits all."""
        counts = {len(ids) for ids in launch.gpus_by_node.values()}
        if len(counts) != 1 or any(gpus.claim_shared for gpus in placements.values()):
            return None
        if any(gpus.claim_spec is not None for gpus in placements.values()):
            # DRA: each pod's claim (from a template) asks for one node's count among all the
            # gang's cards; UUIDs are unique, so on its node a pod can only get that node's cards.
            uuids = [u for gpus in placements.values() for u in gpus.claim_uuids]
            gang = self.placement.for_gpus("", uuids, real=True)
            self.placement.set_claimed_count(gang, counts.pop())
            return gang
        # The toolkit modes name cards in an environment variable fixed per template: only
        # cards with the same NVML indices on every node can be named once for all.
        index_lists = {tuple(ids) for ids in launch.gpus_by_node.values()}
        if len(index_lists) != 1 or len(set(reals.values())) != 1:
            return None
        return self.placement.for_gpus("", list(index_lists.pop()), real=next(iter(reals.values())))

    def _indexed_job(self, launch, base, labels, annotations, nodes, gang: PodGpus) -> list[dict]:
        objects: list[dict] = []
        env = self._rendezvous_env(launch, gang, base, len(nodes), rank=None)
        template = None
        if gang.claim_spec is not None:
            template = base
            objects.append(
                {
                    "apiVersion": "resource.k8s.io/v1",
                    "kind": "ResourceClaimTemplate",
                    "metadata": {"name": base, "labels": labels, "annotations": annotations},
                    "spec": {"metadata": {"labels": labels}, "spec": gang.claim_spec},
                }
            )
        pod_spec = self._pod_spec(launch, gang, env, None, claim_template=template)
        pod_spec["affinity"] = {
            # One pod on each of the gang's nodes: any of them, never two on one.
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": list(nodes)}]}]}},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {LABEL_JOB_SET: base}}, "topologyKey": "kubernetes.io/hostname"}]},
        }
        # Indexed Job pods are named <job>-<index> in the Service's subdomain.
        pod_spec["subdomain"] = base
        job = self._job(base, labels, annotations, pod_spec, pods=len(nodes), time_limit_s=launch.time_limit_s)
        job["spec"]["completionMode"] = "Indexed"
        objects.append(job)
        return objects

    def _rendezvous_env(self, launch: JobLaunch, gpus: PodGpus, base: str, nodes: int, rank: int | None) -> list[dict]:
        """The job's environment: the service's, the pool's, and for a gang the PyTorch rendezvous
        (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, and torchrun's own PET_* defaults, so a
        plain ``torchrun --nproc-per-node=N train.py`` joins the gang). ``rank`` None: from the
        pod's completion index (an Indexed Job)."""
        env = {
            **launch.env,
            **gpus.env,  # the pool's GPU variables win over the service's
            "GPUPOOL_WORKLOAD_ID": launch.workload_id,
            "GPUPOOL_GPUS": f"{launch.gpu_count:g}",
            "GPUPOOL_NUM_NODES": str(nodes),
        }
        ranked = ["GPUPOOL_NODE_RANK"]
        if nodes > 1:
            master = f"{base}-0.{base}.{self.namespace}.svc"
            env.update(
                {
                    "GPUPOOL_MASTER_ADDR": master,
                    "MASTER_ADDR": master,
                    "MASTER_PORT": str(self.rendezvous_port),
                    "WORLD_SIZE": str(nodes),
                    "PET_MASTER_ADDR": master,
                    "PET_MASTER_PORT": str(self.rendezvous_port),
                    "PET_NNODES": str(nodes),
                }
            )
            ranked += ["RANK", "PET_NODE_RANK"]
        items = [{"name": k, "value": str(v)} for k, v in env.items() if k not in ranked]
        for name in ranked:
            if rank is None:
                items.append({"name": name, "valueFrom": {"fieldRef": {
                    "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}})
            else:
                items.append({"name": name, "value": str(rank)})
        return sorted(items, key=lambda e: e["name"])

    def _pod_spec(self, launch: JobLaunch, gpus: PodGpus, env: list[dict], claim: str | None,
                  claim_template: str | None = None) -> dict:
        container: dict[str, Any] = {
            "name": "job",
            "image": self.image,
            "imagePullPolicy": self.image_pull_policy,
            "command": list(launch.command),
            "env": env,
            "securityContext": {"allowPrivilegeEscalation": False},
            "volumeMounts": [*self.extra_volume_mounts, *gpus.volume_mounts],
        }
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": self.termination_grace_period_seconds,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {"runAsUser": self.uid, "runAsGroup": self.gid, "runAsNonRoot": self.uid != 0},
            "nodeSelector": gpus.node_selector,
            "tolerations": gpus.tolerations,
            "containers": [container],
            "volumes": [*self.extra_volumes, *gpus.volumes],
        }
        if launch.workdir:
            container["workingDir"] = launch.workdir
        resources = dict(self.resources or {})
        if claim is not None or claim_template is not None:
            resources["claims"] = gpus.container_claims()
            if claim is not None:
                pod_spec["resourceClaims"] = gpus.pod_resource_claims(claim)
            else:
                pod_spec["resourceClaims"] = [{"name": gpus.container_claims()[0]["name"], "resourceClaimTemplateName": claim_template}]
        if resources:
            container["resources"] = resources
        if self.service_account_name:
            pod_spec["serviceAccountName"] = self.service_account_name
        if gpus.runtime_class_name:
            pod_spec["runtimeClassName"] = gpus.runtime_class_name
        if gpus.host_ipc:
            pod_spec["hostIPC"] = True
        return pod_spec

    def _job(self, name: str, labels: dict, annotations: dict, pod_spec: dict, pods: int, time_limit_s: float | None = None) -> dict:
        job_spec: dict[str, Any] = {
            # The pool decides about retries (requeue after preemption), not Kubernetes; one
            # failed pod fails the whole Job, and the Job controller stops the gang's others.
            "backoffLimit": 0,
            "completions": pods,
            "parallelism": pods,
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
        }
        if self.ttl_seconds_after_finished is not None:
            job_spec["ttlSecondsAfterFinished"] = self.ttl_seconds_after_finished
        if time_limit_s is not None:
            # A backstop: the pool stops the job at its limit (SIGTERM, then the grace period) first.
            job_spec["activeDeadlineSeconds"] = int(math.ceil(time_limit_s)) + int(self.termination_grace_period_seconds or 0)
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": job_spec,
        }

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
        claims = [o for o in objects if o["kind"] in ("ResourceClaim", "ResourceClaimTemplate")]
        jobs: dict[str, dict] = {}
        try:
            for obj in objects:
                if obj in claims:
                    continue
                try:
                    if obj["kind"] == "Service":
                        await core.create_namespaced_service(self.namespace, obj)
                    else:
                        made = await batch.create_namespaced_job(self.namespace, obj)
                        jobs[obj["metadata"]["name"]] = {**obj, "metadata": {**obj["metadata"], "uid": made.metadata.uid}}
                except ApiException as e:
                    if e.status != 409:  # 409: left from a start the service did not see finish; it is ours
                        raise
                    if obj["kind"] == "Job":
                        live = await batch.read_namespaced_job(obj["metadata"]["name"], self.namespace)
                        jobs[obj["metadata"]["name"]] = {**obj, "metadata": {**obj["metadata"], "uid": live.metadata.uid}}
                created.append(obj)
            for claim in claims:
                # Owned by its Job: Kubernetes deletes it with the Job even if the pool never does.
                job = jobs.get(claim["metadata"]["name"]) or next(iter(jobs.values()))
                await ensure_claim(await self._client(), self.namespace, claim, owner_reference(job))
                created.append(claim)
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
        if self.placement.device_list_strategy == "dra":
            # The workload's own claims (a card's shared claim goes with its last owner).
            await delete_claims(await self._client(), namespace, selector)
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
            if all(_job_succeeded(job) for job in jobs):
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
        pods = [
            p for p in (await core.list_namespaced_pod(namespace, label_selector=f"{LABEL_JOB_SET}={base}")).items
            if (p.metadata.labels or {}).get(LABEL_RANK, (p.metadata.labels or {}).get(COMPLETION_INDEX)) == "0"
        ]
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

    Real cards are named by UUID (``uuids_by_node``, or ``gpus_by_node`` itself);
    a launch that only has indices and the cards' UUIDs in share order
    (``GPUPOOL_GPU_UUIDS``) gives UUIDs on one node and indices across nodes
    (the toolkit takes NVML indices too). Declared (simulated) cards have no
    hardware behind them.
    """
    ids = [str(g) for g in launch.gpus_by_node[node]]
    if all(is_gpu_uuid(g) for g in ids):
        return ids, True
    by_node = [str(u) for u in launch.uuids_by_node.get(node, ())]
    if by_node and len(by_node) == len(ids):
        if all(is_gpu_uuid(u) for u in by_node):
            return by_node, True
        return ids, False
    uuids = [u for u in launch.env.get("GPUPOOL_GPU_UUIDS", "").split(",") if u]
    real = bool(uuids) and all(is_gpu_uuid(u) for u in uuids)
    if real and len(launch.gpus_by_node) == 1 and len(uuids) == len(ids):
        return uuids, True
    return ids, real


def _job_succeeded(job) -> bool:
    """Every pod of the Job succeeded (an Indexed Job of a gang has one per node)."""
    wanted = (job.spec.completions if job.spec is not None else None) or 1
    return bool(job.status and (job.status.succeeded or 0) >= wanted)


def _job_finished(job) -> bool:
    return _job_succeeded(job) or bool(job.status and (job.status.failed or 0) >= 1)


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
