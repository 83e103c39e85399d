"""3: inside a team users take turns, so one user's long queue does not lock
out a colleague."""

from __future__ import annotations

import pytest

from .helpers import job, pool, running, schedule, snap, teams

CASES = [
    # (case, free GPUs, alice running, bob's jobs, expect bob to start)
    ("empty pool: bob starts beside alice's flood", 4, 0, 1, True),
    ("alice holds 3 GPUs: the next free GPU is bob's", 1, 3, 1, True),
    ("bob alone already runs more than alice: alice goes next", 1, 0, 2, False),
]


@pytest.mark.parametrize("case,free,alice_running,bob_jobs,bob_starts", CASES, ids=[c[0] for c in CASES])
def test_a_colleague_is_not_locked_out(case, free, alice_running, bob_jobs, bob_starts):
    busy = alice_running + (1 if case.startswith("bob alone") else 0)
    run = [running(job(f"ar{i}", "vision", 1, at=i, user="alice"), f"a/{i}") for i in range(alice_running)]
    if case.startswith("bob alone"):
        run.append(running(job("br0", "vision", 1, at=0, user="bob"), f"a/{alice_running}"))
    nodes = ("a", busy + free)
    flood = [job(f"alice-{i}", "vision", 1, at=10 + i, user="alice") for i in range(50)]
    bob = [job(f"bob-{i}", "vision", 1, at=500 + i, user="bob") for i in range(bob_jobs)]
    d = schedule(snap(pool(nodes), teams(("vision", 8)), run, flood + bob))
    bob_started = any(s.workload_id.startswith("bob") for s in d.starts)
    assert bob_started == bob_starts
    assert len(d.starts) == free


def test_queue_positions_interleave_users():
    flood = [job(f"alice-{i}", "vision", 1, at=i, user="alice") for i in range(50)]
    d = schedule(snap(pool(("a", 1)), teams(("vision", 8)), [running(job("x", "vision", 1, at=0, user="carol"), "a/0")], flood + [job("bob-0", "vision", 1, at=999, user="bob")]))
    positions = {p.workload_id: p.position for p in d.pending}
    assert positions["bob-0"] <= 2, "bob's only job is near the front, not behind alice's 50"
    assert positions["alice-0"] < positions["alice-1"] < positions["alice-49"]


def test_priority_comes_before_user_turns():
    run = [running(job("ar", "vision", 1, at=0, user="alice"), "a/0")]
    urgent = job("alice-urgent", "vision", 1, at=900, user="alice", priority=10)
    d = schedule(snap(pool(("a", 2)), teams(("vision", 8)), run, [job("bob-0", "vision", 1, at=10, user="bob"), urgent]))
    assert [s.workload_id for s in d.starts] == ["alice-urgent"]
