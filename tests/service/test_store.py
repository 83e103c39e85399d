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
