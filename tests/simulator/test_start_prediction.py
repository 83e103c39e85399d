"""Expected starts measured in the simulator, and backfill by time measured there."""

from __future__ import annotations

from hub_ext.simulator.replay import replay
from hub_ext.simulator.report import format_summary

from .helpers import cluster, job, trace

H = 3600.0


def queue_of_equal_jobs():
    # One 1-GPU node; fifteen 1-hour jobs of one user arrive 20 minutes apart: the queue grows.
    return trace(*[job(f"j{i}", 1200 * i, H) for i in range(15)])


def test_predictions_from_history_match_a_regular_queue():
    _, s = replay(queue_of_equal_jobs(), cluster(1, 1, a=1), "pool", predict_starts=100)
    sp = s["start_prediction"]
    assert sp["predicted_arrivals"] == 15
    # Three jobs must have finished before an estimate exists: arrivals before that are "not known".
    assert sp["predictions"] >= 1 and sp["not_known"] >= 1
    assert sp["median_abs_error_s"] is not None and sp["median_abs_error_s"] <= 120
    assert sp["within_50pct"] == 1.0
    assert "expected start (estimate) vs real" in format_summary(s)


def test_the_naive_baseline_is_reported_beside_it():
    _, s = replay(queue_of_equal_jobs(), cluster(1, 1, a=1), "pool", predict_starts=100)
    sp = s["start_prediction"]
    assert sp["baseline_median_abs_error_s"] is None or sp["baseline_median_abs_error_s"] >= sp["median_abs_error_s"]


def test_reservations_idle_less_with_backfill_by_time():
    # Two 4-GPU nodes. A 4-GPU job starves behind 1-GPU jobs; short 1-GPU jobs with limits can use the held cards.
    jobs = [job(f"long{i}", 0, 3 * H) for i in range(5)]
    jobs += [job("big", 60, H, gpus=4)]
    jobs += [job(f"short{i}", 2 * H + 60 * i, 0.4 * H) for i in range(12)]
    t = trace(*jobs)
    off = replay(t, cluster(2, 4, a=16), "pool", policy_options={"time_limit_factor": 1.0, "time_backfill": False})[1]
    on = replay(t, cluster(2, 4, a=16), "pool", policy_options={"time_limit_factor": 1.0, "time_backfill": True})[1]
    assert off["reservations"]["reserved_workloads"] >= 1
    assert on["reservations"]["idle_gpu_hours"] < off["reservations"]["idle_gpu_hours"]
    # The reserved job is not delayed by what backfilled.
    assert on["reservations"]["mean_wait_from_reservation_s"] <= off["reservations"]["mean_wait_from_reservation_s"] + 1
