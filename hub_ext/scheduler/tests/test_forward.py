"""Expected starts from a forward run of the queue with the same core."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hub_ext.scheduler.forward import run_forward

from .helpers import job, pool, running, session, snap, teams

H = 3600.0
NOW = 100 * H
T = teams(("vision", 4), ("nlp", 4))


def r(w, *cards, ran=0.0):
    return running(w, *cards, started=NOW - ran)


def est(w, seconds):
    return replace(w, estimate_s=seconds)


# A 4-GPU node "a".
CASES = [
    # (case, running, pending, expected start offsets from now (None: not known))
    (
        "free GPUs now: starts now",
        [r(est(job("x", "nlp", 2), 2 * H), "a/0", "a/1")],
        [est(job("p", "vision", 2, at=NOW - 10), H)],
        {"p": 0.0},
    ),
    (
        "waits for the running job's remaining time",
        [r(est(job("x", "nlp", 4), 3 * H), "a/0", "a/1", "a/2", "a/3", ran=H)],
        [est(job("p", "vision", 2, at=NOW - 10), H)],
        {"p": 2 * H},
    ),
    (
        "second in line waits for the first to run too",
        [r(est(job("x", "nlp", 4), 3 * H), "a/0", "a/1", "a/2", "a/3", ran=H)],
        [est(job("p", "vision", 4, at=NOW - 20), H), est(job("q", "vision", 4, at=NOW - 10), 5 * H)],
        {"p": 2 * H, "q": 3 * H},
    ),
    (
        "a session with no estimate holds its GPUs: not known",
        [r(session("s", "nlp", 4), "a/0", "a/1", "a/2", "a/3", ran=H)],
        [est(job("p", "vision", 2, at=NOW - 10), H)],
        {"p": None},
    ),
    (
        "a time limit bounds the running work",
        [r(job("x", "nlp", 4, time_limit_s=4 * H), "a/0", "a/1", "a/2", "a/3", ran=H)],
        [est(job("p", "vision", 2, at=NOW - 10), H)],
        {"p": 3 * H},
    ),
    (
        "overrunning work is not 'ending now'",
        [r(est(job("x", "nlp", 4), H), "a/0", "a/1", "a/2", "a/3", ran=8 * H)],
        [est(job("p", "vision", 2, at=NOW - 10), H)],
        {"p": 1.75 * H},
    ),
    (
        "smaller work fits beside: starts before the bigger one ahead",
        [r(est(job("x", "nlp", 3), 3 * H), "a/0", "a/1", "a/2")],
        [est(job("big", "vision", 4, at=NOW - 20), H), est(job("small", "vision", 1, at=NOW - 10), H)],
        {"big": 3 * H, "small": 0.0},
    ),
]


@pytest.mark.parametrize("case,run,pend,expected", CASES, ids=[c[0] for c in CASES])
def test_forward(case, run, pend, expected):
    f = run_forward(snap(pool(("a", 4)), T, run, pend, now=NOW))
    got = {wid: (None if fc.at is None else round(fc.at - NOW)) for wid, fc in f.items()}
    assert got == expected
    for wid, fc in f.items():
        assert fc.basis
        if fc.at is None:
            assert fc.basis.startswith("not known")


def test_basis_names_what_frees_the_gpus():
    run = [r(est(job("x", "nlp", 4), 3 * H), "a/0", "a/1", "a/2", "a/3", ran=H)]
    f = run_forward(snap(pool(("a", 4)), T, run, [est(job("p", "vision", 2, at=NOW), H)], now=NOW), {"x": "median of team nlp's last 9 four-GPU jobs"})
    assert f["p"].basis == "GPUs expected to free up when x ends (median of team nlp's last 9 four-GPU jobs)"


def test_bounded_by_the_horizon():
    run = [r(est(job("x", "nlp", 4), 90 * 86400.0), "a/0", "a/1", "a/2", "a/3")]
    f = run_forward(snap(pool(("a", 4)), T, run, [est(job("p", "vision", 2, at=NOW), H)], now=NOW), horizon_s=7 * 86400)
    assert f["p"].at is None and "within 7 d" in f["p"].basis


def test_the_snapshot_is_left_alone():
    run = [r(est(job("x", "nlp", 4), 3 * H), "a/0", "a/1", "a/2", "a/3", ran=H)]
    s = snap(pool(("a", 4)), T, run, [est(job("p", "vision", 2, at=NOW), H)], now=NOW)
    run_forward(s)
    assert [w.id for w in s.pending] == ["p"] and [x.workload.id for x in s.running] == ["x"]


def test_until_stops_once_that_workload_has_started():
    run = [r(est(job("x", "nlp", 4), 3 * H), "a/0", "a/1", "a/2", "a/3", ran=H)]
    pend = [est(job("p", "vision", 4, at=NOW - 20), H), est(job("q", "vision", 4, at=NOW - 10), 5 * H)]
    full = run_forward(snap(pool(("a", 4)), T, run, pend, now=NOW))
    only_p = run_forward(snap(pool(("a", 4)), T, run, pend, now=NOW), until="p")
    assert only_p["p"] == full["p"]
    assert "q" not in only_p or only_p["q"].at is None


LAS_CUT = 16 * H


def test_a_running_job_reaching_the_threshold_makes_way_for_its_teams_fresh_work():
    """Least attained service in the forward run: a 4-GPU job that has held 14 GPU-hours reaches
    16 half an hour from now; fresh work of its team then overtakes it (it is preempted), so the
    fresh job's expected start is the crossing, not the long job's end 10 h away."""
    long = est(replace(job("long", "vision", 4), attained_gpu_s=14 * H), 20 * H)
    fresh = est(job("fresh", "vision", 4, at=NOW - 10), H)
    s = snap(pool(("a", 4)), T, [r(long, "a/0", "a/1", "a/2", "a/3", ran=10 * H)], [fresh], now=NOW)
    f = run_forward(s)
    assert round(f["fresh"].at - NOW) == round(0.5 * H)
    assert "least attained service" in f["fresh"].basis
    # With least attained service off it waits for the long job's estimated end (20 h, 10 h run).
    off = run_forward(replace(s, config=replace(s.config, las_thresholds_gpu_s=())))
    assert round(off["fresh"].at - NOW) == round(10 * H)


def test_a_session_past_the_threshold_is_never_overtaken_in_the_forward_run():
    long = est(replace(session("nb", "vision", 4), attained_gpu_s=14 * H), 20 * H)
    fresh = est(job("fresh", "vision", 4, at=NOW - 10), H)
    f = run_forward(snap(pool(("a", 4)), T, [r(long, "a/0", "a/1", "a/2", "a/3", ran=10 * H)], [fresh], now=NOW))
    assert round(f["fresh"].at - NOW) == round(10 * H)


def test_a_job_with_no_end_known_is_not_imagined_to_cross_the_threshold():
    long = replace(job("long", "vision", 4), attained_gpu_s=14 * H)  # no estimate, no limit
    fresh = est(job("fresh", "vision", 4, at=NOW - 10), H)
    f = run_forward(snap(pool(("a", 4)), T, [r(long, "a/0", "a/1", "a/2", "a/3", ran=10 * H)], [fresh], now=NOW))
    assert f["fresh"].at is None and f["fresh"].basis.startswith("not known")


def test_estimates_keep_running_work_that_is_leaving_leaving():
    """with_estimates sets estimates on running work without forgetting a preemption's notice: a workload
    preempted with notice (Running.leaving) still holds its GPUs and is not a victim again."""
    from hub_ext.scheduler.forward import with_estimates
    from hub_ext.scheduler.model import Running

    r = running(job("old", "vision", 1, at=0), "a/0")
    s = snap(pool(("a", 2)), teams(("vision", 2)), [Running(r.workload, r.allocation, leaving=True)], [])
    out = with_estimates(s, lambda w: 600.0)
    assert out.running[0].leaving and out.running[0].workload.estimate_s == 600.0
