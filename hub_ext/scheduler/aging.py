"""Aging: a workload's place in the between-teams order improves with its wait, bounded.

Fair share orders teams by how much they borrow (and borrowed, decay.py); a
team with a worse share could wait behind better-placed teams for as long as
they keep submitting. Aging gives the next workload of a borrowing team a
credit of ``aging_gpus_per_hour`` GPUs per hour it has waited, up to
``aging_max_gpus``: its team is ranked as if it borrowed that many GPUs less.
The bound keeps aging from overriding fair share altogether; the reservation
(reservation.py) remains the last resort for work that still starves.
Work within its team's quota needs no aging: it comes first anyway.
"""

from __future__ import annotations

from .model import SchedulerConfig


def credit(config: SchedulerConfig, waited_s: float) -> float:
    """GPUs of credit after waiting ``waited_s`` seconds."""
    rate = config.aging_gpus_per_hour
    if rate <= 0 or waited_s <= 0:
        return 0.0
    return min(config.aging_max_gpus, rate * waited_s / 3600.0)


def in_words(config: SchedulerConfig, waited_s: float) -> str | None:
    c = credit(config, waited_s)
    if c < 0.05:
        return None
    capped = " (the most aging gives)" if c >= config.aging_max_gpus - 1e-9 else ""
    return f"waiting {waited_s / 3600:.1f} h moved it up as if its team borrowed {c:.1f} GPUs less{capped}"
