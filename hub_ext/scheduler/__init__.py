"""The scheduler core: pure policy, plain data in, plain decisions out.

    from hub_ext.scheduler import schedule
    decisions = schedule(snapshot)        # Snapshot -> Decisions, pure and deterministic

or, for a caller that sees events one at a time (the service loop, the
simulator), the stateful form that returns the same decisions for less work:

    from hub_ext.scheduler import Scheduler
    s = Scheduler(pool, teams, config)
    s.submit(workload); ...; decisions = s.cycle(now); s.apply(decisions)

Contract for applying ``Decisions`` (docs/scheduler.md has the details):

* Apply ``preemptions`` and shrinking ``resizes`` first, then ``starts`` and
  growing ``resizes``. Starts may use GPUs freed by the preemptions and
  shrinks of the same Decisions.
* A preempted workload goes back to pending; resubmit it with its original
  ``submitted_at`` so it keeps its place.
* ``Decisions.pending`` lists every workload pending after the decisions are
  applied (preempted ones included), in queue order, with a 1-based
  position and a human-readable reason. It is a lazy sequence: positions and
  reasons are computed when first read.
* ``Start.over_quota`` is True when the workload uses borrowed GPUs (beyond
  its team's quota); such work may be preempted when an owner reclaims.
* ``ordering="fifo"`` is strict first come, first served: the first
  workload that cannot start blocks all later ones (no backfill).
* ``Decisions.reserved`` and ``reserved_gpus``: the workloads holding a
  reservation after the cycle and how many GPUs they hold idle.

Expected starts: ``forward.run_forward(snapshot)`` runs the queue forward
with this core, from run-time estimates (``estimates.Estimator``) set on the
snapshot's workloads (``forward.with_estimates``).

Nothing here imports tornado, SQLAlchemy, JupyterHub, NVML or Kubernetes,
and nothing reads a clock: "now" comes in the snapshot.
"""

from __future__ import annotations

from .cache import Scheduler
from .model import (
    Allocation,
    Decisions,
    GpuShare,
    GPU,
    Node,
    PendingReason,
    Pool,
    Preempt,
    Resize,
    Running,
    SchedulerConfig,
    Snapshot,
    Start,
    Team,
    Workload,
    WorkloadKind,
)


def schedule(snapshot: Snapshot) -> Decisions:
    """One scheduling cycle over ``snapshot``; pure and deterministic."""
    return Scheduler.from_snapshot(snapshot).cycle(snapshot.now)


__all__ = [
    "Allocation",
    "Decisions",
    "GPU",
    "GpuShare",
    "Node",
    "PendingReason",
    "Pool",
    "Preempt",
    "Resize",
    "Running",
    "Scheduler",
    "SchedulerConfig",
    "Snapshot",
    "Start",
    "Team",
    "Workload",
    "WorkloadKind",
    "schedule",
]
