"""The one HTTP client for the pool service.

Spawners, the ``gpupool`` CLI, the lab server extension and the node agent
all talk to the pool through this module, so there is one place that knows
the URLs, the auth header and how errors come back.

``PoolClient`` is synchronous (requests); ``AsyncPoolClient`` has the same
methods as coroutines (tornado's HTTP client) for code that runs inside an
event loop (spawners, the lab server extension). Both raise ``PoolError``
subclasses that carry the service's own message, which is written for a
person to read.

Defaults come from the environment: ``GPUPOOL_URL`` (the service's base URL,
e.g. ``http://127.0.0.1:8000/services/gpupool/``) and
``JUPYTERHUB_API_TOKEN``.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote, urlencode

__all__ = [
    "PoolClient",
    "AsyncPoolClient",
    "PoolError",
    "PoolAuthError",
    "PoolForbidden",
    "PoolNotFound",
    "PoolConflict",
    "PoolBadRequest",
    "PoolUnavailable",
]


class PoolError(Exception):
    """The service refused or failed a request; ``str(e)`` is its message."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class PoolBadRequest(PoolError):
    """400/422: the request itself is wrong (unknown team, impossible size, ...)."""


class PoolAuthError(PoolError):
    """401: no token, or the hub does not know it."""


class PoolForbidden(PoolError):
    """403: the token is valid but lacks the scope, or the workload is someone else's."""


class PoolNotFound(PoolError):
    """404: no such workload, team or node."""


class PoolConflict(PoolError):
    """409: the request conflicts with the state (e.g. resizing a finished job)."""


class PoolUnavailable(PoolError):
    """The service could not be reached, or failed (5xx)."""


def _error_class(status: int) -> type[PoolError]:
    if status == 401:
        return PoolAuthError
    if status == 403:
        return PoolForbidden
    if status == 404:
        return PoolNotFound
    if status == 409:
        return PoolConflict
    if 400 <= status < 500:
        return PoolBadRequest
    return PoolUnavailable


def _raise_for(status: int, text: str, url: str) -> None:
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    message = None
    if isinstance(body, dict):
        message = body.get("error") or body.get("message")
    if not message:
        snippet = (text or "").strip()[:200]
        message = f"the pool service answered {status} for {url}" + (f": {snippet}" if snippet else "")
    raise _error_class(status)(message, status=status, body=body)


def _default_url(url: str | None) -> str:
    url = url or os.environ.get("GPUPOOL_URL")
    if not url:
        raise PoolError(
            "no pool service URL: pass one or set GPUPOOL_URL "
            "(e.g. http://127.0.0.1:8000/services/gpupool/)"
        )
    url = url.rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    return url + "/"


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    """Drop keys left at None so the service applies its own defaults."""
    return {k: v for k, v in body.items() if v is not None}


