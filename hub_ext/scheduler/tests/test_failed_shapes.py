"""A cycle answers "fails" at once for a request shaped like one that already
failed with nothing decided since (Cycle.attempt). That shortcut must decide
exactly what trying every workload decides: same starts, preemptions,
resizes, pending reasons, on long queues full of identical requests."""

from __future__ import annotations

import itertools
import random

import pytest

from hub_ext.scheduler import Scheduler, SchedulerConfig, Workload
from hub_ext.scheduler.cycle import Cycle

from .test_properties import random_workload, random_world


def queued_copies(rng: random.Random, n: int, names: list[str], now: float, ids) -> list[Workload]:
    """Many workloads in a few shapes, with different users, priorities and ages."""
    shapes = [random_workload(rng, i, names, now) for i in range(rng.randint(2, 6))]
    out = []
    for i in range(n):
        s = rng.choice(shapes)
        out.append(Workload(**{**s.__dict__, "id": f"c{next(ids)}", "user": rng.choice(["alice", "bob", "carol"]),
                               "priority": rng.choice([0, 0, 1]), "submitted_at": now - rng.uniform(0, 14400)}))
    return out


def replay(seed: int, config: SchedulerConfig) -> list:
    rng = random.Random(seed)
    p, t = random_world(rng)
    names = sorted(t)
    now = 20_000.0
    live = Scheduler(p, t, config)
    ids = itertools.count()
    live.submit_many(queued_copies(rng, rng.randint(20, 80), names, now, ids))
    seen = []
    for _ in range(10):
        d = live.cycle(now)
        seen.append((d.starts, d.preemptions, d.resizes, tuple(d.pending)))
        live.apply(d)
        now += rng.uniform(60, 3000)
        for wid in sorted(live.running):
            if rng.random() < 0.3:
                live.finished(wid)
        live.submit_many(queued_copies(rng, rng.randint(0, 15), names, now, ids))
    return seen


CONFIGS = {
    "pool": SchedulerConfig(reservation_after_s=1800),
    "two-reservations": SchedulerConfig(reservation_after_s=600, max_reservations=2),
    "fifo": SchedulerConfig(ordering="fifo", preemption=False),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_skipping_failed_shapes_changes_no_decision(name, monkeypatch):
    tries = {"n": 0}
    try_start = Cycle.try_start

    def counted(self, w, starving=False):
        tries["n"] += 1
        return try_start(self, w, starving)

    monkeypatch.setattr(Cycle, "try_start", counted)
    started = fast_tries = slow_tries = 0
    for seed in range(20):
        tries["n"] = 0
        fast = replay(seed, CONFIGS[name])
        fast_tries += tries["n"]
        tries["n"] = 0
        with monkeypatch.context() as m:
            m.setattr(Cycle, "attempt", lambda self, w, starving=False: self.try_start(w, starving))
            m.setattr(Cycle, "shortcuts", False)  # and none of the other shortcuts (cycle.Cycle.shortcuts)
            slow = replay(seed, CONFIGS[name])
        slow_tries += tries["n"]
        assert fast == slow, f"seed {seed}: decisions differ"
        started += any(s[0] for s in fast)
    # the comparison proves something only if work started and tries were saved
    assert started >= 10
    if CONFIGS[name].ordering != "fifo":  # fifo stops at its first failure: nothing to save
        assert fast_tries < slow_tries
