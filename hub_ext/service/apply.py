"""Apply the scheduler core's decisions to the database, in one transaction.

Order as the core expects: preemptions and shrinking resizes first, then
starts and growing resizes (starts may use GPUs the preemptions freed). A
preempted workload goes back to pending with its original ``submitted_at``.

Before anything is committed the result is checked: no GPU may end up held
beyond its capacity. If the core (or a stale decision) would break that, the
whole transaction is rolled back and nothing is applied.

Processes are not touched here: the returned ``JobActions`` say which job
processes to stop and which to start once the transaction has committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..scheduler.model import EPSILON, Allocation, Decisions
from ..scheduler.reasons import PREEMPTED
from . import attained, events, metrics
from .snapshot import ActiveWorkload
from .store import GpuRow, ShareRow, WorkloadRow
from .views import load_workloads


class OvercommitError(RuntimeError):
    """Applying the decisions would give a GPU beyond its capacity; nothing was applied."""


@dataclass
class JobActions:
    """Process work to do after the transaction commits."""

    stop: list[tuple[int, str]] = field(default_factory=list)  # (workload seq, runner handle)
    start: list[int] = field(default_factory=list)  # workload seqs whose job must be (re)started
    # runner handle -> the GPUs its process was on: a new start waits only for stops on its own cards
    stop_gpus: dict[str, set[str]] = field(default_factory=dict)
    # (seq, handle, preempt_at, reason, GPU uuids): preempted jobs to give notice (SIGTERM now)
    notices: list[tuple[int, str, float, str, set]] = field(default_factory=list)

    def extend(self, other: JobActions) -> None:
        self.stop.extend(other.stop)
        self.start.extend(other.start)
        self.stop_gpus.update(other.stop_gpus)
        self.notices.extend(other.notices)

    def __bool__(self) -> bool:
        return bool(self.stop or self.start or self.notices)


def _set_shares(w: WorkloadRow, allocation: Allocation | None, gpu_index: dict[str, int]) -> None:
    w.shares.clear()
    if allocation is None:
        return
    for s in allocation.shares:
        w.shares.append(
            ShareRow(
                node_name=s.node,
                gpu_uuid=s.gpu_uuid,
                gpu_index=gpu_index.get(s.gpu_uuid, -1),
                fraction=s.fraction,
                memory_mib=s.memory_mib,
            )
        )


def restart_idle_streaks(db: Session, allocation: Allocation, now: float) -> None:
    """A GPU's idle time belongs to its holders: a new holder starts a new streak (else a job
    started seconds ago shows the idle minutes of the card's previous holder)."""
    uuids = {s.gpu_uuid for s in allocation.shares}
    if uuids:
        db.execute(update(GpuRow).where(GpuRow.uuid.in_(uuids), GpuRow.idle_since.is_not(None)).values(idle_since=now))


def stop_process(w: WorkloadRow, actions: JobActions) -> None:
    """Move a job's current process to the to-stop list (kept in the row until it is gone)."""
    if w.kind == "job" and w.runner_handle:
        w.stop_handles = list(w.stop_handles or []) + [w.runner_handle]
        actions.stop.append((w.seq, w.runner_handle))
        actions.stop_gpus[w.runner_handle] = {s.gpu_uuid for s in w.shares}
        w.runner_handle = None


def release(w: WorkloadRow, actions: JobActions, now: float) -> None:
    """Give back every GPU a workload holds (keeping what it held in its attained service) and stop its process."""
    stop_process(w, actions)
    attained.settle(w, now)
    w.shares.clear()


def check_capacity(db: Session, uuids=None) -> None:
    """Raise ``OvercommitError`` if any GPU is held beyond its capacity (fractions sum above 1).

    ``uuids``: only these GPUs (those given new shares in this transaction: no other's sum grew)."""
    db.flush()
    total = func.sum(ShareRow.fraction)
    query = select(ShareRow.gpu_uuid, total)
    if uuids is not None:
        if not uuids:
            return
        query = query.where(ShareRow.gpu_uuid.in_(sorted(uuids)))
    over = db.execute(query.group_by(ShareRow.gpu_uuid).having(total > 1 + EPSILON)).all()
    if over:
        detail = ", ".join(f"{u} held {t:g} times" for u, t in sorted(over))
        raise OvercommitError(f"refusing decisions that would overcommit GPUs: {detail}")


def _too_spread(w: WorkloadRow, allocation: Allocation, max_job_nodes: int | None) -> bool:
    return w.kind == "job" and max_job_nodes is not None and len(allocation.nodes) > max_job_nodes


