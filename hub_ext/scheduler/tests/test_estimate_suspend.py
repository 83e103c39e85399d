"""Work estimated far longer is suspended for work estimated shorter (estimate_suspend.py, ``las_suspend_elastic``)."""

from __future__ import annotations

import pytest

from hub_ext.scheduler import estimate_suspend

from .helpers import job, pool, preempted_ids, running, schedule, snap, started_ids, teams

H = 3600.0
LAS = (16 * H,)
ON = dict(las_thresholds_gpu_s=LAS, las_on_estimates=True, las_suspend_elastic=True)


def _elastic(wid, asked, attained, estimate=None, at=0.0, priority=0):
    return job(wid, "a", asked, at=at, user=wid, min_gpus=1, max_gpus=asked, attained_gpu_s=attained, estimate_s=estimate, priority=priority)


def sizes(d) -> dict:
    return {r.workload_id: len(r.allocation.shares) for r in d.resizes}


@pytest.mark.parametrize(
    "on,short_estimate,long_estimate,long_attained,long_priority,long_started,idle,suspended,resized",
    [
        # short runs on 2 of its 4 GPUs (1.5 GPU-hours estimated left), long holds 4 (39 left), nothing idle:
        (False, 0.5 * H, 10 * H, 1 * H, 0, 0.0, 0, [], {}),  # off: long keeps its GPUs, short waits for idle ones
        (True, 0.5 * H, 10 * H, 1 * H, 0, 0.0, 0, ["long"], {"short": 4}),  # on: long is suspended, short gets its ask
        (True, 0.5 * H, 0.9 * H, 1 * H, 0, 0.0, 0, [], {}),  # long needs 2.6 GPU-hours: less than 2 x short's 1.5
        (True, 0.5 * H, 10 * H, 1 * H, 0, 900.0, 0, [], {}),  # long resumed 100 s ago (las_suspend_min_run_s 600)
        (True, 0.5 * H, 10 * H, 1 * H, 1, 0.0, 0, [], {}),  # long has a higher priority
        (True, None, 10 * H, 1 * H, 0, 0.0, 0, [], {}),  # short has no estimate: nothing is suspended for it
        (True, 0.5 * H, None, 4 * H, 0, 0.0, 0, ["long"], {"short": 4}),  # long has none: its 4 GPU-hours held stand for it
        (True, 0.5 * H, None, 2 * H, 0, 0.0, 0, [], {}),  # ... 2 GPU-hours held: less than 2 x 1.5
        (True, 0.5 * H, 10 * H, 1 * H, 0, 0.0, 2, [], {"short": 4}),  # two GPUs idle: short grows into them instead
    ],
)
def test_work_estimated_far_longer_is_suspended(on, short_estimate, long_estimate, long_attained, long_priority, long_started, idle, suspended, resized):
    short = running(_elastic("short", 4, 0.5 * H, short_estimate, at=100), "n/0", "n/1", started=100.0)
    long = running(_elastic("long", 4, long_attained, long_estimate, priority=long_priority), "n/2", "n/3", "n/4", "n/5", started=long_started)
    d = schedule(snap(pool(("n", 6 + idle)), teams(("a", 6 + idle)), [short, long], [], **{**ON, "las_suspend_elastic": on}))
    assert preempted_ids(d) == suspended
    assert sizes(d) == resized


def test_the_most_estimated_remaining_first_and_only_as_many_as_needed():
    # short lacks 2 GPUs; mid (15 GPU-hours left) and long (39 left) hold 2 and 4: long alone is suspended,
    # short takes 2 of its GPUs and 2 stay idle for whoever comes next (here: mid grows into them).
    short = running(_elastic("short", 4, 0.5 * H, 0.5 * H, at=100), "n/0", "n/1", started=100.0)
    mid = running(_elastic("mid", 2, 1 * H, 8 * H, at=50), "m/0", "m/1", started=50.0)
    long = running(_elastic("long", 4, 1 * H, 10 * H), "n/2", "n/3", "m/2", "m/3")
    d = schedule(snap(pool(("n", 4), ("m", 4)), teams(("a", 8)), [short, mid, long], [], **ON))
    assert preempted_ids(d) == ["long"]
    assert sizes(d) == {"short": 4}


