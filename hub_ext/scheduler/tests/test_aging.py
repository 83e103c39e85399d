"""Aging: a borrower's next workload moves up the between-teams order as it waits, bounded."""

from __future__ import annotations

import pytest

from hub_ext.scheduler.aging import credit
from hub_ext.scheduler.model import SchedulerConfig

from .helpers import job, pool, reason, running, schedule, snap, started_ids, teams

CREDIT = [
    # (rate per hour, cap, waited s, credit)
    (1.0, 4.0, 3600.0, 1.0),
    (1.0, 4.0, 36000.0, 4.0),
    (0.0, 4.0, 36000.0, 0.0),
    (2.0, 4.0, 0.0, 0.0),
]


@pytest.mark.parametrize("rate,cap,waited,expected", CREDIT)
def test_credit_grows_with_the_wait_up_to_its_bound(rate, cap, waited, expected):
    assert credit(SchedulerConfig(aging_gpus_per_hour=rate, aging_max_gpus=cap), waited) == expected


def contest(now, **cfg):
    """vision borrows 2 GPUs, nlp none; one idle GPU; vision's workload waited since 0, nlp's just now."""
    run = [running(job(f"vr{i}", "vision", 1), f"a/{i}") for i in range(3)] + [running(job("nr", "nlp", 1), "a/3")]
    pend = [job("v1", "vision", 1, at=0.0, user="bob"), job("n1", "nlp", 1, at=now, user="carol")]
    return snap(pool(("a", 5)), teams(("vision", 1), ("nlp", 1)), run, pend, now=now, reservation_after_s=10**9, **cfg)


ORDER = [
    # (case, now, aging per hour, aging cap, who gets the idle GPU)
    ("no aging: the team borrowing less goes first", 7200.0, 0.0, 0.0, "n1"),
    ("aged 2 h at 1 GPU/h: as if vision borrowed 2 less, it wins the tie on submit time", 7200.0, 1.0, 4.0, "v1"),
    ("aged 1 h: not yet enough", 3600.0, 1.0, 4.0, "n1"),
    ("bounded: a cap of 1 GPU never overcomes a 2 GPU lead", 36000.0, 1.0, 1.0, "n1"),
]


@pytest.mark.parametrize("case,now,rate,cap,winner", ORDER, ids=[c[0] for c in ORDER])
def test_aging_moves_a_waiting_borrower_up_within_its_bound(case, now, rate, cap, winner):
    d = schedule(contest(now, aging_gpus_per_hour=rate, aging_max_gpus=cap))
    assert started_ids(d) == [winner]


def test_the_reason_explains_the_aging():
    d = schedule(contest(3600.0, aging_gpus_per_hour=0.5, aging_max_gpus=4.0))
    assert "waiting 1.0 h moved it up as if its team borrowed 0.5 GPUs less" in reason(d, "v1")
