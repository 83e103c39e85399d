"""5: a large job waiting longer than reservation_after_s gets a
reservation; smaller work backfills only where it does not delay it."""

from __future__ import annotations

import pytest

from .helpers import apply, job, nodes_of, pool, reason, running, schedule, snap, started_ids, teams

T = teams(("vision", 8), ("nlp", 10), ("bio", 0))
HOUR = 3600.0


def world(big_waited: float, small_team="nlp", small_gpus=1):
    """a: 4 of 8 busy, b: 6 of 8 busy (nlp, within its quota); vision's 8-GPU job waits."""
    run = [running(job(f"nlp-a{i}", "nlp", 1, at=i), f"a/{i}") for i in range(4)]
    run += [running(job(f"nlp-b{i}", "nlp", 1, at=i), f"b/{i}") for i in range(6)]
    now = 10 * HOUR
    big = job("big", "vision", 8, at=now - big_waited)
    small = job("small", small_team, small_gpus, at=now - 60)
    return snap(pool(("a", 8), ("b", 8)), T, run, [big, small], now=now, reservation_after_s=HOUR)


CASES = [
    # (case, big waited, small team, small GPUs, small starts?, small lands on)
    ("not starving yet: small work takes any fitting GPUs", 0.5 * HOUR, "nlp", 2, True, "b"),
    ("starving: small work backfills beside the reservation", 2 * HOUR, "nlp", 2, True, "b"),
    ("starving: work that only fits on held GPUs waits", 2 * HOUR, "bio", 4, False, None),
    ("not starving: the same work takes the GPUs", 0.5 * HOUR, "bio", 4, True, "a"),
]


@pytest.mark.parametrize("case,waited,team,gpus,starts,node", CASES, ids=[c[0] for c in CASES])
def test_reservation_and_backfill(case, waited, team, gpus, starts, node):
    d = schedule(world(waited, team, gpus))
    assert "big" not in started_ids(d)
    big = [p for p in d.pending if p.workload_id == "big"][0]
    assert big.reserved == (waited > HOUR)
    if big.reserved:
        assert "reservation" in big.reason and "4 of 8 GPUs held on a" in big.reason
        assert big.position == 1
    assert ("small" in started_ids(d)) == starts
    if starts:
        assert nodes_of(d, "small") == [node]
    else:
        assert "reserved for big" in reason(d, "small")


def test_the_reservation_fills_as_work_ends_and_the_job_starts():
    s = world(2 * HOUR, "bio", 4)
    d = schedule(s)
    s = apply(s, d)
    # the four jobs on node a end; nobody else may take those GPUs
    rest = tuple(r for r in s.running if not r.workload.id.startswith("nlp-a"))
    s = snap(s.pool, s.teams, rest, s.pending, now=s.now + 60, reservation_after_s=HOUR)
    d = schedule(s)
    assert "big" in started_ids(d)
    assert nodes_of(d, "big") == ["a"]
    assert "small" not in started_ids(d)


def test_no_reservations_when_switched_off():
    s = world(2 * HOUR, "bio", 4)
    s = snap(s.pool, s.teams, s.running, s.pending, now=s.now, reservation_after_s=None)
    d = schedule(s)
    assert "small" in started_ids(d)
    assert not any(p.reserved for p in d.pending)


def two_starving(**cfg):
    """Two big jobs starve; three nodes each have some GPUs free."""
    run = [running(job(f"nlp-{n}{i}", "nlp", 1, at=i), f"{n}/{i}") for n, busy in (("a", 4), ("b", 5), ("c", 6)) for i in range(busy)]
    now = 10 * HOUR
    pend = [job("big-old", "vision", 8, at=now - 3 * HOUR), job("big-new", "vision", 8, at=now - 2 * HOUR), job("small", "bio", 3, at=now - 60)]
    p = pool(("a", 8), ("b", 8), ("c", 8))
    return schedule(snap(p, teams(("vision", 16), ("nlp", 16), ("bio", 0)), run, pend, now=now, reservation_after_s=HOUR, **cfg))


@pytest.mark.parametrize("limit,reserved,small_starts", [(1, ["big-old"], True), (None, ["big-old", "big-new"], False)])
def test_only_the_oldest_holds_gpus_by_default(limit, reserved, small_starts):
    d = two_starving(max_reservations=limit)
    assert [p.workload_id for p in d.pending if p.reserved] == reserved
    assert "4 of 8 GPUs held on a" in reason(d, "big-old")
    # with one reservation, the rest of the free GPUs stay usable for backfill
    assert ("small" in started_ids(d)) == small_starts


# ---------------------------------------------------------------- backfill that uses time (EASY)


def timed_world(small_limit=None, small_estimate=None, running_limits=(2 * HOUR,) * 10, on_estimates=False, now_ran=HOUR):
    """As ``world``: vision's 8-GPU job starves with 4 cards of a held; bio's 4-GPU job fits only on held cards.

    nlp's running work has time limits (``running_limits``), started ``now_ran`` ago: the reservation's
    expected start is when the first four of a's and b's... cards free up on its node."""
    now = 10 * HOUR
    run = [running(job(f"nlp-a{i}", "nlp", 1, at=i, time_limit_s=running_limits[i]), f"a/{i}", started=now - now_ran) for i in range(4)]
    run += [running(job(f"nlp-b{i}", "nlp", 1, at=i, time_limit_s=running_limits[4 + i]), f"b/{i}", started=now - now_ran) for i in range(6)]
    big = job("big", "vision", 8, at=now - 2 * HOUR)
    small = job("small", "bio", 4, at=now - 60, time_limit_s=small_limit, estimate_s=small_estimate)
    return snap(pool(("a", 8), ("b", 8)), T, run, [big, small], now=now, reservation_after_s=HOUR, backfill_on_estimates=on_estimates)


