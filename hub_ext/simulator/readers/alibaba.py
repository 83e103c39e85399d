"""Alibaba cluster-trace-gpu-v2023 ``openb_pod_list_*.csv`` (FGD, ATC'23).

Columns used: ``name``, ``num_gpu``, ``gpu_milli`` (share of one card, 1/1000),
``qos``, ``creation_time`` (submit, s), ``scheduled_time``, ``deletion_time``.
Duration = deletion - scheduled. Fractions: a one-GPU pod with
``gpu_milli`` < 1000 asks for that fraction of a card.

Left out, and counted: CPU-only pods (``num_gpu`` 0) and pods never scheduled
in the trace (no ``scheduled_time``: no run time to replay). Pods still
running when the trace ended have their run time cut at its end.
Teams: the file has none; a pod's team is its QoS class (LS, BE, Burstable,
Guaranteed).
"""

from __future__ import annotations

from ..trace import TraceJob
from ._rows import Row

FORMAT = "alibaba"
COLUMNS = {
    "name": ("pod", "pod_name"),
    "num_gpu": ("num_gpus", "gpus"),
    "gpu_milli": (),
    "qos": (),
    "creation_time": ("submit_time",),
    "scheduled_time": ("start_time",),
    "deletion_time": ("end_time",),
}
REQUIRED = ("name", "num_gpu", "creation_time", "scheduled_time", "deletion_time")
NOTES = [
    "no teams in the file: a pod's team is its QoS class",
    "fractions from gpu_milli for one-GPU pods; duration = deletion_time - scheduled_time",
]
CPU_ONLY = "CPU-only pod (num_gpu 0)"
NEVER_SCHEDULED = "pod never scheduled in the trace (no run time)"


def job(row: Row) -> TraceJob | str:
    """A job, or the reason (one of the constants above) the row is left out."""
    gpus = int(row.number("num_gpu", minimum=0, integer=True))
    if gpus == 0:
        return CPU_ONLY
    milli = row.number("gpu_milli", minimum=0, required=False)
    if milli is not None and milli > 1000:
        raise row.error(f"column 'gpu_milli': {milli:g} is above 1000 (one whole card)")
    if not row.text("scheduled_time", required=False):
        return NEVER_SCHEDULED
    submitted = row.number("creation_time", minimum=0)
    started = row.number("scheduled_time", minimum=0)
    ended = row.number("deletion_time", minimum=0)
    if ended < started:
        raise row.error(f"deletion_time {ended:g} is before scheduled_time {started:g}")
    asked: float = gpus
    if gpus == 1 and milli is not None and 0 < milli < 1000:
        asked = milli / 1000.0
    team = row.text("qos", required=False) or "default"
    return TraceJob(
        id=f"alibaba-{row.text('name')}",
        submitted_at=submitted,
        duration=ended - started,
        gpus=asked,
        team=team,
        user=team,
    )
