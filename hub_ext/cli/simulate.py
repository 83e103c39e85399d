"""``gpupool simulate``: replay a job trace through the scheduler core on a virtual clock."""

from __future__ import annotations

import argparse
import json
import math
import sys

DAY = 86400.0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="replay a job trace on a simulated pool under a policy",
        description=(
            "Replay a job trace through the scheduler core on a discrete-event virtual clock and report jobs "
            "finished, GPU utilisation, job completion time, queueing delay, preemptions and each team's share. "
            "Shipped examples: --trace philly-sample --cluster seed-dgx."
        ),
    )
    p.add_argument("--trace", required=True, help="trace CSV (philly, tiresias, pollux, alibaba) or 'philly-sample'")
    p.add_argument("--cluster", required=True, help="cluster file (YAML/JSON: nodes, teams) or 'seed-dgx' / 'seed-dgx-philly'")
    p.add_argument(
        "--policy",
        default="pool",
        help="pool, static or fifo; several separated by commas (e.g. pool,static,fifo) compare on one plot (default: pool)",
    )
    p.add_argument(
        "--checkpoint-interval",
        type=_interval,
        default=1800.0,
        metavar="S",
        help="seconds between a job's checkpoints; a preempted job loses the work since its last one "
        "(0: never lose work; 'never': start over) (default: 1800)",
    )
    p.add_argument(
        "--cycle-interval",
        type=float,
        default=0.0,
        metavar="S",
        help="run at most one scheduling cycle per S virtual seconds, as a service loop with a period would "
        "(0: a cycle at every event; default 0)",
    )
    p.add_argument("--start-day", type=float, default=0.0, help="skip this many days of the trace first (default: 0)")
    p.add_argument(
        "--days",
        type=float,
        default=None,
        help="replay jobs submitted in this many days and stop the clock there; jobs unfinished then are reported "
        "(default: the whole trace, run until nothing can progress)",
    )
    p.add_argument("--format", choices=["philly", "tiresias", "pollux", "alibaba"], help="trace format (default: from the header)")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip rows that do not parse (counted in the report) instead of stopping")
    p.add_argument("--pollux-workload", default="workload-6", help="which workload-N of a pollux file to replay, or 'all' (default: workload-6)")
    p.add_argument(
        "--predict-starts",
        type=int,
        default=200,
        metavar="N",
        help="pool and fifo: predict the start of up to N arrivals (every k-th) with the forward run the service uses, "
        "and report the error against the real start (0: off; default 200)",
    )
    p.add_argument(
        "--time-limits",
        type=float,
        default=None,
        metavar="FACTOR",
        help="pool: jobs declare a time limit of FACTOR x their run time, rounded up to the hour (default: no limits)",
    )
    p.add_argument("--no-time-backfill", action="store_true", help="pool: no backfill onto reserved GPUs by time limits")
    p.add_argument(
        "--notice",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds a preempted job keeps its GPUs before they go, as the service's Preemption.grace_seconds "
        "(0: at once; default 120; the closed loop preempts at once)",
    )
    p.add_argument(
        "--no-las",
        action="store_true",
        help="pool: least attained service off (by default work that has held its GPUs 16 GPU-hours goes after "
        "its team's fresher work, as in the service), to compare",
    )
    p.add_argument("--json", metavar="OUT", help="write the figures (and time series) as JSON here")
    p.add_argument("--plot", metavar="OUT.png", help="write a PNG of utilisation and queue length over time here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    loop = p.add_argument_group(
        "closed loop",
        "researchers keep experiments in flight and submit the next one a think time after a result returns; "
        "experiments are drawn in order from their team's jobs in the trace (docs/simulator.md, 'Closed loop')",
    )
    loop.add_argument("--closed-loop", action="store_true", help="replay closed loop instead of at the trace's submit times")
    loop.add_argument("--groups", type=int, default=6, help="teams: the trace's N teams with most jobs (default 6)")
    loop.add_argument("--researchers", type=int, default=1, help="researchers per team (default 1)")
    loop.add_argument("--in-flight", type=int, default=1, help="experiments each researcher keeps in flight (default 1)")
    loop.add_argument("--think-hours", type=float, default=72.0, help="from a result to the next experiment (default 72)")
    loop.add_argument("--power-in-flight", type=int, default=50, help="the first team's power user: experiments in flight (0: none; default 50)")
    loop.add_argument("--power-think-hours", type=float, default=0.5, help="the power user's think time (default 0.5)")
    p.set_defaults(func=run)


def _interval(text: str) -> float:
    if text.strip().lower() in ("never", "none", "inf"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (or 'never')") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the checkpoint interval cannot be negative")
    return value


