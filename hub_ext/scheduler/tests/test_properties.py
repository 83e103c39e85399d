"""Random pools, teams and queues, many cycles: the promises always hold.

* no card is ever given beyond 100% of its compute or its memory;
* no team ever goes beyond its limit;
* only preemptible work of a team over its quota is preempted, and never for
  a workload of the same team;
* the stateful Scheduler, fed events, decides exactly what schedule() decides
  on the equivalent snapshot.
"""

from __future__ import annotations

import random

import pytest

from hub_ext.scheduler import Scheduler, SchedulerConfig, Snapshot, Workload, schedule
from hub_ext.scheduler.model import EPSILON

from .helpers import JOB, SESSION, apply, check_invariants, pool, teams


def random_world(rng: random.Random):
    nodes = []
    for i in range(rng.randint(1, 6)):
        if rng.random() < 0.5:
            nodes.append((f"dgx1-{i}", 8, "V100-16GB", 16384))
        else:
            nodes.append((f"dgx2-{i}", rng.choice([4, 16]), "V100-32GB", 32768))
    p = pool(*nodes)
    t = teams(*[(f"t{i}", rng.choice([0, 1, 2, 4, 8, 12]), rng.choice([1.0, 2.0, 0.5]), rng.choice([None, None, 3, 10])) for i in range(rng.randint(1, 5))])
    return p, t


def random_workload(rng: random.Random, i: int, names: list[str], now: float) -> Workload:
    kind = SESSION if rng.random() < 0.3 else JOB
    r = rng.random()
    extra = {}
    if r < 0.3:
        gpus = rng.choice([0.1, 0.25, 0.3, 0.5, 0.75])
        if rng.random() < 0.5:
            extra["gpu_memory_mib"] = rng.choice([2000, 8000, 16000])
    elif r < 0.45 and kind is JOB:
        lo = rng.randint(1, 4)
        hi = lo + rng.randint(1, 8)
        gpus = rng.randint(lo, hi)
        extra.update(min_gpus=lo, max_gpus=hi)
    else:
        gpus = rng.choice([1, 1, 2, 4, 8, 16, 24])
    if rng.random() < 0.15:
        extra["gpu_model"] = rng.choice(["V100-32GB", "A100"])
    if rng.random() < 0.1:
        extra["min_gpu_memory_mib"] = 20000
    if rng.random() < 0.1:
        extra["preemptible"] = False
    return Workload(
        id=f"w{i}",
        user=rng.choice(["alice", "bob", "carol"]),
        team=rng.choice(names + ["ghost"]),
        kind=kind,
        gpus=float(gpus),
        submitted_at=now - rng.uniform(0, 7200),
        priority=rng.choice([0, 0, 0, 1, 5]),
        **extra,
    )


def test_pool_changes_are_reindexed():
    from hub_ext.scheduler import Node, Pool

    from .helpers import job, running

    p = pool(("a", 8), ("b", 8))
    live = Scheduler(p, teams(("t", 16)))
    live.started(job("r", "t", 4), running(job("r", "t", 4), "a/0", "a/1", "a/2", "a/3").allocation)
    live.submit(job("w", "t", 8, at=1))
    live.set_pool(Pool((p.nodes[0], Node("b", p.nodes[1].gpus, schedulable=False))))
    d = live.cycle(10.0)
    assert d.starts == () and "largest free block is 4" in d.pending[0].reason
    assert d == schedule(live.snapshot(10.0))


def cards_held(running) -> dict[str, float]:
    """Cards each team holds: whole cards, and each card with fractions shared by its teams in proportion."""
    out: dict[str, float] = {}
    on_card: dict[str, dict[str, float]] = {}
    for r in running:
        for s in r.allocation.shares:
            if r.workload.is_fraction:
                c = on_card.setdefault(s.gpu_uuid, {})
                c[r.workload.team] = c.get(r.workload.team, 0.0) + s.fraction
            else:
                out[r.workload.team] = out.get(r.workload.team, 0.0) + s.fraction
    for c in on_card.values():
        for team, f in c.items():
            out[team] = out.get(team, 0.0) + f / sum(c.values())
    return out


