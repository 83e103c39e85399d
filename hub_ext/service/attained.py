"""Attained service: GPU-seconds each workload has held so far, over all its runs.

The scheduler core orders work within a team by it (least attained service,
``SchedulerConfig.las_thresholds_gpu_s``): a job preempted after 30 GPU-hours
queues behind its team's fresh work instead of like a new one.

Kept in ``WorkloadRow.attained_gpu_s`` without a write per second: the column
holds what past runs held and, while the workload holds GPUs, an offset such
that

    held so far = attained_gpu_s + GPUs held now x (now - started_at)

Whenever the GPUs a workload holds change (given back, or a resize), ``settle``
moves the difference into the column in the same transaction, with the event
that records the change (the event log's started/resized/released kinds are
the usage report's accounting, usage_history.py; this is the same accounting,
per workload). A resize counts the old size until the resize and the new one
after; a fraction counts its fraction.

The scheduler sees running work's attained service on a grid (``on_grid``):
rounded down to a GPU-minute or to a step of ``step`` (relative), whichever is
more, and to the LAS thresholds exactly. Its LAS level is exact (a threshold is
a grid point, and the value is never rounded up); the order of attained service
between running jobs (elastic growth, which job new work shrinks first) is exact
up to that step. A running workload's value moves to the next grid point once a
GPU-minute while young and then about every ``step`` of its age, so the
scheduling loop re-reads only those (service/loop.py) rather than every running
workload every cycle.
"""

from __future__ import annotations

import math
from bisect import bisect_right

from .store import WorkloadRow

#: Fractions of a GPU summed per workload are compared with this slack.
_EPSILON = 1e-9

#: Default relative step of the grid running work's attained service is seen on (SchedulingLoop.attained_step).
ATTAINED_STEP = 0.01
#: ... and its absolute step for young work: a GPU-minute (a one-GPU job is re-read once a minute, not every cycle).
GRID_UNIT = 60.0
#: What work that has held GPUs for less than a GPU-minute is seen as having held (not 0: it is not new work).
FIRST_POINT = 1.0


def held_gpu_s(stored: float | None, gpus_held: float, started_at: float | None, now: float) -> float:
    """GPU-seconds held so far, from the column, the GPUs held now and when the current run started."""
    held = stored or 0.0
    if gpus_held > 0 and started_at is not None:
        held += gpus_held * max(0.0, now - started_at)
    return max(0.0, held)


def of_row(w: WorkloadRow, now: float) -> float:
    """``held_gpu_s`` of a loaded row (its shares say what it holds)."""
    return held_gpu_s(w.attained_gpu_s, w.allocated_gpus if w.shares else 0.0, w.started_at, now)


def settle(w: WorkloadRow, now: float, to_gpus: float = 0.0) -> None:
    """``w``'s GPUs are about to change to ``to_gpus`` (0: all given back): keep what it has held so far.

    Call before the shares change; with nothing held (pending) it does nothing."""
    if w.started_at is None or not w.shares:
        return
    held = w.allocated_gpus
    if abs(held - to_gpus) <= _EPSILON:
        return
    w.attained_gpu_s = (w.attained_gpu_s or 0.0) + (held - to_gpus) * max(0.0, now - w.started_at)


def on_grid(x: float, thresholds: tuple[float, ...] = (), step: float = ATTAINED_STEP) -> float:
    """``x`` rounded down to the grid the scheduler sees running work's attained service on.

    Grid points: 0; ``FIRST_POINT`` (work that has held GPUs for less than a
    GPU-minute: it is not "new" any more); whole GPU-minutes (``GRID_UNIT``) up to
    where a step of ``step`` is larger; (1 + step) ** k GPU-seconds above; and
    the LAS thresholds. So the value is exact to a GPU-minute or to ``step``,
    whichever is more, any x > 0 stays above 0, and no threshold lies between
    the result and x (the LAS level is exact). ``step`` 0: x itself."""
    if x <= 0:
        return 0.0
    if step <= 0:
        return x
    if x < GRID_UNIT:
        g = min(x, FIRST_POINT)
    elif x * step < GRID_UNIT:
        g = math.floor(x / GRID_UNIT) * GRID_UNIT
        if g > x:  # rounding in the division: one point down
            g -= GRID_UNIT
    else:
        ratio = 1.0 + step
        k = math.floor(math.log(x) / math.log1p(step))
        g = ratio**k
        if g > x:  # rounding in log or pow: one point down
            g = ratio ** (k - 1)
    if thresholds and x >= thresholds[0]:  # (called for every running workload every cycle: no search below the first)
        g = max(g, thresholds[bisect_right(thresholds, x) - 1])
    return g


def next_point(x: float, thresholds: tuple[float, ...] = (), step: float = ATTAINED_STEP) -> float:
    """Up to where ``on_grid`` stays as it is at ``x``: on_grid(y) == on_grid(x) for x <= y < next_point(x).

    A bound (at or a hair below the next grid point above x); x itself where the grid is exact (below
    ``FIRST_POINT``, or ``step`` 0). The scheduling loop recomputes a running workload's attained
    service only once it may have reached this (snapshot.KeptSnapshot), not every cycle."""
    if step <= 0 or x < FIRST_POINT:
        return x
    if x < GRID_UNIT:
        nxt = GRID_UNIT
    elif x * step < GRID_UNIT:
        nxt = min((math.floor(x / GRID_UNIT) + 1) * GRID_UNIT, GRID_UNIT / step)
    else:
        nxt = on_grid(x, (), step) * (1.0 + step)
    for t in thresholds:
        if t > x:
            nxt = min(nxt, t)
            break
    return max(x, nxt * (1.0 - 1e-9))  # (a hair early: rounding in the grid's pow never makes it late)
