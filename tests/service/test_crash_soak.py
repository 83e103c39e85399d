"""Crash soak: repeated kill -9 of the service under submit and cancel load (tests/fixtures/crash_soak.py).

After every restart nothing acknowledged is lost or duplicated, no card is
held beyond capacity in the database or by live processes, and running jobs
are adopted. A few kills here, on SQLite and on PostgreSQL;
benchmarks/bench_crash_soak.py runs many and prints the outage per restart.
"""

from __future__ import annotations

import pytest

from tests.fixtures.crash_soak import soak
from tests.fixtures.hub import start_hub


@pytest.mark.parametrize("engine, kills", [("sqlite", 2), ("postgresql", 1)])
def test_kill_9_under_load_loses_nothing_duplicates_nothing_and_adopts_running_jobs(engine, kills, tmp_path, request):
    db_url = None if engine == "sqlite" else request.getfixturevalue("postgres_url")
    hub = start_hub(tmp_path / "hub", db_url=db_url)
    try:
        result = soak(hub, kills=kills, between=(0.5, 1.5))
    finally:
        hub.stop()
    print(result.summary())
    assert result.restarts == kills
    assert not result.problems, "\n".join(result.problems)
    assert result.acknowledged >= kills * 2, result.summary()
