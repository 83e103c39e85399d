"""Attained service in the live pool (service/attained.py): GPU-seconds each workload has held over all
its runs, kept in the store, given to the scheduler core, and the kept scheduler state still equals the
pure function while running work's attained service grows every second."""

from __future__ import annotations

import random
import sys
import time

import pytest

from hub_ext.scheduler import schedule
from hub_ext.scheduler.model import Allocation, Decisions, GpuShare, Preempt, Resize, SchedulerConfig, Start
from hub_ext.service import attained
from hub_ext.service.apply import apply_decisions
from hub_ext.service.loop import IncrementalCore, attained_revisions
from hub_ext.service.snapshot import build_snapshot
from hub_ext.service.store import GpuRow, NodeRow, Store, TeamRow, WorkloadRow
from hub_ext.service.workloads import WorkloadRules

from .conftest import wait_for


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'attained.sqlite'}")
    s.migrate()
    with s.write() as db:
        db.add(NodeRow(name="a", simulated=True, gpus=[GpuRow(uuid=f"a/{i}", index=i, model="V100", memory_mib=16384) for i in range(8)]))
        db.add(TeamRow(name="vision", quota=4.0))
        db.add(TeamRow(name="nlp", quota=4.0))
    yield s
    s.dispose()


def alloc(wid: str, *cards: int, fraction: float = 1.0) -> Allocation:
    return Allocation(wid, tuple(GpuShare("a", f"a/{i}", fraction) for i in cards), 0.0)


def apply_at(store: Store, now: float, **decided) -> None:
    with store.write() as db:
        _, rows = build_snapshot(db, now, SchedulerConfig())
        apply_decisions(db, Decisions(**decided), rows, now)


def served(store: Store, seq: int, now: float) -> tuple[float, float]:
    """(held so far as the API says it, what the scheduler's snapshot gives; -1 when not active)."""
    with store.read() as db:
        w = db.get(WorkloadRow, seq)
        exact = attained.of_row(w, now)
        snapshot, _ = build_snapshot(db, now, SchedulerConfig())
    core = {w.id: w.attained_gpu_s for w in snapshot.pending} | {r.workload.id: r.workload.attained_gpu_s for r in snapshot.running}
    return exact, core.get(f"w-{seq}", -1.0)


def test_attained_service_adds_up_over_runs_sizes_resizes_and_fractions(store):
    with store.write() as db:
        db.add(WorkloadRow(user="ann", team="vision", kind="job", state="pending", gpus=2.0, min_gpus=1, max_gpus=4, submitted_at=0.0))
        db.add(WorkloadRow(user="bob", team="nlp", kind="session", state="pending", gpus=0.5, submitted_at=0.0))
    assert served(store, 1, 500.0) == (0.0, 0.0)
    # A first run on 2 GPUs for an hour, then preempted: 2 GPU-hours, kept while it waits.
    apply_at(store, 1000.0, starts=(Start("w-1", alloc("w-1", 0, 1), "within quota"),))
    exact, core = served(store, 1, 1000.0 + 1800)
    assert exact == 3600.0 and 0.99 * 3600 <= core <= 3600  # running: the scheduler's grid is at most 1% below
    apply_at(store, 4600.0, preemptions=(Preempt("w-1", "for a test"),))
    assert served(store, 1, 9000.0) == (7200.0, 7200.0)  # pending: exactly what it held
    # Requeued, it runs again on 1 GPU for half an hour, grows to 3, then is stopped a thousand seconds later.
    apply_at(store, 10000.0, starts=(Start("w-1", alloc("w-1", 4), "within quota"),))
    assert served(store, 1, 11800.0)[0] == 7200.0 + 1800.0
    apply_at(store, 11800.0, resizes=(Resize("w-1", alloc("w-1", 4, 5, 6), "grew into idle GPUs"),))
    assert served(store, 1, 12300.0)[0] == 7200.0 + 1800.0 + 3 * 500.0
    # The user shrinks it to 2 (the old size until the resize, the new one after) ...
    with store.write() as db:
        WorkloadRules().resize(db, db.get(WorkloadRow, 1), 2, "ann", now=12800.0)
    assert served(store, 1, 13800.0)[0] == 7200.0 + 1800.0 + 3 * 1000.0 + 2 * 1000.0
    # ... and stops it: it keeps what it held, and no longer grows.
    with store.write() as db:
        WorkloadRules().cancel(db, db.get(WorkloadRow, 1), "ann", now=13800.0)
    assert served(store, 1, 99999.0) == (14000.0, -1.0)
    # A half-GPU session counts half: an hour is 1,800 GPU-seconds.
    apply_at(store, 20000.0, starts=(Start("w-2", alloc("w-2", 7, fraction=0.5), "within quota"),))
    with store.write() as db:
        WorkloadRules().cancel(db, db.get(WorkloadRow, 2), "bob", now=23600.0)
    assert served(store, 2, 30000.0)[0] == 1800.0


