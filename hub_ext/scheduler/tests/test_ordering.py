"""Queue order and the simulator's baselines: fair (default), fifo, static."""

from __future__ import annotations

from dataclasses import replace

import pytest

from .helpers import job, pool, reason, running, schedule, snap, started_ids, teams


def test_fifo_is_strict_first_come_first_served():
    pend = [job("a-big", "a", 8, at=0), job("b-small", "b", 1, at=1), job("a-small", "a", 1, at=2)]
    run = [running(job("x", "a", 4, at=0), "n/0", "n/1", "n/2", "n/3")]
    d = schedule(snap(pool(("n", 8)), teams(("a", 100), ("b", 100)), run, pend, ordering="fifo", preemption=False))
    assert started_ids(d) == [], "nothing overtakes the head, even where it would fit"
    assert [p.workload_id for p in d.pending] == ["a-big", "b-small", "a-small"]
    assert "waits behind a-big" in reason(d, "b-small")


def test_fifo_starts_in_submit_order_whatever_team_or_priority():
    pend = [job("late-high", "b", 1, at=5, priority=9), job("early", "a", 1, at=0), job("mid", "b", 1, at=2)]
    d = schedule(snap(pool(("n", 2)), teams(("a", 0), ("b", 100)), [], pend, ordering="fifo", preemption=False))
    assert started_ids(d) == ["early", "mid"]


def test_fifo_passes_over_work_that_can_never_start():
    pend = [job("impossible", "a", 64, at=0), job("next", "a", 1, at=1)]
    d = schedule(snap(pool(("n", 8)), teams(("a", 100)), [], pend, ordering="fifo", preemption=False))
    assert started_ids(d) == ["next"]


@pytest.mark.parametrize("borrowing,starts", [(True, 4), (False, 2)])
def test_static_slices_do_not_borrow(borrowing, starts):
    pend = [job(f"a{i}", "a", 1, at=i) for i in range(4)]
    d = schedule(snap(pool(("n", 4)), teams(("a", 2), ("b", 2)), [], pend, borrowing=borrowing, preemption=borrowing))
    assert len(d.starts) == starts


def test_fair_order_serves_work_within_quota_before_borrowers():
    pend = [job(f"borrow{i}", "big", 1, at=i) for i in range(4)] + [job("owner", "small", 1, at=100)]
    run = [running(job(f"b{i}", "big", 1, at=0), f"n/{i}") for i in range(4)]
    d = schedule(snap(pool(("n", 5)), teams(("big", 2), ("small", 1)), run, pend, preemption=False))
    assert started_ids(d) == ["owner"], "the only free GPU goes to the team within its quota"


@pytest.mark.parametrize("seed", range(200))
def test_the_cursor_passes_over_failed_picks_in_the_order_it_walks_them(seed):
    """FairCursor.pass_over takes a team's next picks that would change nothing (``passed``) while they
    are next in the fair order: the picks and their order are those of next/done_with one at a time,
    with teams whose keys dip or cross (sizes around the quota, LAS levels, priorities, users) and
    admitted picks between."""
    import random

    from hub_ext.scheduler import Team
    from hub_ext.scheduler.ordering import FairCursor, TeamQueue, queue_key_for

    rng = random.Random(seed)
    las = (16 * 3600.0,) if seed % 2 else ()
    on_estimates = seed % 3 == 0  # las_on_estimates: the estimate's rank inside a level is part of the key
    names = ["a", "b", "c"][: rng.randint(1, 3)]
    tms = {n: Team(n, float(rng.choice([0, 2, 4, 8])), rng.choice([1.0, 2.0])) for n in names}
    queues = {n: TeamQueue(queue_key_for(las, on_estimates)) for n in names}
    for i in range(rng.randint(5, 60)):
        team = rng.choice(names)
        w = job(f"w{i}", team, rng.choice([1, 2, 4, 8]), at=float(rng.randint(0, 50)), user=rng.choice(["u", "v", "x"]),
                priority=rng.choice([0, 0, 1]), attained_gpu_s=rng.choice([0.0, 20 * 3600.0]))
        if on_estimates:
            w = replace(w, estimate_s=rng.choice([None, 600.0, 36000.0, 200000.0]))
        queues[team].add(w)
    failed = {(t, g) for t in names for g in (1, 2, 4, 8) if rng.random() < 0.6}
    admit = {f"w{i}" for i in range(60) if rng.random() < 0.3}

    def passed(w):
        return (w.team, w.gpus) in failed and w.id not in admit

    def walk(fast: bool) -> list[str]:
        usage = {n: float(rng2.choice([0, 1, 3, 9])) for n in names}
        user_usage: dict = {}
        cur = FairCursor({n: q.users for n, q in queues.items() if q.count}, tms, usage, user_usage, las=las, on_estimates=on_estimates)
        seq = []
        while (pick := cur.next()) is not None:
            user, w = pick
            seq.append(w.id)
            if passed(w):
                if fast:
                    cur.pass_over(w.team, lambda x: passed(x) and not seq.append(x.id))
            elif w.id in admit:  # admitted: its team's and user's usage grow
                usage[w.team] += w.gpus
                user_usage[(w.team, user)] = user_usage.get((w.team, user), 0.0) + w.gpus
            cur.done_with(w.team)
        return seq

    rng2 = random.Random(seed)
    slow = walk(False)
    rng2 = random.Random(seed)
    fast = walk(True)
    assert fast == slow
    assert sorted(fast) == sorted(w.id for q in queues.values() for lst in q.users.values() for w in lst)
