"""A stand-in for the Kubernetes API server, for the job runner's offline tests.

There is no cluster here, so the real ``KubernetesJobRunner`` (and the real
kubernetes_asyncio client under it) talks HTTP to this small tornado app. It
keeps Jobs, pods and Services in memory and plays the two controllers the
runner relies on, in the simplest way that keeps their observable contract:

- the Job controller: a created Job gets one pod, running on the node its
  affinity names (an Indexed Job: one pod per index, on the nodes its affinity
  names in turn, labelled with its index); the Job's status follows its pods;
- KubeSpawner's notebook pods: created pods run at once; a watch of pods
  ends at once, so KubeSpawner's reflector lists them again;
- ResourceClaims and ResourceClaimTemplates are stored as they come (create,
  get, replace, list, delete), with their owners;
- the kubelet: deleting a pod is SIGTERM; the pod goes away when the process
  exits (``exit_after_sigterm`` seconds) or when the grace period ends
  (SIGKILL), whichever is first. Every deletion is recorded with its grace.

It is not Kubernetes: the objects the runner sends are validated against the
real API schema separately (test_job_objects.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets


@dataclass
class Deletion:
    kind: str
    name: str
    grace_seconds: int | None
    propagation_policy: str | None
    at: float


@dataclass
class ClusterState:
    jobs: dict[str, dict] = field(default_factory=dict)
    pods: dict[str, dict] = field(default_factory=dict)
    services: dict[str, dict] = field(default_factory=dict)
    # (plural, name) -> object, for resource.k8s.io/v1 claims and claim templates
    claims: dict[tuple[str, str], dict] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    deletions: list[Deletion] = field(default_factory=list)
    created: list[tuple[str, float]] = field(default_factory=list)  # (Job name, when)
    gone: dict[str, float] = field(default_factory=dict)  # pod name -> when it disappeared
    # Seconds a job's process takes to exit after SIGTERM (writing its checkpoint).
    exit_after_sigterm: float = 0.2
    # Seconds a pod remained after SIGKILL where the kubelet is slow.
    kubelet_delay: float = 0.0
    # Exit code a process gives when it ends on SIGTERM.
    sigterm_exit_code: int = 143
    # Waiting reason given to new pods instead of running them (e.g. "InvalidImageName").
    new_pod_waiting_reason: str | None = None

    # ---- what a test does to the cluster

    def finish_pod(self, pod_name: str, exit_code: int) -> None:
        pod = self.pods[pod_name]
        pod["status"] = {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [_container_status(terminated={"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"})],
        }

    def pods_of(self, job_name: str) -> list[dict]:
        return [p for p in self.pods.values() if p["metadata"]["labels"].get("job-name") == job_name]


def _container_status(running: bool = False, terminated: dict | None = None, waiting: str | None = None) -> dict:
    state: dict = {}
    if running:
        state["running"] = {"startedAt": "2026-11-25T10:00:00Z"}
    if terminated is not None:
        state["terminated"] = terminated
    if waiting is not None:
        state["waiting"] = {"reason": waiting}
    return {"name": "job", "ready": running, "restartCount": 0, "image": "x", "imageID": "", "state": state}


def _matches(obj: dict, selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class _Handler(web.RequestHandler):
    def initialize(self, state: ClusterState):
        self.state = state

    def check_xsrf_cookie(self):
        pass

    def body(self) -> dict:
        return json.loads(self.request.body or b"{}")

    def send(self, obj: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(obj))

    def not_found(self, kind: str, name: str) -> None:
        self.send({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                   "message": f'{kind} "{name}" not found'}, 404)

    def deletion_options(self) -> tuple[int | None, str | None]:
        query = {k: v[-1].decode() for k, v in self.request.query_arguments.items()}
        body = self.body() if self.request.body else {}
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        policy = body.get("propagationPolicy", query.get("propagationPolicy"))
        return (int(grace) if grace is not None else None), policy

    def listing(self, kind: str, store: dict) -> None:
        selector = self.get_query_argument("labelSelector", None)
        items = [o for o in store.values() if _matches(o, selector)]
        self.send({"kind": f"{kind}List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})


class JobsHandler(_Handler):
    def get(self, namespace):
        for job in self.state.jobs.values():
            _refresh_job_status(self.state, job)
        self.listing("Job", self.state.jobs)

    def post(self, namespace):
        job = self.body()
        name = job["metadata"]["name"]
        if name in self.state.jobs:
            return self.send({"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "exists"}, 409)
        job["metadata"].update({"namespace": namespace, "uid": f"uid-{name}"})
        self.state.jobs[name] = job
        self.state.created.append((name, time.monotonic()))
        template = job["spec"]["template"]
        terms = template["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        nodes = terms[0]["matchFields"][0]["values"]
        indexed = job["spec"].get("completionMode") == "Indexed"
        reason = self.state.new_pod_waiting_reason
        for index in range(job["spec"].get("completions") or 1):
            pod_name = f"{name}-{index}-abcde" if indexed else f"{name}-abcde"
            labels = {**template["metadata"]["labels"], "job-name": name}
            annotations = dict(template["metadata"].get("annotations") or {})
            spec = {**template["spec"], "nodeName": nodes[index % len(nodes)]}
            if indexed:
                labels["batch.kubernetes.io/job-completion-index"] = str(index)
                annotations["batch.kubernetes.io/job-completion-index"] = str(index)
                spec["hostname"] = f"{name}-{index}"
            self.state.pods[pod_name] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": namespace, "labels": labels, "annotations": annotations},
                "spec": spec,
                "status": {"phase": "Pending" if reason else "Running",
                           "containerStatuses": [_container_status(running=not reason, waiting=reason)]},
            }
        self.send(job, 201)


class JobHandler(_Handler):
    def get(self, namespace, name):
        if name not in self.state.jobs:
            return self.not_found("jobs.batch", name)
        self.send(self.state.jobs[name])

    def delete(self, namespace, name):
        grace, policy = self.deletion_options()
        if name not in self.state.jobs:
            return self.not_found("jobs.batch", name)
        self.state.deletions.append(Deletion("Job", name, grace, policy, time.monotonic()))
        job = self.state.jobs.pop(name)
        if policy not in ("Orphan", "Foreground"):
            # Background: the garbage collector deletes the pods with their own grace period.
            for pod in self.state.pods_of(name):
                _terminate(self.state, pod["metadata"]["name"], pod["spec"].get("terminationGracePeriodSeconds", 30))
        self.send({"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": job["metadata"]["name"]}})


class PodsHandler(_Handler):
    async def get(self, namespace):
        if self.get_query_argument("watch", "").lower() in ("true", "1"):
            # A watch that ends at once: KubeSpawner's reflector lists again, and sees the change.
            await asyncio.sleep(0.2)
            self.set_header("Content-Type", "application/json")
            return self.finish("")
        self.listing("Pod", self.state.pods)

    def post(self, namespace):
        # A pod created directly (KubeSpawner's notebook pods): it runs at once.
        pod = self.body()
        name = pod["metadata"]["name"]
        if name in self.state.pods:
            return self.send({"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "exists"}, 409)
        pod["metadata"].update({"namespace": namespace, "uid": f"uid-{name}", "resourceVersion": "1"})
        name_of = [c["name"] for c in pod["spec"]["containers"]]
        pod["status"] = {"phase": "Running", "podIP": "10.244.0.7",
                         "containerStatuses": [{**_container_status(running=True), "name": n} for n in name_of]}
        self.state.pods[name] = pod
        self.send(pod, 201)


class PodHandler(_Handler):
    def get(self, namespace, name):
        if name not in self.state.pods:
            return self.not_found("pods", name)
        self.send(self.state.pods[name])

    def delete(self, namespace, name):
        grace, policy = self.deletion_options()
        if name not in self.state.pods:
            return self.not_found("pods", name)
        pod = self.state.pods[name]
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        self.state.deletions.append(Deletion("Pod", name, grace, policy, time.monotonic()))
        _terminate(self.state, name, grace)
        self.send(pod)


class PodLogHandler(_Handler):
    def get(self, namespace, name):
        if name not in self.state.pods:
            return self.not_found("pods", name)
        self.set_header("Content-Type", "text/plain")
        self.finish(self.state.logs.get(name, ""))


class ServicesHandler(_Handler):
    def get(self, namespace):
        self.listing("Service", self.state.services)

    def post(self, namespace):
        service = self.body()
        self.state.services[service["metadata"]["name"]] = service
        self.send(service, 201)


class ServiceHandler(_Handler):
    def delete(self, namespace, name):
        if self.state.services.pop(name, None) is None:
            return self.not_found("services", name)
        self.state.deletions.append(Deletion("Service", name, None, None, time.monotonic()))
        self.send({"kind": "Status", "apiVersion": "v1", "status": "Success"})


class ClaimsHandler(_Handler):
    def get(self, namespace, plural):
        selector = self.get_query_argument("labelSelector", None)
        items = [o for (p, _), o in self.state.claims.items() if p == plural and _matches(o, selector)]
        self.send({"apiVersion": "resource.k8s.io/v1", "kind": "List", "metadata": {}, "items": items})

    def post(self, namespace, plural):
        claim = self.body()
        key = (plural, claim["metadata"]["name"])
        if key in self.state.claims:
            return self.send({"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "exists"}, 409)
        claim["metadata"].update({"namespace": namespace, "uid": f"uid-{key[1]}", "resourceVersion": "1"})
        self.state.claims[key] = claim
        self.send(claim, 201)


class ClaimHandler(_Handler):
    def get(self, namespace, plural, name):
        if (plural, name) not in self.state.claims:
            return self.not_found(plural, name)
        self.send(self.state.claims[(plural, name)])

    def put(self, namespace, plural, name):
        live = self.state.claims.get((plural, name))
        if live is None:
            return self.not_found(plural, name)
        claim = self.body()
        if claim["metadata"].get("resourceVersion") != live["metadata"]["resourceVersion"]:
            return self.send({"kind": "Status", "code": 409, "reason": "Conflict", "message": "changed"}, 409)
        claim["metadata"]["resourceVersion"] = str(int(live["metadata"]["resourceVersion"]) + 1)
        self.state.claims[(plural, name)] = claim
        self.send(claim)

    def delete(self, namespace, plural, name):
        if self.state.claims.pop((plural, name), None) is None:
            return self.not_found(plural, name)
        self.state.deletions.append(Deletion(plural, name, None, None, time.monotonic()))
        self.send({"kind": "Status", "apiVersion": "v1", "status": "Success"})


def _refresh_job_status(state: ClusterState, job: dict) -> None:
    pods = state.pods_of(job["metadata"]["name"])
    status: dict = {}
    for pod in pods:
        phase = pod["status"]["phase"]
        key = {"Succeeded": "succeeded", "Failed": "failed"}.get(phase, "active")
        status[key] = status.get(key, 0) + 1
    job["status"] = status


def _terminate(state: ClusterState, pod_name: str, grace: int) -> None:
    """SIGTERM now; the pod is gone when the process exits or SIGKILL comes, plus the kubelet's delay."""
    pod = state.pods.get(pod_name)
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        if pod is not None and grace == 0:
            state.pods.pop(pod_name, None)  # force deletion removes the object at once
        return
    pod["metadata"]["deletionTimestamp"] = "2026-11-25T10:00:00Z"
    if grace == 0:
        state.pods.pop(pod_name, None)
        state.gone[pod_name] = time.monotonic()
        return
    running = pod["status"]["phase"] in ("Running", "Pending")
    gone_after = (min(state.exit_after_sigterm, grace) if running else 0) + state.kubelet_delay

    async def remove():
        await asyncio.sleep(gone_after)
        state.pods.pop(pod_name, None)
        state.gone[pod_name] = time.monotonic()

    asyncio.get_running_loop().create_task(remove())