class _Endpoints:
    """Every endpoint of the service, once. ``_call`` is the transport."""

    base_url: str

    def _call(self, method: str, path: str, params: dict | None = None, body: Any = None, raw: bool = False):
        raise NotImplementedError

    # -- who am I
    def me(self):
        """``{user, teams, admin}`` for the token's owner."""
        return self._call("GET", "api/me")

    # -- the pool
    def pool(self):
        """Nodes and per-GPU state."""
        return self._call("GET", "api/pool")

    # -- workloads
    def workloads(self, user: str | None = None, state: str | None = None):
        """My workloads (all workloads for admins), optionally filtered."""
        return self._call("GET", "api/workloads", params=_clean({"user": user, "state": state}))

    def submit(self, spec: dict[str, Any] | None = None, **fields: Any):
        """Submit a workload; ``spec`` and keyword fields are merged (see docs/api.md)."""
        body = dict(spec or {})
        body.update(fields)
        return self._call("POST", "api/workloads", body=_clean(body))

    def workload(self, workload_id: str):
        return self._call("GET", f"api/workloads/{quote(str(workload_id), safe='')}")

    def cancel(self, workload_id: str):
        """Cancel a pending workload or stop a running one."""
        return self._call("DELETE", f"api/workloads/{quote(str(workload_id), safe='')}")

    def resize(self, workload_id: str, gpus: int):
        """Ask for a new GPU count for an elastic job."""
        return self._call("POST", f"api/workloads/{quote(str(workload_id), safe='')}/resize", body={"gpus": gpus})

    def restart(self, workload_id: str, gpus: float):
        """Restart one of my notebook sessions with another number of GPUs; its files are kept."""
        return self._call("POST", f"api/workloads/{quote(str(workload_id), safe='')}/restart", body={"gpus": gpus})

    def preempt(self, workload_id: str):
        """Admins: take a running workload's GPUs back; it returns to the queue."""
        return self._call("POST", f"api/workloads/{quote(str(workload_id), safe='')}/preempt")

    def set_priority(self, workload_id: str, priority: int):
        """Admins: change a workload's priority."""
        return self._call("PATCH", f"api/workloads/{quote(str(workload_id), safe='')}", body={"priority": priority})

    def report(self, start: str | None = None, end: str | None = None, format: str = "json"):
        """Admins: GPU-hours held and busy, reclaims and waits per team for a period (CSV text with format="csv")."""
        params = _clean({"start": start, "end": end, "format": format})
        return self._call("GET", "api/report", params=params, raw=format == "csv")

    # -- queue, teams, events
    def queue(self):
        """Pending workloads in the order they would start, with position, reason and expected start."""
        return self._call("GET", "api/queue")

    def teams(self):
        return self._call("GET", "api/teams")

    def team(self, name: str):
        return self._call("GET", f"api/teams/{quote(name, safe='')}")

    def set_team(
        self,
        name: str,
        quota: float | None = None,
        over_quota_weight: float | None = None,
        limit: float | None = None,
        *,
        clear_limit: bool = False,
    ):
        """Create or change a team (admins). ``clear_limit`` removes a team's limit."""
        body = _clean({"quota": quota, "over_quota_weight": over_quota_weight, "limit": limit})
        if clear_limit:
            body["limit"] = None
        return self._call("PATCH", f"api/teams/{quote(name, safe='')}", body=body)

    def events(self, since: int | None = None, workload_id: str | None = None, limit: int | None = None):
        """Event log entries after event id ``since``."""
        return self._call("GET", "api/events", params=_clean({"since": since, "workload": workload_id, "limit": limit}))

    # -- nodes (the agent)
    def report_readings(self, node: str, gpus: list[dict[str, Any]], simulated: bool | None = None, errors: list[str] | None = None):
        """Report per-GPU readings of one node (agent scope).

        Each GPU: ``{index, uuid, model, memory_total_mib, memory_used_mib,
        utilization, processes: [{pid, used_memory_mib}]}``.
        """
        body: dict[str, Any] = {"gpus": gpus}
        if simulated is not None:
            body["simulated"] = simulated
        if errors is not None:
            body["errors"] = errors  # what the agent could not read: the node's health on the admin page
        return self._call("POST", f"api/nodes/{quote(node, safe='')}/readings", body=body)

    # -- job output
    def logs(self, workload_id: str, offset: int = 0):
        """``{"text", "offset"}``: a batch job's output from byte ``offset`` on."""
        return self._call("GET", f"api/workloads/{quote(str(workload_id), safe='')}/logs", params={"offset": offset})

    # -- documents
    def openapi(self):
        return self._call("GET", "api/openapi.json")

    def metrics(self) -> str:
        """Prometheus metrics text."""
        return self._call("GET", "metrics", raw=True)


class PoolClient(_Endpoints):
    """Synchronous client: ``PoolClient(url, token).pool()``."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0, session=None):
        import requests

        self.base_url = _default_url(url)
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN")
        self.timeout = timeout
        self._session = session or requests.Session()

    def _call(self, method, path, params=None, body=None, raw=False):
        import requests

        url = self.base_url + path
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        try:
            r = self._session.request(
                method, url, params=params or None, data=data, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as e:
            raise PoolUnavailable(f"cannot reach the pool service at {self.base_url}: {e}") from e
        if r.status_code >= 300:
            _raise_for(r.status_code, r.text, url)
        if raw:
            return r.text
        return r.json() if r.content else None

    def close(self) -> None:
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AsyncPoolClient(_Endpoints):
    """The same endpoints as coroutines: ``await AsyncPoolClient(url, token).pool()``."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0):
        self.base_url = _default_url(url)
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN")
        self.timeout = timeout

    async def _call(self, method, path, params=None, body=None, raw=False):
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

        url = self.base_url + path
        if params:
            url += "?" + urlencode(params)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            data = ""
        request = HTTPRequest(
            url,
            method=method,
            headers=headers,
            body=data,
            request_timeout=self.timeout,
            follow_redirects=False,
            allow_nonstandard_methods=True,
        )
        try:
            r = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:
            raise PoolUnavailable(f"cannot reach the pool service at {self.base_url}: {e}") from e
        text = r.body.decode("utf-8", "replace") if r.body else ""
        if r.code == 599:
            raise PoolUnavailable(f"cannot reach the pool service at {self.base_url}: {r.error}")
        if r.code >= 300:
            _raise_for(r.code, text, url)
        if raw:
            return text
        return json.loads(text) if text else None
