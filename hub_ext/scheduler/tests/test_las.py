"""Least attained service within a team (ordering.py, preemption.py): Tiresias's discretized LAS."""

from __future__ import annotations

import pytest

from hub_ext.scheduler import Scheduler
from hub_ext.scheduler.model import Running

from .helpers import SESSION, job, pool, preempted_ids, reason, running, schedule, snap, started_ids, teams

H = 3600.0
LAS = (16 * H,)


@pytest.mark.parametrize(
    "attained_old,las,first",
    [
        (0.0, LAS, "old"),  # same level: submit order
        (20 * H, LAS, "new"),  # the old one has held GPUs past the threshold: the new one goes first
        (20 * H, (), "old"),  # LAS off: submit order
        (20 * H, (16 * H, 64 * H), "new"),
    ],
)
def test_less_attained_service_goes_first_within_a_team(attained_old, las, first):
    pend = [job("old", "a", 2, at=0, user="u1", attained_gpu_s=attained_old), job("new", "a", 2, at=10, user="u2")]
    d = schedule(snap(pool(("n", 2)), teams(("a", 2)), [], pend, las_thresholds_gpu_s=las))
    assert started_ids(d) == [first]
    assert [p.workload_id for p in d.pending] == [x for x in ("old", "new") if x != first]


@pytest.mark.parametrize(
    "attained,las,words",
    [
        (20 * H, LAS, "it has held 20 GPU-hours (16 or more): by least attained service, team a's work that has held less goes first"),
        (70.5 * H, (16 * H, 64 * H), "it has held 70.5 GPU-hours (64 or more)"),
        (15 * H, LAS, None),  # below the threshold: LAS is not why it waits
        (20 * H, (), None),  # LAS off
    ],
)
def test_a_pending_reason_says_when_least_attained_service_puts_work_behind_its_team(attained, las, words):
    blocker = running(job("b", "a", 2, at=0, attained_gpu_s=1.0), "n/0", "n/1")
    d = schedule(snap(pool(("n", 2)), teams(("a", 2)), [blocker], [job("long", "a", 2, at=5, attained_gpu_s=attained)], las_thresholds_gpu_s=las))
    text = reason(d, "long")
    assert ("least attained service" in text) == (words is not None)
    assert words is None or words in text


def test_short_work_preempts_long_running_work_of_its_own_team():
    long = running(job("long", "a", 2, at=0, attained_gpu_s=40 * H), "n/0", "n/1")
    d = schedule(snap(pool(("n", 2)), teams(("a", 2)), [long], [job("short", "a", 1, at=50)], las_thresholds_gpu_s=LAS))
    assert preempted_ids(d) == ["long"] and started_ids(d) == ["short"]
    assert "least attained service" in d.preemptions[0].reason


@pytest.mark.parametrize(
    "victim,pending,why",
    [
        (dict(team="b", attained_gpu_s=40 * H), dict(team="a"), "another team's work within its quota"),
        (dict(team="a", attained_gpu_s=10 * H), dict(team="a"), "the same level"),
        (dict(team="a", attained_gpu_s=40 * H, priority=5), dict(team="a"), "a higher priority"),
        (dict(team="a", attained_gpu_s=40 * H, preemptible=False), dict(team="a"), "not preemptible"),
        (dict(team="a", attained_gpu_s=40 * H, kind=SESSION), dict(team="a"), "a session"),
        (dict(team="a", attained_gpu_s=40 * H), dict(team="a", attained_gpu_s=30 * H), "the pending one is as far along"),
    ],
)
def test_las_never_preempts(victim, pending, why):
    v = victim.pop("team")
    p = pending.pop("team")
    run = running(job("running", v, 2, at=0, **victim), "n/0", "n/1")
    d = schedule(snap(pool(("n", 2)), teams(("a", 0), ("b", 2)), [run], [job("waiting", p, 1, at=50, **pending)], las_thresholds_gpu_s=LAS))
    assert preempted_ids(d) == [], why
    assert reason(d, "waiting")


def test_las_shrinks_an_elastic_long_job_before_preempting_it():
    long = running(job("long", "a", 4, at=0, min_gpus=1, max_gpus=4, attained_gpu_s=40 * H), "n/0", "n/1", "n/2", "n/3")
    d = schedule(snap(pool(("n", 4)), teams(("a", 4)), [long], [job("short", "a", 2, at=50)], las_thresholds_gpu_s=LAS))
    assert preempted_ids(d) == [] and started_ids(d) == ["short"]
    assert [r.allocation.gpus for r in d.resizes] == [2.0]


