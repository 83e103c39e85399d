"""A GPU's idle streak, folded reading by reading.

The service keeps, per GPU, only its latest reading and since when it has
been idle (``GpuIdle``); ``observe`` advances that state by one reading, so
no reading is ever lost between two scheduling ticks and the state survives
a restart in the database. The simulator and the tests fold whole sample
lists with the same function.

Missing data is never idleness: a reading with no utilisation figure ends a
streak, a gap longer than ``stale_after_s`` between readings starts a new
one at the first reading after it, and a GPU with no recent reading is
"unknown" (nothing happens to its holders).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .settings import IdleDefinition

Sample = tuple[float, "float | None"]  # (time, utilisation percent or None)


@dataclass(frozen=True)
class GpuIdle:
    """What we know of one GPU: its latest reading and its current idle streak."""

    reading_at: float | None = None
    utilization: float | None = None
    idle_since: float | None = None  # start of the current idle streak; None while busy or unknown


NEVER_READ = GpuIdle()


def observe(prev: GpuIdle | None, at: float, utilization: float | None, idle: IdleDefinition) -> GpuIdle:
    """The state after one more reading (readings arrive in time order)."""
    prev = prev or NEVER_READ
    if utilization is None or utilization >= idle.threshold_percent:
        since = None
    elif prev.idle_since is None or prev.reading_at is None or at - prev.reading_at > idle.stale_after_s:
        # The streak starts at the first idle reading we have, never at the
        # last busy one or across a gap: time we did not see is not idle time.
        since = at
    else:
        since = prev.idle_since
    return GpuIdle(reading_at=at, utilization=utilization, idle_since=since)


def fold(samples: Iterable[Sample], idle: IdleDefinition) -> GpuIdle:
    state = NEVER_READ
    for at, utilization in samples:
        state = observe(state, at, utilization, idle)
    return state


def gpu_state(gpu: GpuIdle | None, idle: IdleDefinition, now: float) -> str:
    """"idle", "busy" or "unknown" now."""
    if gpu is None or gpu.reading_at is None or now - gpu.reading_at > idle.stale_after_s or gpu.utilization is None:
        return "unknown"
    return "idle" if gpu.idle_since is not None else "busy"


def idle_seconds(gpu: GpuIdle | None, idle: IdleDefinition, now: float) -> float | None:
    """How long the GPU has been idle: 0 when busy, None when unknown."""
    state = gpu_state(gpu, idle, now)
    if state == "unknown":
        return None
    return 0.0 if state == "busy" else max(0.0, now - gpu.idle_since)
