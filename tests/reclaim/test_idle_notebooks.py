"""The simulator's idle-notebook model: reclaiming idle sessions on a virtual clock."""

from __future__ import annotations

import math
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "simulator"))
from helpers import cluster, job, trace  # noqa: E402  (tests/simulator/helpers.py)

from hub_ext.reclaim import IdleDefinition, IdlePolicy, PolicySettings  # noqa: E402
from hub_ext.simulator.idle_notebooks import (  # noqa: E402
    Activity,
    NotebookModel,
    add_notebooks,
    compare,
    draw_activity,
    format_comparison,
    replay_with_notebooks,
)

HOUR = 3600.0
LIMIT, GRACE = 3600.0, 900.0


def settings(mode="when_waiting"):
    return PolicySettings(IdlePolicy(idle_limit_s=LIMIT, grace_s=GRACE, mode=mode), IdleDefinition())


def session(id, at, length, gpus=2, team="a"):
    return job(id, at, length, gpus=gpus, kind="session")


def run(jobs, activities, mode="when_waiting", reclaim=True, gpus=2):
    t = trace(*jobs)
    c = cluster(nodes=1, gpus_per_node=gpus).with_teams_for(t)
    result, hook = replay_with_notebooks(t, activities, c, "pool", settings(mode), reclaim, checkpoint_interval=0, end=None)
    return {j.job.id: j for j in result.jobs}, hook.figures


# A notebook that works 10 min, idles until 5 h, works an hour, idles to 10 h.
NOTEBOOK = Activity(starts=(0.0, 5 * HOUR), ends=(600.0, 6 * HOUR), length=10 * HOUR)


def test_waiting_job_gets_the_reclaimed_gpus_and_the_user_comes_back_later():
    jobs = [session("nb-0", 0, NOTEBOOK.length), job("j1", 1000, HOUR, gpus=2)]
    off, off_fig = run(jobs, {"nb-0": NOTEBOOK}, reclaim=False)
    on, on_fig = run(jobs, {"nb-0": NOTEBOOK}, reclaim=True)

    # Off: the job waits for the whole session.
    assert off["j1"].first_start == pytest.approx(NOTEBOOK.length)
    assert off_fig.reclaims == 0
    # On: warned an hour after the last burst ended, reclaimed at the end of the grace period.
    reclaimed_at = 600 + LIMIT + GRACE
    # (The user's second visit idles again after its burst and is warned too, but
    # nobody waits for GPUs then, so "when_waiting" leaves it alone.)
    assert on_fig.warnings == 2 and on_fig.reclaims == 1
    assert on["j1"].first_start == pytest.approx(reclaimed_at)
    # The user comes back for their next burst and gets GPUs (the job is done by then).
    assert on_fig.returns == ["nb-0~1"]
    back = on["nb-0~1"]
    assert back.job.submitted_at == pytest.approx(5 * HOUR) and back.first_start == pytest.approx(5 * HOUR)
    # What was given back is the idle tail the session would have held.
    assert on_fig.given_back_gs == pytest.approx(2 * (5 * HOUR - reclaimed_at))
    assert off_fig.held_gs - on_fig.held_gs == pytest.approx(on_fig.given_back_gs)
    assert on_fig.busy_gs == pytest.approx(off_fig.busy_gs)


def test_when_waiting_keeps_idle_gpus_nobody_needs_and_immediate_does_not():
    jobs = [session("nb-0", 0, NOTEBOOK.length)]
    _, waiting = run(jobs, {"nb-0": NOTEBOOK}, mode="when_waiting")
    _, immediate = run(jobs, {"nb-0": NOTEBOOK}, mode="immediate")
    # Warned in each long idle spell (the burst at 5 h withdraws the first warning) ...
    assert (waiting.warnings, waiting.withdrawn, waiting.reclaims) == (2, 1, 0)
    # ... and with "immediate" reclaimed in each: the user comes back once for the 5 h burst.
    assert (immediate.warnings, immediate.reclaims, immediate.returns) == (2, 2, ["nb-0~1"])