def apply_decisions(
    db: Session, decisions: Decisions, active: dict[str, ActiveWorkload], now: float, max_job_nodes: int | None = None,
    preemption=None,
) -> JobActions:
    """Apply ``decisions``; a job is never given GPUs on more than ``max_job_nodes`` nodes (what its runner can run).

    With ``preemption`` (service/preemption.py) a preempted workload gets notice and keeps its
    GPUs until it is gone; work that was to start on them waits. Without it (the old contract,
    kept for callers that replay the core's decisions), it goes back to pending at once."""
    actions = JobActions()
    touched = {d.workload_id for d in (*decisions.preemptions, *decisions.resizes, *decisions.starts)}
    rows = {w.id: w for w in load_workloads(db, seqs=[active[wid].seq for wid in touched if wid in active])} if touched else {}
    new_uuids = {s.gpu_uuid for d in (*decisions.resizes, *decisions.starts) for s in d.allocation.shares}
    gpu_index = {u: i for u, i in db.execute(select(GpuRow.uuid, GpuRow.index).where(GpuRow.uuid.in_(new_uuids)))} if new_uuids else {}

    leaving: dict[str, str] = {}  # GPU uuid -> the workload with notice that still holds it
    for p in decisions.preemptions:
        w = rows.get(p.workload_id)
        if w is None or w.state not in ("running", "stopping"):
            continue
        if preemption is not None:
            if w.preempt_at is None:
                at = preemption.notice(db, w, p.reason, p.for_workload_id, now)
                if w.kind == "job" and w.runner_handle:
                    actions.notices.append((w.seq, w.runner_handle, at, p.reason, {s.gpu_uuid for s in w.shares}))
            for s in w.shares:
                leaving[s.gpu_uuid] = w.id
            continue
        release(w, actions, now)
        w.state = "pending"
        w.preemptions += 1
        w.started_at = None
        w.over_quota = False
        w.reason = PREEMPTED + p.reason  # kept: the views say it until the workload runs again (queue_state.py)
        kind = "reclaimed" if "idle" in p.reason.lower() else "preempted"
        events.record(db, kind, p.reason, w, details={"for_workload_id": p.for_workload_id}, at=now)

    shrinks = [r for r in decisions.resizes if r.workload_id in active and r.allocation.gpus < active[r.workload_id].allocated]
    grows = [r for r in decisions.resizes if r not in shrinks]
    for r in shrinks + grows:
        w = rows.get(r.workload_id)
        if w is None or w.state != "running" or _too_spread(w, r.allocation, max_job_nodes):
            continue  # an elastic job grows only where its runner can follow
        if any(x.gpu_uuid in leaving and leaving[x.gpu_uuid] != w.id for x in r.allocation.shares):
            continue  # grows onto GPUs still held by work with notice: a later cycle
        before = w.allocated_gpus
        stop_process(w, actions)  # while the shares still say which GPUs the process is on
        attained.settle(w, now, r.allocation.gpus)
        _set_shares(w, r.allocation, gpu_index)
        restart_idle_streaks(db, r.allocation, now)
        if w.kind == "job":
            actions.start.append(w.seq)
        events.record(
            db, "resized", f"{before:g} -> {r.allocation.gpus:g} GPUs: {r.reason}", w,
            details={"from": before, "to": r.allocation.gpus}, at=now,
        )

    for s in decisions.starts:
        w = rows.get(s.workload_id)
        if w is None or w.state != "pending" or _too_spread(w, s.allocation, max_job_nodes):
            continue
        waits_for = sorted({leaving[x.gpu_uuid] for x in s.allocation.shares if x.gpu_uuid in leaving})
        if waits_for:
            w.reason = f"starts when {', '.join(waits_for)} (preempted for it, with notice) leave the GPUs it will get"
            continue
        _set_shares(w, s.allocation, gpu_index)
        restart_idle_streaks(db, s.allocation, now)
        w.state = "running"
        w.started_at = now
        w.reason = s.reason
        w.over_quota = s.over_quota
        w.queue_position = None
        w.expected_start = None
        if w.kind == "job":
            actions.start.append(w.seq)
        metrics.record_start(w.team, w.kind, now - w.submitted_at)
        events.record(
            db, "started", s.reason, w,
            details={"gpus": s.allocation.gpus, "nodes": list(s.allocation.nodes), "over_quota": s.over_quota}, at=now,
        )

    # Queue positions and reasons of pending work are not written here: derived from the whole queue every
    # cycle, they are kept in the service's memory (queue_state.py, filled by the loop once this commits).
    # What a preemption above wrote in a row's reason stays (the views prefix it to why the work waits now).

    check_capacity(db, new_uuids if len(new_uuids) <= 2000 else None)
    return actions
