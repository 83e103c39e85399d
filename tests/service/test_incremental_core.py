"""The service's kept scheduler state (loop.IncrementalCore) decides exactly as the pure ``schedule(snapshot)``."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from hub_ext.scheduler import Running, schedule
from hub_ext.scheduler.tests.helpers import apply, job, pool, snap, teams
from hub_ext.service.loop import IncrementalCore


def same(a, b) -> bool:
    return (
        a.starts == b.starts
        and a.preemptions == b.preemptions
        and a.resizes == b.resizes
        and tuple(a.pending) == tuple(b.pending)
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_state_equals_the_pure_function_through_a_day_of_events(seed):
    rng = random.Random(seed)
    p = pool(("a", 8), ("b", 8), ("c", 16, "V100-32GB", 32768))
    t = teams(("vision", 12), ("nlp", 8), ("bio", 4))
    s = snap(p, t, [], [], now=0.0, las_thresholds_gpu_s=(4 * 3600.0,))
    core = IncrementalCore()
    n = 0
    for step in range(120):
        now = step * 600.0
        pend = list(s.pending)
        for _ in range(rng.randint(0, 3)):  # arrivals: whole, elastic, fractions
            n += 1
            kind = rng.random()
            team = rng.choice(list(t))
            if kind < 0.2:
                w = job(f"w{n}", team, rng.choice([0.25, 0.5]), at=now, user=f"u{n % 4}")
            elif kind < 0.4:
                w = job(f"w{n}", team, rng.choice([2, 4, 8]), at=now, user=f"u{n % 4}", min_gpus=1, max_gpus=8)
            else:
                w = job(f"w{n}", team, rng.choice([1, 1, 2, 4, 8, 16]), at=now, user=f"u{n % 4}", priority=rng.choice([0, 0, 1]))
            pend.append(w)
        run = []
        for r in s.running:  # some finish; the rest report more attained service
            if rng.random() < 0.15:
                continue
            w = replace(r.workload, attained_gpu_s=r.workload.attained_gpu_s + 600 * r.allocation.gpus)
            run.append(Running(w, r.allocation))
        if pend and rng.random() < 0.1:  # a cancel
            pend.pop(rng.randrange(len(pend)))
        tm = dict(s.teams)
        if step == 60:  # an admin changes a quota: re-indexed
            tm["bio"] = replace(tm["bio"], quota=8.0)
        s = replace(s, teams=tm, running=tuple(run), pending=tuple(pend), now=now)
        d = core.decide(s)
        assert same(d, schedule(s)), f"step {step}"
        s = apply(s, d)
    assert core.rebuilds == 2  # the first cycle and the quota change; every other cycle was by differences
