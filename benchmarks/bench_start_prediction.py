"""Expected starts measured, and backfill that uses time measured, on the busy Philly pool.

    .venv/bin/python benchmarks/bench_start_prediction.py [--days D] [--budget N] [--only prediction|backfill]

The shared Philly trace (last 40 days) on 512 GPUs (32 DGX-1 + 16 DGX-2: the
"busy Philly" setup of docs/benchmarks.md, queues of thousands of jobs), the
pool policy, a cycle at every event. Needs ../shared/traces; says so and
exits when it is absent.

1. prediction: each of up to N arrivals (every k-th) gets an expected start
   from the forward run the service uses (estimates learned only from jobs
   finished so far), compared with its real start, over jobs that waited over
   10 min; beside it the naive baseline (queue position x mean run time of
   finished work). Target: median error at most half the baseline's.
2. backfill: jobs declare a time limit of 2x their run time rounded up to the
   hour; the same replay with and without backfill by time onto reserved GPUs
   (EASY): GPU-hours reservations held idle, and the waits of the workloads
   that held a reservation.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hub_ext.simulator.cluster import seed_cluster  # noqa: E402
from hub_ext.simulator.readers import read_trace  # noqa: E402
from hub_ext.simulator.replay import replay  # noqa: E402

TRACE = os.path.join(os.path.dirname(REPO), "shared", "traces", "philly_2017-09-04_2017-10-22.csv")
DAY = 86400.0


def _h(seconds):
    if seconds is None:
        return "-"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _signed(seconds):
    if seconds is None:
        return "-"
    return ("-" if seconds < 0 else "+") + _h(abs(seconds)) + (" (too early)" if seconds < 0 else " (too late)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=40.0, help="the last D days of the trace (default 40)")
    ap.add_argument("--budget", type=int, default=200, help="arrivals to predict (default 200)")
    ap.add_argument("--limit-factor", type=float, default=2.0, help="backfill: jobs' time limit = FACTOR x run time, to the hour")
    ap.add_argument("--only", choices=["prediction", "backfill"], help="run one part only")
    ap.add_argument("--quantile", type=float, default=0.5, help="run-time estimates: this quantile of past runs (default 0.5)")
    args = ap.parse_args()
    if not os.path.exists(TRACE):
        print(f"skipped: {TRACE} is absent (the shared traces sit beside the checkout)")
        return 0
    trace = read_trace(TRACE)
    length = args.days * DAY
    trace = trace.window(max(0.0, trace.span - length), length)
    cluster = seed_cluster(32, 16).with_teams_for(trace)
    print(f"philly, last {args.days:g} days: {len(trace.jobs)} jobs on {cluster.total_gpus} GPUs (pool policy, a cycle per event)")
    if args.only in (None, "prediction"):
        cpu = time.process_time()
        _, s = replay(trace, cluster, "pool", end=length, predict_starts=args.budget, prediction_options={"quantile": args.quantile})
        sp = s["start_prediction"]
        print(f"\nexpected start at submission vs real start ({time.process_time() - cpu:.0f} s CPU)")
        print(f"  arrivals predicted: {sp['predicted_arrivals']} (every {sp['every_kth_arrival']}th)")
        print(f"  scored (waited > {sp['min_wait_s'] / 60:.0f} min): {sp['predictions']}; not known: {sp['not_known']}")
        print(f"  median abs error: {_h(sp['median_abs_error_s'])}; p90: {_h(sp['p90_abs_error_s'])}; within 50% of the wait: "
              f"{sp['within_50pct']:.0%}; median signed error {_signed(sp['median_error_s'])}" if sp["predictions"] else "  nothing scored")
        base = sp["baseline_median_abs_error_s"]
        print(f"  naive baseline (queue position x mean run time) median abs error: {_h(base)}")
        tput = sp["throughput_baseline_median_abs_error_s"]
        print(f"  throughput baseline (queue position x mean time between completions) median abs error: {_h(tput)}")
        if sp["median_abs_error_s"] is not None and base:
            ratio = sp["median_abs_error_s"] / base
            verdict = "MET" if ratio <= 0.5 else "MISSED"
            print(f"  forward run / baseline: x{ratio:.3f}: {verdict} (target: at most x0.5)")
        if sp["median_abs_error_s"] is not None and tput:
            print(f"  forward run / throughput baseline: x{sp['median_abs_error_s'] / tput:.2f}")
    if args.only in (None, "backfill"):
        print(f"\nbackfill by time limits (jobs declare {args.limit_factor:g}x their run time, to the hour)")
        print(f"  {'':<22} {'idle GPU-h held':>16} {'reserved':>9} {'reserved->start mean':>21} {'p95':>7} "
              f"{'submit->start mean':>19} {'p95':>7} {'mean JCT':>9} {'utilisation':>12}")
        for label, on in (("reservations only", False), ("EASY backfill by time", True)):
            cpu = time.process_time()
            _, s = replay(trace, cluster, "pool", end=length,
                          policy_options={"time_limit_factor": args.limit_factor, "time_backfill": on})
            r = s["reservations"]
            print(f"  {label:<22} {r['idle_gpu_hours']:>16.0f} {r['reserved_workloads']:>9} {_h(r['mean_wait_from_reservation_s']):>21} "
                  f"{_h(r['p95_wait_from_reservation_s']):>7} {_h(r['mean_wait_s']):>19} {_h(r['p95_wait_s']):>7} "
                  f"{_h(s['mean_jct_s']):>9} {s['utilisation']:>12.1%}   ({time.process_time() - cpu:.0f} s CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