class ApiServerStandIn:
    """Serve ``ClusterState`` on a free local port; ``url`` is its address."""

    def __init__(self, state: ClusterState | None = None):
        self.state = state or ClusterState()
        args = {"state": self.state}
        self.app = web.Application(
            [
                (r"/apis/batch/v1/namespaces/([^/]+)/jobs", JobsHandler, args),
                (r"/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)", JobHandler, args),
                (r"/api/v1/namespaces/([^/]+)/pods", PodsHandler, args),
                (r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", PodHandler, args),
                (r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/log", PodLogHandler, args),
                (r"/api/v1/namespaces/([^/]+)/services", ServicesHandler, args),
                (r"/api/v1/namespaces/([^/]+)/services/([^/]+)", ServiceHandler, args),
                (r"/apis/resource.k8s.io/v1/namespaces/([^/]+)/(resourceclaims|resourceclaimtemplates)", ClaimsHandler, args),
                (r"/apis/resource.k8s.io/v1/namespaces/([^/]+)/(resourceclaims|resourceclaimtemplates)/([^/]+)", ClaimHandler, args),
            ]
        )
        self.server: HTTPServer | None = None
        self.url = ""

    async def start(self) -> None:
        sockets = bind_sockets(0, "127.0.0.1")
        self.server = HTTPServer(self.app)
        self.server.add_sockets(sockets)
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()

    # ---- for a server in another process (the pool service): serve from a thread

    def start_in_thread(self) -> None:
        import threading

        ready = threading.Event()

        def serve():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.start())
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.stop())
            self.loop.close()

        self.thread = threading.Thread(target=serve, name="apiserver-standin", daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop_thread(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