def test_the_grid_keeps_the_las_level_exact_and_work_that_has_run_is_never_new():
    las = (16 * 3600.0,)
    for x in (0.001, 1.0, 59.9, 60.0, 61.0, 3600.0, 5999.0, 6001.0, 16 * 3600.0 - 1e-6, 16 * 3600.0, 16 * 3600.0 + 0.5, 1e7):
        g = attained.on_grid(x, las)
        assert 0 < g <= x and x - g <= max(60.0, 0.01 * x)  # to a GPU-minute or 1%, whichever is more
        assert (g >= las[0]) == (x >= las[0])
    assert attained.on_grid(0.0, las) == 0.0
    assert attained.on_grid(1234.5, las, step=0) == 1234.5


@pytest.mark.parametrize("check_every,grid", [(1, 0.01), (0, 0.25)])
def test_kept_state_equals_the_pure_function_while_running_work_attains_service(store, check_every, grid):
    """The loop's incremental path (revisions with running work's attained service folded in) decides as
    ``schedule(snapshot)`` every cycle; with the field-by-field check on every cycle, no change is missed;
    running work is re-read only when its attained service reaches the next step of the grid (with 1% steps
    and a minute between cycles that is every cycle for the first ~100 minutes of a run: the coarse grid
    shows the saving within the test's 80 minutes)."""
    rng = random.Random(7)
    config = SchedulerConfig(las_thresholds_gpu_s=(1800.0, 7200.0))
    core = IncrementalCore(check_every=check_every)
    seq = 0
    reread = held = 0
    levels_crossed = set()
    las_reasons = 0
    kept: dict = {}
    for step in range(80):
        now = 1000.0 + step * 61.0
        with store.write() as db:
            for _ in range(rng.choice([0, 0, 1, 2])):
                seq += 1
                team = rng.choice(["vision", "nlp"])
                if rng.random() < 0.4:
                    db.add(WorkloadRow(user=f"u{seq % 3}", team=team, kind="job", state="pending", gpus=2.0, min_gpus=1, max_gpus=4, submitted_at=now))
                else:
                    db.add(WorkloadRow(user=f"u{seq % 3}", team=team, kind="job", state="pending", gpus=float(rng.choice([1, 2, 0.5])), submitted_at=now))
            db.flush()
            if step % 9 == 8:  # a running job ends
                ended = db.query(WorkloadRow).filter(WorkloadRow.state == "running").order_by(WorkloadRow.seq).first()
                if ended is not None:
                    WorkloadRules().cancel(db, ended, "ann", now=now)
            snapshot, rows = build_snapshot(db, now, config, attained_step=grid)
            revisions = attained_revisions(snapshot, rows)
            decisions = core.decide(snapshot, revisions)
            pure = schedule(snapshot)
            assert (decisions.starts, decisions.preemptions, decisions.resizes) == (pure.starts, pure.preemptions, pure.resizes), f"step {step}"
            assert tuple(decisions.pending) == tuple(pure.pending), f"step {step}"
            for r in snapshot.running:
                held += 1
                reread += r.workload.id in kept and kept[r.workload.id] != revisions[r.workload.id]
                if r.workload.attained_gpu_s >= 1800.0:
                    levels_crossed.add(r.workload.id)
            kept = revisions
            las_reasons += sum("least attained service" in p.reason for p in decisions.preemptions)
            las_reasons += sum("attained service" in z.reason for z in decisions.resizes)
            apply_decisions(db, decisions, rows, now)
    assert core.misses == 0 and core.rebuilds == 1
    assert levels_crossed, "no running work reached a LAS threshold: the test shows nothing"
    assert las_reasons, "least attained service never shrank or preempted anything: the test shows nothing"
    if grid >= 0.25:
        assert 0 < reread < held / 2, f"running work re-read {reread} times in {held} running-cycles"


