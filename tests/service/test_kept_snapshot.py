"""The loop's kept snapshot (snapshot.KeptSnapshot) reads only rows written since its last read, by the
global revision stamp, and still equals a full read after every kind of change (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, update

from hub_ext.scheduler.model import Running, SchedulerConfig
from hub_ext.service.loop import differences
from hub_ext.service.snapshot import KeptSnapshot, build_snapshot
from hub_ext.service.store import GpuRow, NodeRow, ShareRow, Store, TeamRow, WorkloadRow

CONFIG = SchedulerConfig(las_thresholds_gpu_s=(3600.0,))
T0 = 1_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'kept.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = Store(url)
    s.migrate()
    with s.write() as db:
        db.add(TeamRow(name="vision", quota=4.0))
        db.add(TeamRow(name="nlp", quota=4.0))
        node = NodeRow(name="a", simulated=True)
        node.gpus = [GpuRow(uuid=f"a/{i}", index=i, model="T4", memory_mib=15360) for i in range(4)]
        db.add(node)
    yield s
    s.dispose()


def pending(user, gpus=1.0, at=T0, team="vision"):
    return WorkloadRow(user=user, team=team, kind="job", state="pending", gpus=gpus, submitted_at=at, priority=0, preemptible=True)


def share(i, fraction=1.0):
    return ShareRow(node_name="a", gpu_uuid=f"a/{i}", gpu_index=i, fraction=fraction)


def test_the_revision_read_sees_every_kind_of_change_and_equals_a_full_read(store):
    kept = KeptSnapshot()
    now = [T0]

    def refresh(also=None, before=None):
        """Refresh the kept snapshot and compare it with a full read in the same transaction."""
        with store.write() as db:
            if before is not None:  # written (not flushed) before the read, in the same transaction (as the checks before a cycle)
                before(db)
            snapshot, index, changed = kept.refresh(db, now[0], CONFIG)
            full, full_index = build_snapshot(db, now[0], CONFIG)
            assert differences(snapshot, full) == 0
            assert snapshot.teams == full.teams and snapshot.pool == full.pool
            assert {k: v.state for k, v in index.items()} == {k: v.state for k, v in full_index.items()}
            held = db.execute(  # what usage decay reads without the kept rows
                select(WorkloadRow.team, WorkloadRow.user, func.sum(ShareRow.fraction)).join(ShareRow, ShareRow.workload_seq == WorkloadRow.seq)
                .where(WorkloadRow.state.in_(("running", "stopping"))).group_by(WorkloadRow.team, WorkloadRow.user)
            )
            assert kept.in_use == {(t, u): g for t, u, g in held}
            if also is not None:  # written after the read, in the same transaction (as applying the decisions does)
                also(db)
        return snapshot, changed

    def write(fn):
        with store.write() as db:
            fn(db)

    assert refresh()[1] is None  # the first read reads everything
    # submit
    write(lambda db: db.add_all([pending("ann"), pending("bob", 2.0, T0 + 1)]))
    snapshot, changed = refresh()
    assert set(changed) == {"w-1", "w-2"} and len(snapshot.pending) == 2
    # nothing written: nothing read
    assert refresh()[1] == {} and kept.reads == 0

    # start (state, started_at and shares in one write)
    def start(db):
        w = db.get(WorkloadRow, 1)
        w.state, w.started_at = "running", now[0]
        w.shares.append(share(0))
    write(start)
    snapshot, changed = refresh()
    assert isinstance(changed["w-1"], Running) and [r.workload.id for r in snapshot.running] == ["w-1"]

    # attained service steps with time alone (no write): the running workload is changed, nothing is read
    now[0] += 600
    snapshot, changed = refresh()
    assert set(changed) == {"w-1"} and changed["w-1"].workload.attained_gpu_s == 600.0 and kept.reads == 0

    # resize: the shares change
    def grow(db):
        w = db.get(WorkloadRow, 1)
        w.shares.append(share(1))
    write(grow)
    assert set(refresh()[1]) == {"w-1"}

    # a share written on its own (not through the workload's shares)
    write(lambda db: db.execute(select(ShareRow).where(ShareRow.gpu_uuid == "a/1")).scalar_one().__setattr__("fraction", 0.5))
    snapshot, changed = refresh()
    assert set(changed) == {"w-1"} and changed["w-1"].allocation.gpus == 1.5

    # a change of what a pending workload asks (priority), written after the read in the cycle's own transaction
    snapshot, changed = refresh(also=lambda db: setattr(db.get(WorkloadRow, 2), "priority", 5))
    snapshot, changed = refresh()
    assert set(changed) == {"w-2"} and changed["w-2"].priority == 5

    # ... and before the read, in the cycle's own transaction, unflushed
    snapshot, changed = refresh(before=lambda db: setattr(db.get(WorkloadRow, 2), "priority", 7))
    assert set(changed) == {"w-2"} and changed["w-2"].priority == 7
    assert refresh()[1] == {"w-2": changed["w-2"]}  # (read again once: what the cycle's own transaction wrote)

    # preempt / requeue: running -> pending, shares given back
    def requeue(db):
        w = db.get(WorkloadRow, 1)
        w.state, w.started_at, w.attained_gpu_s = "pending", None, 900.0
        w.shares.clear()
    write(requeue)
    snapshot, changed = refresh()
    assert not snapshot.running and changed["w-1"].attained_gpu_s == 900.0 and {w.id for w in snapshot.pending} == {"w-1", "w-2"}

    # cancel: it leaves the active states
    write(lambda db: setattr(db.get(WorkloadRow, 2), "state", "cancelled"))
    snapshot, changed = refresh()
    assert changed == {"w-2": None} and [w.id for w in snapshot.pending] == ["w-1"]

    # team/quota change: teams are read every time
    write(lambda db: setattr(db.get(TeamRow, "nlp"), "quota", 2.0))
    snapshot, _ = refresh()
    assert snapshot.teams["nlp"].quota == 2.0

    # the pool: a GPU reading does not read it again, a new GPU does
    pool = snapshot.pool
    write(lambda db: db.execute(update(GpuRow).where(GpuRow.uuid == "a/0").values(utilization=50.0)))
    assert refresh()[0].pool is pool
    def add_gpu(db):
        node = db.get(NodeRow, "a")
        node.gpus.append(GpuRow(uuid="a/4", index=4, model="T4", memory_mib=15360))
    write(add_gpu)
    assert len(refresh()[0].pool.nodes[0].gpus) == 5


def _spread(store, seqs):
    """Pending workloads at these seqs (far apart: in different buckets of the rolling check)."""
    with store.write() as db:
        for k, seq in enumerate(seqs):
            row = pending(f"u{k}", at=T0 + k)
            row.seq = seq
            db.add(row)


def _cycle(loop, now=T0):
    with loop.store.write() as db:
        snapshot, _, changed = loop._read(db, now, None)
        decisions = loop.core.decide(snapshot, None, changed)
    return snapshot, changed, decisions


def test_writes_that_bypass_the_stamp_are_caught_by_the_rolling_check_within_check_every_cycles(store):
    """Each cycle reads 1/incremental_check_every of the kept rows again, in turn, and compares them:
    a changed column, a row inserted and a row gone without a stamp are each found within that many
    cycles, handed to the core as changed, and counted; nothing is counted when every write is stamped."""
    from sqlalchemy import insert

    from hub_ext.scheduler import schedule
    from hub_ext.service.loop import SchedulingLoop

    every = 4
    loop = SchedulingLoop(store, supervisor=None, incremental_check_every=every)
    _spread(store, [10, 5000, 9000, 13000, 17000, 21000, 25000, 29000])
    for _ in range(2 * every):  # stamped writes only: the checks find nothing
        snapshot, changed, _ = _cycle(loop)
        assert loop.core.misses == 0
    reads = []
    for _ in range(every):  # each cycle reads about a quarter of them again, never all
        _cycle(loop)
        reads.append(loop.kept.checked)
    assert max(reads) < 8 and sum(reads) >= 8

    def bypassing(statement):
        with store.write() as db:
            db.execute(statement)

    table = WorkloadRow.__table__
    bypassing(update(table).where(table.c.seq == 17000).values(gpus=2.0))  # a bulk write of a column the scheduler reads
    bypassing(update(table).where(table.c.seq == 5000).values(state="cancelled"))  # gone from the active states
    bypassing(insert(table).values(seq=11000, user="late", team="nlp", kind="job", state="pending", gpus=1.0,
                                   submitted_at=T0 - 50, priority=0, preemptible=True))  # inserted between two of them
    seen = []
    for _ in range(every):
        snapshot, changed, decisions = _cycle(loop)
        seen.append(set(changed))
        by_id = {w.id: w for w in snapshot.pending}
        assert decisions == schedule(snapshot)  # the core decides on what it was handed, as the pure function does
    found = set().union(*seen)
    assert {"w-17000", "w-5000", "w-11000"} <= found and loop.core.misses == 3
    assert by_id["w-17000"].gpus == 2.0 and "w-5000" not in by_id and by_id["w-11000"].user == "late"
    full, _ = build_snapshot_in(store)
    assert differences(snapshot, full) == 0


def build_snapshot_in(store, now=T0):
    with store.read() as db:
        return build_snapshot(db, now, SchedulerConfig())


def test_the_warm_up_reads_everything_outside_the_cycle_and_the_first_cycle_reads_only_what_was_written_since(store):
    """A started service reads every row and indexes its core before its first cycle, in a read
    transaction (no write lock held); a row written between the warm-up and the cycle is read by the
    cycle, whose decisions equal the pure function's on a full read."""
    from hub_ext.scheduler import schedule
    from hub_ext.service.loop import SchedulingLoop

    _spread(store, [1, 2, 3, 4, 3000])
    loop = SchedulingLoop(store, supervisor=None)
    with store.write() as db:  # the write lock is held elsewhere (SQLite: BEGIN IMMEDIATE): the warm-up still reads
        late = pending("meanwhile", at=T0 - 100)
        late.seq = 3001  # (explicit seqs above: PostgreSQL's sequence has not moved)
        db.add(late)
        db.flush()
        loop.warm_up()
    assert loop.kept.reads == 5 and loop.core.rebuilds == 1 and loop.core.scheduler is not None
    with store.write() as db:
        db.get(WorkloadRow, 2).gpus = 4.0
    snapshot, changed, decisions = _cycle(loop)
    assert set(changed) == {"w-2", "w-3001"} and loop.core.rebuilds == 1  # not indexed again
    full, _ = build_snapshot_in(store)
    assert differences(snapshot, full) == 0 and decisions == schedule(full)


