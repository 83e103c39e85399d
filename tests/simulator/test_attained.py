"""Attained service in the replay: the core's least-attained-service rules see what a live pool would report."""

from __future__ import annotations

import pytest

from hub_ext.simulator.engine import Simulation
from hub_ext.simulator.policies import make_policy

from .helpers import cluster, job, trace

HOUR = 3600.0


def jobs_of(result):
    return {j.job.id: j for j in result.jobs}


def test_a_long_job_drops_a_level_at_16_gpu_hours_and_a_requeued_job_keeps_its_service():
    # One team on one 8-GPU node. a1 holds all 8 GPUs from 0: at 2 h it has held 16 GPU-hours (the
    # default cut), so fresh a2 (queued since 1 h) overtakes it then, not when a1 ends at 10 h.
    # a1 goes back to the queue with its 16 GPU-hours; fresh a3 (queued at 2.5 h) starts before it
    # when a2 ends at 3 h, although a1 was submitted first.
    t = trace(job("a1", 0, 10 * HOUR, gpus=8), job("a2", HOUR, HOUR, gpus=8), job("a3", 2.5 * HOUR, HOUR, gpus=8))
    c = cluster(nodes=1, gpus_per_node=8, a=8)
    r = jobs_of(Simulation(t, make_policy("pool", c), checkpoint_interval=HOUR).run())
    assert r["a2"].first_start == pytest.approx(2 * HOUR)  # the crossing's own moment
    assert r["a1"].preemptions == 1
    assert r["a3"].first_start == pytest.approx(3 * HOUR)
    # a1 runs again once a3 is done, with the 2 hours it had checkpointed: 8 hours more.
    assert r["a1"].finished_at == pytest.approx(4 * HOUR + 8 * HOUR)
    assert r["a1"].attained == pytest.approx(8 * 10 * HOUR)


def test_with_least_attained_service_off_the_replay_is_first_come_first_served_inside_a_team():
    # The same replay with the pool's switch off (las_thresholds_gpu_s=()): a2 waits for a1 to end.
    t = trace(job("a1", 0, 10 * HOUR, gpus=8), job("a2", HOUR, HOUR, gpus=8))
    c = cluster(nodes=1, gpus_per_node=8, a=8)
    r = jobs_of(Simulation(t, make_policy("pool", c, las=False)).run())
    assert r["a2"].first_start == pytest.approx(10 * HOUR)
    assert r["a1"].preemptions == 0


def test_new_elastic_work_shrinks_an_elastic_job_that_has_run():
    # e1 (elastic, asked 8) holds the node; fresh e2 arrives at 1 h. The core's rule for new work shrinks
    # e1 to half of what it asked only if e1 reports attained service: the replay brings it up to date
    # before the cycle, so e2 starts at once on 4 GPUs instead of waiting 10 hours.
    t = trace(job("e1", 0, 10 * HOUR, gpus=8, min_gpus=1, max_gpus=8), job("e2", HOUR, HOUR, gpus=4, min_gpus=1, max_gpus=8))
    c = cluster(nodes=1, gpus_per_node=8, a=8)
    r = jobs_of(Simulation(t, make_policy("pool", c)).run())
    assert r["e2"].first_start == pytest.approx(HOUR)
    assert r["e1"].preemptions == 0 and r["e1"].resizes >= 1


def test_attained_service_adds_up_to_the_gpu_time_the_pool_held():
    # Whole GPUs, fractions, an elastic job that grows and shrinks, preemptions: each job's attained service
    # (every run, each size for as long as it held it, a fraction at its fraction) sums to the pool's held GPU-time.
    jobs = [job("e", 0, 4 * HOUR, gpus=2, min_gpus=1, max_gpus=8, team="a"), job("a1", 2 * HOUR, 3 * HOUR, gpus=8, team="a")]
    jobs += [job(f"b{i}", 0.5 * HOUR, 6 * HOUR, gpus=4, team="b") for i in range(4)]
    jobs += [job(f"f{i}", 3 * HOUR, 2 * HOUR, gpus=0.5, team="a") for i in range(3)]
    end = 5 * HOUR
    result = Simulation(trace(*jobs), make_policy("pool", cluster(nodes=2, gpus_per_node=8, a=8, b=8)), end=end).run()
    assert sum(j.preemptions for j in result.jobs) > 0 and any(j.resizes for j in result.jobs)
    assert sum(j.attained_at(end) for j in result.jobs) == pytest.approx(result.allocated_gpu_seconds)
    for team in ("a", "b"):
        mine = sum(j.attained_at(end) for j in result.jobs if j.job.team == team)
        assert mine == pytest.approx(result.team_gpu_seconds[team])
