"""The JSON shapes the API answers with (see docs/api.md and the OpenAPI document).

Kept apart from the handlers so the pool page, the metrics and the
benchmarks build exactly the same views.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..scheduler.model import EPSILON
from ..states import ACTIVE_STATES, FINISHED_STATES  # noqa: F401 - callers import them from here
from ..states import WORKLOAD_STATES as STATES
from . import attained
from .store import EventRow, GpuRow, NodeRow, ShareRow, TeamRow, UsageHistoryRow, WorkloadRow, format_workload_id


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def share_view(s: ShareRow) -> dict:
    return {"node": s.node_name, "gpu_uuid": s.gpu_uuid, "index": s.gpu_index, "fraction": s.fraction, "memory_mib": s.memory_mib}


def workload_view(w: WorkloadRow, idle_seconds: float | None = None, now: float | None = None, queue=None) -> dict:
    """``queue``: the scheduling loop's ``QueueView`` (queue_state.py), where a pending workload's position and
    reason come from; without it, or before the service's first cycle, from the row (no position)."""
    allocation = None
    position, reason = (w.queue_position, w.reason)
    if w.state == "pending" and queue is not None and queue.known:
        position, reason = queue.position(w.id), queue.reason(w.id, w.reason)
    if w.shares:
        allocation = {"gpus": round(w.allocated_gpus, 6), "shares": [share_view(s) for s in w.shares]}
    return {
        "id": w.id,
        "name": w.name,
        "user": w.user,
        "team": w.team,
        "kind": w.kind,
        "state": w.state,
        "gpus": w.gpus,
        "min_gpus": w.min_gpus,
        "max_gpus": w.max_gpus,
        "gpu_model": w.gpu_model,
        "min_gpu_memory_mib": w.min_gpu_memory_mib,
        "gpu_memory_mib": w.gpu_memory_mib,
        "priority": w.priority,
        "preemptible": w.preemptible,
        "command": w.command,
        "allocation": allocation,
        "queue_position": position if w.state == "pending" else None,
        "reason": reason,
        "expected_start": iso(w.expected_start) if w.state == "pending" else None,
        "expected_start_basis": w.expected_start_basis if w.state == "pending" else None,
        "time_limit_s": w.time_limit_s,
        "over_quota": bool(w.over_quota) if w.state == "running" else False,
        "submitted_at": iso(w.submitted_at),
        "started_at": iso(w.started_at),
        "finished_at": iso(w.finished_at),
        "exit_code": w.exit_code,
        "preemptions": w.preemptions,
        # GPU-seconds held so far over all its runs (attained service; least attained service orders a team's work).
        "attained_gpu_s": round(attained.of_row(w, time.time() if now is None else now), 1),
        "idle_seconds": idle_seconds,
        # Preempted with notice: when it loses its GPUs (running until then).
        "preempt_at": iso(w.preempt_at) if w.state in ("running", "stopping") else None,
    }


def load_workloads(db: Session, *, user: str | None = None, state: str | None = None, seqs=None) -> list[WorkloadRow]:
    q = select(WorkloadRow).options(selectinload(WorkloadRow.shares)).order_by(WorkloadRow.seq)
    if user is not None:
        q = q.where(WorkloadRow.user == user)
    if state is not None:
        q = q.where(WorkloadRow.state == state)
    if seqs is not None:
        q = q.where(WorkloadRow.seq.in_(list(seqs)))
    return list(db.scalars(q))


def gpu_index(db: Session) -> dict[str, GpuRow]:
    return {g.uuid: g for g in db.scalars(select(GpuRow))}


