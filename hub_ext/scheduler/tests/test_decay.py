"""Usage decay: the fair-share order remembers past usage, fading with a half-life."""

from __future__ import annotations

import pytest

from hub_ext.scheduler import Scheduler
from hub_ext.scheduler.decay import DecayedUsage, advance, advance_one, in_words, span
from hub_ext.scheduler.model import UsageHistory

from .helpers import job, pool, reason, running, schedule, snap, started_ids, teams

WEEK = 7 * 86400.0

ADVANCE = [
    # (case, average before, GPUs in use, seconds, half-life, average after)
    ("constant use converges on itself", 4.0, 4.0, WEEK, WEEK, 4.0),
    ("stopping fades to half after one half-life", 4.0, 0.0, WEEK, WEEK, 2.0),
    ("and to a quarter after two", 4.0, 0.0, 2 * WEEK, WEEK, 1.0),
    ("starting from nothing: half-way after one half-life", 0.0, 8.0, WEEK, WEEK, 4.0),
    ("no time, no change", 3.0, 8.0, 0.0, WEEK, 3.0),
]


@pytest.mark.parametrize("case,before,gpus,dt,half,after", ADVANCE, ids=[c[0] for c in ADVANCE])
def test_exponential_average(case, before, gpus, dt, half, after):
    assert advance_one(before, gpus, dt, half) == pytest.approx(after)


def test_updates_in_small_steps_equal_one_big_step_under_constant_use():
    d = DecayedUsage(3600.0, at=0.0)
    for t in range(60, 7201, 60):
        d.update(float(t), {"nlp": 2.0}, {("nlp", "carol"): 2.0})
    one = advance(UsageHistory(3600.0), {"nlp": 2.0}, {("nlp", "carol"): 2.0}, 7200.0)
    assert d.history.teams["nlp"] == pytest.approx(one.teams["nlp"])
    assert d.history.users[("nlp", "carol")] == pytest.approx(1.5)


def test_teams_gone_for_many_half_lives_are_forgotten():
    h = advance(UsageHistory(3600.0, {"old": 1.0}), {}, {}, 3600.0 * 40)
    assert "old" not in h.teams


def history(**teams):
    return UsageHistory(WEEK, dict(teams), {})


ORDER = [
    # (case, past averages, who gets the one idle GPU)
    ("no history: the older submit wins the tie", {}, "n1"),
    ("nlp borrowed 3 GPUs on average last week: vision goes first", {"nlp": 4.0}, "v1"),
    ("vision borrowed more in the past: nlp goes first", {"vision": 6.0, "nlp": 2.0}, "n1"),
    ("past use within quota does not count against a team", {"nlp": 1.0}, "n1"),
]


@pytest.mark.parametrize("case,past,winner", ORDER, ids=[c[0] for c in ORDER])
def test_borrowers_are_ordered_by_decayed_past_usage(case, past, winner):
    # Both teams at their quota of 1; one idle GPU to borrow; nlp submitted first.
    run = [running(job("vr", "vision", 1), "a/0"), running(job("nr", "nlp", 1), "a/1")]
    pend = [job("n1", "nlp", 1, at=10, user="carol"), job("v1", "vision", 1, at=20, user="bob")]
    s = snap(pool(("a", 3)), teams(("vision", 1), ("nlp", 1)), run, pend)
    s = type(s)(s.pool, s.teams, s.running, s.pending, s.now, s.config, history(**past))
    assert started_ids(schedule(s)) == [winner]


def test_the_reason_says_how_much_the_team_used_over_the_last_week():
    run = [running(job(f"nr{i}", "nlp", 1), f"a/{i}") for i in range(2)]
    s = snap(pool(("a", 2)), teams(("vision", 1), ("nlp", 1)), run, [job("n1", "nlp", 1, at=10)])
    s = type(s)(s.pool, s.teams, s.running, s.pending, s.now, s.config, history(nlp=2.3))
    assert "team nlp used 2.3 times its quota over the last week" in reason(schedule(s), "n1")


def test_users_inside_a_team_are_ordered_by_their_past_too():
    pend = [job("c1", "nlp", 1, at=10, user="carol"), job("e1", "nlp", 1, at=20, user="erin")]
    s = snap(pool(("a", 1)), teams(("nlp", 4)), (), pend)
    s = type(s)(s.pool, s.teams, s.running, s.pending, s.now, s.config, UsageHistory(WEEK, {"nlp": 3.0}, {("nlp", "carol"): 3.0}))
    assert started_ids(schedule(s)) == ["e1"]


def test_the_stateful_scheduler_and_the_pure_form_agree_with_history():
    run = [running(job("vr", "vision", 1), "a/0"), running(job("nr", "nlp", 1), "a/1")]
    pend = [job("n1", "nlp", 1, at=10), job("v1", "vision", 1, at=20)]
    s = snap(pool(("a", 3)), teams(("vision", 1), ("nlp", 1)), run, pend)
    s = type(s)(s.pool, s.teams, s.running, s.pending, s.now, s.config, history(nlp=4.0))
    sched = Scheduler(s.pool, s.teams, s.config)
    for r in s.running:
        sched.started(r.workload, r.allocation)
    for w in s.pending:
        sched.submit(w)
    sched.set_history(s.history)
    assert started_ids(sched.cycle(s.now)) == started_ids(schedule(s)) == ["v1"]


@pytest.mark.parametrize("seconds,words", [(WEEK, "week"), (86400, "day"), (3600, "hour"), (2 * 86400, "2 days")])
def test_half_lives_in_words(seconds, words):
    assert span(seconds) == words


def test_nothing_to_say_about_a_team_within_its_quota():
    assert in_words(history(nlp=0.9), "nlp", 1.0) is None
