"""Pollux (OSDI'21) workloads: Philly arrivals with a model per job, no durations.

Columns: ``workload`` (added by the shared copy: workload-1..8), ``name``,
``time`` (submit, s), ``application``, ``num_replicas``, ``batch_size``.

Duration model (the file has none): Pollux assigned each job its model by its
Philly GPU-time bucket (< 1 GPU-hour: cifar10/ncf; < 10: deepspeech2/bert;
< 100: yolov3; else imagenet). A job here gets the geometric middle of its
bucket's GPU-hours (0.5, 3.16, 31.6, 316) spread over its ``num_replicas``
GPUs: duration = GPU-hours x 3600 / num_replicas.

Elastic: Pollux jobs are AdaptDL jobs that scale. A job asks for
``num_replicas`` GPUs and may run on 1..num_replicas (progress proportional to
GPUs held). Teams: the file has none; each job goes to one of four teams
(team-1..team-4) by a stable hash (CRC-32) of its name, so every team has a
mix of models, as a lab's teams would.
Each ``workload-N`` is an independent 8-hour sample, so by default only
``workload-6`` (the paper's testbed workload) is read.
"""

from __future__ import annotations

import zlib

from ..trace import TraceJob
from ._rows import Row

FORMAT = "pollux"
COLUMNS = {
    "workload": (),
    "name": ("job", "job_id"),
    "time": ("submit_time", "submitted_at"),
    "application": ("model", "app"),
    "num_replicas": ("gpus", "num_gpus", "replicas"),
}
REQUIRED = ("name", "time", "application", "num_replicas")
GPU_HOURS = {"cifar10": 0.5, "ncf": 0.5, "deepspeech2": 3.16, "bert": 3.16, "yolov3": 31.6, "imagenet": 316.0}
DEFAULT_WORKLOAD = "workload-6"
TEAMS = 4
NOTES = [
    "durations are modelled (the file has none): GPU-hours by application "
    + ", ".join(f"{k} {v:g}" for k, v in GPU_HOURS.items())
    + ", divided over num_replicas GPUs",
    "elastic: each job may run on 1..num_replicas GPUs, progress proportional to GPUs held",
    f"no teams in the file: each job goes to one of {TEAMS} teams by a CRC-32 hash of its name",
]


def job(row: Row, workload: str | None = DEFAULT_WORKLOAD) -> TraceJob | None:
    if workload and row.values.get("workload") and row.values["workload"] != workload:
        return None
    app = row.text("application")
    if app not in GPU_HOURS:
        raise row.error(f"column 'application': {app!r} is not one of {', '.join(GPU_HOURS)} (no duration model for it)")
    replicas = int(row.number("num_replicas", minimum=1, integer=True))
    prefix = f"{row.values['workload']}/" if row.values.get("workload") else ""
    team = f"team-{zlib.crc32(row.text('name').encode()) % TEAMS + 1}"
    return TraceJob(
        id=f"pollux-{prefix}{row.text('name')}",
        submitted_at=row.timestamp("time"),
        duration=GPU_HOURS[app] * 3600.0 / replicas,
        gpus=replicas,
        team=team,
        user=team,
        min_gpus=1 if replicas > 1 else None,
        max_gpus=replicas if replicas > 1 else None,
    )
