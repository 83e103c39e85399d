"""The service's one client for JupyterHub's REST API: read, stop and restart users' servers.

Idle reclaim (reclaim.py), preemption of sessions (preemption.py) and the
comparison of sessions with servers (reconcile.py) all talk to the hub
through ``HubClient``, with the service's own token (``IdleReclaim.hub_api_url``
and ``hub_api_token``). The token needs ``admin:servers`` (stop and start
users' servers) and ``read:servers`` (see docs/idle-reclaim.md).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Awaitable, Callable
from urllib.parse import quote

# What may happen to a session's server when its GPUs are taken away.
STOP, RESTART_WITHOUT_GPUS = "stop", "restart_without_gpus"
SERVER_ACTIONS = (STOP, RESTART_WITHOUT_GPUS)


class HubError(RuntimeError):
    pass


def server_name_of(name: str | None) -> str | None:
    """The JupyterHub server a session workload belongs to: "" for the default server.

    The spawners name a session's workload "notebook" (default server) or
    "notebook-<server name>"; any other session was submitted by hand and has
    no server to stop (None).
    """
    name = name or ""
    if name == "notebook":
        return ""
    if name.startswith("notebook-"):
        return name[len("notebook-"):]
    return None


class HubClient:
    """The few JupyterHub REST calls the service makes."""

    def __init__(self, api_url: str, token: str, timeout: float = 30.0):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _server_path(self, user: str, server: str) -> str:
        user_path = f"/users/{quote(user, safe='')}"
        return f"{user_path}/servers/{quote(server, safe='')}" if server else f"{user_path}/server"

    async def _fetch(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest

        request = HTTPRequest(
            self.api_url + path,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else (None if method in ("GET", "DELETE") else ""),
            request_timeout=self.timeout,
            allow_nonstandard_methods=True,
        )
        try:
            r = await AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as e:
            raise HubError(f"cannot reach the hub API at {self.api_url}: {e}") from e
        if r.code == 599:
            raise HubError(f"cannot reach the hub API at {self.api_url}: {r.error}")
        try:
            data = json.loads(r.body) if r.body else None
        except ValueError:
            data = None
        return r.code, data

    # ------------------------------------------------------------ reading servers

    async def can_read_servers(self) -> bool:
        """Whether this token sees every user's servers (else a missing server proves nothing)."""
        code, data = await self._fetch("GET", "/user")
        if code >= 400 or not isinstance(data, dict):
            raise HubError(f"the hub refused to say who the service is ({code})")
        scopes = set(data.get("scopes") or [])
        return "read:servers" in scopes or "admin:servers" in scopes

    async def servers(self, user: str) -> dict | None:
        """``user``'s server models by name ("" is the default server); {} for a user the hub
        no longer knows; None when the answer lists no servers (the token lacks read:servers)."""
        code, data = await self._fetch("GET", f"/users/{quote(user, safe='')}")
        if code == 404:
            return {}
        if code >= 400 or not isinstance(data, dict):
            raise HubError(f"the hub refused to show {user}'s servers ({code}) (give the gpupool service the read:servers scope)")
        servers = data.get("servers")
        return servers if isinstance(servers, dict) else None

    async def live_servers(self, user: str) -> set[str] | None:
        """Names of ``user``'s servers that are running or pending (None: cannot tell, see ``servers``)."""
        servers = await self.servers(user)
        if servers is None:
            return None
        return {
            name for name, s in servers.items()
            if isinstance(s, dict) and not s.get("stopped") and (s.get("ready") or s.get("pending"))
        }

    # ------------------------------------------------------------ stopping and starting

    async def stop(self, user: str, server: str) -> bool:
        """Ask the hub to stop a server; False when there is no such server running."""
        code, data = await self._fetch("DELETE", self._server_path(user, server))
        if code in (202, 204):
            return True
        if code in (400, 404):  # not running / no such user or server
            return False
        message = (data or {}).get("message") if isinstance(data, dict) else None
        raise HubError(f"the hub refused to stop {user}'s server {server!r} ({code}): {message or 'no message'}"
                       + (" (give the gpupool service the admin:servers scope)" if code == 403 else ""))

    async def wait_stopped(self, user: str, server: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            servers = await self.servers(user)
            entry = (servers or {}).get(server)
            if not entry or entry.get("stopped") or (not entry.get("ready") and not entry.get("pending")):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)

    async def start(self, user: str, server: str, user_options: dict) -> None:
        code, data = await self._fetch("POST", self._server_path(user, server), user_options)
        if code not in (201, 202):
            message = (data or {}).get("message") if isinstance(data, dict) else None
            raise HubError(f"the hub refused to restart {user}'s server {server!r} without GPUs ({code}): {message or 'no message'}")

    async def take_gpus_away(self, user: str, server: str, action: str, stop_timeout: float) -> bool:
        """Stop ``user``'s server (files untouched) and, for ``restart_without_gpus``, start it
        again with no GPUs. False when the server was not running.

        Raises ``HubError`` with ``stopped`` set when the server did stop but its restart failed.
        """
        found = await self.stop(user, server)
        if found and not await self.wait_stopped(user, server, stop_timeout):
            raise HubError(f"{user}'s server {server!r} did not stop within {stop_timeout:g}s")
        if found and action == RESTART_WITHOUT_GPUS:
            try:
                await self.start(user, server, {"gpus": "0"})
            except HubError as e:
                e.stopped = True
                raise
        return found


class ServerActions:
    """The server stops (and restarts) one of the service's parts has under way with the hub.

    Idle reclaim and preemption both stop sessions' servers in the background, once per session at a
    time, and wait ``retry_seconds`` before trying again a stop the hub refused (the server still runs
    on its GPUs meanwhile, so they stay its own). This is that bookkeeping, in one place.
    """

    def __init__(self, retry_seconds: Callable[[], float]):
        self._retry_seconds = retry_seconds
        self._in_flight: dict[str, asyncio.Task] = {}
        self._retry_at: dict[str, float] = {}

    def busy(self, workload_id: str, now: float) -> bool:
        """Whether a stop of this workload's server is under way, or was refused less than ``retry_seconds`` ago."""
        return workload_id in self._in_flight or self._retry_at.get(workload_id, 0) > now

    def under_way(self, workload_id: str) -> bool:
        return workload_id in self._in_flight

    def start(self, workload_id: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action()`` in the background unless one for this workload is under way."""
        if workload_id in self._in_flight:
            return
        task = asyncio.ensure_future(action())
        self._in_flight[workload_id] = task
        task.add_done_callback(lambda _t: self._in_flight.pop(workload_id, None))

    def refused(self, workload_id: str) -> None:
        """The hub refused: not again before ``retry_seconds``."""
        self._retry_at[workload_id] = time.time() + self._retry_seconds()

    def succeeded(self, workload_id: str) -> None:
        self._retry_at.pop(workload_id, None)

    async def close(self) -> None:
        for task in list(self._in_flight.values()):
            task.cancel()
        if self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
