"""The service-cycle benchmark runs end to end on a small pool (its figures are for people to read;
this checks that it still builds the service, times every kind of cycle and prints its verdicts)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_service_cycle_benchmark_times_cold_next_idle_and_cycles_in_a_row(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_service_cycle
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert bench_service_cycle.main(["--gpus", "32", "--pending", "200", "--teams", "4", "--runs", "2", "--sustained", "5", "--refreshes", "2"]) == 0
    out = capsys.readouterr().out
    assert "32 GPUs, 32 running sessions, 200 pending from 4 teams" in out
    for line in ("warm-up of a started service", "cold (first cycle of a started service, after its warm-up)",
                 "after a team's quota changed", "next (one session ended, one submitted)", "idle (nothing changed)",
                 "5 cycles in a row, each after one event", "first position asked",
                 "cycles beside expected-starts refreshes in a thread of the service",
                 "cycles beside expected-starts refreshes in its worker process",
                 "cycles beside expected-starts refreshes in its worker process at the service's CPU priority (worker_nice 0, the baseline)",
                 "worker process at a lower CPU priority (worker_nice 10) / at the service's (0), cycles beside the later refreshes: median",
                 "peak memory (resident, VmHWM): the service "):
        assert line in out, line
    assert out.count("target: a service cycle under 100 ms") == 7
    assert "its expected-starts worker process not started" not in out and "MiB" in out