def test_the_stateful_scheduler_orders_by_las_as_the_pure_function():
    p, t = pool(("n", 2)), teams(("a", 2))
    pend = [job(f"w{i}", "a", 1, at=i, user=f"u{i}", attained_gpu_s=(30 * H if i % 2 else 0.0)) for i in range(6)]
    s = snap(p, t, [], pend, las_thresholds_gpu_s=LAS)
    st = Scheduler(p, t, s.config)
    for w in reversed(pend):
        st.submit(w)
    a, b = st.cycle(s.now), schedule(s)
    assert started_ids(a) == started_ids(b) == ["w0", "w2"]
    assert [x.workload_id for x in a.pending] == [x.workload_id for x in b.pending] == ["w4", "w1", "w3", "w5"]


@pytest.mark.parametrize(
    "quota,leaving_level,preempted,why",
    [
        (0, 40 * H, [], "a borrower waits for its team's long work leaving with notice, preempts no more"),
        (6, 40 * H, [], "as work within its quota always did (every leaving workload is a candidate)"),
        (0, 10 * H, ["long-2", "long-3"], "leaving work of its own level is no LAS victim: others go"),
    ],
)
def test_las_waits_for_long_work_already_leaving(quota, leaving_level, preempted, why):
    # Three long jobs of team a on one node of 4 cards; one (long-1) was preempted with notice for short work.
    # Without its leaving GPUs counted, a borrower preempted another long job in every cycle of the notice.
    gone = running(job("long-1", "a", 2, at=0, attained_gpu_s=leaving_level), "n/0", "n/1")
    gone = Running(gone.workload, gone.allocation, leaving=True)
    rest = [running(job("long-2", "a", 1, at=1, attained_gpu_s=40 * H), "n/2"), running(job("long-3", "a", 1, at=2, attained_gpu_s=40 * H), "n/3")]
    d = schedule(snap(pool(("n", 4)), teams(("a", quota), ("b", max(0, 4 - quota))), [gone, *rest], [job("short", "a", 2, at=50)], las_thresholds_gpu_s=LAS))
    assert preempted_ids(d) == preempted, why
    if not preempted:
        assert "starts when long-1" in reason(d, "short")


@pytest.mark.parametrize(
    "attained_new,las,first",
    [
        (0.0, LAS, "new"),  # long work that waited past reservation_after_s goes after its team's shorter work
        (20 * H, LAS, "long"),  # both past the cut: the starving one first, as before
        (0.0, (), "long"),  # LAS off: starving work first
    ],
)
def test_starving_long_work_goes_after_its_teams_shorter_work(attained_new, las, first):
    # "long" was submitted hours ago and preempted for least attained service (back in the queue with its
    # submit time: starving at once). It must not take back the cards freed for the work it yielded to.
    pend = [job("long", "a", 2, at=0, user="u1", attained_gpu_s=40 * H), job("new", "a", 2, at=9000, user="u2", attained_gpu_s=attained_new)]
    d = schedule(snap(pool(("n", 2)), teams(("a", 2)), [], pend, now=10000.0, las_thresholds_gpu_s=las))
    assert started_ids(d) == [first]


def test_starving_long_work_still_starts_where_its_teams_shorter_work_does_not_fit():
    # Work conserving: the shorter work needs 4 cards, only 2 are free: the long job starts after the fair loop.
    pend = [job("long", "a", 2, at=0, user="u1", attained_gpu_s=40 * H), job("new", "a", 4, at=9000, user="u2")]
    d = schedule(snap(pool(("n", 2)), teams(("a", 2)), [], pend, now=10000.0, las_thresholds_gpu_s=LAS))
    assert started_ids(d) == ["long"]


def test_a_kept_scheduler_sees_the_minimum_run_time_of_its_teams_long_work_end():
    """Least attained service's victims are kept between cycles (preemption.las_units): long work of the
    team protected by its minimum run-time in one cycle is overtaken in the first cycle after it."""
    from hub_ext.scheduler import Team

    protected = {"a": Team("a", 2.0, min_runtime_reclaim_s=600.0)}
    long = running(job("long", "a", 2, at=0, attained_gpu_s=40 * H), "n/0", "n/1", started=900.0)
    kept = Scheduler.from_snapshot(snap(pool(("n", 2)), protected, [long], [job("short", "a", 1, at=950)], las_thresholds_gpu_s=LAS))
    for now, victims in ((1000.0, []), (1300.0, []), (1499.0, []), (1500.0, ["long"])):
        d = kept.cycle(now)
        assert preempted_ids(d) == victims
        assert started_ids(d) == (["short"] if victims else [])