def test_pending_work_estimated_shorter_starts_on_the_suspended_jobs_gpus():
    long = running(_elastic("long", 4, 1 * H, 10 * H), "n/0", "n/1", "n/2", "n/3")
    new = _elastic("new", 4, 0.0, 0.5 * H, at=900)
    # off: new work shrinks long to half its ask (new_work_shrink_floor) and starts on 2; on: long is suspended, new starts on 4
    for on, suspended, started in ((False, [], {"new": 2}), (True, ["long"], {"new": 4})):
        d = schedule(snap(pool(("n", 4)), teams(("a", 4)), [long], [new], **{**ON, "las_suspend_elastic": on}))
        assert (preempted_ids(d), {s.workload_id: len(s.allocation.shares) for s in d.starts}) == (suspended, started)


def test_never_work_of_a_lower_level_for_work_of_a_higher_one():
    # short has held past the cut (a higher level) yet is estimated to need less: long, below the cut, keeps its GPUs.
    short = running(_elastic("short", 4, 17 * H, 4.5 * H, at=100), "n/0", "n/1", started=100.0)
    long = running(_elastic("long", 4, 1 * H, 10 * H), "n/2", "n/3", "n/4", "n/5")
    d = schedule(snap(pool(("n", 6)), teams(("a", 6)), [short, long], [], **ON))
    assert preempted_ids(d) == []


def test_it_needs_las_on_estimates():
    short = running(_elastic("short", 4, 0.5 * H, 0.5 * H, at=100), "n/0", "n/1", started=100.0)
    long = running(_elastic("long", 4, 1 * H, 10 * H), "n/2", "n/3", "n/4", "n/5")
    d = schedule(snap(pool(("n", 6)), teams(("a", 6)), [short, long], [], **{**ON, "las_on_estimates": False}))
    assert preempted_ids(d) == []


def test_a_suspended_job_waits_behind_work_estimated_far_shorter():
    # "long" was suspended an hour ago and is starving (it keeps its first submission); "short" came later.
    # With the switch, the starving long job yields to work estimated shorter, which starts on the 4 idle GPUs.
    long = _elastic("long", 4, 2 * H, 10 * H, at=0.0)
    short = _elastic("short", 4, 0.0, 0.5 * H, at=4500.0)
    for on, started in ((False, ["long"]), (True, ["short"])):
        d = schedule(snap(pool(("n", 4)), teams(("a", 4)), [], [long, short], now=5000.0, **{**ON, "las_suspend_elastic": on}))
        assert started_ids(d) == started


def test_the_plan_is_plain_data():
    short = running(_elastic("short", 4, 0.5 * H, 0.5 * H, at=100), "n/0", "n/1", started=100.0)
    long = running(_elastic("long", 4, 1 * H, 10 * H), "n/2", "n/3", "n/4", "n/5")
    d = schedule(snap(pool(("n", 6)), teams(("a", 6)), [short, long], [], **ON))
    (p,) = d.preemptions
    assert p.for_workload_id == "short" and "suspended for short" in p.reason and "estimate" in p.reason
    assert estimate_suspend.SuspendPlan(suspended=(("long", "short"),), grows=(("short", 2),)).suspended == (("long", "short"),)


@pytest.mark.parametrize("factor,suspended", [(0.0, ["long"]), (1.0, []), (4.0, ["long"])])
def test_work_that_has_waited_its_own_estimate_is_not_suspended(factor, suspended):
    # long (3 hours estimated at its ask, 11 GPU-hours left) has held 1 GPU-hour, worth 900 s on its 4 GPUs, in
    # the 12,000 s since its submission: it has waited 11,100 s, more than its estimate (las_suspend_wait_factor 1).
    short = running(_elastic("short", 4, 0.5 * H, 0.5 * H, at=100), "n/0", "n/1", started=100.0)
    long = running(_elastic("long", 4, 1 * H, 3 * H), "n/2", "n/3", "n/4", "n/5")
    d = schedule(snap(pool(("n", 6)), teams(("a", 6)), [short, long], [], now=12000.0, las_suspend_wait_factor=factor, **ON))
    assert preempted_ids(d) == suspended


