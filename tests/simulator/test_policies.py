"""The three policies on the real scheduler core: what each world looks like to a team."""

from __future__ import annotations

import os

import pytest

from hub_ext.simulator.cluster import load_cluster, seed_cluster
from hub_ext.simulator.data import CLUSTERS, TRACES, resolve
from hub_ext.simulator.engine import FINISHED, PENDING, RUNNING, Simulation, SimulationHooks
from hub_ext.simulator.policies import make_policy, static_slices
from hub_ext.simulator.readers import read_trace
from hub_ext.simulator.replay import replay
from hub_ext.simulator.report import summarise

from .helpers import NO_SHARED, SHARED_TRACES, cluster, job, trace

HOUR = 3600.0


class Ledger(SimulationHooks):
    """An independent count of what every GPU and team holds, from the engine's start/stop notices."""

    def __init__(self):
        self.gpu = {}
        self.team = {}
        self.team_max = {}
        self.worst_gpu = 0.0
        self.held = {}

    def on_start(self, sim, js, now):
        allocation = self.held[js.job.id] = sim.state.running[js.job.id].allocation
        for share in allocation.shares:
            self.gpu[share.gpu_uuid] = self.gpu.get(share.gpu_uuid, 0.0) + share.fraction
            self.worst_gpu = max(self.worst_gpu, self.gpu[share.gpu_uuid])
        self.team[js.job.team] = self.team.get(js.job.team, 0.0) + js.held
        self.team_max[js.job.team] = max(self.team_max.get(js.job.team, 0.0), self.team[js.job.team])

    def on_stop(self, sim, js, now, outcome):
        allocation = self.held.pop(js.job.id)
        for share in allocation.shares:
            self.gpu[share.gpu_uuid] -= share.fraction
        self.team[js.job.team] -= allocation.gpus


def one_team_busy():
    # Team a submits 16 one-GPU jobs of an hour; team b submits nothing. 16 GPUs, quota 8 each.
    return trace(*(job(f"a{i}", 0, HOUR, team="a") for i in range(16))), cluster(nodes=2, gpus_per_node=8, a=8, b=8)


def test_pool_beats_static_when_a_team_is_idle():
    t, c = one_team_busy()
    _, pool = replay(t, c, "pool")
    _, static = replay(t, c, "static")
    # Pooled, team a borrows b's idle GPUs and everything runs at once.
    assert pool["mean_jct_s"] == pytest.approx(HOUR)
    assert pool["teams"]["a"]["mean_gpus_held"] > 8
    # Static, team a is confined to its 8 GPUs: two rounds.
    assert static["mean_jct_s"] == pytest.approx(1.5 * HOUR)
    assert pool["finished"] == static["finished"] == 16


def test_static_confines_each_team_to_its_slice():
    t, c = one_team_busy()
    ledger = Ledger()
    Simulation(t, make_policy("static", c), hooks=[ledger]).run()
    slice_a = sum(len(n.gpus) for n in static_slices(c)["a"].nodes)
    assert slice_a == 8
    assert ledger.team_max["a"] == 8


def test_owner_takes_back_borrowed_gpus_and_the_borrower_loses_work_since_its_checkpoint():
    # b fills all 16 GPUs with 10-hour jobs at t=0 (8 of them borrowed); a needs its 8 at t=1.5 h.
    jobs = [job(f"b{i}", 0, 10 * HOUR, team="b") for i in range(16)] + [job(f"a{i}", 1.5 * HOUR, HOUR, team="a") for i in range(8)]
    result, s = replay(trace(*jobs), cluster(nodes=2, gpus_per_node=8, a=8, b=8), "pool", checkpoint_interval=HOUR)
    a_jobs = [j for j in result.jobs if j.job.team == "a"]
    assert all(j.first_start == pytest.approx(1.5 * HOUR) for j in a_jobs)  # a did not wait for b's jobs to end
    victims = [j for j in result.jobs if j.preemptions]
    assert len(victims) == 8 and all(j.job.team == "b" for j in victims)
    # Each victim ran 1.5 h, checkpointed at 1 h: half an hour of one GPU lost each.
    assert all(j.lost_gpu_seconds == pytest.approx(0.5 * HOUR) for j in victims)
    assert s["lost_gpu_hours"] == pytest.approx(4.0)
    # Work conserved: held GPU-time = work of all jobs + the work thrown away.
    assert result.allocated_gpu_seconds == pytest.approx(sum(j.job.gpu_seconds for j in result.jobs) + 8 * 0.5 * HOUR)


