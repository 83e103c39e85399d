"""The whole API end-to-end suite again, with the service on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from tests.fixtures.hub import start_hub

from .test_api import *  # noqa: F401,F403 - the same tests, collected again against this module's hub


@pytest.fixture(scope="module")
def pool_hub(tmp_path_factory, postgres_server):
    hub = start_hub(tmp_path_factory.mktemp("hub-pg"), db_url=postgres_server.url(postgres_server.create_database()))
    yield hub
    hub.stop()


def test_the_service_really_uses_postgresql(pool_hub):
    assert pool_hub.service_config_path.read_text().count("postgresql+psycopg://") == 1
    assert not (pool_hub.state_dir / "gpupool.sqlite").exists()
