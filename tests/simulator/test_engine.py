"""The discrete-event engine, driven by scripted policies so each rule is shown on its own."""

from __future__ import annotations

import math

import pytest

from hub_ext.scheduler.model import Allocation, Decisions, GpuShare, Preempt, Resize, Start
from hub_ext.simulator.engine import FINISHED, PENDING, RUNNING, Simulation, SimulationError, SimulationHooks
from hub_ext.simulator.policies import Policy
from hub_ext.simulator.report import summarise

from .helpers import cluster, job, trace


def alloc(workload_id, now, *gpus, node="n1", fraction=1.0):
    return Allocation(workload_id, tuple(GpuShare(node, f"GPU-{node}-{g}", fraction) for g in gpus), now)


class Scripted(Policy):
    """Decisions from a function of (state, now): the test says exactly what the 'core' decides."""

    name = "scripted"

    def __init__(self, script, c=None):
        super().__init__(c or cluster(a=8, b=8))
        self.script = script
        self.calls = []

    def decide(self, state, now, changed_teams):
        self.calls.append((now, sorted(state.pending), sorted(state.running)))
        return [self.script(state, now)]


def fill_in_order(state, now):
    """Start pending jobs on the lowest free GPUs of node n1 (8 GPUs), whole GPUs only."""
    used = {s.gpu_uuid for r in state.running.values() for s in r.allocation.shares}
    free = [g for g in range(8) if f"GPU-n1-{g}" not in used]
    starts = []
    for w in sorted(state.pending.values(), key=lambda w: w.submitted_at):
        need = int(w.gpus)
        if need <= len(free):
            take, free = free[:need], free[need:]
            starts.append(Start(w.id, alloc(w.id, now, *take), "fits"))
    return Decisions(starts=tuple(starts))


def test_jobs_run_for_their_duration_and_simultaneous_events_share_one_cycle():
    t = trace(job("x", 0, 100), job("y", 0, 50), job("z", 50, 10))
    policy = Scripted(fill_in_order)
    result = Simulation(t, policy).run()
    ends = {j.job.id: j.finished_at for j in result.jobs}
    assert ends == {"x": 100, "y": 50, "z": 60}
    # One cycle at 0 (two arrivals), one at 50 (a finish and an arrival together), one at 60, one at 100.
    assert [c[0] for c in policy.calls] == [0, 50, 60, 100]


def test_scheduler_never_sees_durations():
    seen = []

    def spy(state, now):
        seen.extend(state.pending.values())
        return fill_in_order(state, now)

    Simulation(trace(job("x", 0, 12345)), Scripted(spy)).run()
    assert seen and all("12345" not in repr(w) for w in seen)
    assert not any(hasattr(w, "duration") for w in seen)


def test_preemption_loses_work_since_last_checkpoint_and_requeues_with_original_submit_time():
    # x (1000 s of work) runs from 0; at 250 y arrives and the 'core' preempts x for it.
    def script(state, now):
        if now == 250 and "x" in state.running:
            return Decisions(preemptions=(Preempt("x", "make room"),), starts=(Start("y", alloc("y", now, 0), "room"),))
        if "y" in state.running:
            return Decisions()
        return Decisions(starts=tuple(Start(w, alloc(w, now, 0), "free") for w in state.pending if w == "x"))

    def run(interval):
        c = cluster(nodes=1, gpus_per_node=1, a=1)
        return Simulation(trace(job("x", 0, 1000), job("y", 250, 100)), Scripted(script, c), checkpoint_interval=interval).run()

    every_100 = run(100.0)
    x = next(j for j in every_100.jobs if j.job.id == "x")
    # Checkpoints at 100 and 200: 50 s lost; 800 s left from the restart at 350.
    assert (x.preemptions, x.finished_at, x.lost_gpu_seconds) == (1, 1150, 50)
    assert x.workload.submitted_at == 0  # back in the queue as submitted, not as new
    assert next(j for j in run(0).jobs if j.job.id == "x").finished_at == 1100  # continuous checkpoints: nothing lost
    assert next(j for j in run(math.inf).jobs if j.job.id == "x").finished_at == 1350  # no checkpoints: starts over
    assert summarise(every_100)["lost_gpu_hours"] == pytest.approx(50 / 3600)


def test_elastic_job_progresses_in_proportion_to_gpus_and_resize_keeps_work():
    # e asks 4 GPUs (400 s at 4 GPUs = 1600 GPU-seconds); shrunk to 2 GPUs at 100.
    def script(state, now):
        if now == 0:
            return Decisions(starts=(Start("e", alloc("e", now, 0, 1, 2, 3), "go"),))
        if now == 100:
            return Decisions(resizes=(Resize("e", alloc("e", now, 0, 1), "shrink"),), starts=(Start("o", alloc("o", now, 2, 3), "room"),))
        return Decisions()

    t = trace(job("e", 0, 400, gpus=4, min_gpus=1, max_gpus=4), job("o", 100, 1000, gpus=2))
    result = Simulation(t, Scripted(script), checkpoint_interval=math.inf).run()
    e = next(j for j in result.jobs if j.job.id == "e")
    # 100 s at full speed (1/4 of the work), the remaining 300 s of work at half speed: 600 s more.
    assert e.finished_at == 700
    assert e.lost_gpu_seconds == 0


def test_over_allocation_by_the_core_is_caught():
    def double_book(state, now):
        return Decisions(starts=tuple(Start(w, alloc(w, now, 0), "same GPU") for w in state.pending))

    with pytest.raises(SimulationError, match="over 100%"):
        Simulation(trace(job("x", 0, 10), job("y", 0, 10)), Scripted(double_book)).run()


