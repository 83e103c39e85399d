"""Crash soak: how many kill -9s the service survives under load, and how long each outage lasts.

Starts a real JupyterHub managing the pool service (tests/fixtures/hub.py),
puts submit and cancel load on it through the hub's proxy with the project's
client (retries with backoff, idempotency keys), kills the service with
SIGKILL ``--kills`` times and, after every restart, checks that nothing
acknowledged was lost or duplicated, that no card is held beyond capacity
(database and live processes) and that running jobs were adopted
(tests/fixtures/crash_soak.py). Prints the restarts survived and the outage
per restart (kill -> the new service answers).

``--hub-poll`` is how often the hub checks its managed services
(``hub_ext.service.hub_restart``; "default" leaves JupyterHub's 30 s), which
bounds how long a crash goes unnoticed.

    python benchmarks/bench_crash_soak.py --kills 10
    python benchmarks/bench_crash_soak.py --kills 3 --hub-poll default
    python benchmarks/bench_crash_soak.py --kills 5 --engine postgresql
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.crash_soak import soak  # noqa: E402
from tests.fixtures.hub import start_hub  # noqa: E402


def _postgres_url() -> tuple[str, object]:
    """A database on a PostgreSQL server started as the tests start it; the generator stops it."""
    from tests.fixtures import postgres

    fixture = postgres.postgres_server
    # The plain generator behind the pytest fixture (pytest 8.4+ wraps it; older ones mark it).
    make = getattr(fixture, "_get_wrapped_function", None)
    server_gen = (make() if make else getattr(fixture, "__pytest_wrapped__").obj)()
    try:
        server = next(server_gen)
    except BaseException as e:  # pytest.skip: no PostgreSQL here
        raise SystemExit(f"PostgreSQL is not available: {e}") from None
    return server.url(server.create_database()), server_gen


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=10, help="kill -9s of the service (default 10)")
    p.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--hub-poll", default="1", help="seconds between the hub's checks of its services, or 'default' (30 s)")
    p.add_argument("--seed", type=int, default=14)
    args = p.parse_args(argv)
    poll = None if args.hub_poll == "default" else float(args.hub_poll)

    with tempfile.TemporaryDirectory(prefix="gpupool-soak-") as tmp_name:
        tmp = Path(tmp_name)
        db_url, pg = (None, None)
        if args.engine == "postgresql":
            db_url, pg = _postgres_url()
        started = time.monotonic()
        hub = start_hub(tmp / "hub", db_url=db_url, service_poll_seconds=poll)
        try:
            result = soak(hub, kills=args.kills, seed=args.seed, progress=lambda line: print("  " + line, flush=True))
        finally:
            hub.stop()
            if pg is not None:
                next(pg, None)  # the fixture's teardown: stop the server
        took = time.monotonic() - started

    poll_text = "JupyterHub's default (30 s)" if poll is None else f"{poll:g} s"
    print(f"crash soak on {args.engine}, hub service poll {poll_text}, {took:.0f} s in all")
    print(result.summary())
    if result.outages:
        print("outage per restart (s): " + ", ".join(f"{o:.2f}" for o in result.outages))
        print(f"outage: median {statistics.median(result.outages):.2f} s, "
              f"mean {statistics.mean(result.outages):.2f} s, max {max(result.outages):.2f} s")
    print(f"lost or duplicated or over capacity: {'none' if not result.problems else len(result.problems)}")
    for problem in result.problems:
        print("  PROBLEM: " + problem)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
