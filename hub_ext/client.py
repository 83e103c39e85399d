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

Restarts: while the service restarts (after a crash JupyterHub starts it
again) the proxy answers 502/503 and direct connections are refused. Both
clients retry such answers with backoff for up to ``retry_seconds`` (default
$GPUPOOL_RETRY_SECONDS or 60), calling ``on_retry(message)`` with words a
person can read ("the pool is restarting ..."), then raise ``PoolUnavailable``.
Retrying is safe: every submission carries an idempotency key, so a retry
of a submission that was stored returns the same workload.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import Any, Callable
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


#: Answers that mean "the service is not there right now" (the proxy's, during a restart).
RETRY_STATUSES = (502, 503, 504)
RESTARTING = "the pool is restarting"


def _default_retry_seconds(value: float | None) -> float:
    if value is not None:
        return max(0.0, float(value))
    try:
        return max(0.0, float(os.environ.get("GPUPOOL_RETRY_SECONDS", "60")))
    except ValueError:
        return 60.0


class _Backoff:
    """Waits between retries: 0.25 s doubling to 4 s, with jitter, until ``seconds`` have passed."""

    def __init__(self, seconds: float, on_retry: Callable[[str], None] | None):
        self.deadline = time.monotonic() + seconds
        self.started = time.monotonic()
        self.delay = 0.25
        self.on_retry = on_retry
        self.tries = 0

    def next_wait(self, why: str) -> float | None:
        """Seconds to wait before the next try, or None when the time is up."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        wait = min(self.delay * (0.5 + random.random()), left)
        self.delay = min(self.delay * 2, 4.0)
        self.tries += 1
        if self.on_retry is not None:
            waited = time.monotonic() - self.started
            self.on_retry(f"{RESTARTING} ({why}); trying again (waited {waited:.0f} s so far)")
        return wait

    def give_up(self, base_url: str, why: str) -> PoolUnavailable:
        waited = time.monotonic() - self.started
        tail = f" after retrying for {waited:.0f} s" if self.tries else ""
        return PoolUnavailable(
            f"cannot reach the pool service at {base_url}: {why}{tail}. "
            f"If {RESTARTING}, try again in a minute; if this lasts, ask an admin to check the gpupool service."
        )


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


class _Retry(Exception):
    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


class _Endpoints:
    """Every endpoint of the service, once. ``_call`` is the transport."""

    base_url: str

    def _call(self, method: str, path: str, params: dict | None = None, body: Any = None, raw: bool = False, headers: dict | None = None):
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

    def submit(self, spec: dict[str, Any] | None = None, *, idempotency_key: str | None = None, **fields: Any):
        """Submit a workload; ``spec`` and keyword fields are merged (see docs/api.md).

        Sent with an idempotency key (a new one per call unless given), so the
        client's own retries never submit twice.
        """
        body = dict(spec or {})
        body.update(fields)
        key = idempotency_key or body.pop("idempotency_key", None) or str(uuid.uuid4())
        return self._call("POST", "api/workloads", body=_clean(body), headers={"Idempotency-Key": key})

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

    def history(self, window: str = "day"):
        """GPUs held per team over time (admins: every team; others: their own)."""
        return self._call("GET", "api/history", params={"window": window})

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

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        session=None,
        retry_seconds: float | None = None,
        on_retry: Callable[[str], None] | None = None,
    ):
        import requests

        self.base_url = _default_url(url)
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN")
        self.timeout = timeout
        self.retry_seconds = _default_retry_seconds(retry_seconds)
        self.on_retry = on_retry
        self._session = session or requests.Session()

    def _call(self, method, path, params=None, body=None, raw=False, headers=None):
        import requests

        url = self.base_url + path
        headers = {"Accept": "application/json", **(headers or {})}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        backoff = _Backoff(self.retry_seconds, self.on_retry)
        while True:
            try:
                r = self._session.request(
                    method, url, params=params or None, data=data, headers=headers, timeout=self.timeout, allow_redirects=False
                )
            except requests.ConnectionError as e:  # refused, reset, or no connection in time: not processed
                why = f"{type(e).__name__}: {e}"
            except requests.Timeout as e:
                # Sent but unanswered: repeat only what is safe to repeat.
                if method not in ("GET", "PUT", "PATCH") and "Idempotency-Key" not in headers:
                    raise PoolUnavailable(f"the pool service at {self.base_url} did not answer in {self.timeout:g} s: {e}") from e
                why = f"{type(e).__name__}: {e}"
            else:
                if r.status_code not in RETRY_STATUSES:
                    break
                why = f"HTTP {r.status_code}"
            wait = backoff.next_wait(why)
            if wait is None:
                raise backoff.give_up(self.base_url, why)
            time.sleep(wait)
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

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        retry_seconds: float | None = None,
        on_retry: Callable[[str], None] | None = None,
    ):
        self.base_url = _default_url(url)
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN")
        self.timeout = timeout
        self.retry_seconds = _default_retry_seconds(retry_seconds)
        self.on_retry = on_retry

    async def _call(self, method, path, params=None, body=None, raw=False, headers=None):
        import asyncio

        backoff = _Backoff(self.retry_seconds, self.on_retry)
        while True:
            try:
                return await self._call_once(method, path, params, body, raw, headers)
            except _Retry as e:
                wait = backoff.next_wait(e.why)
                if wait is None:
                    raise backoff.give_up(self.base_url, e.why) from None
                await asyncio.sleep(wait)

    async def _call_once(self, method, path, params, body, raw, extra_headers):
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

        url = self.base_url + path
        if params:
            url += "?" + urlencode(params)
        headers = {"Accept": "application/json", **(extra_headers or {})}
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
            raise _Retry(f"{type(e).__name__}: {e}") from e
        text = r.body.decode("utf-8", "replace") if r.body else ""
        if r.code == 599:
            raise _Retry(str(r.error))
        if r.code in RETRY_STATUSES:
            raise _Retry(f"HTTP {r.code}")
        if r.code >= 300:
            _raise_for(r.code, text, url)
        if raw:
            return text
        return json.loads(text) if text else None