def test_fifo_starts_work_in_submit_order():
    jobs = [job(f"j{i}", 60 * i, 1800 + 300 * (i % 4), gpus=[1, 8, 2, 4][i % 4], team="ab"[i % 2]) for i in range(30)]
    result, _ = replay(trace(*jobs), cluster(nodes=2, gpus_per_node=8, a=8, b=8), "fifo")
    starts = [j.first_start for j in sorted(result.jobs, key=lambda j: j.job.submitted_at)]
    assert None not in starts
    assert starts == sorted(starts)


@pytest.fixture(scope="module")
def sample_half_day():
    t = read_trace(resolve("philly-sample", TRACES)).window(0, 0.5 * 86400)
    return t, load_cluster(resolve("seed-dgx", CLUSTERS)).with_teams_for(t)


@pytest.mark.parametrize("policy", ["pool", "static", "fifo"])
def test_replay_of_the_sample_never_over_allocates_and_accounts_for_every_job(sample_half_day, policy):
    t, c = sample_half_day
    ledger = Ledger()
    end = 0.5 * 86400
    result = Simulation(t, make_policy(policy, c), hooks=[ledger], end=end, checkpoint_interval=0).run()
    assert ledger.worst_gpu <= 1.0 + 1e-9
    s = summarise(result)
    assert s["jobs"] == len(t.jobs) == s["finished"] + s["unfinished"]
    assert s["utilisation"] <= 1.0 + 1e-9
    # Nothing lost with continuous checkpoints: held GPU-time is exactly the work done.
    done = sum(j.job.gpu_seconds for j in result.jobs if j.state == FINISHED)
    running = sum(j.progress_at(end) * j.job.gpus for j in result.jobs if j.state == RUNNING)
    requeued = sum(j.done * j.job.gpus for j in result.jobs if j.state == PENDING)  # preempted, progress kept
    assert result.allocated_gpu_seconds == pytest.approx(done + running + requeued)


@pytest.mark.parametrize("policy", ["pool", "static", "fifo"])
def test_event_fed_scheduler_decides_as_the_pure_snapshot_form(sample_half_day, policy):
    t, c = sample_half_day
    t = t.window(0, 4 * HOUR)

    def outcome(use_snapshots):
        r = Simulation(t, make_policy(policy, c, use_snapshots=use_snapshots), end=4 * HOUR).run()
        return [(j.job.id, j.state, j.first_start, j.finished_at, j.preemptions) for j in r.jobs]

    assert outcome(False) == outcome(True)


@pytest.mark.skipif(not os.path.isdir(SHARED_TRACES), reason=NO_SHARED)
def test_a_busy_day_of_the_full_philly_trace_replays_under_every_policy():
    t = read_trace(os.path.join(SHARED_TRACES, "philly_2017-09-04_2017-10-22.csv")).window(30 * 86400, 86400)
    c = seed_cluster(16, 8).with_teams_for(t)
    for policy in ("pool", "static", "fifo"):
        _, s = replay(t, c, policy, end=86400)
        assert s["jobs"] == len(t.jobs) == s["finished"] + s["unfinished"] > 1000
        assert 0 < s["utilisation"] <= 1


def test_a_preempted_job_keeps_its_gpus_for_the_notice_and_the_owner_waits_for_them():
    # As above, with the service's notice: b's victims keep their GPUs 10 minutes (and work on), then go.
    jobs = [job(f"b{i}", 0, 10 * HOUR, team="b") for i in range(16)] + [job(f"a{i}", 1.5 * HOUR, HOUR, team="a") for i in range(8)]
    result, s = replay(trace(*jobs), cluster(nodes=2, gpus_per_node=8, a=8, b=8), "pool", checkpoint_interval=HOUR, notice_s=600)
    a_jobs = [j for j in result.jobs if j.job.team == "a"]
    assert all(j.first_start == pytest.approx(1.5 * HOUR + 600) for j in a_jobs)
    victims = [j for j in result.jobs if j.preemptions]
    assert len(victims) == 8 and all(j.preemptions == 1 and j.job.team == "b" for j in victims)
    # Each victim ran 1 h 40 min, checkpointed at 1 h: 40 minutes of one GPU lost each.
    assert all(j.lost_gpu_seconds == pytest.approx(HOUR * 2 / 3) for j in victims)
    assert s["lost_gpu_hours"] == pytest.approx(8 * 2 / 3)