def run_world(seed: int, config: SchedulerConfig, cycles: int = 12):
    rng = random.Random(seed)
    p, t = random_world(rng)
    names = sorted(t)
    now = 10_000.0
    n = 0
    pend = []
    for _ in range(rng.randint(5, 40)):
        pend.append(random_workload(rng, n, names, now))
        n += 1
    snapshot = Snapshot(p, t, (), tuple(pend), now, config)
    live = Scheduler.from_snapshot(snapshot)
    for _ in range(cycles):
        d = schedule(snapshot)
        d_live = live.cycle(snapshot.now)
        assert d.starts == d_live.starts and d.preemptions == d_live.preemptions and d.resizes == d_live.resizes
        usage = {}
        for r in snapshot.running:
            usage[r.workload.team] = usage.get(r.workload.team, 0.0) + r.allocation.gpus
        by_id = {r.workload.id: r for r in snapshot.running}
        cards = cards_held(snapshot.running)
        for pr in d.preemptions:
            victim = by_id[pr.workload_id].workload
            assert victim.preemptible
            quota = t.get(victim.team, _zero).quota
            if usage[victim.team] <= quota + EPSILON:
                # Within its quota in GPUs, a team may lose fractions only from cards it holds beyond its quota.
                assert victim.is_fraction and cards[victim.team] > quota + EPSILON, "preempted work within its team's quota"
        # Only work beyond a quota is preempted: a team loses at most the one
        # workload that straddles its quota below it, never work well within it.
        lost: dict[str, list[float]] = {}
        for pr in d.preemptions:
            r = by_id[pr.workload_id]
            if usage[r.workload.team] <= t.get(r.workload.team, _zero).quota + EPSILON:
                continue  # a card beyond its quota (above)
            lost.setdefault(r.workload.team, []).append(r.allocation.gpus)
        for team, sizes in lost.items():
            quota = t.get(team, _zero).quota
            assert usage[team] - sum(sizes) > quota - max(sizes) - EPSILON, f"team {team} preempted below its quota"
        pending_ids = {w.id for w in snapshot.pending}
        assert {s.workload_id for s in d.starts} <= pending_ids
        snapshot = apply(snapshot, d)
        live.apply(d)
        check_invariants(snapshot)
        assert len(d.pending) == len(snapshot.pending)
        assert sorted(x.workload_id for x in d.pending) == sorted(w.id for w in snapshot.pending)
        assert [x.position for x in d.pending] == list(range(1, len(d.pending) + 1))
        assert all(x.reason for x in d.pending)
        # events: some work ends, some arrives, time passes
        now += rng.uniform(60, 3000)
        ending = [r for r in snapshot.running if rng.random() < 0.3]
        for r in ending:
            live.finished(r.workload.id)
        arriving = [random_workload(rng, n + k, names, now) for k in range(rng.randint(0, 6))]
        n += len(arriving)
        for w in arriving:
            live.submit(w)
        # read only now: the live scheduler changed since, its lazy list must not
        assert tuple(d.pending) == tuple(d_live.pending)
        gone = {r.workload.id for r in ending}
        snapshot = Snapshot(p, t, tuple(r for r in snapshot.running if r.workload.id not in gone), snapshot.pending + tuple(arriving), now, config)


class _Zero:
    quota = 0.0


_zero = _Zero()

CONFIGS = {
    "pool": SchedulerConfig(reservation_after_s=1800),
    "static": SchedulerConfig(borrowing=False, preemption=False),
    "fifo": SchedulerConfig(ordering="fifo", preemption=False),
    "no-elastic": SchedulerConfig(elastic=False, reservation_after_s=600),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(25))
def test_random_worlds_keep_every_promise(name, seed):
    run_world(seed, CONFIGS[name])
