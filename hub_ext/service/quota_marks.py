"""Running work marked by today's quota: after an admin changes a team's quota, its running
workloads' over-quota ("borrowed") marks and the quota part of their reasons are recomputed.

Without this a raised quota leaves jobs marked as borrowing (and a lowered one leaves borrowers
marked as within quota) until they end, while the team's row already says otherwise.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..scheduler.fairshare import protection_key, quota_marks
from ..scheduler.model import Running, Team
from ..scheduler.reasons import remarked_reason
from .snapshot import allocation_model, workload_model
from .store import TeamRow, WorkloadRow


def remark_team(db: Session, team: TeamRow) -> int:
    """Recompute the marks of ``team``'s running workloads; returns how many changed."""
    rows = db.scalars(
        select(WorkloadRow).options(selectinload(WorkloadRow.shares))
        .where(WorkloadRow.team == team.name, WorkloadRow.state == "running")
    )
    by_id = {w.id: w for w in rows if w.shares}
    ranked = sorted((Running(workload=workload_model(w), allocation=allocation_model(w)) for w in by_id.values()), key=protection_key)
    model = Team(name=team.name, quota=team.quota, over_quota_weight=team.over_quota_weight, limit=team.limit)
    changed = 0
    for wid, over in quota_marks(model, ranked).items():
        w = by_id[wid]
        reason = remarked_reason(w.reason, team.name, team.quota, over)
        if bool(w.over_quota) != over or w.reason != reason:
            w.over_quota, w.reason = over, reason
            changed += 1
    return changed
