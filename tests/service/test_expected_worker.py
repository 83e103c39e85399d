"""Expected starts refreshed in a worker process (a long queue) equal those refreshed in the service's
thread, from the database or from the last committed cycle's snapshot (expected.py)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from sqlalchemy import select, update

from hub_ext.service.expected import ExpectedStarts
from hub_ext.service.loop import SchedulingLoop
from hub_ext.service.snapshot import build_snapshot
from hub_ext.service.store import GpuRow, NodeRow, ShareRow, Store, TeamRow, WorkloadRow


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'expected.sqlite'}")
    s.migrate()
    now = time.time()
    with s.write() as db:
        db.add(TeamRow(name="vision", quota=2.0))
        node = NodeRow(name="a", simulated=True)
        node.gpus = [GpuRow(uuid=f"a/{i}", index=i, model="T4", memory_mib=15360) for i in range(2)]
        db.add(node)
        for i, limit in enumerate((3600.0, 7200.0)):  # both GPUs held by jobs with time limits
            row = WorkloadRow(user="ann", team="vision", kind="job", state="running", gpus=1.0, submitted_at=now - 700,
                              started_at=now - 600, priority=0, preemptible=True, time_limit_s=limit)
            row.shares.append(ShareRow(node_name="a", gpu_uuid=f"a/{i}", gpu_index=i, fraction=1.0))
            db.add(row)
        for k in range(3):
            db.add(WorkloadRow(user="bob", team="vision", kind="job", state="pending", gpus=1.0, submitted_at=now - 60 + k,
                               priority=0, preemptible=True, time_limit_s=1800.0))
    yield s
    s.dispose()


def _expected(store):
    with store.read() as db:
        return {seq: (at, basis) for seq, at, basis in db.execute(
            select(WorkloadRow.seq, WorkloadRow.expected_start, WorkloadRow.expected_start_basis).where(WorkloadRow.state == "pending"))}


def _forget(store):
    with store.write() as db:
        db.execute(update(WorkloadRow).values(expected_start=None, expected_start_basis=None))


def test_a_refresh_in_the_worker_process_writes_what_one_in_the_service_writes(store):
    loop = SchedulingLoop(store, supervisor=None, las_on_estimates=True)
    expected = ExpectedStarts(store, loop, worker_process_from=-1)
    loop.estimates = expected.estimate_of
    try:
        asyncio.run(expected.refresh())  # in the service, from a read of the rows
        assert expected.last_refresh_pid == os.getpid()
        in_service = _expected(store)
        starts = sorted(at for at, _ in in_service.values())
        assert all(at is not None for at in starts) and len(starts) == 3
        assert "time limit" in in_service[min(in_service)][1]  # (the first waits for the 1 h job's limit)

        _forget(store)
        with store.read() as db:  # as a committed cycle leaves it for the next refresh
            loop.settled, _ = build_snapshot(db, time.time(), loop.scheduler_config)
        asyncio.run(expected.refresh())
        assert _expected(store) == in_service

        _forget(store)
        expected.worker_process_from = 3  # a queue this long goes to the worker process
        before = dict(expected._estimates)
        expected._estimates = {}
        asyncio.run(expected.refresh())
        assert expected.last_refresh_pid not in (None, os.getpid())
        # background work: the worker runs at a lower CPU priority than the service's cycles (worker_nice)
        assert os.getpriority(os.PRIO_PROCESS, expected.last_refresh_pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + expected.worker_nice)
        assert _expected(store) == in_service
        # and the loop's core still gets every estimate with its basis (las_on_estimates is on)
        assert expected._estimates.keys() == before.keys() and expected._estimates == before
    finally:
        asyncio.run(expected.stop())


def test_what_a_refresh_found_is_written_only_to_rows_still_pending(store):
    from hub_ext.service.expected import write_found

    with store.read() as db:
        running = db.scalars(select(WorkloadRow.seq).where(WorkloadRow.state == "running")).all()
        queued = db.scalars(select(WorkloadRow.seq).where(WorkloadRow.state == "pending")).all()
    found = {seq: (1_000_000.0, "as a test") for seq in running + queued}
    assert write_found(store, found) == len(queued)
    with store.read() as db:
        stored = dict(db.execute(select(WorkloadRow.seq, WorkloadRow.expected_start_basis)).all())
    assert all(stored[s] == "as a test" for s in queued) and all(stored[s] is None for s in running)
    assert write_found(store, found) == 0  # nothing changed: nothing written again


def test_the_worker_priority_is_checked():
    import pytest
    from traitlets import TraitError

    with pytest.raises(TraitError, match="0..19"):
        ExpectedStarts(None, None, worker_nice=-5)  # a higher priority than the service's: never


def test_an_admin_can_have_running_work_estimated_from_the_runs_longer_than_it_has_run(store):
    """ExpectedStarts.given_run reaches the refresh: a job 4 h into its run, among past runs of 1, 2, 3, 10 and
    12 h, is estimated at their median (3 h, overrun) by default and at 11 h (the mean of the two longer) with
    given_run="mean"; the basis says so."""
    from hub_ext.scheduler.estimates import PastRun
    from hub_ext.scheduler.tests.helpers import job, pool, running, snap, teams
    from hub_ext.service.expected import forecast

    hour = 3600.0
    history = [PastRun("alice", "a", "job", 1.0, n * hour, float(k)) for k, n in enumerate((1, 2, 3, 10, 12))]
    run = running(job("w-1", "a", 1, user="alice", attained_gpu_s=4 * hour), "n/0", started=0.0)
    snapshot = snap(pool(("n", 1)), teams(("a", 1)), [run], [], now=4 * hour)
    seen = {}
    for given in ("off", "mean"):
        expected = ExpectedStarts(store, SchedulingLoop(store, supervisor=None), given_run=given)
        _, estimates = forecast(snapshot, history, expected.settings)  # (what a refresh hands its worker)
        seen[given] = estimates["w-1"]
    assert seen["off"].seconds == 3 * hour and "median" in seen["off"].basis
    assert seen["mean"].seconds == 11 * hour and "ran longer than the 4 h it has run" in seen["mean"].basis


def test_a_wrong_estimate_mode_is_refused():
    import pytest
    from traitlets import TraitError

    with pytest.raises(TraitError):
        ExpectedStarts(None, None, given_run="median-ish")
