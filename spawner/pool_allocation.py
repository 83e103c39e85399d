"""The allocation logic every gpupool spawner shares: GPUs come from the pool.

``PoolAllocationMixin`` goes in front of a JupyterHub spawner class
(``class GpuLocalProcessSpawner(PoolAllocationMixin, LocalProcessSpawner)``,
and likewise for KubeSpawner). It knows nothing about where the server runs;
it only talks to the pool service through ``hub_ext.client``:

- before the server starts, it submits a *session* workload for the user and
  waits while it is queued, publishing honest progress events (position,
  what it waits for, why, expected start);
- the wait happens in ``run_pre_spawn_hook``, which JupyterHub awaits with no
  timeout, so ``start_timeout``/``http_timeout`` keep measuring only the
  server's own start-up and a legitimately queued spawn is never killed by
  them; ``queue_timeout`` bounds the wait instead;
- "Stop Server" on the spawn page cancels the spawn: the wait is cancelled and
  the queued workload is cancelled with it;
- ``stop()``, a failed start and a server found dead all release the
  allocation at once.

The allocation is exposed as ``self.allocation`` and ``allocation_env()``
turns it into environment variables; the concrete spawner decides how the
server gets them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import time
from typing import Any

from traitlets import Bool, Dict, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from hub_ext.client import AsyncPoolClient, PoolConflict, PoolError, PoolNotFound, PoolUnavailable
from hub_ext import states

from .gpu_choices import GpuRequest, GpuRequestError, parse_gpu_request
from .options_form import render_options_form

try:  # JupyterHub >= 6: policy failures are reported as such (no traceback, 'failure' metric)
    from jupyterhub.spawner import SpawnException
except ImportError:  # pragma: no cover - JupyterHub 5
    from tornado.web import HTTPError

    class SpawnException(HTTPError):  # type: ignore[no-redef]
        def __init__(self, message, *, reason, status_code=400, **_):
            super().__init__(status_code, log_message=message)
            self.jupyterhub_message = message
            self.reason = reason


GPU_OPTION_KEYS = frozenset({"gpus", "team", "gpu_model"})
ACTIVE_STATES = states.ACTIVE_STATES
ENDED_STATES = frozenset(states.FINISHED_STATES)

# Progress percentages on the spawn page. A queue has no honest percentage,
# so the bar only tells the phases apart.
PROGRESS_QUEUED = 10
PROGRESS_ALLOCATED = 50
PROGRESS_STARTING = 60


class PoolAllocationMixin(LoggingConfigurable):
    """Take a notebook server's GPUs from the gpupool pool (put in front of a Spawner class)."""

    pool_url = Unicode(
        help="""URL at which the hub reaches the pool service, e.g.
        ``http://127.0.0.1:8001/services/gpupool/`` (the service's own ``url``).
        Default: $GPUPOOL_URL of the hub process.""",
    ).tag(config=True)

    @default("pool_url")
    def _default_pool_url(self):
        import os

        return os.environ.get("GPUPOOL_URL", "")

    server_pool_url = Unicode(
        help="""URL of the pool service as seen from inside a single-user server; given to the
        server (and so to the ``gpupool`` CLI in its terminals) as $GPUPOOL_URL.
        Default: ``pool_url``.""",
    ).tag(config=True)

    @default("server_pool_url")
    def _default_server_pool_url(self):
        return self.pool_url

    pool_token = Unicode(
        help="""API token the spawner uses to talk to the pool service. It acts for users, so it
        needs the ``custom:gpupool:admin`` scope (and ``access:services!service=gpupool``).
        Default: $GPUPOOL_SPAWNER_TOKEN of the hub process.""",
    ).tag(config=True)

    @default("pool_token")
    def _default_pool_token(self):
        import os

        return os.environ.get("GPUPOOL_SPAWNER_TOKEN", "")

    gpu_fractions = List(
        Float(),
        default_value=[0.25, 0.5],
        help="""Fractions of one shared card offered on the spawn form (each in (0, 1)).
        An empty list offers whole GPUs only.""",
    ).tag(config=True)

    max_whole_gpus = Integer(
        4,
        help="""Largest number of whole GPUs one notebook server may ask for; the form offers
        1..max_whole_gpus (choices no node could ever give are shown disabled).""",
    ).tag(config=True)

    default_gpus = Float(
        0,
        help="""GPUs a server gets when the request does not say (0: a server without GPUs,
        which starts without asking the pool).""",
    ).tag(config=True)

    offer_gpu_models = Bool(
        True,
        help="Let users pick a GPU model on the spawn form (the models present in the pool).",
    ).tag(config=True)

    queue_timeout = Float(
        8 * 3600,
        help="""Seconds a spawn may wait in the pool's queue before it gives up (0: no limit).
        JupyterHub's start_timeout does not count this wait; it starts once GPUs are allocated.""",
    ).tag(config=True)

    queue_poll_interval = Float(
        1.0,
        help="Seconds between looks at a queued spawn's workload (position, reason, expected start).",
    ).tag(config=True)

    pool_retry_seconds = Float(
        30.0,
        help="""How long a request to the pool service is retried while the service restarts (connection
        refused, 502/503 from the proxy); the spawn page says "The GPU pool is restarting" meanwhile.
        Releasing GPUs at stop retries at most 5 s: a failed release is tried again at the next poll.""",
    ).tag(config=True)

    form_retry_seconds = Float(
        3.0,
        help="""How long the spawn form waits for a pool service that is down or restarting before it shows
        the form without the pool's status ("status is not available right now"). Short, because a person
        is looking at a blank page meanwhile; the spawn itself still retries for ``pool_retry_seconds``.""",
    ).tag(config=True)

    release_check_interval = Float(
        2.0,
        help="""Seconds between checks that a running server holding GPUs is still alive; when it
        has died its GPUs go back to the pool at once instead of at JupyterHub's next poll.""",
    ).tag(config=True)

    pool_check_interval = Float(
        10.0,
        help="""Seconds between checks that a running server's session is still running in the pool;
        a session the pool ended (e.g. an admin stopped it there) gets its server stopped.""",
    ).tag(config=True)

    mps_enabled = Bool(
        False,
        help="""An NVIDIA MPS daemon runs on the GPU nodes: servers on a fraction of a card get
        CUDA_MPS_ACTIVE_THREAD_PERCENTAGE and CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, which MPS enforces.""",
    ).tag(config=True)

    mps_pipe_directory = Unicode(
        "",
        help="CUDA_MPS_PIPE_DIRECTORY for servers on a fraction, where the MPS daemon uses a non-default one.",
    ).tag(config=True)

    extra_pool_env = Dict(
        help="Extra environment variables given to every server that holds GPUs from the pool.",
    ).tag(config=True)

    # ------------------------------------------------------------------ state

    workload_id: str | None = None
    allocation: dict | None = None  # the workload's "allocation" as the service returned it
    gpu_request: GpuRequest | None = None
    _gpu_uuids_real: dict[str, bool] | None = None  # gpu uuid -> True where NVML found real hardware

    def _pool_client(self, retry_seconds: float | None = None) -> AsyncPoolClient:
        if not self.pool_url:
            raise SpawnException(
                "GPU pool is not configured: set c.PoolAllocationMixin.pool_url (or $GPUPOOL_URL)",
                reason="gpupool-config",
                status_code=500,
            )
        retry = self.pool_retry_seconds if retry_seconds is None else retry_seconds
        return AsyncPoolClient(self.pool_url, self.pool_token or None, timeout=15.0, retry_seconds=retry,
                               on_retry=self._pool_restarting)

    def _pool_restarting(self, message: str) -> None:
        """The client retries while the pool service restarts: say so on the spawn page and in the log."""
        self.log.warning("gpupool for %s: %s", getattr(self.user, "name", "?"), message)
        self._emit_progress(f"The GPU pool is restarting; waiting for it ({message.split('; ')[-1]})")

    def get_state(self):
        state = super().get_state()
        if self.workload_id:
            state["gpupool_workload_id"] = self.workload_id
            state["gpupool_allocation"] = self.allocation
        return state

    def load_state(self, state):
        super().load_state(state)
        self.workload_id = state.get("gpupool_workload_id") or None
        self.allocation = state.get("gpupool_allocation") or None

    def clear_state(self):
        super().clear_state()
        self.workload_id = None
        self.allocation = None

    # ------------------------------------------------------------ the request

    def requested_gpus(self) -> GpuRequest:
        """The user's GPU request from user_options (form or API), checked against what is offered."""
        try:
            return parse_gpu_request(
                self.user_options or {},
                default_gpus=self.default_gpus,
                fractions=self.gpu_fractions,
                max_whole=self.max_whole_gpus,
            )
        except GpuRequestError as e:
            raise SpawnException(str(e), reason="gpupool-bad-request") from e

    # ------------------------------------------------------------ progress

    def _reset_progress(self) -> None:
        self._progress_events: list[dict] = []
        self._progress_changed = asyncio.Event()

    def _emit_progress(self, message: str, progress: int | None = None, html_message: str | None = None) -> None:
        events = getattr(self, "_progress_events", None)
        if events is None:
            self._reset_progress()
            events = self._progress_events
        if events and events[-1].get("message") == message:
            return  # the spawn page's log shows changes, not every poll
        event: dict[str, Any] = {"message": message}
        if progress is not None:
            event["progress"] = progress
        if html_message:
            event["html_message"] = html_message
        events.append(event)
        self._progress_changed.set()

    async def progress(self):
        """Every progress event of this spawn, from the first; each new one as it comes.

        JupyterHub stops iterating when the spawn finishes, so this may wait forever.
        """
        sent = 0
        while True:
            events = getattr(self, "_progress_events", None) or []
            while sent < len(events):
                yield events[sent]
                sent += 1
            changed = getattr(self, "_progress_changed", None)
            if changed is None:
                await asyncio.sleep(0.2)
                continue
            changed.clear()
            if sent < len(self._progress_events):
                continue
            try:
                await asyncio.wait_for(changed.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass

    # ------------------------------------------------------------ allocation

    async def run_pre_spawn_hook(self):
        # Runs before start(), outside JupyterHub's start_timeout: see the module docstring.
        result = super().run_pre_spawn_hook()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            await result
        await self.allocate_gpus()

    async def allocate_gpus(self) -> None:
        """Submit the session to the pool and wait until it holds GPUs (or fail with why not)."""
        self._reset_progress()
        self.allocation = None
        self.workload_id = None
        request = self.requested_gpus()
        self.gpu_request = request
        if not request.gpus:
            self._emit_progress("Starting the server (no GPU)", PROGRESS_STARTING)
            return
        client = self._pool_client()
        spec = {
            "user": self.user.name,
            "kind": "session",
            "name": self._workload_name(),
            "gpus": request.gpus,
            "team": request.team,
            "gpu_model": request.gpu_model,
        }
        await self._cancel_left_over_sessions(client)
        try:
            workload = await client.submit(spec)
        except PoolError as e:
            raise SpawnException(f"The GPU pool refused the request: {e}", reason="gpupool-refused") from e
        self.workload_id = workload["id"]
        self.log.info("%s: submitted %s for %s GPUs", self._log_name, self.workload_id, request.gpus)
        try:
            workload = await self._wait_until_running(client, workload)
        except BaseException:
            # Stop Server on the spawn page, a timeout or an error: never leave a queued request behind.
            await asyncio.shield(self._release(client))
            raise
        self.allocation = workload.get("allocation") or {}
        await self._learn_which_gpus_are_real(client)
        self._emit_progress(self._allocated_message(workload), PROGRESS_ALLOCATED)
        self._emit_progress("Starting the server", PROGRESS_STARTING)

    async def _cancel_left_over_sessions(self, client: AsyncPoolClient) -> None:
        """Cancel this server's sessions that outlived it.

        A server has at most one session; one still active while the server is being started
        was left by a stop that could not reach the service (a hub shutting down stops the
        service before the servers), and would hold its GPUs for ever.
        """
        try:
            # Only the active ones: a user's finished workloads may be thousands.
            answers = await asyncio.gather(*(client.workloads(user=self.user.name, state=state) for state in ACTIVE_STATES))
        except PoolError as e:
            self.log.warning("%s: could not look for left-over sessions: %s", self._log_name, e)
            return
        for w in (w for answer in answers for w in list_of(answer, "workloads")):
            if w.get("kind") == "session" and w.get("name") == self._workload_name() and w.get("state") in ACTIVE_STATES:
                self.log.warning("%s: releasing %s, left over from a server that is gone", self._log_name, w["id"])
                await self._release(client, workload_id=w["id"])

    def _workload_name(self) -> str:
        return f"notebook-{self.name}" if self.name else "notebook"

    async def _wait_until_running(self, client: AsyncPoolClient, workload: dict) -> dict:
        started = time.monotonic()
        while True:
            state = workload.get("state")
            if state == "running":
                return workload
            if state in ENDED_STATES or state == "stopping":
                reason = workload.get("reason") or state
                raise SpawnException(f"The GPU request ended before it started ({state}): {reason}", reason="gpupool-ended")
            self._emit_progress(*self._queued_message(workload))
            if self.queue_timeout and time.monotonic() - started > self.queue_timeout:
                raise SpawnException(
                    f"Still waiting for GPUs after {format_duration(self.queue_timeout)}; gave up. "
                    "Try fewer GPUs, a fraction, or later.",
                    reason="gpupool-queue-timeout",
                )
            await asyncio.sleep(self.queue_poll_interval)
            try:
                workload = await client.workload(self.workload_id)
            except PoolNotFound as e:
                raise SpawnException(f"The GPU request disappeared from the pool: {e}", reason="gpupool-ended") from e
            except PoolError as e:
                # The service restarting must not fail a queued spawn; say so and keep waiting.
                self._emit_progress(f"Waiting for the GPU pool service to answer ({e})")

    def _queued_message(self, workload: dict) -> tuple[str, int, str]:
        what = describe_request(self._request_as_pool_sees_it(workload))
        parts = [f"Queued for {what}"]
        position = workload.get("queue_position")
        if position:
            parts[0] += f", position {position} in the queue"
        reason = workload.get("reason")
        if reason:
            parts.append(f"waiting because {reason}")
        expected = expected_start_text(workload)
        if expected:
            parts.append(expected)
        text = "; ".join(parts) + "."
        hint = "Stop Server below leaves the queue."
        return (f"{text} {hint}", PROGRESS_QUEUED, f"{html.escape(text)} <small>{html.escape(hint)}</small>")

    def _request_as_pool_sees_it(self, workload: dict) -> GpuRequest:
        """The request with the team the pool charges (it picks one when the user did not say)."""
        request = self.gpu_request or GpuRequest(float(workload.get("gpus") or 0))
        return GpuRequest(request.gpus, team=workload.get("team") or request.team, gpu_model=request.gpu_model)

    def _allocated_message(self, workload: dict) -> str:
        shares = (workload.get("allocation") or {}).get("shares") or []
        where = ", ".join(
            f"{s.get('node')} GPU {s.get('index')}" + (f" ({fraction_text(s.get('fraction'))})" if (s.get("fraction") or 1) < 1 else "")
            for s in shares
        )
        reason = workload.get("reason")
        return f"Got {describe_request(self._request_as_pool_sees_it(workload))} from the pool: {where}" + (f" ({reason})" if reason else "")

    async def _learn_which_gpus_are_real(self, client: AsyncPoolClient) -> None:
        """Simulated GPUs are named by index in CUDA_VISIBLE_DEVICES, real ones by UUID."""
        self._gpu_uuids_real = {}
        try:
            pool = await client.pool()
        except PoolError as e:
            self.log.warning("%s: could not read the pool (%s); naming GPUs by index", self._log_name, e)
            return
        for gpu in iter_pool_gpus(pool):
            self._gpu_uuids_real[gpu.get("uuid")] = not gpu.get("simulated", False)

    async def _release(self, client: AsyncPoolClient | None = None, workload_id: str | None = None) -> None:
        """Give the allocation (or the queued request) back to the pool; safe to call twice.

        ``workload_id``: the one held before the base class's ``poll``/``stop`` ran, since they
        call ``clear_state()`` (which forgets it) when they find the server gone.
        """
        workload_id = workload_id or self.workload_id
        released = getattr(self, "_released_ids", None)
        if released is None:
            released = self._released_ids = set()
        if not workload_id or workload_id in released:
            return
        client = client or self._pool_client(retry_seconds=min(5.0, self.pool_retry_seconds))
        try:
            await client.cancel(workload_id)
            self.log.info("%s: released %s", self._log_name, workload_id)
        except (PoolNotFound, PoolConflict):
            pass  # already ended: nothing held
        except PoolUnavailable as e:
            # Typically the hub shutting down (it stops its services before the servers). Said once:
            # the service ends the session itself when it next compares the pool with the hub.
            unreachable = getattr(self, "_unreachable_ids", None)
            if unreachable is None:
                unreachable = self._unreachable_ids = set()
            if workload_id not in unreachable:
                unreachable.add(workload_id)
                self.log.warning("%s: %s not released now (%s); the pool service ends it when it next compares "
                                 "its sessions with the hub's servers", self._log_name, workload_id, e)
            self.workload_id = workload_id
            return
        except PoolError as e:
            # Keep the id so that a later stop() or poll() tries again.
            self.log.error("%s: could not release %s: %s", self._log_name, workload_id, e)
            self.workload_id = workload_id
            return
        released.add(workload_id)
        if self.workload_id == workload_id:
            self.workload_id = None
            self.allocation = None

    # ------------------------------------------------------------ lifecycle

    async def start(self):
        result = await super().start()
        if self.workload_id:
            self._watch_task = asyncio.ensure_future(self._release_when_dead())
        return result

    async def stop(self, now=False):
        watch = getattr(self, "_watch_task", None)
        if watch is not None and not watch.done() and watch is not asyncio.current_task():
            watch.cancel()
        held = self.workload_id
        try:
            await super().stop(now=now)
        finally:
            await self._release(workload_id=held)

    async def poll(self):
        held = self.workload_id
        status = await super().poll()
        if status is not None and held:
            await self._release(workload_id=held)
        return status

    async def _release_when_dead(self) -> None:
        # JupyterHub notices a dead server only at its next poll (30 s by default);
        # the GPUs should not sit idle that long.
        last_pool_check = time.monotonic()
        while self.workload_id:
            await asyncio.sleep(self.release_check_interval)
            try:
                await self.poll()
                if self.workload_id and time.monotonic() - last_pool_check >= self.pool_check_interval:
                    last_pool_check = time.monotonic()
                    await self._stop_if_pool_ended_session()
            except Exception:
                self.log.exception("%s: checking the server failed", self._log_name)

    async def _stop_if_pool_ended_session(self) -> None:
        """A session the pool ended (an admin stopped it) must not keep using its cards."""
        workload_id = self.workload_id
        try:
            workload = await self._pool_client().workload(workload_id)
        except PoolNotFound:
            workload = {"state": "cancelled", "reason": "no longer known to the pool"}
        except PoolError:
            return  # the service restarting says nothing about the session
        if workload.get("state") in ENDED_STATES and self.workload_id == workload_id:
            self.log.warning(
                "%s: the pool ended %s (%s); stopping the server, which no longer holds GPUs",
                self._log_name, workload_id, workload.get("reason") or workload.get("state"),
            )
            self._released_ids = getattr(self, "_released_ids", set()) | {workload_id}
            self.workload_id = None
            await self.stop()

    # ------------------------------------------------------------ environment

    def allocation_env(self) -> dict[str, str]:
        """Environment for a server holding ``self.allocation`` (empty without GPUs)."""
        env: dict[str, str] = {}
        if self.server_pool_url:
            env["GPUPOOL_URL"] = self.server_pool_url
        shares = (self.allocation or {}).get("shares") or []
        if not self.workload_id or not shares:
            if self.gpu_request is not None or self.allocation is not None:
                # No GPUs: make sure the server does not see the host's cards either.
                env["CUDA_VISIBLE_DEVICES"] = ""
                env["GPUPOOL_GPUS"] = "0"
            return env
        real = self._gpu_uuids_real or {}
        env["GPUPOOL_WORKLOAD_ID"] = str(self.workload_id)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(
            str(s.get("gpu_uuid")) if real.get(s.get("gpu_uuid")) else str(s.get("index")) for s in shares
        )
        total = sum(float(s.get("fraction") or 1.0) for s in shares)
        env["GPUPOOL_GPUS"] = f"{total:g}" if total < 1 else str(int(round(total)))
        env["GPUPOOL_NODES"] = ",".join(dict.fromkeys(str(s.get("node")) for s in shares))
        if len(shares) == 1 and float(shares[0].get("fraction") or 1.0) < 1:
            share = shares[0]
            fraction = float(share["fraction"])
            env["GPUPOOL_GPU_FRACTION"] = f"{fraction:g}"
            memory = share.get("memory_mib")
            if memory:
                env["GPUPOOL_GPU_MEMORY_MIB"] = str(int(memory))
            if self.mps_enabled:
                from hub_ext.gpus.mps import mps_env

                env.update(mps_env(fraction, int(memory) if memory else None, self.mps_pipe_directory))
        env.update({str(k): str(v) for k, v in self.extra_pool_env.items()})
        return env

    # ------------------------------------------------------------ options form

    async def gpu_options_form(self) -> str:
        """The spawn form: team, GPUs (none / fraction / whole) and model, with what is free now."""
        try:
            client = self._pool_client(retry_seconds=self.form_retry_seconds)
            pool, teams, queue = await asyncio.gather(client.pool(), client.teams(), client.queue())
        except (PoolError, SpawnException) as e:
            self.log.warning("%s: pool service unavailable for the form: %s", self._log_name, e)
            pool, teams, queue = None, None, None
        teams = list_of(teams, "teams")
        queue = list_of(queue, "queue")
        return render_options_form(
            pool=pool,
            teams=teams,
            queue=queue,
            user_teams=self._user_teams(teams),
            fractions=self.gpu_fractions,
            max_whole=self.max_whole_gpus,
            default_gpus=self.default_gpus,
            offer_models=self.offer_gpu_models,
        )

    def _user_teams(self, teams) -> list[str]:
        """The user's teams: their JupyterHub groups that are pool teams (how the service maps them)."""
        names = [t.get("name") for t in (teams or []) if isinstance(t, dict)]
        groups = {g.name for g in getattr(self.user, "groups", [])}
        mine = [n for n in names if n in groups]
        return mine

    @default("apply_user_options")
    def _default_apply_gpu_user_options(self):
        # The GPU options are applied by allocate_gpus(); only other keys deserve JupyterHub's warning.
        def apply(spawner, user_options):
            unknown = sorted(set(user_options or {}) - GPU_OPTION_KEYS)
            if unknown:
                spawner.log.warning("Received unhandled user_options for %s: %s", spawner._log_name, ", ".join(unknown))

        return apply

    @default("options_from_form")
    def _default_gpu_options_from_form(self):
        return self.gpu_options_from_form

    def gpu_options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """Form fields (lists of strings) -> user_options ({"gpus", "team", "gpu_model"})."""
        options: dict[str, Any] = {}
        for key in sorted(GPU_OPTION_KEYS):
            values = formdata.get(key) or []
            if values and values[0] not in ("", None):
                options[key] = values[0]
        return options


# ---------------------------------------------------------------- formatting helpers


def iter_pool_gpus(pool) -> list[dict]:
    """The GPUs of an ``api/pool`` answer, whichever of its shapes (nodes with gpus, or a flat list)."""
    if not pool:
        return []
    if isinstance(pool, dict):
        if "gpus" in pool and isinstance(pool["gpus"], list):
            return pool["gpus"]
        nodes = pool.get("nodes") or []
    else:
        nodes = pool
    gpus: list[dict] = []
    for node in nodes:
        if isinstance(node, dict) and "gpus" in node:
            for gpu in node["gpus"]:
                gpu = dict(gpu)
                gpu.setdefault("node", node.get("name"))
                gpus.append(gpu)
        elif isinstance(node, dict):
            gpus.append(node)
    return gpus


def list_of(answer, key: str) -> list:
    """The list inside an API answer like ``{"teams": [...]}`` (or the answer itself if a list)."""
    if isinstance(answer, dict):
        return list(answer.get(key) or [])
    return list(answer or [])


def fraction_text(value) -> str:
    value = float(value or 0)
    return f"{value:g} of a GPU" if 0 < value < 1 else f"{value:g}"


def describe_request(request: GpuRequest | None) -> str:
    if request is None:
        return "GPUs"
    if request.gpus < 1:
        what = f"{request.gpus:g} of a GPU"
    else:
        n = int(request.gpus)
        what = f"{n} GPU" + ("s" if n != 1 else "")
    if request.gpu_model:
        what += f" ({request.gpu_model})"
    if request.team:
        what += f" for team {request.team}"
    return what


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{seconds / 3600:.1f} h"


def expected_start_text(workload: dict, now: dt.datetime | None = None) -> str:
    """The spawn page's words for the expected start: always labelled an estimate, with its basis;
    where none is known, said so (never an invented time)."""
    basis = workload.get("expected_start_basis")
    when = format_expected_start(workload.get("expected_start"), now)
    if when:
        return f"expected to start {when}, an estimate" + (f" ({basis})" if basis else "")
    if basis:
        return f"start time {basis}"
    return ""


def format_expected_start(value, now: dt.datetime | None = None) -> str:
    """'in about 12 min (14:05 UTC)' from the service's ISO time; '' when unknown."""
    if not value:
        return ""
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    delta = (when - now).total_seconds()
    clock = when.astimezone(dt.timezone.utc).strftime("%H:%M UTC")
    if delta <= 30:
        return f"any moment now ({clock})"
    return f"in about {format_duration(delta)} ({clock})"