def pool_view(db: Session, now: float | None = None) -> dict:
    """Nodes and the state of every GPU: free, used or partial, and who holds it."""
    now = time.time() if now is None else now
    holders: dict[str, list[dict]] = defaultdict(list)
    rows = db.execute(
        select(ShareRow.gpu_uuid, ShareRow.fraction, WorkloadRow.seq, WorkloadRow.user, WorkloadRow.team, WorkloadRow.kind).join(
            WorkloadRow, ShareRow.workload_seq == WorkloadRow.seq
        )
    )
    for uuid, fraction, seq, user, team, kind in rows:
        holders[uuid].append(
            {"workload_id": format_workload_id(seq), "user": user, "team": team, "kind": kind, "fraction": fraction}
        )
    nodes: dict[str, dict] = {}
    totals = {"gpus": 0, "free": 0.0, "used": 0.0, "idle": 0}
    rows = db.execute(
        select(
            NodeRow.name, NodeRow.simulated, NodeRow.schedulable, NodeRow.source, NodeRow.last_reading_at, NodeRow.agent_errors,
            GpuRow.uuid, GpuRow.index, GpuRow.model, GpuRow.memory_mib, GpuRow.utilization, GpuRow.memory_used_mib,
            GpuRow.idle_since, GpuRow.reading_at,
        )
        .outerjoin(GpuRow, GpuRow.node_name == NodeRow.name)
        .order_by(NodeRow.name, GpuRow.index)
    )
    for (name, simulated, schedulable, source, last_reading_at, agent_errors,
         uuid, index, model, memory, utilization, memory_used, idle_since, reading_at) in rows:
        node = nodes.get(name)
        if node is None:
            node = nodes[name] = {
                "name": name,
                "simulated": simulated,
                "schedulable": schedulable,
                "source": source,
                "last_reading_at": iso(last_reading_at),
                "agent_errors": agent_errors,
                "gpus": [],
            }
        if uuid is None:
            continue
        held = holders.get(uuid, [])
        used = min(1.0, sum(h["fraction"] for h in held))
        state = "free" if used <= EPSILON else ("used" if used >= 1 - EPSILON else "partial")
        idle_seconds = None if idle_since is None else round(max(0.0, now - idle_since), 1)
        node["gpus"].append(
            {
                "node": name,
                "index": index,
                "uuid": uuid,
                "model": model,
                "memory_mib": memory,
                "simulated": simulated,
                "state": state,
                "used_fraction": round(used, 6),
                "holders": held,
                "utilization": utilization,
                "memory_used_mib": memory_used,
                "idle_seconds": idle_seconds,
                "reading_at": iso(reading_at),
            }
        )
        totals["gpus"] += 1
        totals["used"] += used
        totals["free"] += 1 - used
        if held and idle_seconds is not None:
            totals["idle"] += 1
    nodes = list(nodes.values())
    totals["used"] = round(totals["used"], 6)
    totals["free"] = round(totals["free"], 6)
    return {
        "nodes": nodes,
        "totals": totals,
        "simulated": any(n["simulated"] for n in nodes),
    }


def team_usage(db: Session) -> dict[str, float]:
    usage: dict[str, float] = defaultdict(float)
    rows = db.execute(select(WorkloadRow.team, ShareRow.fraction).join(ShareRow, ShareRow.workload_seq == WorkloadRow.seq))
    for team, fraction in rows:
        usage[team] += fraction
    return usage


def team_view(t: TeamRow, usage: float, pending: int = 0, decayed: float | None = None) -> dict:
    return {
        "name": t.name,
        "quota": t.quota,
        "over_quota_weight": t.over_quota_weight,
        "limit": t.limit,
        "usage": round(usage, 6),
        "borrowed": round(max(0.0, usage - t.quota), 6),
        "pending": pending,
        "updated_at": iso(t.updated_at),
        # GPUs in use on average over the recent past (exponential decay, UsageDecay.half_life_seconds).
        "decayed_usage": None if decayed is None else round(decayed, 3),
    }


def team_pending(db: Session) -> dict[str, int]:
    pending: dict[str, int] = defaultdict(int)
    for team in db.scalars(select(WorkloadRow.team).where(WorkloadRow.state == "pending")):
        pending[team] += 1
    return pending


def team_decayed_usage(db: Session) -> dict[str, float]:
    """Each team's decayed usage as last saved (service/usage_decay.py)."""
    return {team: g for team, g in db.execute(select(UsageHistoryRow.team, UsageHistoryRow.average_gpus).where(UsageHistoryRow.user == ""))}


def teams_view(db: Session) -> list[dict]:
    usage = team_usage(db)
    pending = team_pending(db)
    decayed = team_decayed_usage(db)
    return [
        team_view(t, usage.get(t.name, 0.0), pending.get(t.name, 0), decayed.get(t.name))
        for t in db.scalars(select(TeamRow).order_by(TeamRow.name))
    ]


def one_team_view(db: Session, t: TeamRow) -> dict:
    """One team as ``teams_view`` shows it (GET and PATCH of ``api/teams/{team}`` answer with this)."""
    return team_view(t, team_usage(db).get(t.name, 0.0), team_pending(db).get(t.name, 0), team_decayed_usage(db).get(t.name))


def event_view(e: EventRow) -> dict:
    return {
        "id": e.id,
        "at": iso(e.at),
        "kind": e.kind,
        "workload_id": format_workload_id(e.workload_seq) if e.workload_seq is not None else None,
        "user": e.user,
        "team": e.team,
        "message": e.message,
        "details": e.details,
    }
