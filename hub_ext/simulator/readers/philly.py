"""Microsoft Philly per-job extract (as shipped by petuum/adaptdl).

Columns: ``timestamp`` (submit, date-time UTC), ``duration`` (s), ``num_gpus``,
``gpu_time``, ``cluster`` (virtual cluster). Each virtual cluster had its own
quota on Philly, so it is a **team** here. The trace has no user column: each
team is one user, so fair share between users inside a team does not apply.
"""

from __future__ import annotations

from ..trace import TraceJob
from ._rows import Row

FORMAT = "philly"
COLUMNS = {
    "timestamp": ("submitted_time", "submit_time", "submitted_at"),
    "duration": ("run_time", "runtime"),
    "num_gpus": ("gpus", "num_gpu"),
    "cluster": ("vc", "virtual_cluster", "team"),
    "user": (),
}
REQUIRED = ("timestamp", "duration", "num_gpus", "cluster")
NOTES = ["teams are Philly's virtual clusters; no user column, so each team is one user"]


def job(row: Row) -> TraceJob:
    team = row.text("cluster")
    return TraceJob(
        id=f"philly-{row.index}",
        submitted_at=row.timestamp("timestamp"),
        duration=row.number("duration", minimum=0),
        gpus=row.number("num_gpus", minimum=1, integer=True),
        team=team,
        user=row.text("user", required=False) or team,
    )
