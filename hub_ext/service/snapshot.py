"""Read the database into the scheduler core's ``Snapshot``.

The core sees plain frozen data; nothing it gets can write back to the
database. Built inside the same serialised transaction that applies the
decisions, so the world cannot change between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

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
    UsageHistory,
    Workload,
    WorkloadKind,
)
from ..states import ACTIVE_STATES
from .attained import ATTAINED_STEP, on_grid
from .store import GpuRow, NodeRow, ShareRow, TeamRow, WorkloadRow, format_workload_id


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
        time_limit_s=w.time_limit_s,
    )


def allocation_model(w: WorkloadRow) -> Allocation:
    return Allocation(
        workload_id=w.id,
        shares=tuple(GpuShare(node=s.node_name, gpu_uuid=s.gpu_uuid, fraction=s.fraction, memory_mib=s.memory_mib) for s in w.shares),
        started_at=w.started_at or w.submitted_at,
    )


def pool_model(db: Session) -> Pool:
    rows = db.execute(
        select(NodeRow.name, NodeRow.simulated, NodeRow.schedulable, GpuRow.uuid, GpuRow.index, GpuRow.model, GpuRow.memory_mib)
        .outerjoin(GpuRow, GpuRow.node_name == NodeRow.name)
        .order_by(NodeRow.name, GpuRow.index)
    )
    nodes: dict[str, tuple[bool, bool, list[GPU]]] = {}
    for name, simulated, schedulable, uuid, index, model, memory in rows:
        entry = nodes.setdefault(name, (simulated, schedulable, []))
        if uuid is not None:
            entry[2].append(GPU(uuid=uuid, index=index, model=model, memory_mib=memory))
    return Pool(nodes=tuple(Node(name=n, gpus=tuple(g), simulated=sim, schedulable=sch) for n, (sim, sch, g) in nodes.items()))


@dataclass(frozen=True)
class ActiveWorkload:
    """What applying decisions needs to know of a workload in the snapshot, without loading its row."""

    seq: int
    state: str
    queue_position: int | None
    reason: str | None
    allocated: float
    revision: int = 0  # WorkloadRow.revision: changes whenever what the scheduler reads of the row changes


# Columns read for every active workload (a plain select: ORM objects for thousands of rows cost too much per cycle).
_COLUMNS = (
    WorkloadRow.seq, WorkloadRow.user, WorkloadRow.team, WorkloadRow.kind, WorkloadRow.state, WorkloadRow.gpus,
    WorkloadRow.submitted_at, WorkloadRow.started_at, WorkloadRow.priority, WorkloadRow.preemptible,
    WorkloadRow.min_gpus, WorkloadRow.max_gpus, WorkloadRow.gpus_cap, WorkloadRow.gpu_model,
    WorkloadRow.min_gpu_memory_mib, WorkloadRow.gpu_memory_mib, WorkloadRow.queue_position, WorkloadRow.reason,
    WorkloadRow.preempt_at, WorkloadRow.time_limit_s, WorkloadRow.revision, WorkloadRow.attained_gpu_s,
)
ACTIVE = ACTIVE_STATES


def build_snapshot(
    db: Session, now: float, config: SchedulerConfig, preemption=None, history: UsageHistory | None = None,
    attained_step: float = ATTAINED_STEP,
) -> tuple[Snapshot, dict[str, ActiveWorkload]]:
    """The snapshot, and what applying needs of each workload in it, by id.

    ``preemption`` (service/preemption.py) gives each team its minimum run-times;
    ``history`` is the decayed past usage (service/usage_decay.py). Every workload
    carries its attained service (service/attained.py): pending work what it held
    in past runs, running work that plus its current run, on the grid of ``attained_step``."""
    teams = {}
    for t in db.scalars(select(TeamRow)):
        extra = {}
        if preemption is not None:
            rules = preemption.for_team(t.name)
            extra = {"min_runtime_reclaim_s": rules.min_runtime_reclaim_seconds, "min_runtime_shrink_s": rules.min_runtime_shrink_seconds}
        teams[t.name] = Team(name=t.name, quota=t.quota, over_quota_weight=t.over_quota_weight, limit=t.limit, **extra)
    shares: dict[int, list[GpuShare]] = {}
    share_rows = db.execute(
        select(ShareRow.workload_seq, ShareRow.node_name, ShareRow.gpu_uuid, ShareRow.fraction, ShareRow.memory_mib)
        .join(WorkloadRow, WorkloadRow.seq == ShareRow.workload_seq)
        .where(WorkloadRow.state.in_(ACTIVE))
        .order_by(ShareRow.id)
    )
    for seq, node, uuid, fraction, memory in share_rows:
        shares.setdefault(seq, []).append(GpuShare(node=node, gpu_uuid=uuid, fraction=fraction, memory_mib=memory))
    las = config.las_thresholds_gpu_s
    running: list[Running] = []
    pending: list[Workload] = []
    index: dict[str, ActiveWorkload] = {}
    rows = db.execute(select(*_COLUMNS).where(WorkloadRow.state.in_(ACTIVE)).order_by(WorkloadRow.submitted_at, WorkloadRow.seq))
    for (seq, user, team, kind, state, gpus, submitted_at, started_at, priority, preemptible,
         min_gpus, max_gpus, gpus_cap, gpu_model, min_mem, gpu_mem, position, reason, preempt_at, time_limit_s, revision,
         stored_gpu_s) in rows:
        wid = format_workload_id(seq)
        if gpus_cap is not None and max_gpus is not None:
            max_gpus = min(max_gpus, gpus_cap)
        held = shares.get(seq, [])
        allocated = sum(s.fraction for s in held)
        if state == "pending" or not held or started_at is None:
            served = max(0.0, stored_gpu_s or 0.0)
        else:  # attained.held_gpu_s, inline: this runs for every running workload every cycle
            served = on_grid((stored_gpu_s or 0.0) + allocated * max(0.0, now - started_at), las, attained_step)
        w = Workload(
            id=wid, user=user, team=team, kind=WorkloadKind(kind), gpus=gpus, submitted_at=submitted_at,
            priority=priority, preemptible=preemptible, min_gpus=min_gpus, max_gpus=max_gpus, gpu_model=gpu_model,
            min_gpu_memory_mib=min_mem, gpu_memory_mib=gpu_mem, time_limit_s=time_limit_s, attained_gpu_s=served,
        )
        index[wid] = ActiveWorkload(seq, state, position, reason, allocated, revision)
        if state == "pending":
            pending.append(w)
        elif held:
            allocation = Allocation(workload_id=wid, shares=tuple(held), started_at=started_at or submitted_at)
            running.append(Running(workload=w, allocation=allocation, leaving=preempt_at is not None))
    snapshot = Snapshot(pool=pool_model(db), teams=teams, running=tuple(running), pending=tuple(pending), now=now, config=config, history=history)
    return snapshot, index
