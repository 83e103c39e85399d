"""The event log: what happened to workloads and teams, and why.

Kinds: submitted, started, preempted, resized, reclaimed, finished, failed,
cancelled, requeued (a job whose process was gone at a restart), team-changed,
node-added. Written in the same transaction as the
change they describe, so the log never claims what did not happen.
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from .store import EventRow, WorkloadRow


def record(
    db: Session,
    kind: str,
    message: str,
    workload: WorkloadRow | None = None,
    *,
    user: str | None = None,
    team: str | None = None,
    details: dict | None = None,
    at: float | None = None,
) -> EventRow:
    if workload is not None and workload.seq is None:
        db.flush()  # a new workload needs its id before the event can name it
    row = EventRow(
        at=time.time() if at is None else at,
        kind=kind,
        workload_seq=workload.seq if workload is not None else None,
        user=workload.user if workload is not None else user,
        team=workload.team if workload is not None else team,
        message=message,
        details=details,
    )
    db.add(row)
    return row