# Least attained service with a threshold of 3.6 GPU-seconds (0.001 GPU-hours), so that a test shows it in seconds.
QUICK_LAS = """
c.SchedulingLoop.las_thresholds_gpu_hours = [0.001]
c.Preemption.min_runtime_reclaim_seconds = 1
c.Preemption.grace_seconds = 1
"""
SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]


def test_a_job_that_has_held_its_gpu_makes_way_for_fresh_work_of_its_team_and_shows_what_it_held(hub_factory):
    """Through the real service: attained service grows while a job runs, least attained service preempts it
    for a fresh job of its own team, and back in the queue it keeps (and shows) the GPU-seconds it held."""
    import requests

    from .openapi_check import CheckedClient, OpenAPIDocument

    hub = hub_factory(pool=[{"name": "solo", "gpus": 1, "model": "T4"}], teams={"vision": {"quota": 1}}, service_config=QUICK_LAS)
    document = OpenAPIDocument(requests.get(hub.service_url + "api/openapi.json", timeout=10).json())
    alice = CheckedClient(hub.service_url, hub.token("alice"), document)  # every answer checked against the OpenAPI document
    bob = CheckedClient(hub.service_url, hub.token("bob"), document)
    long = alice.submit(command=SLEEP, gpus=1, name="long")
    assert long["state"] == "running" and long["attained_gpu_s"] < 3.6
    wait_for(lambda: alice.workload(long["id"])["attained_gpu_s"] >= 4.0, what="the running job's attained service to grow")
    fresh = bob.submit(command=SLEEP, gpus=1, name="fresh")
    wait_for(lambda: bob.workload(fresh["id"])["state"] == "running", timeout=30, what="the fresh job to take the GPU")
    back = alice.workload(long["id"])
    assert back["state"] == "pending" and back["preemptions"] == 1
    assert "least attained service" in back["reason"], back["reason"]
    assert back["attained_gpu_s"] >= 4.0  # what it held before the preemption, kept
    time.sleep(1.5)
    assert alice.workload(long["id"])["attained_gpu_s"] == back["attained_gpu_s"]  # waiting adds nothing
    alice.cancel(long["id"])
    bob.cancel(fresh["id"])


def test_las_thresholds_and_the_grid_are_settings_with_clear_refusals():
    from traitlets import TraitError

    from hub_ext.service.loop import SchedulingLoop

    loop = SchedulingLoop(None, None, las_thresholds_gpu_hours=[1, 16.5])
    assert loop.scheduler_config.las_thresholds_gpu_s == (3600.0, 16.5 * 3600)
    assert SchedulingLoop(None, None, las_thresholds_gpu_hours=[]).scheduler_config.las_thresholds_gpu_s == ()  # off
    assert SchedulingLoop(None, None).scheduler_config.las_thresholds_gpu_s == (16 * 3600.0,)
    for bad, words in ((dict(las_thresholds_gpu_hours=[16, 4]), "increasing order"), (dict(las_thresholds_gpu_hours=[0]), "positive"),
                       (dict(attained_step=-0.1), "between 0 and 0.5"), (dict(attained_step=2), "between 0 and 0.5")):
        with pytest.raises(TraitError, match=words):
            SchedulingLoop(None, None, **bad)