def test_what_a_warm_up_builds_is_out_of_the_collectors_passes_and_a_second_warm_up_frees_the_first(store):
    """The warm-up freezes what it built (gc_pause.paused_gc(freeze_after=True)): no full pass of the
    garbage collector walks the kept rows afterwards, and warming up again (after a failed cycle) frees
    the last warm-up's objects: the frozen set does not grow by a warm-up's worth each time."""
    import gc

    from hub_ext.service.loop import SchedulingLoop

    with store.write() as db:
        db.execute(insert(WorkloadRow.__table__), [
            dict(seq=100 + k, user=f"u{k % 7}", team="vision", kind="job", state="pending", gpus=1.0,
                 submitted_at=T0 + k, priority=0, preemptible=True) for k in range(3000)])
    loop = SchedulingLoop(store, supervisor=None)
    frozen = []
    for _ in range(3):
        loop.warm_up()
        frozen.append(gc.get_freeze_count())
        gc.collect()
        kept = {id(w) for w in loop.kept.pending.values()}
        assert len(kept) == 3000 and not any(id(o) in kept for o in gc.get_objects(generation=2))
    # a warm-up builds several objects per row; what one leaves behind is a few hundred at most
    assert frozen[1] > 3000 and frozen[2] - frozen[1] < 1000, frozen