def run(args) -> int:
    from ..simulator.cluster import load_cluster
    from ..simulator.data import CLUSTERS, TRACES, resolve
    from ..simulator.plot import plot_summaries
    from ..simulator.readers import read_trace
    from ..simulator.replay import ceiling, replay
    from ..simulator.report import format_summary
    from ..simulator.trace import TraceError

    if not (0 <= args.notice <= 7 * 86400):
        print(f"gpupool simulate: error: --notice must be between 0 and a week (604800 s); got {args.notice:g}", file=sys.stderr)
        return 2
    if getattr(args, "closed_loop", False):
        return run_closed(args)
    policies = [p.strip() for p in args.policy.split(",") if p.strip()]
    unknown = [p for p in policies if p not in ("pool", "static", "fifo")]
    if unknown or not policies:
        print(f"gpupool simulate: error: unknown policy {', '.join(unknown) or '(none)'}; choose pool, static or fifo", file=sys.stderr)
        return 2
    try:
        trace = read_trace(
            resolve(args.trace, TRACES),
            args.format,
            skip_bad_rows=args.skip_bad_rows,
            pollux_workload=None if args.pollux_workload == "all" else args.pollux_workload,
        )
        cluster = load_cluster(resolve(args.cluster, CLUSTERS))
        length = None if args.days is None else args.days * DAY
        if args.start_day or length is not None:
            trace = trace.window(args.start_day * DAY, length)
            if not trace.jobs:
                raise TraceError(f"{trace.name}: no jobs submitted in the chosen window")
        cluster = cluster.with_teams_for(trace)
        summaries = []
        for policy in policies:
            _, summary = replay(
                trace,
                cluster,
                policy,
                checkpoint_interval=args.checkpoint_interval,
                end=length,
                progress=not args.no_progress,
                cycle_interval=args.cycle_interval,
                predict_starts=max(0, args.predict_starts),
                notice_s=args.notice,
                policy_options={"time_limit_factor": args.time_limits, "time_backfill": not args.no_time_backfill, "las": not args.no_las},
            )
            summaries.append(summary)
            print(format_summary(summary))
            print()
        bound = ceiling(trace, cluster, length if length is not None else max(s["replayed_s"] for s in summaries))
    except (TraceError, OSError) as e:
        print(f"gpupool simulate: error: {e}", file=sys.stderr)
        return 2
    print(f"work-conserving bound (one perfectly packed queue, same trace and GPUs): {bound:.1%} utilisation")
    if len(summaries) > 1:
        print(_comparison(summaries))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"cluster": cluster.describe(), "work_conserving_utilisation": bound, "runs": summaries}, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot_summaries(summaries, args.plot)
        print(f"wrote {args.plot}")
    return 0


def run_closed(args) -> int:
    from ..simulator.closed_loop import CaseStudy, busiest_teams, run_closed_loop
    from ..simulator.cluster import load_cluster
    from ..simulator.data import CLUSTERS, TRACES, resolve
    from ..simulator.readers import read_trace
    from ..simulator.trace import TraceError

    policies = [p.strip() for p in args.policy.split(",") if p.strip()]
    if not policies or any(p not in ("pool", "static", "fifo") for p in policies):
        print("gpupool simulate: error: choose policies among pool, static, fifo", file=sys.stderr)
        return 2
    if args.in_flight < 1 or args.researchers < 0 or args.power_in_flight < 0 or args.think_hours < 0 or args.power_think_hours < 0:
        print("gpupool simulate: error: --in-flight must be >= 1; counts and think times cannot be negative", file=sys.stderr)
        return 2
    days = 40.0 if args.days is None else args.days
    try:
        trace = read_trace(resolve(args.trace, TRACES), args.format, skip_bad_rows=args.skip_bad_rows)
        if args.start_day:
            trace = trace.window(args.start_day * DAY)
        cluster = load_cluster(resolve(args.cluster, CLUSTERS))
        groups = busiest_teams(trace, args.groups)
        if not groups:
            raise TraceError(f"{trace.name}: no jobs to draw experiments from")
        case = CaseStudy(
            researchers_per_group=args.researchers, in_flight=args.in_flight, think_h=args.think_hours,
            power_in_flight=args.power_in_flight, power_think_h=args.power_think_hours, days=days,
        )
        researchers = [r for r in case.researchers(tuple(groups)) if r.in_flight > 0]
        results = [
            run_closed_loop(trace, cluster, researchers, p, days, checkpoint_interval=args.checkpoint_interval,
                            policy_options={"las": not args.no_las})
            for p in policies
        ]
    except (TraceError, OSError) as e:
        print(f"gpupool simulate: error: {e}", file=sys.stderr)
        return 2
    print(f"closed loop: {days:g} days on {cluster.describe()}; teams (equal quotas): {', '.join(groups)}")
    print(f"{'policy':<8} {'experiments':>12} {'utilisation':>12} {'mean JCT':>10} {'preemptions':>12}")
    for r in results:
        jct = "-" if r.mean_jct_s is None else f"{r.mean_jct_s / 3600:.2f} h"
        print(f"{r.policy:<8} {r.experiments:>12} {r.utilisation:>12.1%} {jct:>10} {r.preemptions:>12}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({r.policy: r.as_dict() for r in results}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def _comparison(summaries: list[dict]) -> str:
    lines = [f"{'policy':<8} {'finished':>9} {'unfinished':>11} {'utilisation':>12} {'mean JCT':>12} {'preemptions':>12}"]
    for s in summaries:
        jct = "-" if s["mean_jct_s"] is None else f"{s['mean_jct_s'] / 3600:.2f} h"
        lines.append(
            f"{s['policy']:<8} {s['finished']:>9} {s['unfinished']:>11} {s['utilisation']:>12.1%} {jct:>12} {s['preemptions']:>12}"
        )
    return "\n".join(lines)