def test_a_session_that_keeps_working_is_never_warned():
    # Bursts every 50 minutes: never idle for the hour the policy allows.
    starts = tuple(float(k * 3000) for k in range(12))
    busy = Activity(starts=starts, ends=tuple(s + 600 for s in starts), length=10 * HOUR)
    jobs = [session("nb-0", 0, busy.length), job("j1", 1000, HOUR, gpus=2)]
    ids, fig = run(jobs, {"nb-0": busy}, mode="immediate")
    assert (fig.warnings, fig.reclaims) == (0, 0)
    assert ids["j1"].first_start == pytest.approx(busy.length)


def test_busy_again_within_the_grace_period_withdraws_the_warning():
    back_in_grace = Activity(starts=(0.0, 600 + LIMIT + GRACE / 2), ends=(600.0, 600 + LIMIT + GRACE / 2 + 600), length=3 * HOUR)
    jobs = [session("nb-0", 0, back_in_grace.length), job("j1", 1000, HOUR, gpus=2)]
    _, fig = run(jobs, {"nb-0": back_in_grace}, mode="immediate")
    # Idle again after that burst: warned afresh, and reclaimed at the end of the new grace period.
    assert (fig.warnings, fig.withdrawn, fig.reclaims) == (2, 1, 1)


@pytest.mark.parametrize(
    "p, busy, idle_since, next_busy",
    [(0, True, None, 5 * HOUR), (599.9, True, None, 5 * HOUR), (600, False, 600.0, 5 * HOUR), (4 * HOUR, False, 600.0, 5 * HOUR), (7 * HOUR, False, 6 * HOUR, None)],
)
def test_activity_lookups(p, busy, idle_since, next_busy):
    assert NOTEBOOK.busy_at(p) is busy
    if idle_since is not None:
        assert NOTEBOOK.idle_since(p) == idle_since
    assert NOTEBOOK.next_busy(p) == next_busy


def test_activity_rest_and_busy_share():
    rest = NOTEBOOK.after(5 * HOUR)
    assert rest.starts == (0.0,) and rest.ends == (HOUR,) and rest.length == 5 * HOUR
    assert NOTEBOOK.busy_fraction == pytest.approx((600 + HOUR) / (10 * HOUR))


def test_drawn_activity_has_about_the_asked_busy_fraction():
    import random

    a = draw_activity(random.Random(3), 2000 * HOUR, 0.25, 1200)
    assert a.busy_fraction == pytest.approx(0.25, abs=0.02)
    assert all(s < e for s, e in zip(a.starts, a.ends)) and all(e < s for e, s in zip(a.ends, a.starts[1:]))


def test_comparison_on_a_busy_synthetic_pool_gives_gpu_time_back():
    # Batch work that keeps a 16-GPU pool queued for the whole day, plus idle-prone notebooks.
    jobs = [job(f"j{k}", k * 600, 2 * HOUR, gpus=2) for k in range(140)]
    t = trace(*jobs)
    model = NotebookModel(sessions_per_hour=1.0, mean_session_hours=5, mean_busy_fraction=0.2, seed=1)
    c = compare(t, cluster(nodes=2, gpus_per_node=8), model, IdlePolicy(idle_limit_s=LIMIT, grace_s=GRACE, mode="when_waiting"), checkpoint_interval=0)
    off, on = c["reclaim_off"], c["reclaim_on"]
    assert off["reclaims"] == 0 and on["reclaims"] > 0
    assert on["gpu_hours_given_back"] > 0
    assert on["session_gpu_hours_idle"] < off["session_gpu_hours_idle"]
    assert on["session_gpu_hours_computing"] == pytest.approx(off["session_gpu_hours_computing"], rel=0.02)
    assert on["job_mean_wait_s"] < off["job_mean_wait_s"]
    text = format_comparison(c)
    assert "GPU-hours given back by reclaims" in text and "reclaim off" in text


def test_notebooks_are_added_over_the_window_and_are_sessions():
    t = trace(job("j0", 0, HOUR))
    with_nb, activities = add_notebooks(t, NotebookModel(sessions_per_hour=3, seed=2), until=24 * HOUR)
    sessions = [j for j in with_nb.jobs if j.kind == "session"]
    assert 40 <= len(sessions) <= 110 and set(activities) == {j.id for j in sessions}
    assert all(0 <= j.submitted_at < 24 * HOUR for j in sessions)
    assert all(math.isclose(j.busy_fraction, activities[j.id].busy_fraction) for j in sessions)
