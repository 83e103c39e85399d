"""Preemption with notice and usage decay in the service, on a real database (no hub):
what the cycle writes when the core preempts, and what survives a restart."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from traitlets import TraitError

from hub_ext.scheduler import schedule
from hub_ext.scheduler.model import SchedulerConfig
from hub_ext.service.apply import JobActions, apply_decisions
from hub_ext.service.inventory import Inventory, parse_declared_nodes
from hub_ext.service.preemption import Preemption
from hub_ext.service.snapshot import build_snapshot
from hub_ext.service.store import EventRow, Store, TeamRow, WorkloadRow
from hub_ext.service.usage_decay import UsageDecay
from hub_ext.service.views import teams_view

ONE_GPU = [{"name": "solo", "gpus": 1, "model": "T4", "memory_mib": 15360}]
T0 = 1_000_000.0


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'pool.sqlite'}")
    store.migrate()
    with store.write() as db:
        Inventory(nodes=ONE_GPU).sync(db, parse_declared_nodes(ONE_GPU))
        db.add(TeamRow(name="vision", quota=1, over_quota_weight=1))
        db.add(TeamRow(name="nlp", quota=0, over_quota_weight=1))
    yield store
    store.dispose()


def add(db, user, team, kind, at, name=None):
    w = WorkloadRow(name=name, user=user, team=team, kind=kind, state="pending", gpus=1.0, priority=0, preemptible=True,
                    command=["sleep", "60"], submitted_at=at, preemptions=0, over_quota=False)
    db.add(w)
    db.flush()
    return w.seq


def cycle(store, now, preemption, decay=None):
    with store.write() as db:
        stops = preemption.before_cycle(db, now, JobActions())
        history = decay.update(db, now) if decay is not None else None
        snapshot, rows = build_snapshot(db, now, SchedulerConfig(), preemption, history)
        actions = apply_decisions(db, schedule(snapshot), rows, now, None, preemption)
    return actions, stops


def state(store, seq):
    with store.read() as db:
        w = db.get(WorkloadRow, seq)
        return w.state, w.reason, w.preempt_at, [s.gpu_uuid for s in w.shares]


@pytest.mark.parametrize("kind,name", [("job", None), ("session", "by-hand")])
def test_a_victim_keeps_its_gpu_through_the_notice_and_the_owner_waits_for_it(store, kind, name):
    preemption = Preemption(store, grace_seconds=30, min_runtime_reclaim_seconds=5)
    with store.write() as db:
        borrower = add(db, "carol", "nlp", kind, T0, name)
    cycle(store, T0, preemption)
    assert state(store, borrower)[0] == "running"
    with store.write() as db:
        owner = add(db, "alice", "vision", "job", T0 + 1)

    # Within the minimum run-time: not a victim yet.
    cycle(store, T0 + 2, preemption)
    assert state(store, borrower)[2] is None

    actions, _ = cycle(store, T0 + 10, preemption)
    st, reason, preempt_at, gpus = state(store, borrower)
    assert st == "running" and preempt_at == T0 + 40 and gpus and reason.startswith("preempting at")
    assert state(store, owner)[0] == "pending" and f"starts when w-{borrower}" in state(store, owner)[1]
    # Later cycles during the notice: nobody else is preempted, the owner still waits.
    cycle(store, T0 + 20, preemption)
    assert state(store, owner)[0] == "pending" and state(store, borrower)[0] == "running"

    # The notice ends: the victim lets go (a job, or a session with no server: back to the queue), the owner starts.
    cycle(store, T0 + 41, preemption)
    assert state(store, borrower)[0] == "pending" and state(store, borrower)[2] is None
    assert state(store, owner)[0] == "running" and state(store, owner)[3] == gpus
    with store.read() as db:
        events = list(db.execute(select(EventRow.kind, EventRow.message).where(EventRow.workload_seq == borrower).order_by(EventRow.id)))
    kinds = [k for k, _ in events]
    assert kinds.index("preempting") < kinds.index("preempted")
    assert dict(events)["preempted"].startswith("team nlp was using more than its quota")


def test_decayed_usage_is_kept_across_restarts_and_shown_per_team(store):
    preemption = Preemption(store)
    hour = 3600.0
    decay = UsageDecay(half_life_seconds=hour, persist_seconds=0)
    with store.write() as db:
        add(db, "carol", "nlp", "job", T0)
    cycle(store, T0, preemption, decay)  # carol's job starts: nlp uses 1 GPU from now on
    cycle(store, T0 + hour, preemption, decay)
    assert decay.history.teams["nlp"] == pytest.approx(0.5)
    assert decay.history.users[("nlp", "carol")] == pytest.approx(0.5)

    restarted = UsageDecay(half_life_seconds=hour, persist_seconds=0)
    with store.write() as db:
        history = restarted.update(db, T0 + 2 * hour)
    assert history.teams["nlp"] == pytest.approx(0.75)
    with store.read() as db:
        teams = {t["name"]: t for t in teams_view(db)}
    assert teams["nlp"]["decayed_usage"] == pytest.approx(0.75, abs=1e-3)
    assert teams["vision"]["decayed_usage"] is None


BAD = [
    # (setting, value, message) refused when the service's configuration is read
    ("grace_seconds", 0, "must be more than 0 seconds"),
    ("min_runtime_reclaim_seconds", -5, "must be more than 0 seconds"),
    ("min_runtime_shrink_seconds", 10**10, "must be at most a week"),
]


@pytest.mark.parametrize("setting,value,message", BAD)
def test_out_of_range_preemption_settings_are_refused(setting, value, message):
    with pytest.raises(TraitError, match=message):
        Preemption(**{setting: value})
    with pytest.raises(TraitError, match=message):
        Preemption(team_overrides={"nlp": {setting: value}})


@pytest.mark.parametrize("preempt_at,by_then,expected", [
    # Nothing was ending it: the spawner's stop is the reason.
    (None, T0 + 5, "stopped by gpupool-spawner"),
    # Its team's maximum length was reached and the pool asked the hub to stop the server: the pool's reason stays.
    (T0, T0 + 5, "time limit: the session reached"),
    # Its notice is over and the pool is stopping its server: the pool's reason stays.
    (T0 + 3, T0 + 5, "preempting at"),
    # Its user stops it during the notice: that stop is theirs.
    (T0 + 30, T0 + 5, "stopped by gpupool-spawner"),
])
def test_a_session_stopped_while_the_pool_ends_it_keeps_the_pools_reason(store, preempt_at, by_then, expected):
    from hub_ext.service.workloads import WorkloadRules

    with store.write() as db:
        seq = add(db, "carol", "nlp", "session", T0, "carol/")
    cycle(store, T0, Preemption(store))
    with store.write() as db:
        w = db.get(WorkloadRow, seq)
        w.preempt_at = preempt_at
        if preempt_at is not None:
            w.preempt_reason = "time limit: the session reached team nlp's maximum session length of 8 s" if preempt_at == T0 else "team nlp was using more than its quota"
            w.reason = w.preempt_reason if preempt_at == T0 else f"preempting at ...: {w.preempt_reason}"
        WorkloadRules().cancel(db, w, "gpupool-spawner", now=by_then)
    st, reason, _, gpus = state(store, seq)
    assert st == "cancelled" and not gpus and reason.startswith(expected), reason
