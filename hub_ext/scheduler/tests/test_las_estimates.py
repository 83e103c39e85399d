"""Least attained service on estimates (las_estimates.py): inside a level, work estimated to need less first."""

from __future__ import annotations

import pytest

from hub_ext.scheduler import Scheduler
from hub_ext.scheduler.estimates import Estimate
from hub_ext.scheduler.forward import with_estimates
from hub_ext.scheduler.las_estimates import rank, remaining_gpu_s

from .helpers import job, pool, reason, running, schedule, snap, started_ids, teams

H = 3600.0
LAS = (16 * H,)

# A pool with room for one 2-GPU job; "first" was submitted before "second" (other users unless said).
ROWS = [
    # case, first (kwargs), second (kwargs), on, which starts
    ("off: submit order", dict(estimate_s=10 * H), dict(estimate_s=0.5 * H), False, "first"),
    ("on: estimated shorter goes first", dict(estimate_s=10 * H), dict(estimate_s=0.5 * H), True, "second"),
    ("on: remaining, not total: the first has nearly done", dict(estimate_s=8 * H, attained_gpu_s=15.5 * H), dict(estimate_s=0.5 * H), True, "first"),
    ("on: GPU-time: one GPU for 1 h needs less than two for 45 min", dict(estimate_s=0.75 * H), dict(estimate_s=1 * H, gpus=1), True, "second"),
    ("on: no estimate goes ahead (plain LAS)", dict(estimate_s=0.5 * H), dict(), True, "second"),
    ("on: both unknown: submit order", dict(), dict(), True, "first"),
    ("on: overran its estimate: plain LAS again (its attained service)", dict(estimate_s=2 * H), dict(estimate_s=0.25 * H, attained_gpu_s=1 * H), True, "second"),
    ("on: the level first: estimated short but past the cut waits", dict(estimate_s=20 * H), dict(estimate_s=9 * H, attained_gpu_s=17 * H), True, "first"),
    ("on: priority first", dict(estimate_s=10 * H, priority=1), dict(estimate_s=0.5 * H), True, "first"),
    ("on: one user's own work reorders too", dict(estimate_s=10 * H, user="u"), dict(estimate_s=0.5 * H, user="u"), True, "second"),
    ("on: no LAS cuts, still by estimate", dict(estimate_s=10 * H), dict(estimate_s=0.5 * H, las=()), True, "second"),
]


@pytest.mark.parametrize("case,first,second,on,starts", ROWS, ids=[r[0] for r in ROWS])
def test_order_inside_a_level(case, first, second, on, starts):
    las = second.pop("las", LAS)
    g2 = second.pop("gpus", 2)
    a = job("first", "a", 2, at=0, **{"user": "u1", **first})
    b = job("second", "a", g2, at=10, **{"user": "u2", **second})
    s = snap(pool(("n", 2)), teams(("a", 2)), [], [a, b], las_thresholds_gpu_s=las, las_on_estimates=on)
    d = schedule(s)
    assert started_ids(d) == [starts], case
    assert [p.workload_id for p in d.pending] == [x for x in ("first", "second") if x != starts]
    # The kept (stateful) scheduler decides the same.
    assert started_ids(Scheduler.from_snapshot(s).cycle(s.now)) == [starts]


@pytest.mark.parametrize(
    "w,left",
    [
        (job("x", "a", 2, estimate_s=H), 2 * H),
        (job("x", "a", 2, estimate_s=H, attained_gpu_s=0.5 * H), 1.5 * H),
        (job("x", "a", 2, estimate_s=H, attained_gpu_s=2 * H), None),  # overrun
        (job("x", "a", 2), None),
    ],
)
def test_remaining_gpu_time(w, left):
    assert remaining_gpu_s(w) == left
    assert rank(w) == (left if left is not None else w.attained_gpu_s)  # unknown or overrun: plain LAS


def test_the_reason_says_it_is_an_estimate_and_its_basis():
    basis = "median of alice's last 5 two-GPU jobs"
    long = job("long", "a", 2, at=0, user="u1")
    short = job("short", "a", 2, at=10, user="u2")
    s = snap(pool(("n", 2)), teams(("a", 2)), [], [long, short], las_on_estimates=True)
    s = with_estimates(s, lambda w: Estimate(10 * H if w.id == "long" else 0.5 * H, basis, "user"))
    d = schedule(s)
    assert started_ids(d) == ["short"]
    text = reason(d, "long")
    assert "estimated to need 20 more GPU-hours" in text and f"an estimate: {basis}" in text
    # off: the estimate places nothing, the reason does not mention it
    d = schedule(snap(s.pool, s.teams, [], list(s.pending), las_on_estimates=False))
    assert "estimate" not in reason(d, "short")


