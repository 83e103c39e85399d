"""2: idle GPUs go to teams beyond their quota, split by over-quota weight;
borrowed GPUs are preemptible, and preemption picks the victims that lose
least."""

from __future__ import annotations

import pytest

from .helpers import apply, job, pool, preempted_ids, reason, running, schedule, snap, started_ids, teams

SPLIT = [
    # (weights a:b, idle GPUs, expected a, expected b)
    ((1.0, 1.0), 12, 6, 6),
    ((2.0, 1.0), 12, 8, 4),
    ((3.0, 1.0), 16, 12, 4),
    ((1.0, 3.0), 8, 2, 6),
]


@pytest.mark.parametrize("weights,gpus,want_a,want_b", SPLIT)
def test_idle_gpus_are_split_by_over_quota_weight(weights, gpus, want_a, want_b):
    nodes = [(f"n{i}", 4) for i in range(gpus // 4)]
    queue = [job(f"a{i}", "a", 1, at=i) for i in range(20)] + [job(f"b{i}", "b", 1, at=i) for i in range(20)]
    d = schedule(snap(pool(*nodes), teams(("a", 0, weights[0]), ("b", 0, weights[1])), (), queue))
    got = [s.workload_id[0] for s in d.starts]
    assert (got.count("a"), got.count("b")) == (want_a, want_b)
    assert all(s.over_quota for s in d.starts), "everything beyond a quota is borrowed"


def test_borrowed_gpus_go_back_when_the_owner_returns():
    t = teams(("owner", 8), ("borrower", 0))
    s = snap(pool(("a", 8), ("b", 4)), t, (), [job(f"b{i}", "borrower", 1, at=i) for i in range(12)])
    d = schedule(s)
    assert len(d.starts) == 12 and all(x.over_quota for x in d.starts)
    s = apply(s, d)
    s = snap(s.pool, t, s.running, (job("own", "owner", 8, at=100),), now=2000)
    d = schedule(s)
    assert started_ids(d) == ["own"]
    assert len(d.preemptions) == 8
    # the freshest borrowed work goes first... but only as much as needed on one node
    assert len({sh.node for sh in d.starts[0].allocation.shares}) == 1
    assert d.starts[0].over_quota is False


VICTIMS = [
    # (case, borrower's running work as (id, priority, started, preemptible), expected victim)
    ("newest first", [("old", 0, 0, True), ("new", 0, 50, True)], "new"),
    ("lowest priority before newest", [("low-old", 0, 0, True), ("high-new", 3, 50, True)], "low-old"),
    ("non-preemptible never", [("np-new", 0, 50, False), ("p-old", 0, 0, True)], "p-old"),
]


@pytest.mark.parametrize("case,work,victim", VICTIMS, ids=[c[0] for c in VICTIMS])
def test_preemption_picks_the_victim_that_loses_least(case, work, victim):
    run = [running(job(wid, "borrower", 2, at=at, priority=prio, preemptible=pre), f"a/{2 * i}", f"a/{2 * i + 1}") for i, (wid, prio, at, pre) in enumerate(work)]
    run += [running(job("own-0", "owner", 4, at=0), "a/4", "a/5", "a/6", "a/7")]
    # the borrower's quota of 2 covers one of its two workloads
    s = snap(pool(("a", 8)), teams(("owner", 6), ("borrower", 2)), run, [job("own-1", "owner", 2, at=100)])
    d = schedule(s)
    assert preempted_ids(d) == [victim]
    assert started_ids(d) == ["own-1"]


def test_non_preemptible_work_does_not_borrow():
    s = snap(pool(("a", 8)), teams(("vision", 2)), (), [job("np", "vision", 4, preemptible=False), job("p", "vision", 4, at=1)])
    d = schedule(s)
    assert started_ids(d) == ["p"]
    assert "non-preemptible" in reason(d, "np")


def gang(wid, team, n, node, at=0.0):
    return running(job(wid, team, n, at=at), *[f"{node}/{i}" for i in range(n)])


WITHIN = [
    # (case, b's running work, b's new job, does it start, who is preempted for it, over quota)
    # Nodes a and c (8 cards each); team b's quota is 4, x's 4, y's 8; x runs 1-GPU jobs on
    # every card of node c that b does not hold (beyond its quota of 4).
    ("a gang larger than the whole quota leaves the quota to the team's small work",
     [gang("b-gang", "b", 8, "a")], 1, True, ["x7"], False),
    ("the team's other work counts against the quota as usual",
     [gang("b-gang", "b", 8, "a"), running(job("b1", "b", 3, at=1), "c/0", "c/1", "c/2")], 1, True, ["x7"], False),
    ("beyond what is left of the quota it borrows, and borrowing cannot preempt",
     [gang("b-gang", "b", 8, "a"), running(job("b1", "b", 3, at=1), "c/0", "c/1", "c/2")], 2, False, [], None),
]


@pytest.mark.parametrize("case,b_run,gpus,starts,victims,over", WITHIN, ids=[c[0] for c in WITHIN])
def test_work_larger_than_the_quota_uses_none_of_it(case, b_run, gpus, starts, victims, over):
    held = {s.gpu_uuid for r in b_run for s in r.allocation.shares}
    x_run = [running(job(f"x{i}", "x", 1, at=2 + i), f"c/{i}") for i in range(8) if f"c/{i}" not in held]
    s = snap(pool(("a", 8), ("c", 8)), teams(("b", 4), ("x", 4), ("y", 8)), b_run + x_run, [job("new", "b", gpus, at=100)])
    d = schedule(s)
    assert ("new" in started_ids(d)) == starts
    assert preempted_ids(d) == victims
    if starts:
        assert d.starts[0].over_quota is over
