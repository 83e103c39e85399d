"""Batch job processes: start them on their allocation, stop them, watch them end.

The database is the truth about who holds which GPU; this module makes the
processes follow it, through a ``Runner``. Every step is recorded so that a
service killed at any moment (kill -9 included) can finish the work on
restart (``reconcile``):

- a running job with no process yet (killed between commit and start) is
  started, unless the runner finds its process already there;
- a job whose process ended while the service was down is finished with its
  exit code;
- processes that were told to stop (preempted, resized, cancelled) are kept in
  ``stop_handles`` until they are gone, and stopped again on restart.

A new job never starts on a GPU while a process being stopped from that GPU
is still within its grace period.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

from . import attained, events
from .runners.base import JobLaunch, Runner
from .store import Store, WorkloadRow


class JobSupervisor(LoggingConfigurable):
    grace_seconds = Float(
        30.0,
        help="""Seconds a job has between SIGTERM and SIGKILL when it is preempted, resized or
        cancelled: time to write a checkpoint. Also passed to the job as GPUPOOL_GRACE_SECONDS.""",
    ).tag(config=True)

    service_url = Unicode(
        "",
        help="The pool service's URL handed to jobs as GPUPOOL_URL (default: derived from the hub's environment).",
    ).tag(config=True)

    def __init__(self, store: Store, runner: Runner, on_change: Callable[[], Awaitable[None]] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.runner = runner
        self.on_change = on_change  # called when a job ended, so the loop can hand its GPUs out
        self._stopping: dict[str, asyncio.Task] = {}  # handle -> stop task
        self._stopping_gpus: dict[str, set[str]] = {}  # handle -> GPU uuids it was on
        self._watchers: dict[str, asyncio.Task] = {}  # handle -> watch task
        self._starting: set[int] = set()
        self._closing = False

    # ------------------------------------------------------------ launch details

    def launch_for(self, w: WorkloadRow) -> JobLaunch:
        gpus_by_node: dict[str, list[str]] = {}
        uuids_by_node: dict[str, list[str]] = {}
        for s in w.shares:
            gpus_by_node.setdefault(s.node_name, []).append(str(s.gpu_index))
            uuids_by_node.setdefault(s.node_name, []).append(str(s.gpu_uuid))
        fraction = w.allocated_gpus
        env = {
            "GPUPOOL_WORKLOAD_ID": w.id,
            "GPUPOOL_WORKLOAD_NAME": w.name or "",
            "GPUPOOL_USER": w.user,
            "GPUPOOL_TEAM": w.team,
            "GPUPOOL_GPUS": f"{fraction:g}",
            "GPUPOOL_GPU_UUIDS": ",".join(s.gpu_uuid for s in w.shares),
            "GPUPOOL_NODE": ",".join(gpus_by_node),
            "GPUPOOL_GRACE_SECONDS": f"{self.grace_seconds:g}",
            "GPUPOOL_PREEMPTIONS": str(w.preemptions),
        }
        if w.time_limit_s is not None:
            env["GPUPOOL_TIME_LIMIT_SECONDS"] = f"{w.time_limit_s:g}"
        if w.min_gpus is not None and w.max_gpus is not None:
            env["GPUPOOL_MIN_GPUS"] = str(w.min_gpus)
            env["GPUPOOL_MAX_GPUS"] = str(w.max_gpus)
        if 0 < fraction < 1:
            env["GPUPOOL_GPU_FRACTION"] = f"{fraction:g}"
            if w.shares and w.shares[0].memory_mib:
                env["GPUPOOL_GPU_MEMORY_MIB"] = str(w.shares[0].memory_mib)
        url = self.service_url or _service_url_from_env()
        if url:
            env["GPUPOOL_URL"] = url
        env.update({str(k): str(v) for k, v in (w.env or {}).items()})
        return JobLaunch(
            workload_id=w.id,
            user=w.user,
            command=tuple(w.command or ()),
            gpus_by_node={k: tuple(v) for k, v in gpus_by_node.items()},
            gpu_count=fraction,
            env=env,
            workdir=w.workdir,
            log_path=w.log_path or self._default_log_path(w.id),
            uuids_by_node={k: tuple(v) for k, v in uuids_by_node.items()},
            time_limit_s=w.time_limit_s,
        )

    def _default_log_path(self, workload_id: str) -> str | None:
        log_path_for = getattr(self.runner, "log_path_for", None)
        return log_path_for(workload_id) if log_path_for else None

    # ------------------------------------------------------------ acting on decisions

    async def execute(self, stops: list[tuple[int, str]], starts: list[int], stop_gpus: dict[str, set[str]] | None = None) -> None:
        for seq, handle in stops:
            self.stop_in_background(seq, handle, (stop_gpus or {}).get(handle))
        for seq in starts:
            await self.start(seq)

    def stop_in_background(self, seq: int, handle: str, gpu_uuids: set[str] | None = None, grace: float | None = None) -> asyncio.Task:
        if handle in self._stopping:
            return self._stopping[handle]
        watcher = self._watchers.pop(handle, None)
        if watcher is not None:
            watcher.cancel()
        # Unknown GPUs (a handle from before a restart that does not name them) count as all GPUs:
        # waiting too long is better than two processes on one card.
        self._stopping_gpus[handle] = gpu_uuids or _gpus_in_handle(handle)
        task = asyncio.ensure_future(self._stop(seq, handle, grace))
        self._stopping[handle] = task
        return task

    def notice(self, seq: int, handle: str, preempt_at: float, reason: str, gpu_uuids: set[str] | None = None) -> None:
        """A preempted job: the time of its stop in its notice file, SIGTERM now, SIGKILL at ``preempt_at``.

        It keeps its GPUs until its process is gone (early, if it checkpoints and
        exits), then goes back to the queue."""
        try:
            self.runner.notice(handle, preempt_at, reason)
        except Exception:
            self.log.exception("Writing the preemption notice of w-%s failed", seq)
        # Only starts on its own GPUs wait for it (none should come before it is gone).
        self.stop_in_background(seq, handle, gpu_uuids, grace=max(0.0, preempt_at - time.time()))

    async def _stop(self, seq: int, handle: str, grace: float | None = None) -> None:
        try:
            await self.runner.stop(handle, self.grace_seconds if grace is None else grace)
        except Exception:
            self.log.exception("Stopping job process %s of w-%s failed", handle, seq)
            return
        finally:
            self._stopping.pop(handle, None)
            self._stopping_gpus.pop(handle, None)
        requeued = False
        with self.store.write() as db:
            w = db.get(WorkloadRow, seq)
            if w is not None and w.stop_handles and handle in w.stop_handles:
                w.stop_handles = [h for h in w.stop_handles if h != handle]
            if w is not None and w.state == "running" and w.runner_handle == handle and w.preempt_at is not None:
                # Preempted with notice and now gone (checkpointed early, or killed at the end): requeue.
                from .preemption import requeue

                w.runner_handle = None
                requeue(db, w, time.time(), None)
                requeued = True
        if requeued and self.on_change is not None:
            await self.on_change()

    async def _wait_for_stops_on(self, gpu_uuids: set[str]) -> None:
        """Wait until no process being stopped may still use any of these GPUs."""
        while True:
            busy = [
                t for h, t in list(self._stopping.items()) if not self._stopping_gpus.get(h) or self._stopping_gpus[h] & gpu_uuids
            ]
            if not busy:
                return
            await asyncio.wait(busy)

    def _launch_now(self, seq: int):
        """(launch, GPU uuids, allocation key) for a running job with no process yet; None otherwise."""
        with self.store.read() as db:
            w = db.get(WorkloadRow, seq)
            if w is None or w.state != "running" or w.runner_handle or not w.shares:
                return None
            key = sorted((s.gpu_uuid, s.fraction) for s in w.shares)
            return self.launch_for(w), {s.gpu_uuid for s in w.shares}, key

    async def start(self, seq: int) -> None:
        """Start the job's process on its current allocation, once the GPUs are clear.

        If the allocation changes while this waits or starts (resized, preempted,
        cancelled), the process just started is stopped and the job is started
        again on what it holds then, if anything.
        """
        if seq in self._starting:
            return  # the start in progress re-reads the allocation before it finishes
        self._starting.add(seq)
        try:
            while True:
                planned = self._launch_now(seq)
                if planned is None:
                    return
                launch, uuids, key = planned
                await self._wait_for_stops_on(uuids)
                current = self._launch_now(seq)
                if current is None:
                    return
                if current[2] != key:
                    continue
                try:
                    handle = await self.runner.start(launch)
                except Exception as e:
                    self.log.exception("Could not start job w-%s", seq)
                    await self._finish(seq, None, failed_reason=f"could not start: {e}")
                    return
                with self.store.write() as db:
                    w = db.get(WorkloadRow, seq)
                    still_wanted = (
                        w is not None
                        and w.state == "running"
                        and not w.runner_handle
                        and sorted((s.gpu_uuid, s.fraction) for s in w.shares) == key
                    )
                    if still_wanted:
                        w.runner_handle = handle
                        w.log_path = w.log_path or launch.log_path
                if still_wanted:
                    self.watch(seq, handle)
                    return
                self.stop_in_background(seq, handle, uuids)
        finally:
            self._starting.discard(seq)

    # ------------------------------------------------------------ watching

    def watch(self, seq: int, handle: str) -> None:
        if handle in self._watchers or self._closing:
            return
        self._watchers[handle] = asyncio.ensure_future(self._watch(seq, handle))

    async def _watch(self, seq: int, handle: str) -> None:
        try:
            status = await self.runner.wait(handle)
        except asyncio.CancelledError:
            return
        except Exception:
            self.log.exception("Watching job w-%s failed", seq)
            return
        finally:
            self._watchers.pop(handle, None)
        await self._finish(seq, handle, exit_code=status.exit_code)

    async def _finish(self, seq: int, handle: str | None, exit_code: int | None = None, failed_reason: str | None = None) -> None:
        now = time.time()
        with self.store.write() as db:
            w = db.get(WorkloadRow, seq)
            if w is None or w.state != "running" or (handle is not None and w.runner_handle != handle):
                return  # stopped on purpose (preempted, resized, cancelled): not an ending
            attained.settle(w, now)
            w.shares.clear()
            w.runner_handle = None
            w.finished_at = now
            w.exit_code = exit_code
            if failed_reason is None and exit_code == 0:
                w.state = "completed"
                w.reason = "finished (exit code 0)"
                events.record(db, "finished", "the job finished (exit code 0)", w, details={"exit_code": 0}, at=now)
            else:
                w.state = "failed"
                w.reason = failed_reason or (
                    f"the job exited with code {exit_code}" if exit_code is not None else "the job's process vanished"
                )
                events.record(db, "failed", w.reason, w, details={"exit_code": exit_code}, at=now)
        if self.on_change is not None:
            await self.on_change()

    # ------------------------------------------------------------ restart

    async def reconcile(self) -> None:
        """Make processes match the database after a start (see the module docstring)."""
        with self.store.read() as db:
            rows = list(
                db.scalars(
                    select(WorkloadRow)
                    .options(selectinload(WorkloadRow.shares))
                    .where(WorkloadRow.kind == "job")
                    .where((WorkloadRow.state == "running") | (WorkloadRow.stop_handles.is_not(None)))
                )
            )
            todo = [
                (w.seq, w.id, w.state, w.runner_handle, list(w.stop_handles or []), {s.gpu_uuid for s in w.shares}, w.preempt_at) for w in rows
            ]
        for seq, wid, state, handle, stop_handles, uuids, preempt_at in todo:
            for h in stop_handles:
                self.log.info("Reconcile: finishing the stop of %s (w-%s)", h, seq)
                self.stop_in_background(seq, h)
            if state != "running":
                continue
            if handle is not None and preempt_at is not None:
                self.log.info("Reconcile: %s was preempted with notice; stopping it by %s", wid, time.ctime(preempt_at))
                self.stop_in_background(seq, handle, uuids, grace=max(0.0, preempt_at - time.time()))
                continue
            if handle is None:
                found = await self.runner.find(wid)
                if found:
                    handle = found[0]
                    for extra in found[1:]:
                        self.stop_in_background(seq, extra, uuids)
                    with self.store.write() as db:
                        w = db.get(WorkloadRow, seq)
                        if w is not None and w.state == "running" and not w.runner_handle:
                            w.runner_handle = handle
                    self.log.info("Reconcile: adopted the running process of %s", wid)
                else:
                    self.log.info("Reconcile: starting %s, which had GPUs but no process", wid)
                    await self.start(seq)
                    continue
            status = await self.runner.status(handle)
            if status.running:
                self.watch(seq, handle)
            elif status.exit_code is None:
                # Killed with the service (a machine or demo restart), not ended by itself: the job
                # did not fail, it lost its GPUs. Back to the queue, as after a preemption.
                self.log.info("Reconcile: the process of %s is gone without an exit code; requeued", wid)
                await self._requeue(seq, handle)
            else:
                self.log.info("Reconcile: %s ended while the service was down (exit code %s)", wid, status.exit_code)
                await self._finish(seq, handle, exit_code=status.exit_code)

    async def _requeue(self, seq: int, handle: str) -> None:
        now = time.time()
        message = "its process was gone when the pool service restarted (killed with the service or the machine)"
        with self.store.write() as db:
            w = db.get(WorkloadRow, seq)
            if w is None or w.state != "running" or w.runner_handle != handle:
                return
            attained.settle(w, now)
            w.shares.clear()
            w.runner_handle = None
            w.state = "pending"
            w.started_at = None
            w.over_quota = False
            w.reason = f"requeued: {message}"
            events.record(db, "requeued", message, w, at=now)
        if self.on_change is not None:
            await self.on_change()

    async def close(self) -> None:
        """Stop watching (processes keep running; a restart adopts them)."""
        self._closing = True
        for task in list(self._watchers.values()):
            task.cancel()
        self._watchers.clear()


def _gpus_in_handle(handle: str) -> set[str]:
    """The GPU uuids a runner wrote into a handle (the local runner does), else an empty set."""
    try:
        h = json.loads(handle)
    except ValueError:
        return set()
    uuids = h.get("gpu_uuids") if isinstance(h, dict) else None
    return {u for u in str(uuids).split(",") if u} if uuids else set()


def _service_url_from_env() -> str:
    url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    if not url:
        return ""
    return url.rstrip("/") + prefix