def test_switching_it_on_reorders_a_kept_scheduler():
    a = job("first", "a", 2, at=0, user="u1", estimate_s=10 * H)
    b = job("second", "a", 2, at=10, user="u2", estimate_s=0.5 * H)
    s = snap(pool(("n", 2)), teams(("a", 2)), [], [a, b])
    k = Scheduler.from_snapshot(s)
    k.set_config(snap(s.pool, s.teams, las_on_estimates=True).config)
    assert started_ids(k.cycle(s.now)) == ["second"]


def _elastic(wid, asked, attained, estimate=None, at=0.0):
    return job(wid, "a", asked, at=at, user=wid, min_gpus=1, max_gpus=asked, attained_gpu_s=attained, estimate_s=estimate)


@pytest.mark.parametrize(
    "on,grows",
    [
        (False, "early"),  # least attained service: the one that has held less grows
        (True, "late"),  # on estimates: the one estimated to need less
    ],
)
def test_growth_goes_to_the_least_estimated_remaining(on, grows):
    # early: held 1 GPU-hour, estimated 10 h on 2 GPUs (19 GPU-hours left); late: held 2 GPU-hours, estimated 1.5 h (1 left).
    early = running(_elastic("early", 2, 1 * H, 10 * H), "n/0")
    late = running(_elastic("late", 2, 2 * H, 1.5 * H, at=100), "n/1")
    d = schedule(snap(pool(("n", 3)), teams(("a", 3)), [early, late], [], las_thresholds_gpu_s=LAS, las_on_estimates=on))
    assert [r.workload_id for r in d.resizes] == [grows]


@pytest.mark.parametrize(
    "on,new_estimate,shrunk,starts",
    [
        (False, 0.5 * H, "short", True),  # most attained service first: the job about to end
        (True, 0.5 * H, "long", True),  # the most estimated remaining GPU-time first
        (True, None, "long", True),  # new work with no estimate: as new, it may shrink either; the longer first
        (False, 20 * H, "short", True),
        (True, 20 * H, None, False),  # estimated to need more than both: it shrinks neither, it waits
    ],
)
def test_new_work_shrinks_only_work_estimated_to_need_more(on, new_estimate, shrunk, starts):
    # Both 4-GPU elastic jobs fill the pool. short: held 2 GPU-hours of an estimated 0.6 h on 4 GPUs (0.4 left);
    # long: held 1 GPU-hour of an estimated 10 h (39 left).
    short = running(_elastic("short", 4, 2 * H, 0.6 * H), "n/0", "n/1", "n/2", "n/3")
    long = running(_elastic("long", 4, 1 * H, 10 * H), "m/0", "m/1", "m/2", "m/3")
    new = job("new", "a", 2, at=50, user="new", estimate_s=new_estimate)
    d = schedule(snap(pool(("n", 4), ("m", 4)), teams(("a", 8)), [short, long], [new], las_thresholds_gpu_s=LAS, las_on_estimates=on))
    assert [r.workload_id for r in d.resizes] == ([shrunk] if shrunk else [])
    assert started_ids(d) == (["new"] if starts else [])


@pytest.mark.parametrize("shortcuts", [True, False])
def test_new_work_estimated_shorter_shrinks_what_new_work_estimated_longer_could_not(shortcuts, monkeypatch):
    """Least attained service's kept units (preemption.las_units) are kept per estimated remaining GPU-time
    of new work too: a new job estimated to need more than the running elastic job may not shrink it, one
    estimated to need less may, in the same cycle (the kept units of the first once answered for both)."""
    from hub_ext.scheduler.cycle import Cycle

    from .helpers import preempted_ids

    monkeypatch.setattr(Cycle, "shortcuts", shortcuts)
    elastic = running(job("E", "a", 4, at=0, min_gpus=1, max_gpus=4, attained_gpu_s=1 * H, estimate_s=50 * H), "n/0", "n/1", "n/2", "n/3", started=0.0)
    long_new = job("long", "a", 2, at=0, user="u1", estimate_s=200 * H)  # starving: tried first, may not shrink E
    short_new = job("short", "a", 1, at=2 * H - 10, user="u2", estimate_s=1 * H)
    s = Scheduler.from_snapshot(snap(pool(("n", 4)), teams(("a", 8)), [elastic], [long_new, short_new], now=2 * H,
                                     las_thresholds_gpu_s=LAS, las_on_estimates=True))
    d = s.cycle(2 * H)
    assert started_ids(d) == ["short"] and preempted_ids(d) == []
    assert [(r.workload_id, len(r.allocation.shares)) for r in d.resizes] == [("E", 3)]
    assert d.reserved == ("long",)
