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
    """service/loop.py re-reads only workloads whose revision moved: a write of a column the snapshot
    reads, or of the shares, bumps it (in the same UPDATE); a bulk write of queue positions and reasons does not."""
    from sqlalchemy import select, update

    from hub_ext.scheduler.model import SchedulerConfig
    from hub_ext.service.snapshot import build_snapshot
    from hub_ext.service.store.orm import ShareRow, WorkloadRow

    store = Store(f"sqlite:///{tmp_path / 'rev.sqlite'}")
    try:
        store.migrate()

        def revision():
            with store.write() as db:
                snapshot, rows = build_snapshot(db, 100.0, SchedulerConfig())
                return rows["w-1"].revision

        with store.write() as db:
            db.add(WorkloadRow(user="ann", team="vision", kind="job", state="pending", gpus=1.0, submitted_at=1.0))
        assert revision() == 0
        with store.write() as db:
            db.execute(update(WorkloadRow), [{"seq": 1, "queue_position": 3, "reason": "waiting"}])
        assert revision() == 0
        with store.write() as db:
            row = db.scalars(select(WorkloadRow)).one()
            row.reason = "still waiting"
        assert revision() == 0
        with store.write() as db:
            row = db.scalars(select(WorkloadRow)).one()
            row.priority = 2
        assert revision() == 1
        with store.write() as db:
            row = db.scalars(select(WorkloadRow)).one()
            row.gpus_cap, row.time_limit_s = 1, 60.0
        assert revision() == 2
        with store.write() as db:  # a resize of running work changes only its shares
            row = db.scalars(select(WorkloadRow)).one()
            row.shares.append(ShareRow(node_name="a", gpu_uuid="a/0", gpu_index=0, fraction=1.0))
        assert revision() == 3
    finally:
        store.dispose()