def test_fractions_share_a_card_up_to_its_whole():
    def pack(state, now):
        return Decisions(starts=tuple(Start(w, alloc(w, now, 0, fraction=0.5), "pack") for w in sorted(state.pending)))

    ok = Simulation(trace(job("x", 0, 10, gpus=0.5), job("y", 0, 10, gpus=0.5)), Scripted(pack)).run()
    assert all(j.state == FINISHED for j in ok.jobs)
    with pytest.raises(SimulationError, match="over 100%"):
        Simulation(trace(*(job(f"j{i}", 0, 10, gpus=0.5) for i in range(3))), Scripted(pack)).run()


def test_starting_an_unknown_or_running_workload_is_caught():
    def bogus(state, now):
        return Decisions(starts=(Start("ghost", alloc("ghost", now, 0), "?"),))

    with pytest.raises(SimulationError, match="ghost"):
        Simulation(trace(job("x", 0, 10)), Scripted(bogus)).run()


def test_every_job_accounted_for_and_unfinished_reported_at_window_end():
    # 8 GPUs; twelve 1-GPU jobs of 100 s at t=0, a 2-GPU job at 150; the window ends at 150.
    t = trace(*(job(f"j{i}", 0, 100) for i in range(12)), job("late", 150, 10, gpus=2))
    result = Simulation(t, Scripted(fill_in_order), end=150).run()
    states = [j.state for j in result.jobs]
    assert len(result.jobs) == 13
    assert states.count(FINISHED) == 8 and states.count(RUNNING) == 4 and states.count(PENDING) == 1
    s = summarise(result)
    assert (s["finished"], s["unfinished"], s["unfinished_running"], s["unfinished_pending"]) == (8, 5, 4, 1)
    assert s["mean_jct_s"] == 100  # finished jobs only...
    assert s["mean_jct_with_unfinished_s"] > 100  # ...and the unfinished still weigh in, as a lower bound
    assert s["replayed_s"] == 150


def test_work_is_conserved_held_gpu_time_equals_work_done_plus_work_lost():
    def churn(state, now):
        # Preempt the oldest running job whenever something is pending and the card is full.
        d = fill_in_order(state, now)
        if not d.starts and state.pending and state.running:
            victim = min(state.running.values(), key=lambda r: r.allocation.started_at).workload.id
            return Decisions(preemptions=(Preempt(victim, "churn"),))
        return d

    t = trace(*(job(f"j{i}", 7 * i, 40 + 13 * (i % 5), gpus=1 + i % 3) for i in range(40)))
    result = Simulation(t, Scripted(churn), checkpoint_interval=25.0).run()
    assert all(j.state == FINISHED for j in result.jobs)
    done = sum(j.job.gpu_seconds for j in result.jobs)
    lost = sum(j.lost_gpu_seconds for j in result.jobs)
    assert sum(j.preemptions for j in result.jobs) > 0 and lost > 0
    assert result.allocated_gpu_seconds == pytest.approx(done + lost)


def test_extension_point_reclaims_a_running_session_and_counts_busy_time():
    class Recorder(SimulationHooks):
        def __init__(self):
            self.events = []

        def on_start(self, sim, js, now):
            self.events.append(("start", js.job.id, now))

        def on_stop(self, sim, js, now, outcome):
            self.events.append((outcome, js.job.id, now))

    hooks = Recorder()
    t = trace(job("nb", 0, 1000, kind="session", busy_fraction=0.25))
    sim = Simulation(t, Scripted(fill_in_order), checkpoint_interval=math.inf, hooks=[hooks], end=2000)
    sim.call_at(300, lambda s: s.stop_workload("nb", "idle for 5 minutes"))
    result = sim.run()
    nb = result.jobs[0]
    assert nb.reclaims == 1 and nb.state == FINISHED
    assert hooks.events[:3] == [("start", "nb", 0), ("reclaimed", "nb", 300), ("start", "nb", 300)]
    assert nb.finished_at == 1300  # no checkpoints: the session's 300 s are redone
    s = summarise(result)
    assert s["busy_utilisation"] == pytest.approx(s["utilisation"] * 0.25)
    assert s["reclaims"] == 1


def test_plotted_series_averages_to_the_reported_utilisation():
    t = trace(*(job(f"j{i}", 37 * i, 100 + 61 * (i % 6), gpus=1 + i % 4) for i in range(50)))
    result = Simulation(t, Scripted(fill_in_order), end=2000).run()
    s = summarise(result, series_points=97)
    series = s["series"]
    assert len(series["utilisation"]) == 97
    assert sum(series["utilisation"]) / 97 == pytest.approx(s["utilisation"], rel=1e-3)
    assert max(series["queue"]) == max(sample.pending for sample in result.samples)


def test_cycle_interval_batches_events_into_periodic_cycles():
    t = trace(job("a", 0, 100), job("b", 10, 100), job("c", 20, 100), job("d", 130, 5))
    policy = Scripted(fill_in_order)
    result = Simulation(t, policy, cycle_interval=60).run()
    starts = {j.job.id: j.first_start for j in result.jobs}
    # a starts at once; b and c wait for the tick at 60; a's end at 100 waits for the tick at 120;
    # d (arriving at 130) for the tick at 180.
    assert starts == {"a": 0, "b": 60, "c": 60, "d": 180}
    # Finishes are applied at their own time (a at 100) even though the next cycle waits for its tick.
    assert next(j for j in result.jobs if j.job.id == "a").finished_at == 100
    assert [c[0] for c in policy.calls] == [0, 60, 120, 180, 240]
