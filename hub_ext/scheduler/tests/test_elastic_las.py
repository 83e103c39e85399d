"""Elastic jobs under least attained service (elastic.py, preemption.py):
growth order, shrinking instead of suspending, new work taking its asked size."""

from __future__ import annotations

import pytest

from hub_ext.scheduler import Scheduler

from .helpers import job, pool, preempted_ids, running, schedule, snap, started_ids, teams

H = 3600.0
LAS = (16 * H,)


def elastic(wid, asked, attained=0.0, at=0.0, lo=1):
    return job(wid, "a", asked, at=at, user=wid, min_gpus=lo, max_gpus=asked, attained_gpu_s=attained)


def held(d, wid):
    for r in d.resizes:
        if r.workload_id == wid:
            return len(r.allocation.shares)
    return None


@pytest.mark.parametrize(
    "order,grows",
    [
        ("started", "early"),  # same LAS level: the earliest started grows first
        ("attained", "late"),  # the one that has held GPUs for least grows first
    ],
)
def test_growth_order_inside_a_team(order, grows):
    early = running(elastic("early", 2, attained=5 * H, at=0), "n/0")
    late = running(elastic("late", 2, attained=1 * H, at=100), "n/1")
    d = schedule(snap(pool(("n", 3)), teams(("a", 3)), [early, late], [], elastic_growth_order=order, las_thresholds_gpu_s=LAS))
    assert [r.workload_id for r in d.resizes] == [grows]
    assert held(d, grows) == 2


@pytest.mark.parametrize(
    "preempt_elastic,pending,preempted,started,long_holds",
    [
        # Shrinking to min_gpus is not enough for a rigid 4: preempt the long job whole, or let the 4 wait.
        (True, job("short", "a", 4, at=50), ["long"], ["short"], None),
        (False, job("short", "a", 4, at=50), [], [], None),
        # An elastic short job: its asked 4 by preempting the long job, or the 3 shrinking gives while the long one runs on 1.
        (True, elastic("short", 4, at=50), ["long"], ["short"], None),
        (False, elastic("short", 4, at=50), [], ["short"], 1),
    ],
)
def test_las_shrinks_instead_of_suspending_elastic_work(preempt_elastic, pending, preempted, started, long_holds):
    long = running(elastic("long", 4, attained=40 * H), "n/0", "n/1", "n/2", "n/3")
    d = schedule(snap(pool(("n", 4)), teams(("a", 4)), [long], [pending], las_thresholds_gpu_s=LAS, las_preempt_elastic=preempt_elastic))
    assert preempted_ids(d) == preempted
    assert started_ids(d) == started
    assert held(d, "long") == long_holds


@pytest.mark.parametrize(
    "on,floor,new,started_with,shrunk",
    [
        # Off: new elastic work starts on the one idle GPU.
        (False, 0.5, elastic("new", 4, at=50), 1, {}),
        # On: it takes its asked 4, shrinking the job with the most attained service first, to half of what it asked.
        (True, 0.5, elastic("new", 4, at=50), 4, {"big": 4}),
        # ... but within the floor there is no room for 4 on one node: it starts on the idle GPU, nobody shrinks.
        (True, 0.75, elastic("new", 4, at=50), 1, {}),
        # Work that has run already (attained service) does not shrink anyone: it starts smaller.
        (True, 0.5, elastic("new", 4, attained=1.0, at=50), 1, {}),
    ],
)
def test_new_work_takes_its_asked_size_by_shrinking_elastic_work(on, floor, new, started_with, shrunk):
    big = running(elastic("big", 8, attained=3 * H), *[f"n/{i}" for i in range(8)])
    small = running(elastic("small", 4, attained=1 * H), "m/0", "m/1", "m/2", "m/3")
    d = schedule(snap(pool(("n", 8), ("m", 5)), teams(("a", 13)), [big, small], [new], new_work_shrinks_elastic=on, new_work_shrink_floor=floor))
    assert started_ids(d) == ["new"]
    assert len(d.starts[0].allocation.shares) == started_with
    assert {r.workload_id: len(r.allocation.shares) for r in d.resizes} == shrunk
    assert preempted_ids(d) == []


