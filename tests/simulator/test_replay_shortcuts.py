"""The core's shortcuts (cycle.Cycle.shortcuts) change how much work a cycle does, never what it decides."""

from __future__ import annotations

from hub_ext.scheduler.capacity import Capacity
from hub_ext.scheduler.cycle import Cycle
from hub_ext.simulator.cluster import seed_cluster
from hub_ext.simulator.data import TRACES, resolve
from hub_ext.simulator.engine import Simulation
from hub_ext.simulator.policies import make_policy
from hub_ext.simulator.readers import read_trace

DAY = 86400.0


def test_a_busy_replay_decides_the_same_with_and_without_the_shortcuts(monkeypatch):
    # A day of the shipped Philly sample on 32 GPUs: a queue of hundreds, starving gangs, LAS preemption.
    t = read_trace(resolve("philly-sample", TRACES)).window(0, DAY)
    c = seed_cluster(2, 1).with_teams_for(t)
    skipped, asked = [0], [0]
    could_fit, hopeless = Capacity.gang_could_fit, Cycle.team_hopeless

    def counting_could_fit(self, *args):
        fits = could_fit(self, *args)
        skipped[0] += not fits
        return fits

    def counting_hopeless(self, team):
        asked[0] += 1
        return hopeless(self, team)

    monkeypatch.setattr(Capacity, "gang_could_fit", counting_could_fit)
    monkeypatch.setattr(Cycle, "team_hopeless", counting_hopeless)

    def replay(shortcuts):
        monkeypatch.setattr(Cycle, "shortcuts", shortcuts)
        skipped[0] = asked[0] = 0
        r = Simulation(t, make_policy("pool", c), end=DAY).run()
        records = [(j.job.id, j.state, j.first_start, j.finished_at, j.preemptions, j.resizes, j.lost_gpu_seconds) for j in r.jobs]
        return records, skipped[0], asked[0], r.cycles

    fast, slow = replay(True), replay(False)
    assert fast[0] == slow[0]  # every job starts, is preempted, resized and finishes at the same times
    assert fast[3] == slow[3] > 1000
    assert fast[1] > 50 and slow[1] == 0  # room-making searches stopped before their trials (94 since the replay reports attained service)
    assert fast[2] * 10 < slow[2]  # the fair loop asked team_hopeless again only after a try
