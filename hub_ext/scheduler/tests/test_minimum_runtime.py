"""Minimum run-time: work started less than its team's minimum ago is not a
victim, separately for a quota reclaim (preempted whole) and for taking back
an elastic job's borrowed GPUs (shrink)."""

from __future__ import annotations

import pytest

from hub_ext.scheduler import Team
from hub_ext.scheduler.minimum_runtime import RECLAIM, SHRINK, protected_for

from .helpers import job, pool, preempted_ids, reason, running, schedule, snap, started_ids


def quotas(nlp_reclaim=0.0, nlp_shrink=0.0):
    return {
        "vision": Team("vision", 4.0),
        "nlp": Team("nlp", 4.0, min_runtime_reclaim_s=nlp_reclaim, min_runtime_shrink_s=nlp_shrink),
    }


def nlp_full(started):
    """nlp fills all 8 cards: 4 within quota started long ago, 4 borrowed started at ``started``."""
    within = [running(job(f"nlp-{i}", "nlp", 1, at=i), f"a/{i}", started=float(i)) for i in range(4)]
    borrowed = [running(job(f"nlp-{i}", "nlp", 1, at=i), f"a/{i}", started=started) for i in range(4, 8)]
    return within + borrowed


NOW = 1000.0

RECLAIM_CASES = [
    # (case, nlp's minimum for a reclaim, when nlp's borrowed work started, vision may start, preempted)
    ("no minimum: borrowed work goes", 0.0, NOW - 1, True, ["nlp-4"]),
    ("started a second ago, minimum 10 min: protected", 600.0, NOW - 1, False, []),
    ("ran past the minimum: a victim again", 600.0, NOW - 601, True, ["nlp-4"]),
    ("exactly at the minimum: a victim", 600.0, NOW - 600, True, ["nlp-4"]),
]


@pytest.mark.parametrize("case,minimum,started,starts,victims", RECLAIM_CASES, ids=[c[0] for c in RECLAIM_CASES])
def test_minimum_runtime_before_a_quota_reclaim(case, minimum, started, starts, victims):
    s = snap(pool(("a", 8)), quotas(nlp_reclaim=minimum), nlp_full(started), [job("v1", "vision", 1, at=500)], now=NOW)
    d = schedule(s)
    assert ("v1" in started_ids(d)) == starts
    assert preempted_ids(d) == victims
    if not starts:
        assert "protected by its minimum run-time for another 9m59s" in reason(d, "v1")


def test_the_shrink_minimum_does_not_protect_from_a_reclaim_and_back():
    """The two minimums are separate: a shrink minimum leaves quota reclaim alone."""
    s = snap(pool(("a", 8)), quotas(nlp_shrink=3600.0), nlp_full(NOW - 1), [job("v1", "vision", 1, at=500)], now=NOW)
    assert preempted_ids(schedule(s)) == ["nlp-4"]


SHRINK_CASES = [
    # (case, nlp's shrink minimum, when the elastic job started, shrunk)
    ("no minimum: lent GPUs taken back at once", 0.0, NOW - 1, True),
    ("within the shrink minimum: its lent GPUs stay", 600.0, NOW - 1, False),
    ("past the shrink minimum: taken back", 600.0, NOW - 700, True),
]


@pytest.mark.parametrize("case,minimum,started,shrunk", SHRINK_CASES, ids=[c[0] for c in SHRINK_CASES])
def test_minimum_runtime_before_lent_gpus_are_taken_back(case, minimum, started, shrunk):
    # An elastic nlp job asked for 2 (up to 8) and grew into all 8 idle cards.
    elastic = job("e1", "nlp", 2, at=0, min_gpus=1, max_gpus=8)
    run = [running(elastic, *[f"a/{i}" for i in range(8)], started=started)]
    s = snap(pool(("a", 8)), quotas(nlp_shrink=minimum, nlp_reclaim=minimum), run, [job("v1", "vision", 2, at=500)], now=NOW)
    d = schedule(s)
    assert bool(d.resizes) == shrunk
    assert ("v1" in started_ids(d)) == shrunk


PROTECTED_FOR = [
    # (minimum, started, kind, seconds left)
    (600.0, 900.0, RECLAIM, 500.0),
    (600.0, 300.0, RECLAIM, 0.0),
    (0.0, 999.0, RECLAIM, 0.0),
    (60.0, 990.0, SHRINK, 50.0),
]


@pytest.mark.parametrize("minimum,started,kind,left", PROTECTED_FOR)
def test_protected_for_counts_down_from_the_start(minimum, started, kind, left):
    team = Team("nlp", 1.0, min_runtime_reclaim_s=minimum if kind == RECLAIM else 0.0, min_runtime_shrink_s=minimum if kind == SHRINK else 0.0)
    r = running(job("n", "nlp", 1), "a/0", started=started)
    assert protected_for(r, team, 1000.0, kind) == left



KEPT_CASES = [
    # (case, cycles as (now, vision may start, preempted))
    ("the protection ends between two cycles of a kept scheduler", [(NOW, False, []), (NOW + 300, False, []), (NOW + 600, True, ["nlp-4"])]),
    ("protected, then at once a victim when the clock passes the minimum", [(NOW + 599, False, []), (NOW + 601, True, ["nlp-4"])]),
]


@pytest.mark.parametrize("case,cycles", KEPT_CASES, ids=[c[0] for c in KEPT_CASES])
def test_a_kept_scheduler_sees_a_minimum_run_time_end(case, cycles):
    """The core keeps what a quota reclaim may take of a team between cycles (preemption._team_victims):
    a victim protected in one cycle must be one in the first cycle after its minimum run-time."""
    from hub_ext.scheduler.cache import Scheduler

    s = snap(pool(("a", 8)), quotas(nlp_reclaim=600.0), nlp_full(NOW), [job("v1", "vision", 1, at=500)], now=NOW)
    kept = Scheduler.from_snapshot(s)
    for now, starts, victims in cycles:
        d = kept.cycle(now)
        fresh = schedule(snap(pool(("a", 8)), quotas(nlp_reclaim=600.0), nlp_full(NOW), [job("v1", "vision", 1, at=500)], now=now))
        assert ("v1" in started_ids(d)) == starts == ("v1" in started_ids(fresh))
        assert preempted_ids(d) == victims == preempted_ids(fresh)
