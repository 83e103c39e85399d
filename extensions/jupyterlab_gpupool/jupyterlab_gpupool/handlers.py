"""The lab server extension: the panel's calls, forwarded to the pool service.

Each handler is one call of ``hub_ext.client.AsyncPoolClient`` made with this
server's own JupyterHub token, so the pool service sees the user who owns the
server and applies that user's rights; nothing here decides who may do what.
Errors come back as ``{"error": "<the service's own words>"}`` with the
service's status, so the panel can show them as they are.
"""

from __future__ import annotations

import json
import os

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from hub_ext.client import AsyncPoolClient, PoolError

from .config import GpuPoolLab

_ID = r"(?P<workload_id>[^/]+)"


def job_in_server_folder(spec: dict, root_dir: str) -> dict:
    """A job from the panel runs where the user's files are (this server's root folder, as the
    form says), not wherever the pool service happens to run; a relative workdir is taken from there."""
    spec = dict(spec)
    workdir = spec.get("workdir")
    if not workdir:
        spec["workdir"] = os.path.abspath(os.path.expanduser(root_dir))
    elif isinstance(workdir, str) and not os.path.isabs(workdir):
        spec["workdir"] = os.path.abspath(os.path.join(os.path.expanduser(root_dir), workdir))
    return spec


class PoolProxyHandler(APIHandler):
    """Base: builds the client, turns ``PoolError`` into a JSON error the panel shows."""

    def initialize(self, settings: GpuPoolLab):
        self.lab_settings = settings

    def client(self) -> AsyncPoolClient:
        s = self.lab_settings
        if not s.pool_url:
            raise web.HTTPError(
                503,
                reason="not connected to a GPU pool",
                log_message="GPUPOOL_URL is not set",
            )
        if not s.api_token:
            raise web.HTTPError(503, reason="this server has no JupyterHub token to show the GPU pool")
        # A short retry: the panel polls again anyway, and says "the pool is restarting" meanwhile.
        return AsyncPoolClient(s.pool_url, s.api_token, timeout=s.request_timeout, retry_seconds=min(10.0, s.request_timeout))

    async def forward(self, call):
        try:
            result = await call(self.client())
        except PoolError as e:
            status = e.status if e.status and 400 <= e.status < 600 else 502
            self.set_status(status)
            self.finish({"error": e.message})
            return
        if result is None:
            self.set_status(204)
            self.finish()
        else:
            self.finish(json.dumps(result))

    def write_error(self, status_code, **kwargs):
        # The panel shows "error" as it is: say what is wrong in words a user can act on.
        reason = self._reason
        if status_code == 503:
            reason = (
                "This JupyterLab server is not connected to a GPU pool (it was not started by the "
                "gpupool spawner, or GPUPOOL_URL is not set)"
            )
        self.set_header("Content-Type", "application/json")
        self.finish({"error": reason})

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, reason="the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, reason="the request body must be a JSON object")
        return body


class MeHandler(PoolProxyHandler):
    @web.authenticated
    async def get(self):
        session_id = self.lab_settings.session_workload_id or None

        async def me(client):
            body = await client.me()
            body["session_workload_id"] = session_id
            return body

        await self.forward(me)


class PoolHandler(PoolProxyHandler):
    @web.authenticated
    async def get(self):
        await self.forward(lambda c: c.pool())


class WorkloadsHandler(PoolProxyHandler):
    @web.authenticated
    async def get(self):
        state = self.get_argument("state", None)
        await self.forward(lambda c: c.workloads(state=state))

    @web.authenticated
    async def post(self):
        spec = job_in_server_folder(self.json_body(), self.settings.get("server_root_dir") or os.getcwd())
        # The panel's own key when it sends one (its retries), else one per request (the client's retries).
        key = self.request.headers.get("Idempotency-Key") or None
        await self.forward(lambda c: c.submit(spec, idempotency_key=key))


class WorkloadHandler(PoolProxyHandler):
    @web.authenticated
    async def get(self, workload_id):
        await self.forward(lambda c: c.workload(workload_id))

    @web.authenticated
    async def delete(self, workload_id):
        await self.forward(lambda c: c.cancel(workload_id))


class ResizeHandler(PoolProxyHandler):
    @web.authenticated
    async def post(self, workload_id):
        gpus = self.json_body().get("gpus")
        if isinstance(gpus, bool) or not isinstance(gpus, (int, float)):
            raise web.HTTPError(400, reason='say how many GPUs: {"gpus": N}')
        await self.forward(lambda c: c.resize(workload_id, gpus))


class RestartHandler(PoolProxyHandler):
    """Restart a session of mine with other GPUs. The pool service asks the hub to stop and start the server,
    so the answer comes back before this very server goes away."""

    @web.authenticated
    async def post(self, workload_id):
        gpus = self.json_body().get("gpus")
        if isinstance(gpus, bool) or not isinstance(gpus, (int, float)):
            raise web.HTTPError(400, reason='say how many GPUs: {"gpus": N}')
        await self.forward(lambda c: c.restart(workload_id, gpus))


class LogsHandler(PoolProxyHandler):
    @web.authenticated
    async def get(self, workload_id):
        try:
            offset = int(self.get_argument("offset", "0"))
        except ValueError:
            raise web.HTTPError(400, reason="offset must be a whole number of bytes") from None
        await self.forward(lambda c: c.logs(workload_id, offset=offset))


class QueueHandler(PoolProxyHandler):
    @web.authenticated
    async def get(self):
        await self.forward(lambda c: c.queue())


class EventsHandler(PoolProxyHandler):
    @web.authenticated
    async def get(self):
        since = self.get_argument("since", None)
        try:
            since_id = int(since) if since else None
        except ValueError:
            raise web.HTTPError(400, reason="since must be an event id (a whole number)") from None
        await self.forward(lambda c: c.events(since=since_id))


class TeamsHandler(PoolProxyHandler):
    @web.authenticated
    async def get(self):
        await self.forward(lambda c: c.teams())


def setup_handlers(serverapp) -> None:
    settings = GpuPoolLab(parent=serverapp)
    base = url_path_join(serverapp.web_app.settings["base_url"], "gpupool", "api")
    routes = [
        ("me", MeHandler),
        ("pool", PoolHandler),
        ("workloads", WorkloadsHandler),
        (f"workloads/{_ID}", WorkloadHandler),
        (f"workloads/{_ID}/resize", ResizeHandler),
        (f"workloads/{_ID}/logs", LogsHandler),
        (f"workloads/{_ID}/restart", RestartHandler),
        ("queue", QueueHandler),
        ("events", EventsHandler),
        ("teams", TeamsHandler),
    ]
    serverapp.web_app.add_handlers(
        ".*$", [(url_path_join(base, path) + "$", handler, {"settings": settings}) for path, handler in routes]
    )
    where = settings.pool_url or "nowhere (GPUPOOL_URL is not set)"
    serverapp.log.info("jupyterlab_gpupool: the GPU pool panel talks to %s", where)
