"""Pending reasons: every pending workload gets a position and a sentence
that names its team, the quota or limit and the numbers that block it."""

from __future__ import annotations

import pytest

from hub_ext.scheduler.fairshare import protection_key, quota_marks
from hub_ext.scheduler.model import Team
from hub_ext.scheduler.reasons import pending_reason_after_preemption, remarked_reason

from .helpers import job, pool, reason, running, schedule, snap, teams


def busy(team, count, node="a", first=0):
    return [running(job(f"{team}-{i}", team, 1, at=i), f"{node}/{first + i}") for i in range(count)]


CASES = [
    (
        "at quota, nothing idle",
        dict(t=[("vision", 8), ("nlp", 0)], run=busy("vision", 8), pend=[job("w", "vision", 1)]),
        "team vision is at its quota of 8 GPUs (8 in use) and no GPUs are idle to borrow",
    ),
    (
        "at the limit",
        dict(t=[("vision", 2, 1.0, 6)], run=busy("vision", 6), pend=[job("w", "vision", 1)], nodes=16),
        "team vision is at its limit of 6 GPUs (6 in use; this needs 1)",
    ),
    (
        "borrowing off",
        dict(t=[("vision", 4)], run=busy("vision", 4), pend=[job("w", "vision", 1)], cfg=dict(borrowing=False)),
        "team vision is at its quota of 4 GPUs (4 in use; this needs 1) and borrowing idle GPUs is off",
    ),
    (
        "gang needs a bigger block",
        dict(t=[("vision", 16)], run=busy("vision", 4) + [running(job("o", "vision", 4, at=0), "b/0", "b/1", "b/2", "b/3")], pend=[job("w", "vision", 8)], two=True),
        "needs 8 GPUs on one node; the largest free block is 4",
    ),
    (
        "no such model",
        dict(t=[("vision", 8)], run=[], pend=[job("w", "vision", 1, gpu_model="H100")]),
        "no schedulable node has GPUs of model H100",
    ),
    (
        "bigger than the pool",
        dict(t=[("vision", 8)], run=[], pend=[job("w", "vision", 64)]),
        "needs 64 GPUs but the pool has only 8 GPUs",
    ),
    (
        "not a GPU count",
        dict(t=[("vision", 8)], run=[], pend=[job("w", "vision", 1.5)]),
        "ask for a whole number of GPUs, or a fraction below 1",
    ),
    (
        "within quota, nothing to reclaim",
        dict(t=[("vision", 4), ("nlp", 4)], run=busy("nlp", 4) + busy("vision", 2, first=4), pend=[job("w", "vision", 2)], nodes=6),
        "team vision is within its quota (2 of 4 GPUs in use) but no GPUs are free",
    ),
    (
        "first come, first served",
        dict(t=[("vision", 8)], run=busy("vision", 1), pend=[job("head", "vision", 8, at=10), job("w", "vision", 1, at=15)], cfg=dict(ordering="fifo")),
        "first come, first served: waits behind head",
    ),
]


@pytest.mark.parametrize("case,world,words", CASES, ids=[c[0] for c in CASES])
def test_pending_reason_names_the_numbers(case, world, words):
    nodes = [("a", world.get("nodes", 8))] + ([("b", 8)] if world.get("two") else [])
    d = schedule(snap(pool(*nodes), teams(*world["t"]), world["run"], world["pend"], **world.get("cfg", {})))
    assert words in reason(d, "w")


def test_every_pending_workload_has_a_position_and_a_reason():
    run = [running(job(f"r{i}", "vision", 1, at=i), f"a/{i}") for i in range(8)]
    pend = [job(f"p{i}", "vision" if i % 2 else "nlp", 1 + i % 3, at=100 + i, user=f"u{i % 4}") for i in range(30)]
    d = schedule(snap(pool(("a", 8)), teams(("vision", 8), ("nlp", 4)), run, pend))
    assert len(d.pending) == 30
    assert [p.position for p in d.pending] == list(range(1, 31))
    assert sorted(p.workload_id for p in d.pending) == sorted(w.id for w in pend)
    assert all(("team" in p.reason) for p in d.pending)
    assert d.pending.reason("p3") == reason(d, "p3")


def test_preempted_work_is_listed_as_pending_again():
    run = [running(job(f"nlp-{i}", "nlp", 1, at=i), f"a/{i}") for i in range(8)]
    d = schedule(snap(pool(("a", 8)), teams(("vision", 4), ("nlp", 4)), run, [job("v", "vision", 1, at=100)]))
    assert [p.workload_id for p in d.preemptions] == ["nlp-7"]
    assert "preempted" in reason(d, "nlp-7")


@pytest.mark.parametrize(
    "previous, current, expected",
    [
        (None, "team nlp is at its quota", "team nlp is at its quota"),
        ("team nlp is at its quota", "no GPUs free", "no GPUs free"),
        ("preempted and back in the queue: team vision reclaims", "team nlp is at its quota",
         "preempted and back in the queue: team vision reclaims; waiting now: team nlp is at its quota"),
        ("preempted and back in the queue: team vision reclaims; waiting now: old words", "new words",
         "preempted and back in the queue: team vision reclaims; waiting now: new words"),
        ("preempted and back in the queue: a", "preempted and back in the queue: b", "preempted and back in the queue: b"),
    ],
)
def test_a_preempted_workload_says_so_until_it_runs_again(previous, current, expected):
    assert pending_reason_after_preemption(previous, current) == expected


@pytest.mark.parametrize(
    "reason, over, expected",
    [
        ("borrowed idle GPUs beyond team vision's quota of 3 (preemptible)", False, "within team vision's quota of 4"),
        ("borrowed idle GPUs beyond team vision's quota of 3 (preemptible); backfilled around a reservation", False,
         "within team vision's quota of 4; backfilled around a reservation"),
        ("within team vision's quota of 3", True, "borrowed idle GPUs beyond team vision's quota of 4 (preemptible)"),
        (None, False, "within team vision's quota of 4"),
    ],
)
def test_running_reasons_follow_a_quota_change(reason, over, expected):
    assert remarked_reason(reason, "vision", 4, over) == expected


def test_quota_marks_rank_running_work_most_protected_first():
    ranked = sorted(busy("vision", 4), key=protection_key)
    assert quota_marks(Team("vision", 2), ranked) == {"vision-0": False, "vision-1": False, "vision-2": True, "vision-3": True}
    assert not any(quota_marks(Team("vision", 4), ranked).values())
