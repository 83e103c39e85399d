"""Run-time estimates from history: user, then team, then pool; the
statistic and its basis; remaining time bounded below for overrunning work."""

from __future__ import annotations

import math

import pytest

from hub_ext.scheduler.estimates import MIN_REMAINING_S, Estimator, PastRun, remaining_s

from .helpers import job, session

H = 3600.0


def runs(user, team, kind, gpus, *hours):
    return [PastRun(user, team, kind, gpus, h * H, ended_at=float(i)) for i, h in enumerate(hours)]


HISTORY = (
    runs("alice", "vision", "job", 2, 1, 2, 3, 50)  # one outlier: the median ignores it
    + runs("bob", "vision", "job", 2, 4, 4, 4)
    + runs("bob", "vision", "job", 1, 1, 1)  # two only: too few for bob's own estimate
    + runs("carol", "nlp", "job", 1, 6, 6, 6)
    + runs("dave", "nlp", "session", 1, 8, 8, 8)
)

CASES = [
    # (case, workload, seconds expected or None, source, basis words)
    ("the user's own history first", job("w", "vision", 2, user="alice"), 2 * H, "user", "median of alice's last 4 two-GPU jobs"),
    ("another user of the team: the team's", job("w", "vision", 2, user="erin"), 4 * H, "team", "median of team vision's last 7 two-GPU jobs"),
    ("too few runs of its own and in the team: the pool's", job("w", "vision", 1, user="bob"), None, "pool", "the pool's last 5 one-GPU jobs"),
    ("a new team: the pool's", job("w", "bio", 1, user="zed"), 6 * H, "pool", "median of the pool's last 5 one-GPU jobs"),
    ("sessions apart from jobs", session("w", "vision", 1, user="zed"), 8 * H, "pool", "one-GPU sessions"),
    ("nothing of that shape: not known", job("w", "vision", 8, user="alice"), None, "none", "no run-time history"),
    ("a limit caps the estimate", job("w", "vision", 2, user="alice", time_limit_s=H), H, "limit", "its time limit of 60 min"),
    ("a limit longer than the estimate: the estimate", job("w", "vision", 2, user="alice", time_limit_s=10 * H), 2 * H, "user", "alice's"),
    ("a limit and no history: the limit", job("w", "vision", 8, time_limit_s=2 * H), 2 * H, "limit", "its time limit of 2 h"),
]


@pytest.mark.parametrize("case,w,seconds,source,words", CASES, ids=[c[0] for c in CASES])
def test_estimate(case, w, seconds, source, words):
    e = Estimator(HISTORY).estimate(w)
    if seconds is not None:
        assert e.seconds == seconds
    assert e.source == source
    assert words in e.basis


def test_pool_estimate_value_for_one_gpu_jobs():
    # bob 1, 1; carol 6, 6, 6: median (nearest rank) of five is the third smallest
    assert Estimator(HISTORY).estimate(job("w", "x", 1, user="zed")).seconds == 6 * H


def test_only_the_last_runs_count():
    history = runs("alice", "v", "job", 1, *([10] * 20 + [1] * 5))
    assert Estimator(history, last=5).estimate(job("w", "v", 1)).seconds == 1 * H
    assert Estimator(history, last=50).estimate(job("w", "v", 1)).seconds == 10 * H


def test_a_high_quantile():
    history = runs("alice", "v", "job", 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    e = Estimator(history, q=0.9).estimate(job("w", "v", 1))
    assert e.seconds == 9 * H and "90% quantile" in e.basis


def test_learning_as_runs_end():
    est = Estimator(min_runs=1)
    w = job("w", "v", 1)
    assert est.estimate(w).seconds is None
    est.add(PastRun("alice", "v", "job", 1, 600.0, 1.0))
    assert est.estimate(w).seconds == 600.0


REMAINING = [
    # (case, estimate, elapsed, limit, remaining)
    ("early in its run", 3 * H, 1 * H, None, 2 * H),
    ("near its estimate: at least the floor", 3 * H, 3 * H - 60, None, MIN_REMAINING_S),
    ("overrunning: a share of its overrun, not 'ending now'", 2 * H, 8 * H, None, 1.5 * H),
    ("overrunning but capped by its limit", 2 * H, 8 * H, 8.5 * H, 0.5 * H),
    ("at its limit: the pool stops it now", 2 * H, 9 * H, 9 * H, 0.0),
    ("no estimate, a limit: the limit", None, 1 * H, 4 * H, 3 * H),
    ("nothing known", None, 1 * H, None, None),
]


@pytest.mark.parametrize("case,total,elapsed,limit,left", REMAINING, ids=[c[0] for c in REMAINING])
def test_remaining(case, total, elapsed, limit, left):
    got = remaining_s(total, elapsed, limit)
    assert got == left if left is None else math.isclose(got, left)