@pytest.mark.parametrize(
    "victim,why",
    [
        (dict(team="b", attained=5 * H), "another team's job"),
        (dict(team="a", attained=0.0), "a job that has not held GPUs yet"),
        (dict(team="a", attained=5 * H, rigid=True), "a rigid job"),
    ],
)
def test_new_work_never_shrinks(victim, why):
    w = job("old", victim["team"], 4, at=0, user="old", attained_gpu_s=victim["attained"],
            **({} if victim.get("rigid") else dict(min_gpus=1, max_gpus=4)))
    run = running(w, "n/0", "n/1", "n/2", "n/3")
    d = schedule(snap(pool(("n", 4)), teams(("a", 4), ("b", 4)), [run], [elastic("new", 2, at=50)], new_work_shrinks_elastic=True))
    assert started_ids(d) == [] and d.resizes == () and preempted_ids(d) == [], why


def test_the_stateful_scheduler_makes_room_for_new_work_as_the_pure_function():
    long = running(elastic("long", 4, attained=2 * H), "n/0", "n/1", "n/2", "n/3")
    pend = [elastic("new", 2, at=50), elastic("later", 1, at=60)]
    s = snap(pool(("n", 4)), teams(("a", 4)), [long], pend, new_work_shrinks_elastic=True)
    a, b = Scheduler.from_snapshot(s).cycle(s.now), schedule(s)
    assert started_ids(a) == started_ids(b) == ["new"]
    assert held(a, "long") == held(b, "long") == 2


def test_new_work_is_not_judged_by_work_of_its_shape_that_has_run():
    # Same shape, same level: "ran" (attained service, submitted first) may not shrink anyone and fails;
    # "new" may, and must not be answered from that failure.
    long = running(elastic("long", 4, attained=2 * H), "n/0", "n/1", "n/2", "n/3")
    pend = [elastic("ran", 2, attained=60.0, at=10, lo=2), elastic("new", 2, at=50, lo=2)]
    s = snap(pool(("n", 4)), teams(("a", 4)), [long], pend)
    for d in (schedule(s), Scheduler.from_snapshot(s).cycle(s.now)):
        assert started_ids(d) == ["new"] and held(d, "long") == 2


@pytest.mark.parametrize(
    "on,early_attained,early_priority,sizes",
    [
        # Off: whoever holds the GPUs keeps them; nothing is idle, nothing moves.
        (False, 20 * H, 0, {}),
        # On, both above the last cut: the earlier submitted job takes back its asked 4 from the later one.
        (True, 20 * H, 0, {"early": 4, "late": 4}),
        # The earlier job is below the cut (level 0): nothing moves at the top level.
        (True, 5 * H, 0, {}),
        # The later job has the higher priority: it keeps its GPUs.
        (True, 20 * H, -1, {}),
    ],
)
def test_top_level_goes_in_submit_order(on, early_attained, early_priority, sizes):
    early = running(job("early", "a", 4, at=0, user="early", min_gpus=1, max_gpus=4, attained_gpu_s=early_attained, priority=early_priority), "n/0")
    late = running(elastic("late", 8, attained=30 * H, at=100), *[f"n/{i}" for i in range(1, 8)])
    d = schedule(snap(pool(("n", 8)), teams(("a", 8)), [early, late], [], las_thresholds_gpu_s=LAS, las_top_in_submit_order=on))
    assert started_ids(d) == [] and preempted_ids(d) == []
    assert {r.workload_id: len(r.allocation.shares) for r in d.resizes} == sizes
    if sizes:
        assert not set(d.resizes[0].allocation.shares) & set(d.resizes[1].allocation.shares)  # no card held twice


@pytest.mark.parametrize(
    "late_attained,floor_until,sizes",
    [
        # Long at the top level (40 GPU-h >= 2 x the 16 GPU-h cut): the later job gives down to its min_gpus.
        (40 * H, 2.0, {"early": 7, "late": 1}),
        # Only lately at the top level (20 GPU-h < 2 x 16): it keeps half of what it asked.
        (20 * H, 2.0, {"early": 4, "late": 4}),
        # 0: no such protection.
        (20 * H, 0.0, {"early": 7, "late": 1}),
    ],
)
def test_work_lately_at_the_top_level_keeps_its_floor(late_attained, floor_until, sizes):
    early = running(elastic("early", 8, attained=20 * H, at=0), "n/0")
    late = running(elastic("late", 8, attained=late_attained, at=100), *[f"n/{i}" for i in range(1, 8)])
    d = schedule(snap(pool(("n", 8)), teams(("a", 8)), [early, late], [], las_thresholds_gpu_s=LAS, las_top_floor_until=floor_until))
    assert {r.workload_id: len(r.allocation.shares) for r in d.resizes} == sizes
