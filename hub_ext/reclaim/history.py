"""Idle streaks from utilisation readings.

A sample is ``(time, utilisation)``; utilisation None means the card gave
no figure. Missing data is never idleness: no recent sample, a None figure
or a gap between readings all mean "we do not know", and an idle streak
only counts readings we actually have.
"""

from __future__ import annotations

from collections.abc import Sequence

Sample = tuple[float, "float | None"]


def idle_streak_start(samples: Sequence[Sample], threshold_percent: float, now: float, stale_after_s: float) -> float | None:
    """When the GPU's current idle streak began, or None if it is not idle now.

    None covers both "busy" and "no data"; ``gpu_state`` tells them apart.
    The streak starts at the first idle reading we have of it (not at the
    last busy one), so a gap before it never counts as idle time.
    """
    if not samples:
        return None
    t, util = samples[-1]
    if now - t > stale_after_s or util is None or util >= threshold_percent:
        return None
    start = t
    for t_prev, util_prev in reversed(samples[:-1]):
        if start - t_prev > stale_after_s or util_prev is None or util_prev >= threshold_percent:
            break
        start = t_prev
    return start


def gpu_state(samples: Sequence[Sample], threshold_percent: float, now: float, stale_after_s: float) -> str:
    """"idle", "busy" or "unknown" now."""
    if not samples:
        return "unknown"
    t, util = samples[-1]
    if now - t > stale_after_s or util is None:
        return "unknown"
    return "busy" if util >= threshold_percent else "idle"


def idle_seconds(samples: Sequence[Sample], threshold_percent: float, now: float, stale_after_s: float) -> float | None:
    """How long the GPU has been idle: 0 when busy, None when unknown."""
    state = gpu_state(samples, threshold_percent, now, stale_after_s)
    if state == "unknown":
        return None
    if state == "busy":
        return 0.0
    return now - idle_streak_start(samples, threshold_percent, now, stale_after_s)
