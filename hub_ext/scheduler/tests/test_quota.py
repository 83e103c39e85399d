"""1 and 8: a team within its quota gets its GPUs, taking them back from
other teams' over-quota work; work within quota (sessions included) is never
preempted, over-quota sessions can be."""

from __future__ import annotations

import pytest

from .helpers import job, pool, preempted_ids, reason, running, schedule, session, snap, started_ids, teams


def full_of(team, count, start=0, first_gpu=0, node="a", kind=job, **kw):
    """``count`` one-GPU workloads of ``team`` filling cards in start order."""
    return [running(kind(f"{team}-{i}", team, 1, at=start + i, **kw), f"{node}/{first_gpu + i}") for i in range(count)]


RECLAIM = [
    # (case, quotas, running, pending, preemption, expected starts, expected preempted)
    (
        "owner reclaims from the borrower's newest work",
        [("vision", 4), ("nlp", 4)],
        full_of("nlp", 8),
        [job("v1", "vision", 2, at=100)],
        True,
        ["v1"],
        ["nlp-7", "nlp-6"],
    ),
    (
        "nobody is preempted for work beyond its own quota",
        [("vision", 4), ("nlp", 4)],
        full_of("vision", 4) + full_of("nlp", 4, first_gpu=4),
        [job("v1", "vision", 1, at=100)],
        True,
        [],
        [],
    ),
    (
        "a team within its quota is never preempted, even for an owner",
        [("vision", 4), ("nlp", 4)],
        full_of("nlp", 4) + full_of("bio", 4, first_gpu=4),
        [job("v1", "vision", 2, at=100)],
        True,
        ["v1"],
        ["bio-3", "bio-2"],
    ),
    (
        "with preemption off the owner waits",
        [("vision", 4), ("nlp", 4)],
        full_of("nlp", 8),
        [job("v1", "vision", 2, at=100)],
        False,
        [],
        [],
    ),
]


@pytest.mark.parametrize("case,quotas,run,pend,preemption,starts,victims", RECLAIM, ids=[c[0] for c in RECLAIM])
def test_quota_reclaim(case, quotas, run, pend, preemption, starts, victims):
    s = snap(pool(("a", 8)), teams(*quotas), run, pend, preemption=preemption)
    d = schedule(s)
    assert started_ids(d) == starts
    assert sorted(preempted_ids(d)) == sorted(victims)
    for p in d.preemptions:
        assert p.for_workload_id == "v1" and "quota" in p.reason
    if starts:
        # the start uses exactly the GPUs the preempted work gives back
        freed = {sh.gpu_uuid for r in run if r.workload.id in victims for sh in r.allocation.shares}
        assert {sh.gpu_uuid for sh in d.starts[0].allocation.shares} <= freed
        assert d.starts[0].over_quota is False
    else:
        assert "no GPUs are idle to borrow" in reason(d, "v1") or "quota" in reason(d, "v1")


SESSIONS = [
    # (case, vision quota, vision's running work, victim expected)
    ("session within quota survives; over-quota job goes", 2, [session("s-old", "vision", 2, at=0), job("j-new", "vision", 2, at=5)], "j-new"),
    ("over-quota session can be preempted", 2, [job("j-old", "vision", 2, at=0), session("s-new", "vision", 2, at=5)], "s-new"),
    ("higher priority is within quota first", 2, [job("j-low", "vision", 2, at=0), session("s-high", "vision", 2, at=5, priority=5)], "j-low"),
    ("a session entirely within quota is never a victim", 4, [session("s1", "vision", 2, at=0), session("s2", "vision", 2, at=5)], None),
]


@pytest.mark.parametrize("case,quota,vision,victim", SESSIONS, ids=[c[0] for c in SESSIONS])
def test_sessions_within_quota_are_never_preempted(case, quota, vision, victim):
    run = [running(vision[0], "a/0", "a/1"), running(vision[1], "a/2", "a/3")]
    run += full_of("nlp", 4, first_gpu=4)
    s = snap(pool(("a", 8)), teams(("vision", quota), ("nlp", 6)), run, [job("n-new", "nlp", 2, at=100)])
    d = schedule(s)
    if victim is None:
        assert preempted_ids(d) == [] and started_ids(d) == []
    else:
        assert preempted_ids(d) == [victim]
        assert started_ids(d) == ["n-new"]
