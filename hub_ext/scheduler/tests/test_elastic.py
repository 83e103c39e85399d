"""7: elastic jobs grow into idle GPUs and are shrunk before anyone is
preempted."""

from __future__ import annotations

from .helpers import job, pool, preempted_ids, running, schedule, snap, started_ids, teams


def elastic(wid, team, asked, lo, hi, at=0.0):
    return job(wid, team, asked, at=at, min_gpus=lo, max_gpus=hi)


def held(d, wid):
    for r in d.resizes:
        if r.workload_id == wid:
            return len(r.allocation.shares)
    return None


def test_grows_into_idle_gpus_up_to_max():
    e = running(elastic("e", "nlp", 2, 2, 6), "a/0", "a/1")
    d = schedule(snap(pool(("a", 8)), teams(("nlp", 2)), [e], []))
    assert held(d, "e") == 6
    assert "grew" in d.resizes[0].reason


def test_does_not_grow_with_elastic_off_or_past_the_limit():
    e = running(elastic("e", "nlp", 2, 2, 6), "a/0", "a/1")
    assert schedule(snap(pool(("a", 8)), teams(("nlp", 2)), [e], [], elastic=False)).resizes == ()
    assert held(schedule(snap(pool(("a", 8)), teams(("nlp", 2, 1.0, 3)), [e], [])), "e") == 3


def test_starts_smaller_when_what_it_asked_does_not_fit():
    busy = [running(job(f"b{i}", "vision", 1), f"a/{i}") for i in range(5)]
    d = schedule(snap(pool(("a", 8)), teams(("vision", 8), ("nlp", 8)), busy, [elastic("e", "nlp", 4, 2, 8)]))
    assert started_ids(d) == ["e"]
    assert len(d.starts[0].allocation.shares) == 3


def test_lent_gpus_go_back_to_anyone_before_waiting():
    grown = running(elastic("e", "nlp", 2, 1, 8), *[f"a/{i}" for i in range(8)])
    d = schedule(snap(pool(("a", 8)), teams(("nlp", 0), ("vision", 0)), [grown], [job("v", "vision", 4, at=10)]))
    assert started_ids(d) == ["v"] and preempted_ids(d) == []
    assert held(d, "e") == 4


def test_shrunk_to_min_before_anyone_is_preempted():
    e = running(elastic("e", "nlp", 4, 2, 4, at=0), "a/0", "a/1", "a/2", "a/3")
    other = running(job("j", "nlp", 4, at=50), "a/4", "a/5", "a/6", "a/7")
    d = schedule(snap(pool(("a", 8)), teams(("nlp", 0), ("vision", 4)), [e, other], [job("v", "vision", 2, at=100)]))
    assert started_ids(d) == ["v"]
    assert preempted_ids(d) == [], "shrinking the elastic job made room: nobody preempted"
    assert held(d, "e") == 2


def test_preempts_once_shrinking_is_not_enough():
    e = running(elastic("e", "nlp", 4, 2, 4, at=0), "a/0", "a/1", "a/2", "a/3")
    other = running(job("j", "nlp", 4, at=50), "a/4", "a/5", "a/6", "a/7")
    d = schedule(snap(pool(("a", 8)), teams(("nlp", 0), ("vision", 4)), [e, other], [job("v", "vision", 4, at=100)]))
    assert started_ids(d) == ["v"]
    assert preempted_ids(d) == ["j"]
    assert held(d, "e") is None, "the elastic job keeps its GPUs when a preemption is needed anyway"
