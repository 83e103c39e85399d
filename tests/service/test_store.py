"""The schema comes from the Alembic migrations, and they match the ORM module (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hub_ext.service.store import Store
from hub_ext.service.store.orm import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    return request.getfixturevalue("postgres_url")


def test_migrations_build_exactly_the_orm_schema_and_can_run_again(fresh_url):
    store = Store(fresh_url)
    try:
        store.migrate()
        store.migrate()  # every start runs them: a second run changes nothing
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == [], f"the migrations and orm.py disagree: {diff}"
            tables = set(inspect(conn).get_table_names())
        assert {"nodes", "gpus", "teams", "workloads", "shares", "events", "alembic_version"} <= tables
    finally:
        store.dispose()


def test_a_workload_revision_moves_with_what_the_scheduler_reads_and_not_with_positions(tmp_path):
    """service/snapshot.py's KeptSnapshot reads only rows whose revision is above the last it saw: an insert,
    a write of a column the snapshot reads, or of the shares, sets it to a new global stamp (higher than any
    before, whatever the row); a bulk write of queue positions and reasons, or of other columns, does not."""
    from sqlalchemy import select, update

    from hub_ext.scheduler.model import SchedulerConfig
    from hub_ext.service.snapshot import build_snapshot
    from hub_ext.service.store.orm import ShareRow, WorkloadRow

    store = Store(f"sqlite:///{tmp_path / 'rev.sqlite'}")
    try:
        store.migrate()

        def revision(wid="w-1"):
            with store.write() as db:
                snapshot, rows = build_snapshot(db, 100.0, SchedulerConfig())
                return rows[wid].revision

        with store.write() as db:
            db.add(WorkloadRow(user="ann", team="vision", kind="job", state="pending", gpus=1.0, submitted_at=1.0))
        first = revision()
        assert first > 0
        with store.write() as db:
            db.execute(update(WorkloadRow), [{"seq": 1, "queue_position": 3, "reason": "waiting"}])
        assert revision() == first
        with store.write() as db:
            row = db.scalars(select(WorkloadRow)).one()
            row.reason = "still waiting"
        assert revision() == first
        with store.write() as db:  # another workload: a later stamp than any before
            db.add(WorkloadRow(user="bob", team="vision", kind="job", state="pending", gpus=1.0, submitted_at=2.0))
        assert revision("w-2") > first
        with store.write() as db:
            row = db.get(WorkloadRow, 1)
            row.priority = 2
        second = revision()
        assert second > revision("w-2")
        with store.write() as db:  # two columns, two rows, one transaction: one stamp
            row, other = db.get(WorkloadRow, 1), db.get(WorkloadRow, 2)
            row.gpus_cap, row.time_limit_s, other.priority = 1, 60.0, 3
        third = revision()
        assert third > second and revision("w-2") == third
        with store.write() as db:  # a resize of running work changes only its shares
            row = db.get(WorkloadRow, 1)
            row.shares.append(ShareRow(node_name="a", gpu_uuid="a/0", gpu_index=0, fraction=1.0))
        assert revision() > third
    finally:
        store.dispose()


def test_a_read_waits_for_no_writer_and_sees_the_last_committed_state(fresh_url):
    """While a write transaction is open (a cycle, a submit), a read (an API view) answers at once, with
    what was committed before it; on SQLite a read used to take the write lock and wait for the writer."""
    import time

    from hub_ext.service.store import TeamRow

    store = Store(fresh_url.replace("fresh.sqlite", "reads.sqlite"))
    try:
        store.migrate()
        with store.write() as db:
            db.add(TeamRow(name="vision", quota=4.0))
        with store.write() as db:
            db.get(TeamRow, "vision").quota = 8.0
            db.flush()  # written, not committed
            started = time.monotonic()
            with store.read() as other:
                seen = other.get(TeamRow, "vision").quota
            assert time.monotonic() - started < 5  # (a waiting read would wait for the busy timeout: 30 s)
            assert seen == 4.0
        with store.read() as db:
            assert db.get(TeamRow, "vision").quota == 8.0
    finally:
        with store.write() as db:
            team = db.get(TeamRow, "vision")
            if team is not None:
                db.delete(team)
        store.dispose()
