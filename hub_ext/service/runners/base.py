"""The runner interface: how the service starts, stops and watches batch jobs.

The service is the only writer of allocations; a runner only turns an
allocation into something running (a local process, a Kubernetes Job) and
reports back what happened to it. Sessions are started by the spawners, not
by runners.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field


@dataclass(frozen=True)
class JobLaunch:
    """Everything a runner needs to start one batch job on its allocation."""

    workload_id: str
    user: str
    command: tuple[str, ...]
    # node name -> GPU identifiers on that node (UUIDs where real, indices where simulated)
    gpus_by_node: dict[str, tuple[str, ...]]
    gpu_count: float
    env: dict[str, str] = field(default_factory=dict)  # extra environment (GPUPOOL_* variables)
    workdir: str | None = None
    log_path: str | None = None
    # node name -> the UUIDs of its GPUs, in the order of ``gpus_by_node`` (empty: not known)
    uuids_by_node: dict[str, tuple[str, ...]] = field(default_factory=dict)
    time_limit_s: float | None = None  # the pool stops the job this long after it started (runners may enforce it too)


@dataclass(frozen=True)
class JobStatus:
    handle: str
    running: bool
    exit_code: int | None = None  # set once the job has ended


class Runner(abc.ABC):
    """One backend that runs batch jobs."""

    #: How many nodes one job may span (None: any). The service refuses at submit a job
    #: that could only run on more nodes than this, and does not apply a scheduler
    #: decision that would give a job GPUs on more nodes than this.
    max_nodes: int | None = None
    #: What runs jobs, in words, for refusals ("the local runner runs a job on one node").
    description: str = "this runner"

    @abc.abstractmethod
    async def start(self, launch: JobLaunch) -> str:
        """Start the job; return an opaque handle the service stores (survives restarts)."""

    @abc.abstractmethod
    async def stop(self, handle: str, grace_seconds: float) -> None:
        """SIGTERM (or the backend's equivalent), wait up to ``grace_seconds`` for a checkpoint, then kill."""

    @abc.abstractmethod
    async def status(self, handle: str) -> JobStatus:
        """Is it still running; if not, how did it end. Used on every tick and on restart to reconcile."""

    def notice(self, handle: str, preempt_at: float, reason: str) -> None:
        """Tell the job when it will be stopped (``$GPUPOOL_PREEMPT_NOTICE_FILE``), before its SIGTERM.
        Default: nothing (the SIGTERM alone tells it)."""

    async def logs(self, handle: str, offset: int = 0) -> str:
        """Job output from byte ``offset`` on (for ``gpupool logs``)."""
        return ""

    async def wait(self, handle: str, poll_seconds: float = 1.0) -> JobStatus:
        """Return once the job has ended. Backends that can be told of an exit override this."""
        while True:
            status = await self.status(handle)
            if not status.running:
                return status
            await asyncio.sleep(poll_seconds)

    async def find(self, workload_id: str) -> list[str]:
        """Handles of live processes of a workload, for a job whose handle was never recorded
        (the service died between starting it and saving the handle). Default: none known."""
        return []