@pytest.mark.parametrize("factor,started", [(0.0, ["short"]), (1.0, ["long"])])
def test_a_suspended_job_that_has_waited_its_own_estimate_yields_no_more(factor, started):
    # long (10 hours estimated) has held 2 GPU-hours (1,800 s on its 4 GPUs) in the 40,000 s since its submission.
    long = _elastic("long", 4, 2 * H, 10 * H, at=0.0)
    short = _elastic("short", 4, 0.0, 0.5 * H, at=39500.0)
    d = schedule(snap(pool(("n", 4)), teams(("a", 4)), [], [long, short], now=40000.0, las_suspend_wait_factor=factor, **ON))
    assert started_ids(d) == started


@pytest.mark.parametrize(
    "short_ask,limit,suspended,resized",
    [
        # short holds 2 of its ask, long 2 of its 4, 4 GPUs idle.
        (4, None, [], {"short": 4, "long": 4}),  # no limit: both grow into the idle GPUs
        (4, 6, [], {"short": 3, "long": 3}),  # the team may hold 6: nobody is suspended, growth shares the 2 it may take
        (4, 4, ["long"], {"short": 4}),  # the team holds its limit: the idle GPUs are not its to take, long's 2 are
        (8, 4, ["long"], {"short": 4}),  # short lacks 6: long's 2 only, never the idle ones beyond the limit
        (8, None, ["long"], {"short": 8}),  # no limit: the 4 idle and long's 2
    ],
)
def test_idle_gpus_count_only_up_to_the_teams_limit(short_ask, limit, suspended, resized):
    short = running(_elastic("short", short_ask, 0.5 * H, 0.5 * H, at=100), "n/0", "n/1", started=100.0)
    long = running(_elastic("long", 4, 1 * H, 10 * H), "n/2", "n/3")
    d = schedule(snap(pool(("n", 8)), teams(("a", 8, 1.0, limit)), [short, long], [], **ON))
    held = {"short": 2, "long": 2, **sizes(d)}
    assert preempted_ids(d) == suspended
    assert sizes(d) == resized
    assert limit is None or sum(n for wid, n in held.items() if wid not in suspended) <= limit


@pytest.mark.parametrize(
    "top_in_order,submit_order,suspended",
    [
        (False, True, ["long"]),  # off: top-level work estimated shorter has the earlier-submitted long job suspended for it
        (True, True, []),  # on: the top level goes in submit order, top-level work suspends no one
        (True, False, ["long"]),  # ... only while the top level goes in submit order (las_top_in_submit_order)
    ],
)
def test_top_level_work_suspends_no_one_with_las_suspend_top_in_order(top_in_order, submit_order, suspended):
    # both above the 16 GPU-hour cut: short (submitted later) is estimated to need 3 more GPU-hours on 2 of its
    # 4 GPUs, long (submitted first) 20 more on 4.
    short = running(_elastic("short", 4, 17 * H, 5 * H, at=100), "n/0", "n/1", started=100.0)
    long = running(_elastic("long", 4, 20 * H, 10 * H), "n/2", "n/3", "n/4", "n/5")
    d = schedule(snap(pool(("n", 6)), teams(("a", 6)), [short, long], [], las_suspend_top_in_order=top_in_order,
                      las_top_in_submit_order=submit_order, **ON))
    assert preempted_ids(d) == suspended


def test_below_the_top_level_las_suspend_top_in_order_changes_nothing():
    short = running(_elastic("short", 4, 0.5 * H, 0.5 * H, at=100), "n/0", "n/1", started=100.0)
    long = running(_elastic("long", 4, 1 * H, 10 * H), "n/2", "n/3", "n/4", "n/5")
    d = schedule(snap(pool(("n", 6)), teams(("a", 6)), [short, long], [], las_suspend_top_in_order=True, **ON))
    assert preempted_ids(d) == ["long"]
