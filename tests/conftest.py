"""Shared test fixtures: a real JupyterHub with the gpupool service, a real PostgreSQL server."""

pytest_plugins = ["tests.fixtures.hub", "tests.fixtures.postgres"]
