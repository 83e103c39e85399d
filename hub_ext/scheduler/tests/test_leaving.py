"""Preemption with notice: a victim keeps its GPUs until its grace ends
(``Running.leaving``). It is never a victim twice, and the workload it was
preempted for waits for exactly its GPUs rather than preempting anyone else."""

from __future__ import annotations

import pytest

from hub_ext.scheduler import Running

from .helpers import job, pool, preempted_ids, reason, running, schedule, session, snap, started_ids, teams


def leaving(r: Running) -> Running:
    return Running(r.workload, r.allocation, leaving=True)


def nlp_borrows(n_leaving, kind=job):
    """nlp (quota 4) fills all 8 cards; its newest ``n_leaving`` were preempted with notice."""
    out = []
    for i in range(8):
        r = running(kind(f"nlp-{i}", "nlp", 1, at=i), f"a/{i}")
        out.append(leaving(r) if i >= 8 - n_leaving else r)
    return out


CASES = [
    # (case, leaving nlp work, vision asks, vision starts, new victims, reason says)
    ("the owner waits for the one leaving card it needs", 1, 1, False, [], "starts when nlp-7"),
    ("two cards needed, one leaving: one more victim, then wait", 1, 2, False, ["nlp-6"], "starts when nlp-7"),
    ("nothing leaving: preempt as usual", 0, 1, True, ["nlp-7"], None),
]


@pytest.mark.parametrize("case,n,gpus,starts,victims,says", CASES, ids=[c[0] for c in CASES])
def test_work_preempted_with_notice_is_waited_for_not_preempted_again(case, n, gpus, starts, victims, says):
    s = snap(pool(("a", 8)), teams(("vision", 4), ("nlp", 4)), nlp_borrows(n), [job("v1", "vision", gpus, at=500)])
    d = schedule(s)
    assert ("v1" in started_ids(d)) == starts
    assert preempted_ids(d) == victims
    if says:
        assert says in reason(d, "v1")


def test_a_leaving_session_is_never_preempted_twice_and_its_cards_go_to_no_one_else():
    s = snap(pool(("a", 8)), teams(("vision", 4), ("nlp", 4)), nlp_borrows(1, kind=session),
             [job("v1", "vision", 1, at=500), job("b1", "bio", 1, at=600)])
    d = schedule(s)
    assert started_ids(d) == []
    assert preempted_ids(d) == []
    assert "starts when nlp-7" in reason(d, "v1")


@pytest.mark.parametrize("asks", [1, 0.5], ids=["a whole card", "a fraction"])
def test_cards_of_leaving_work_that_the_waiting_owner_does_not_need_stay_the_leaving_works(asks):
    # nlp-7 holds two cards and leaves with notice; vision waits for one of them (or part of it):
    # the rest is still nlp-7's until it is gone, so bio's job started later in the cycle cannot have it.
    run = [running(job(f"nlp-{i}", "nlp", 1, at=i), f"a/{i}") for i in range(6)]
    run.append(leaving(running(job("nlp-7", "nlp", 2, at=7), "a/6", "a/7")))
    s = snap(pool(("a", 8)), teams(("vision", 4), ("nlp", 4)), run, [job("v1", "vision", asks, at=500), job("b1", "bio", 1, at=600)])
    d = schedule(s)
    assert started_ids(d) == []
    assert "starts when nlp-7" in reason(d, "v1")
