"""The node agent: read this node's GPUs, say whose processes run on them,
and report to the pool service on an interval.

It runs beside the hub on the embedded default and as one agent per GPU
node in a cluster. It holds no state the service needs: if it stops, the
service sees the node's readings go stale, which the reclaim policy treats
as missing data (nothing happens to anyone's session).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from ..client import PoolAuthError, PoolError, PoolForbidden
from ..gpus import GpuBackend, GpuReading
from .processes import workload_of_process

log = logging.getLogger("gpupool.agent")

DEFAULT_INTERVAL_S = 15.0


def holders_by_gpu(pool: Mapping, node: str) -> dict[str, tuple[str, ...]]:
    """GPU uuid -> ids of the workloads holding it on ``node``, from ``api/pool``."""
    out: dict[str, tuple[str, ...]] = {}
    for gpu in pool_gpus(pool):
        if gpu.get("node") == node:
            out[gpu["uuid"]] = tuple(h["workload_id"] for h in gpu.get("holders") or () if h.get("workload_id"))
    return out


def pool_gpus(pool: Mapping):
    """Every GPU of an ``api/pool`` answer, each with its node's name."""
    # api/pool lists GPUs per node; each GPU names its node (docs/architecture.md).
    for node in pool.get("nodes") or ():
        for gpu in node.get("gpus") or ():
            yield {"node": node.get("name"), **gpu}
    yield from pool.get("gpus") or ()


def attribute(reading: GpuReading, holders: tuple[str, ...], proc_root: str = "/proc") -> list[dict]:
    """The reading's processes, each with the workload it belongs to.

    The process's own environment (or an ancestor's) wins; a process we cannot
    inspect on a card held by exactly one workload belongs to that workload
    by its allocation; otherwise its workload is unknown (None), which the
    pool page shows as a process nobody was allocated.
    """
    out = []
    for p in reading.processes:
        workload_id = workload_of_process(p.pid, proc_root)
        how = "environment" if workload_id else None
        if workload_id is None and len(holders) == 1:
            workload_id, how = holders[0], "allocation"
        out.append({"pid": p.pid, "used_memory_mib": p.used_memory_mib, "workload_id": workload_id, "attributed_by": how})
    return out


class NodeAgent:
    """Reads ``backend`` and reports it for ``node`` through a ``PoolClient``."""

    def __init__(self, backend: GpuBackend, node: str, client=None, interval_s: float = DEFAULT_INTERVAL_S, proc_root: str = "/proc", clock: Callable[[], float] = time.time):
        if interval_s <= 0:
            raise ValueError(f"the agent's interval must be > 0 seconds, got {interval_s}")
        self.backend = backend
        self.node = node
        self.client = client
        self.interval_s = interval_s
        self.proc_root = proc_root
        self.clock = clock
        self._pool_readable = True

    def _holders(self) -> dict[str, tuple[str, ...]]:
        if self.client is None or not self._pool_readable:
            return {}
        try:
            return holders_by_gpu(self.client.pool(), self.node)
        except PoolForbidden as e:
            # An agent token needs only custom:gpupool:agent; reading allocations
            # also needs custom:gpupool:use. Say so once, then stop asking.
            self._pool_readable = False
            log.warning("cannot read the pool's allocations (%s); attributing GPU processes by their environment only", e)
        except PoolError as e:
            # Attribution by allocation is a help, not a need: report anyway.
            log.warning("could not read the pool's allocations (%s); attributing processes by environment only", e)
        return {}

    def collect(self) -> dict:
        """This node's readings as the service's ``api/nodes/{name}/readings`` takes them."""
        holders = self._holders()
        gpus = []
        for r in self.backend.readings():
            gpus.append(
                {
                    "index": r.index,
                    "uuid": r.uuid,
                    "model": r.model,
                    "memory_total_mib": r.memory_total_mib,
                    "memory_used_mib": r.memory_used_mib,
                    "utilization": r.utilization,
                    "processes": attribute(r, holders.get(r.uuid, ()), self.proc_root),
                }
            )
        payload = {"node": self.node, "simulated": self.backend.simulated, "read_at": self.clock(), "gpus": gpus}
        payload["errors"] = list(self.backend.last_errors)  # shown on the admin page as the node's health
        return payload

    def report(self, payload: dict) -> None:
        self.client.report_readings(self.node, payload["gpus"], simulated=payload["simulated"], errors=payload.get("errors"))

    def run(self, stop: threading.Event, on_payload: Callable[[dict], None] | None = None) -> None:
        """Read and report every ``interval_s`` until ``stop`` is set.

        A service that cannot be reached is retried on the next interval; a
        token the service refuses ends the agent, because retrying cannot fix it.
        """
        while not stop.is_set():
            started = time.monotonic()
            payload = self.collect()
            if on_payload:
                on_payload(payload)
            if self.client is not None:
                try:
                    self.report(payload)
                except (PoolAuthError, PoolForbidden):
                    raise
                except PoolError as e:
                    log.warning("could not report readings for node %s: %s (retrying in %gs)", self.node, e, self.interval_s)
            stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
