"""The queue as the last scheduling cycle left it: pending work's positions and reasons, in memory.

Positions and reasons of pending work are derived, every cycle, from the whole
queue: when the head of a 50,000-long queue starts, every position moves by
one. They are not written to the database each cycle (that was most of a
cycle's time); the scheduling loop keeps the last cycle's queue here
(``QueueView.update``) and the API's views read it (views.workload_view,
api/queue.py). Both are computed lazily, on first read after a cycle: the
order once (positions), a reason per workload asked for.

What stays in the database is what happened to a workload (the reason a
preemption, a requeue or a reclaim wrote); a pending workload's reason shown is
that one followed by why it waits now (``pending_reason_after_preemption``), as
it was when apply.py wrote the combination every cycle. A service that has not
run a cycle yet, or work submitted since its last one, answers from the row
(no position). Several service processes on one database each keep their own.
"""

from __future__ import annotations

from ..scheduler.reasons import pending_reason_after_preemption


class QueueView:
    """The last committed cycle's pending queue (``Decisions.pending``), read lazily."""

    def __init__(self):
        self._pending = None
        self._positions: dict[str, int] | None = None
        self._reasons: dict[str, str] | None = None
        self.cycle_at: float | None = None

    def update(self, pending, at: float) -> None:
        """The queue of a cycle whose decisions were committed."""
        self._pending = pending
        self._positions = self._reasons = None
        self.cycle_at = at

    def clear(self) -> None:
        self.update(None, None)

    @property
    def known(self) -> bool:
        return self._pending is not None

    def _full(self) -> None:
        # A plain tuple (the core's schedule() with nothing lazy): index it once.
        self._positions = {p.workload_id: p.position for p in self._pending}
        self._reasons = {p.workload_id: p.reason for p in self._pending}

    def position(self, workload_id: str) -> int | None:
        """1-based position in the order the scheduler would start work; None if not in the last cycle's queue."""
        p = self._pending
        if p is None:
            return None
        if hasattr(p, "position_of"):
            return p.position_of(workload_id)
        if self._positions is None:
            self._full()
        return self._positions.get(workload_id)

    def current_reason(self, workload_id: str) -> str | None:
        p = self._pending
        if p is None:
            return None
        if hasattr(p, "reason_of"):
            return p.reason_of(workload_id)
        if self._reasons is None:
            self._full()
        return self._reasons.get(workload_id)

    def reason(self, workload_id: str, stored: str | None) -> str | None:
        """What a pending workload's view says: the stored reason (what happened to it) with why it waits now."""
        current = self.current_reason(workload_id)
        if current is None:
            return stored
        return pending_reason_after_preemption(stored, current)
