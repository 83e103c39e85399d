"""Work estimated shorter takes GPUs back (estimate_takeback.py, ``las_estimates_take_back``)."""

from __future__ import annotations

import pytest

from .helpers import job, pool, running, schedule, snap, teams

H = 3600.0
LAS = (16 * H,)


def _elastic(wid, asked, attained, estimate=None, at=0.0, priority=0):
    return job(wid, "a", asked, at=at, user=wid, min_gpus=1, max_gpus=asked, attained_gpu_s=attained, estimate_s=estimate, priority=priority)


def sizes(d) -> dict:
    return {r.workload_id: len(r.allocation.shares) for r in d.resizes}


@pytest.mark.parametrize(
    "on,short_estimate,long_estimate,long_attained,long_priority,resized",
    [
        # short runs on 2 of its 4 GPUs (0.5 GPU-hours estimated left), long holds its 4 (39 left), nothing idle:
        (False, 0.5 * H, 10 * H, 1 * H, 0, {}),  # off: short waits for idle GPUs
        (True, 0.5 * H, 10 * H, 1 * H, 0, {"long": 2, "short": 4}),  # on: short takes the 2 it lacks
        (True, None, 10 * H, 1 * H, 0, {}),  # short has no estimate: nothing moves
        (True, 0.5 * H, 0.6 * H, 1 * H, 0, {}),  # long is estimated to need less (1.4 - 1 = 0.4 GPU-hours left): nothing moves
        (True, 0.5 * H, None, 3 * H, 0, {"long": 2, "short": 4}),  # long has no estimate: its attained 3 GPU-hours stand for it
        (True, 0.5 * H, None, 0.5 * H, 0, {}),  # ... 0.5 GPU-hours held: less than short's 1.5 left
        (True, 0.5 * H, 10 * H, 1 * H, 1, {}),  # long has a higher priority
        (True, 0.5 * H, 40 * H, 20 * H, 0, {"long": 2, "short": 4}),  # long is at a higher level: it gives too
    ],
)
def test_work_estimated_shorter_takes_gpus_back(on, short_estimate, long_estimate, long_attained, long_priority, resized):
    short = running(_elastic("short", 4, 0.5 * H, short_estimate, at=100), "n/0", "n/1")
    long = running(_elastic("long", 4, long_attained, long_estimate, priority=long_priority), "n/2", "n/3", "n/4", "n/5")
    d = schedule(snap(pool(("n", 6)), teams(("a", 6)), [short, long], [], las_thresholds_gpu_s=LAS, las_on_estimates=True,
                      las_estimates_take_back=on))
    assert sizes(d) == resized


def test_down_to_min_gpus_the_most_estimated_remaining_first():
    # short holds 1 of its 4; mid (3 GPU-hours left) and long (39 left) hold 3 of their 4 and 4 of theirs:
    # short takes its 3 from long alone, down to long's min_gpus, and mid keeps its 3.
    short = running(_elastic("short", 4, 0.25 * H, 0.5 * H, at=100), "n/0")
    mid = running(_elastic("mid", 4, 1 * H, 1 * H, at=50), "n/1", "n/2", "n/3")
    long = running(_elastic("long", 4, 1 * H, 10 * H), "m/0", "m/1", "m/2", "m/3")
    d = schedule(snap(pool(("n", 4), ("m", 4)), teams(("a", 8)), [short, mid, long], [], las_thresholds_gpu_s=LAS, las_on_estimates=True,
                      las_estimates_take_back=True))
    assert sizes(d) == {"long": 1, "short": 4}


def test_a_job_at_a_higher_level_takes_nothing_from_one_below():
    # short has held past the cut (a higher level) yet is estimated to need less: long, below the cut, keeps its GPUs.
    short = running(_elastic("short", 4, 17 * H, 4.5 * H, at=100), "n/0", "n/1")
    long = running(_elastic("long", 4, 1 * H, 10 * H), "n/2", "n/3", "n/4", "n/5")
    d = schedule(snap(pool(("n", 6)), teams(("a", 6)), [short, long], [], las_thresholds_gpu_s=LAS, las_on_estimates=True,
                      las_estimates_take_back=True))
    assert sizes(d) == {}


def test_it_needs_las_on_estimates():
    short = running(_elastic("short", 4, 0.5 * H, 0.5 * H, at=100), "n/0", "n/1")
    long = running(_elastic("long", 4, 1 * H, 10 * H), "n/2", "n/3", "n/4", "n/5")
    d = schedule(snap(pool(("n", 6)), teams(("a", 6)), [short, long], [], las_thresholds_gpu_s=LAS, las_estimates_take_back=True))
    assert sizes(d) == {}