def test_running_work_is_recomputed_only_once_its_attained_service_may_have_moved_on_the_grid():
    """attained.next_point bounds where on_grid next changes: nothing is skipped before it."""
    import random

    from hub_ext.service.attained import next_point, on_grid

    rng = random.Random(5)
    las = (16 * 3600.0,)
    for step in (0.01, 0.05, 0.0):
        for _ in range(3000):
            x = 10 ** rng.uniform(-1, 7)
            nxt = next_point(x, las, step)
            assert nxt >= x and (nxt > x or step == 0 or x < 1)
            for y in (x, x + (nxt - x) * 0.5, x + (nxt - x) * 0.999999):
                assert on_grid(y, las, step) == on_grid(x, las, step), (x, y, nxt, step)
        if step:  # and it is not much earlier than the change: a one-GPU job is recomputed about once a minute
            assert next_point(600.0, las, step) > 659.0 and next_point(7200.0, las, step) > 7200.0 * (1 + step) * 0.99


def test_a_quota_change_is_an_event_for_the_kept_core_and_a_new_gpu_is_indexed_before_the_cycle(store):
    """A team's quota changed: the kept core takes it as an event (Scheduler.set_team), not a re-index,
    and decides as the pure function does on a full read. A new GPU (the pool) indexes the core again,
    from the kept rows, before the cycle's write transaction (SchedulingLoop.reindex_if_changed)."""
    from hub_ext.scheduler import schedule
    from hub_ext.service.loop import SchedulingLoop

    _spread(store, [1, 2, 3, 4, 5, 6])
    loop = SchedulingLoop(store, supervisor=None)
    loop.warm_up()
    _cycle(loop)
    with store.write() as db:
        db.get(TeamRow, "vision").quota = 2.0
        db.get(WorkloadRow, 6).priority = 3  # and a workload changed since the kept rows were read
    assert loop.reindex_if_changed() is False
    snapshot, changed, decisions = _cycle(loop)
    assert loop.core.rebuilds == 1 and set(changed) == {"w-6"}
    full, _ = build_snapshot_in(store)
    assert snapshot.teams["vision"].quota == 2.0 and differences(snapshot, full) == 0
    assert decisions == schedule(snapshot) and decisions.starts[0].workload_id == "w-6"  # its new priority
    assert "quota of 2" in decisions.starts[-1].reason  # the new quota

    with store.write() as db:
        node = db.get(NodeRow, "a")
        node.gpus.append(GpuRow(uuid="a/4", index=4, model="T4", memory_mib=15360))
    assert loop.reindex_if_changed() is True and loop.core.rebuilds == 2
    snapshot, changed, decisions = _cycle(loop)
    assert loop.core.rebuilds == 2 and len(snapshot.pool.nodes[0].gpus) == 5  # not indexed again inside the cycle
    assert decisions == schedule(snapshot)


