"""Read the database into the scheduler core's ``Snapshot``.

The core sees plain frozen data; nothing it gets can write back to the
database. Built inside the same serialised transaction that applies the
decisions, so the world cannot change between the two.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..scheduler.model import (
    GPU,
    Allocation,
    GpuShare,
    Node,
    Pool,
    Running,
    SchedulerConfig,
    Snapshot,
    Team,
    Workload,
    WorkloadKind,
)
from .store import NodeRow, TeamRow, WorkloadRow


def workload_model(w: WorkloadRow) -> Workload:
    return Workload(
        id=w.id,
        user=w.user,
        team=w.team,
        kind=WorkloadKind(w.kind),
        gpus=w.gpus,
        submitted_at=w.submitted_at,
        priority=w.priority,
        preemptible=w.preemptible,
        min_gpus=w.min_gpus,
        max_gpus=w.max_gpus if w.gpus_cap is None or w.max_gpus is None else min(w.max_gpus, w.gpus_cap),
        gpu_model=w.gpu_model,
        min_gpu_memory_mib=w.min_gpu_memory_mib,
        gpu_memory_mib=w.gpu_memory_mib,
    )


def allocation_model(w: WorkloadRow) -> Allocation:
    return Allocation(
        workload_id=w.id,
        shares=tuple(GpuShare(node=s.node_name, gpu_uuid=s.gpu_uuid, fraction=s.fraction, memory_mib=s.memory_mib) for s in w.shares),
        started_at=w.started_at or w.submitted_at,
    )


def pool_model(db: Session) -> Pool:
    nodes = []
    for n in db.scalars(select(NodeRow).options(selectinload(NodeRow.gpus)).order_by(NodeRow.name)):
        gpus = tuple(GPU(uuid=g.uuid, index=g.index, model=g.model, memory_mib=g.memory_mib) for g in n.gpus)
        nodes.append(Node(name=n.name, gpus=gpus, simulated=n.simulated, schedulable=n.schedulable))
    return Pool(nodes=tuple(nodes))


def build_snapshot(db: Session, now: float, config: SchedulerConfig) -> tuple[Snapshot, dict[str, WorkloadRow]]:
    """The snapshot, and the rows of the workloads in it by id (for applying decisions)."""
    teams = {
        t.name: Team(name=t.name, quota=t.quota, over_quota_weight=t.over_quota_weight, limit=t.limit)
        for t in db.scalars(select(TeamRow))
    }
    rows = list(
        db.scalars(
            select(WorkloadRow)
            .options(selectinload(WorkloadRow.shares))
            .where(WorkloadRow.state.in_(("pending", "running", "stopping")))
            .order_by(WorkloadRow.submitted_at, WorkloadRow.seq)
        )
    )
    running = tuple(
        Running(workload=workload_model(w), allocation=allocation_model(w)) for w in rows if w.state != "pending" and w.shares
    )
    pending = tuple(workload_model(w) for w in rows if w.state == "pending")
    snapshot = Snapshot(pool=pool_model(db), teams=teams, running=running, pending=pending, now=now, config=config)
    return snapshot, {w.id: w for w in rows}
