"""The case study's world, closed loop: 40 days of researchers under the pool and under static slices.

    .venv/bin/python benchmarks/bench_closed_loop.py --json closed.json --plot closed.png

Six research groups (Philly's six busiest virtual clusters: each experiment's
shape and run time are the group's next Philly job, in order) on a
DGX-1/DGX-2 cluster of 64 GPUs; each group has one researcher keeping one
experiment in flight with 72 h between a result and the next experiment, and
the first group also has the case study's power user, 50 experiments in
flight, 30 minutes between them (hub_ext/simulator/closed_loop.py,
``CaseStudy``). ``static``: each group owns an equal slice (the world the
case study left); ``pool``: the core's default configuration, equal quotas.
Writes {"pool": {"experiments", "utilisation", "mean_jct_s", ...}, "static": {...}}.
Needs ../shared/traces (the Philly extract); says so and stops without it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hub_ext.simulator.closed_loop import CaseStudy, case_study_cluster, run_closed_loop  # noqa: E402
from hub_ext.simulator.readers import read_trace  # noqa: E402

PHILLY = os.path.join(REPO, "..", "shared", "traces", "philly_2017-09-04_2017-10-22.csv")
TARGETS = {"experiments": 1.85, "utilisation": 2.1}  # the case study's x1.85 and x2.1


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ua, ea) = plt.subplots(2, 1, figsize=(10, 7))
    for name, r in results.items():
        t = [s[0] / 86400 for s in r.samples]
        # GPUs held, averaged per day (a cycle happens at every event: the raw series is very dense)
        days: dict[int, list] = {}
        for (tm, held, _), d in zip(r.samples, t):
            days.setdefault(int(d), []).append(held)
        xs = sorted(days)
        ua.plot(xs, [100 * sum(days[x]) / len(days[x]) / r.gpus for x in xs], label=f"{name} (mean {r.utilisation:.0%})")
    ua.set_ylabel("GPUs held, daily mean of cycles (%)")
    ua.set_ylim(0, 105)
    ua.legend(loc="lower right")
    ua.grid(alpha=0.3)
    names = list(results)
    ea.bar(names, [results[n].experiments for n in names], color=["tab:blue", "tab:orange"][: len(names)])
    for i, n in enumerate(names):
        ea.text(i, results[n].experiments, f"{results[n].experiments:,}", ha="center", va="bottom")
    ea.set_ylabel("experiments finished in 40 days")
    ua.set_title("Closed loop, the case study's world: pool vs static slices (64 GPUs, 6 groups)")
    ua.set_xlabel("day")
    ua.xaxis.set_tick_params(labelbottom=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=PHILLY, help="the Philly extract (default: ../shared/traces/philly_2017-09-04_2017-10-22.csv)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--plot", help="write a PNG here (default: beside --json, .png)")
    ap.add_argument("--days", type=float, default=40.0)
    ap.add_argument("--no-las", action="store_true",
                    help="the pool without least attained service (SchedulerConfig.las_thresholds_gpu_s=()), to compare")
    args = ap.parse_args(argv)
    if not os.path.exists(args.trace):
        print(f"bench_closed_loop: {args.trace} is not here (../shared/traces holds the Philly extract); nothing to replay", file=sys.stderr)
        return 2
    trace = read_trace(args.trace)
    trace = trace.window(max(0.0, trace.span - args.days * 86400))  # the trace's last 40 days, as bench_traces.py
    case = CaseStudy(days=args.days)
    results = {}
    cpu = {}
    for policy in ("pool", "static"):
        t0 = time.process_time()
        results[policy] = run_closed_loop(trace, case_study_cluster(), case.researchers(), policy, case.days,
                                          policy_options={"las": not args.no_las})
        cpu[policy] = time.process_time() - t0
    p, s = results["pool"], results["static"]
    print(f"Closed loop, {case.days:g} days, {p.gpus} GPUs (4 DGX-1 + 2 DGX-2), 6 groups with equal quotas / slices")
    print(f"pool: least attained service {'off (--no-las)' if args.no_las else 'on (the default: one cut at 16 GPU-hours)'}")
    print(f"researchers: 1 per group ({case.in_flight} in flight, think {case.think_h:g} h) + one power user "
          f"({case.power_in_flight} in flight, think {case.power_think_h:g} h)")
    print()
    print("| figure | pool | static | pool/static | target |")
    print("|---|---|---|---|---|")
    print(f"| experiments finished | {p.experiments:,} | {s.experiments:,} | x{p.experiments / s.experiments:.2f} | x{TARGETS['experiments']} |")
    print(f"| GPU utilisation | {p.utilisation:.1%} | {s.utilisation:.1%} | x{p.utilisation / s.utilisation:.2f} | x{TARGETS['utilisation']} |")
    print(f"| mean JCT (finished) | {p.mean_jct_s / 3600:.2f} h | {s.mean_jct_s / 3600:.2f} h | x{p.mean_jct_s / s.mean_jct_s:.2f} | |")
    print(f"| preemptions | {p.preemptions} | {s.preemptions} | | |")
    print(f"| replay CPU time | {cpu['pool']:.1f} s | {cpu['static']:.1f} s | | |")
    print()
    print("experiments per group (pool / static): " + ", ".join(f"{t} {p.by_team[t]} / {s.by_team[t]}" for t in sorted(p.by_team)))
    for k, target in TARGETS.items():
        r = getattr(p, k) / getattr(s, k)
        print(f"target: {k} x{target} or better: x{r:.2f} {'MET' if r >= target else 'MISSED'}")
    print(f"static utilisation under 30% (the case study's starting point): {s.utilisation:.1%} {'yes' if s.utilisation < 0.30 else 'NO'}")
    out = {k: v.as_dict() for k, v in results.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    png = args.plot or (os.path.splitext(args.json)[0] + ".png" if args.json else None)
    if png:
        plot(results, png)
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
