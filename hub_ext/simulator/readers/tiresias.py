"""The Tiresias simulator's sample input (``60_job.csv``; not a real trace).

Columns: ``job_id``, ``num_gpu``, ``submit_time`` (s), ``duration`` (s),
``model_name``, plus ``iterations`` and ``interval`` (unused). There are no
teams: a job's team is its model family (``vgg19`` -> ``vgg``), so the static
world has several slices to compare against.
"""

from __future__ import annotations

import re

from ..trace import TraceJob
from ._rows import Row

FORMAT = "tiresias"
COLUMNS = {
    "job_id": ("id",),
    "num_gpu": ("num_gpus", "gpus"),
    "submit_time": ("submitted_at", "timestamp"),
    "duration": ("runtime",),
    "model_name": ("model",),
}
REQUIRED = ("job_id", "num_gpu", "submit_time", "duration")
NOTES = ["no teams in the file: a job's team is its model family (vgg19 -> vgg)"]


def job(row: Row) -> TraceJob:
    model = row.text("model_name", required=False)
    team = re.sub(r"[\d_.-]+$", "", model) or "default"
    return TraceJob(
        id=f"tiresias-{row.text('job_id')}",
        submitted_at=row.timestamp("submit_time"),
        duration=row.number("duration", minimum=0),
        gpus=row.number("num_gpu", minimum=1, integer=True),
        team=team,
        user=team,
    )