NONE = (None,) * 10
TIMED = [
    # (case, small's limit, small's estimate, running limits, backfill on estimates?, small starts?)
    ("no limit: kept off held cards", None, None, (2 * HOUR,) * 10, False, False),
    ("a limit that ends before the reservation's expected start: backfills", 0.5 * HOUR, None, (2 * HOUR,) * 10, False, True),
    ("a limit past the reservation's expected start: waits", 3 * HOUR, None, (2 * HOUR,) * 10, False, False),
    ("running work without limits: the expected start is not known, nothing backfills", 0.1 * HOUR, None, NONE, False, False),
    ("an estimate alone is not trusted by default", None, 0.5 * HOUR, (2 * HOUR,) * 10, False, False),
    ("an estimate is trusted where the admin allows it", None, 0.5 * HOUR, (2 * HOUR,) * 10, True, True),
]


@pytest.mark.parametrize("case,limit,estimate,limits,on_estimates,starts", TIMED, ids=[c[0] for c in TIMED])
def test_backfill_that_uses_time(case, limit, estimate, limits, on_estimates, starts):
    d = schedule(timed_world(limit, estimate, limits, on_estimates))
    assert "big" not in started_ids(d)
    assert ("small" in started_ids(d)) == starts
    if starts:
        assert nodes_of(d, "small") == ["a"]
        why = [s.reason for s in d.starts if s.workload_id == "small"][0]
        assert "backfilled onto GPUs held for big" in why and "ends it before big is expected to start (in 60 min)" in why


def test_work_backfilled_on_an_estimate_that_overran_is_preempted_back():
    now = 10 * HOUR
    # On a: 4 cards free (held for big); 4 cards of a job started 30 min ago on a 10-min estimate, after big began to starve.
    over = running(job("over", "nlp", 4, at=now - HOUR, estimate_s=600.0), "a/4", "a/5", "a/6", "a/7", started=now - 1800)
    busy = [running(job(f"nlp-b{i}", "nlp", 1, at=i), f"b/{i}") for i in range(6)]
    big = job("big", "vision", 8, at=now - 5 * HOUR)
    s = snap(pool(("a", 8), ("b", 8)), T, [over, *busy], [big], now=now, reservation_after_s=HOUR, backfill_on_estimates=True)
    d = schedule(s)
    assert [p.workload_id for p in d.preemptions] == ["over"]
    assert "ran past its run-time estimate" in d.preemptions[0].reason
    # Without the admin's setting, nothing was backfilled on estimates, so nothing is preempted for it.
    s = snap(pool(("a", 8), ("b", 8)), T, [over, *busy], [big], now=now, reservation_after_s=HOUR)
    assert schedule(s).preemptions == ()


def test_a_gang_over_several_nodes_holds_cards_on_each_of_them():
    # a: 5 cards free, b: 3 free, c: none. A 16-GPU gang needs two nodes: it holds a's 5 and b's 3.
    run = [running(job(f"nlp-a{i}", "nlp", 1, at=i), f"a/{i}") for i in range(3)]
    run += [running(job(f"nlp-b{i}", "nlp", 1, at=i), f"b/{i}") for i in range(5)]
    run += [running(job(f"bio-c{i}", "bio", 1, at=i), f"c/{i}") for i in range(8)]
    now = 10 * HOUR
    big = job("big", "vision", 16, at=now - 2 * HOUR)
    t = teams(("vision", 16), ("nlp", 10), ("bio", 0))
    d = schedule(snap(pool(("a", 8), ("b", 8), ("c", 8)), t, run, [big], now=now, reservation_after_s=HOUR, preemption=False))
    assert "big" not in started_ids(d)
    assert "8 of 16 GPUs held on a, b" in reason(d, "big")


STARVING_BORROWER = [
    # (case, pending besides the starving borrower b1 (1 GPU, waited 2 h), who starts)
    ("work within its quota goes before a starving borrower", [job("o1", "own", 2, at=7000)], ["o1"]),
    ("with no work within quota waiting, the starving borrower goes first", [job("c1", "c", 2, at=7000)], ["b1"]),
]


@pytest.mark.parametrize("case,pend,starts", STARVING_BORROWER, ids=[c[0] for c in STARVING_BORROWER])
def test_a_starving_borrower_waits_for_work_within_quota(case, pend, starts):
    # Two free cards; b borrows (quota 0). Before, b1 took a card first and o1 (own's quota of 2) found no room.
    s = snap(pool(("a", 2)), teams(("own", 2), ("b", 0), ("c", 0)), (), [job("b1", "b", 1, at=0)] + pend, now=7200.0)
    assert started_ids(schedule(s)) == starts
