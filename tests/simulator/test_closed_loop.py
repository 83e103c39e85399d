"""The closed-loop model: researchers, their in-flight limit and think time (no shared traces needed)."""

from __future__ import annotations

import pytest

from hub_ext.simulator.closed_loop import DAY, Researcher, busiest_teams, run_closed_loop

from .helpers import cluster, job, trace


def days(seconds: float) -> float:
    return seconds / DAY


def test_a_researcher_keeps_at_most_k_in_flight_and_thinks_before_the_next():
    # 4 idle GPUs, 1-GPU experiments of 1000 s; k=2, think 100 s: two at 0 (done at 1000),
    # two more at 1100 (done at 2100); nothing else ever runs, whatever room is left.
    t = trace(job("x", 0, 1000, gpus=1, team="lab"))
    r = run_closed_loop(t, cluster(1, 4), [Researcher("lab/ann", "lab", 2, 100.0)], "pool", days(2101))
    assert r.submitted == 4 and r.experiments == 4  # the next two would come at 2200, after the end
    assert max(held for _, held, _ in r.samples) == 2.0  # never more than k in flight, with 4 GPUs idle
    assert r.utilisation == pytest.approx((2 * 1000 + 2 * 1000) / (4 * 2101))
    assert r.mean_jct_s == pytest.approx(1000.0)


def test_think_time_delays_the_next_experiment():
    t = trace(job("x", 0, 1000, gpus=1, team="lab"))
    fast = run_closed_loop(t, cluster(1, 4), [Researcher("lab/a", "lab", 1, 0.0)], "pool", days(10_001))
    slow = run_closed_loop(t, cluster(1, 4), [Researcher("lab/a", "lab", 1, 4000.0)], "pool", days(10_001))
    assert fast.experiments == 10
    assert slow.experiments == 2  # 0-1000, 5000-6000; the third starts at 10000


def test_experiments_are_drawn_in_order_from_their_team_and_wrap_around():
    t = trace(job("a1", 0, 100, team="a"), job("a2", 1, 300, team="a"), job("b1", 2, 50, team="b"))
    r = run_closed_loop(t, cluster(1, 4), [Researcher("a/r", "a", 1, 0.0)], "pool", days(100 + 300 + 100 + 1))
    assert r.experiments == 3  # a1, a2, then a1 again; b's jobs are not a's
    assert r.mean_jct_s == pytest.approx((100 + 300 + 100) / 3)


def test_static_slices_cap_an_experiment_at_its_group_slice_keeping_its_gpu_hours():
    # Two groups own 4 GPUs each; an 8-GPU, 1000 s experiment runs on 4 GPUs for 2000 s there.
    t = trace(job("big", 0, 1000, gpus=8, team="a"), job("b", 0, 10, team="b"))
    rs = [Researcher("a/r", "a", 1, 1e9), Researcher("b/r", "b", 1, 1e9)]
    pool = run_closed_loop(t, cluster(1, 8), rs, "pool", days(3000))
    static = run_closed_loop(t, cluster(1, 8), rs, "static", days(3000))
    # pool: b (within its quota) goes first, a (borrowing 4 GPUs) starts when b ends at 10 s
    assert pool.mean_jct_s == pytest.approx((1010 + 10) / 2) and static.mean_jct_s == pytest.approx((2000 + 10) / 2)


def test_pooling_lets_a_busy_researcher_use_an_idle_group_slice():
    t = trace(job("a1", 0, 1000, team="a"), job("b1", 0, 1000, team="b"))
    rs = [Researcher("a/power", "a", 8, 0.0), Researcher("b/r", "b", 1, 1e9)]
    pool = run_closed_loop(t, cluster(1, 8), rs, "pool", days(10_001))
    static = run_closed_loop(t, cluster(1, 8), rs, "static", days(10_001))
    assert static.by_team["a"] == 40  # 4 GPUs of its own slice, 10 rounds
    assert pool.by_team["a"] > static.by_team["a"] and pool.utilisation > static.utilisation


def test_busiest_teams():
    t = trace(job("1", 0, 1, team="x"), job("2", 1, 1, team="y"), job("3", 2, 1, team="y"))
    assert busiest_teams(t, 1) == ["y"] and busiest_teams(t, 5) == ["y", "x"]
