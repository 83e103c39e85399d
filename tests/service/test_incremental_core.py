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


@pytest.mark.parametrize("seed,by_revisions", [(1, False), (2, False), (3, False), (1, True), (2, True)])
def test_kept_state_equals_the_pure_function_through_a_day_of_events(seed, by_revisions):
    rng = random.Random(seed)
    p = pool(("a", 8), ("b", 8), ("c", 16, "V100-32GB", 32768))
    t = teams(("vision", 12), ("nlp", 8), ("bio", 4))
    s = snap(p, t, [], [], now=0.0, las_thresholds_gpu_s=(4 * 3600.0,))
    core = IncrementalCore()
    n = 0
    revisions: dict[str, int] = {}  # as WorkloadRow.revision: bumped when what the snapshot reads of a workload changes
    seen: dict[str, object] = {}
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
        if step == 30:  # an admin changes quotas and weights, adds a team and removes it: applied as events
            tm["bio"] = replace(tm["bio"], quota=8.0)
        elif step == 50:
            tm["vision"] = replace(tm["vision"], quota=4.0, over_quota_weight=3.0)  # vision now borrows: reclaims follow
        elif step == 70:
            tm["chem"] = replace(tm["nlp"], name="chem", quota=6.0)
        elif step == 90:
            tm["nlp"] = replace(tm["nlp"], quota=0.0, limit=4.0)
        elif step == 100:
            del tm["chem"]
        s = replace(s, teams=tm, running=tuple(run), pending=tuple(pend), now=now)
        now_seen = {w.id: w for w in s.pending} | {r.workload.id: r for r in s.running}
        revisions = {wid: revisions.get(wid, 0) + (wid in seen and seen[wid] != x) for wid, x in now_seen.items()}
        seen = now_seen
        d = core.decide(s, dict(revisions)) if by_revisions else core.decide(s)
        assert same(d, schedule(s)), f"step {step}"
        s = apply(s, d)
    assert core.rebuilds == 1  # the first cycle; every other, the team changes too, by differences


def test_revisions_show_which_pending_workloads_to_read_again_and_the_periodic_check_counts_a_missed_bump():
    """With revisions (as WorkloadRow.revision gives them) only pending work whose revision moved is
    re-read; a change that came without a bump is invisible until the field-by-field check every
    ``check_every`` cycles, which counts it and corrects the kept state."""
    p = pool(("a", 8))
    t = teams(("vision", 8))
    blocker = job("w0", "vision", 8, at=0.0)
    core = IncrementalCore(check_every=3)
    s = snap(p, t, [], [blocker], now=0.0)
    s = apply(s, core.decide(s, {"w0": 0}))
    wait = job("w1", "vision", 4, at=10.0)
    s = replace(s, pending=(wait,), now=20.0)
    revs = {"w0": 1, "w1": 0}
    d = core.decide(s, revs)
    assert same(d, schedule(s))
    # A raised priority, bumped: read again, the same decisions as the pure function.
    s = replace(s, pending=(replace(wait, priority=1),), now=30.0)
    revs = {"w0": 1, "w1": 1}
    assert same(core.decide(s, revs), schedule(s))
    # The blocker ends and w1 asks for 16 GPUs (more than the pool) without a bump: the kept
    # state still has it at 4 and would start it; the third cycle's full check catches it.
    s = replace(s, running=(), pending=(replace(wait, priority=1, gpus=16.0),), now=40.0)
    del revs["w0"]
    d = core.decide(s, revs)
    assert core.misses == 1 and same(d, schedule(s)) and not d.starts
