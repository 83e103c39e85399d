"""Least attained service on estimates: inside a level, work estimated to need less goes first.

Least attained service (ordering.py) cannot tell a new short job from a new
long one: both have held nothing. With ``SchedulerConfig.las_on_estimates``
the order inside a team's least-attained-service level (after priority and,
between users, after the user's usage) is by **estimated remaining
GPU-time**, shortest first:

    estimate_s x asked GPUs - attained_gpu_s

``estimate_s`` is a run-time estimate learned from history (estimates.py;
the caller sets it, e.g. ``forward.with_estimates``), at the asked size: the
core never sees a true duration. Robust to a wrong estimate:

* no estimate: its attained service stands for what it needs, as in plain
  least attained service (new work: 0, ahead of known work of its level,
  in submit order);
* an estimate the workload has already overrun (it has held as many
  GPU-seconds as its estimate times its asked GPUs, or more): the same,
  plain least attained service again (estimates.remaining_s's rule: an
  overrun says the estimate was wrong);
* the level still comes first: a job estimated short that has held GPUs
  past a cut waits behind its team's work below it, and nothing is
  preempted for an estimate (only the order in which GPUs are offered moves).

Elastic jobs (elastic.py) follow the same rank: growth into idle GPUs goes
to the least estimated remaining GPU-time first, and new work shrinks (to
``new_work_shrink_floor``) only running elastic jobs estimated to need more
than it, the most first.

Starving work (reservations) still goes first, oldest first: work estimated
long does not wait forever behind a stream of work estimated short.
"""

from __future__ import annotations

from bisect import bisect_right

from .model import Workload

def remaining_gpu_s(w: Workload) -> float | None:
    """Estimated GPU-seconds ``w`` still needs; None when not known or already overrun."""
    if w.estimate_s is None:
        return None
    left = w.estimate_s * w.gpus - w.attained_gpu_s
    return left if left > 0 else None


def rank(w: Workload) -> float:
    """Where ``w`` stands inside its level, smaller first: its estimated remaining GPU-seconds, or with no
    usable estimate its attained service (plain least attained service: what it has held stands for
    what it needs; 0 for new work)."""
    left = remaining_gpu_s(w)
    return w.attained_gpu_s if left is None else left


def growth_key(w: Workload, started_at: float) -> tuple:
    """Which running elastic job of a team grows first into idle GPUs: the least estimated remaining GPU-time."""
    return (rank(w), started_at)


def may_shrink(w: Workload, rw: Workload) -> bool:
    """May new work ``w`` shrink running ``rw`` (elastic.new_work_victim)? Only work estimated to need more than it."""
    return rank(rw) > rank(w)


def shrink_key(rw: Workload) -> float:
    """Which victim new work shrinks first: the most estimated remaining GPU-time (a sort key: smaller first)."""
    return -rank(rw)


def queue_key_for(las: tuple[float, ...]):
    """One user's pending work: priority, level, estimated remaining GPU-time, submit time."""

    def key(w: Workload) -> tuple:
        return (-w.priority, bisect_right(las, w.attained_gpu_s) if las else 0, rank(w), w.submitted_at, w.id)

    return key


def words(w: Workload) -> str:
    """A pending workload's reason, when its estimate places it: says it is an estimate, and its basis."""
    left = remaining_gpu_s(w)
    if left is None:
        return ""
    basis = w.estimate_basis or "run-time history"
    hours = left / 3600.0
    size = f"{hours:.2f}".rstrip("0").rstrip(".") if hours < 10 else f"{hours:.0f}"
    return (
        f"; by least attained service on estimates, team {w.team}'s work estimated to need less goes first: "
        f"this is estimated to need {size} more GPU-hours (an estimate: {basis})"
    )