def test_the_snapshot_builds_workloads_by_its_fast_path():
    """snapshot._read_rows sets a Workload's fields directly (a quarter of the constructor's cost on a cold
    read); a field added to Workload without it there would quietly send every read to the slow path."""
    from hub_ext.service import snapshot

    assert snapshot._FAST_WORKLOAD


def test_with_las_on_estimates_the_loop_feeds_estimates_and_the_reason_quotes_their_basis(store):
    """SchedulingLoop.las_on_estimates: the loop hands the core the run-time estimates ExpectedStarts learns
    from past runs, with their basis; pending work estimated short goes ahead of work of its level
    estimated long, and its reason says it is an estimate and what it is based on."""
    from hub_ext.service.expected import ExpectedStarts
    from hub_ext.service.loop import SchedulingLoop

    now = T0 + 100_000
    with store.write() as db:
        for k in range(3):  # ann's one-GPU jobs ran 10 minutes, bob's 10 hours
            for user, ran in (("ann", 600.0), ("bob", 36_000.0)):
                db.add(WorkloadRow(user=user, team="vision", kind="job", state="completed", gpus=1.0, submitted_at=T0 + k,
                                   started_at=T0 + k, finished_at=T0 + k + ran, priority=0, preemptible=True))
        for k in range(4):  # every GPU held by team nlp, within its quota
            row = WorkloadRow(user="nia", team="nlp", kind="job", state="running", gpus=1.0, submitted_at=now - 60,
                              started_at=now - 60, priority=0, preemptible=True)
            row.shares.append(share(k))
            db.add(row)
        bob, ann = pending("bob", at=now - 20), pending("ann", at=now - 10)  # bob's submitted first
        db.add_all([bob, ann])
        db.flush()
        bob, ann = bob.id, ann.id
    for on in (False, True):
        loop = SchedulingLoop(store, supervisor=None, las_on_estimates=on)
        expected = ExpectedStarts(store, loop)
        loop.estimates = expected.estimate_of
        expected.compute(now)
        loop.warm_up()
        with store.write() as db:
            decisions, _ = loop.decide(db, now)
        order = [p.workload_id for p in decisions.pending]
        reasons = {p.workload_id: p.reason for p in decisions.pending}
        if not on:  # submit order, and no estimate in any reason
            assert order == [bob, ann] and "estimate" not in reasons[ann] + reasons[bob]
        else:  # ann's, estimated short, goes first
            assert order == [ann, bob]
            assert "an estimate: median of ann's last 3 one-GPU jobs" in reasons[ann], reasons[ann]
