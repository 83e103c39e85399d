"""Queue order and the simulator's baselines: fair (default), fifo, static."""

from __future__ import annotations

import pytest

from .helpers import job, pool, reason, running, schedule, snap, started_ids, teams


def test_fifo_is_strict_first_come_first_served():
    pend = [job("a-big", "a", 8, at=0), job("b-small", "b", 1, at=1), job("a-small", "a", 1, at=2)]
    run = [running(job("x", "a", 4, at=0), "n/0", "n/1", "n/2", "n/3")]
    d = schedule(snap(pool(("n", 8)), teams(("a", 100), ("b", 100)), run, pend, ordering="fifo", preemption=False))
    assert started_ids(d) == [], "nothing overtakes the head, even where it would fit"
    assert [p.workload_id for p in d.pending] == ["a-big", "b-small", "a-small"]
    assert "waits behind a-big" in reason(d, "b-small")


def test_fifo_starts_in_submit_order_whatever_team_or_priority():
    pend = [job("late-high", "b", 1, at=5, priority=9), job("early", "a", 1, at=0), job("mid", "b", 1, at=2)]
    d = schedule(snap(pool(("n", 2)), teams(("a", 0), ("b", 100)), [], pend, ordering="fifo", preemption=False))
    assert started_ids(d) == ["early", "mid"]


def test_fifo_passes_over_work_that_can_never_start():
    pend = [job("impossible", "a", 64, at=0), job("next", "a", 1, at=1)]
    d = schedule(snap(pool(("n", 8)), teams(("a", 100)), [], pend, ordering="fifo", preemption=False))
    assert started_ids(d) == ["next"]


@pytest.mark.parametrize("borrowing,starts", [(True, 4), (False, 2)])
def test_static_slices_do_not_borrow(borrowing, starts):
    pend = [job(f"a{i}", "a", 1, at=i) for i in range(4)]
    d = schedule(snap(pool(("n", 4)), teams(("a", 2), ("b", 2)), [], pend, borrowing=borrowing, preemption=borrowing))
    assert len(d.starts) == starts


def test_fair_order_serves_work_within_quota_before_borrowers():
    pend = [job(f"borrow{i}", "big", 1, at=i) for i in range(4)] + [job("owner", "small", 1, at=100)]
    run = [running(job(f"b{i}", "big", 1, at=0), f"n/{i}") for i in range(4)]
    d = schedule(snap(pool(("n", 5)), teams(("big", 2), ("small", 1)), run, pend, preemption=False))
    assert started_ids(d) == ["owner"], "the only free GPU goes to the team within its quota"
