"""Replay the shared traces under pool, static and fifo and print one comparison table.

    .venv/bin/python benchmarks/bench_traces.py            # all traces found in ../shared/traces
    .venv/bin/python benchmarks/bench_traces.py --only philly --markdown

Each trace is replayed on a cluster of the seed's shape (DGX-1s with 8 GPUs
beside DGX-2s with 16, two DGX-1s per DGX-2) sized so its offered load (GPU-
hours submitted that fit in the window / GPU-hours the cluster has in it) is
stated in the table. Teams get quotas in proportion to the GPU-hours they
submit (``cluster.quotas_from_load``); the static world gives each team a
slice of that size (``policies.static_slices``). Beside each figure: the
packed queue (``bound.packed_queue``): one perfectly packed queue on the same
trace and GPUs, whose utilisation is the work-conserving bound (the ceiling).

The targets of issue 3 are checked and printed under the table:
pool utilisation within 3% of the ceiling, mean JCT at least 50% below both
fifo and static, and no team with a higher mean JCT under pool than in its
static slice. Mean JCT is shown over finished jobs and, because a policy that
finishes fewer jobs would otherwise look better, also counting unfinished
jobs as ending at the window's end (a lower bound on their JCT).

Without ../shared/traces (a user's clone) only the shipped Philly sample is
replayed, and the script says so.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hub_ext.simulator.bound import packed_queue  # noqa: E402
from hub_ext.simulator.cluster import seed_cluster  # noqa: E402
from hub_ext.simulator.data import TRACES, resolve  # noqa: E402
from hub_ext.simulator.readers import read_trace  # noqa: E402
from hub_ext.simulator.replay import replay  # noqa: E402

SHARED = os.path.join(os.path.dirname(REPO), "shared", "traces")
DAY = 86400.0
POLICIES = ("pool", "static", "fifo")


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    window: str  # "first" / "last" N days, or "all"
    days: float | None
    units: int  # cluster size in units of (2 x DGX-1 + 1 x DGX-2) = 32 GPUs
    why: str
    slow: bool = False  # minutes, not seconds: run only when named with --only

    def cluster_shape(self) -> tuple[int, int]:
        return 2 * self.units, self.units


CASES = [
    Case("philly", os.path.join(SHARED, "philly_2017-09-04_2017-10-22.csv"), "last", 40, 24,
         "the last 40 days of the shared Philly trace; teams are its virtual clusters"),
    Case("philly-busy", os.path.join(SHARED, "philly_2017-09-04_2017-10-22.csv"), "last", 40, 16,
         "the same 40 days of Philly on a smaller cluster, so queues hold thousands of jobs", slow=True),
    Case("alibaba", os.path.join(SHARED, "alibaba_openb_pod_list_default.csv"), "all", None, 1,
         "the whole 149 days (clock stops at the last submission); GPU pods only; teams are QoS classes; fractions from gpu_milli"),
    Case("pollux", os.path.join(SHARED, "pollux_workloads.csv"), "first", 1, 2,
         "workload-6, 8 h of arrivals replayed for 1 day; modelled durations; elastic 1..num_replicas; 4 teams by name hash"),
    Case("tiresias", os.path.join(SHARED, "tiresias_60_job.csv"), "first", 1 / 24, 1,
         "60-job smoke test (not a real trace), 1 hour; teams are model families"),
]
SAMPLE = Case("philly-sample", resolve("philly-sample", TRACES), "first", 3, 8,
              "the shipped 3-day Philly sample (../shared/traces absent)")


def load(case: Case, days: float | None = None):
    """The case's trace and end; ``days``: only the first that many days of its window (shorter runs, for profiling)."""
    trace = read_trace(case.path)
    if case.days is None:
        trace, end = trace, trace.span  # the whole trace: the clock stops at its last submission
    else:
        length = case.days * DAY
        start = max(0.0, trace.span - length) if case.window == "last" else 0.0
        trace, end = trace.window(start, length), length
    if days is not None and days * DAY < end:
        trace, end = trace.window(0.0, days * DAY), days * DAY
    return trace, end


def run_case(case: Case, checkpoint_interval: float, progress: bool, cycle_interval: float = 0.0, notice_s: float = 0.0,
             days: float | None = None, las: bool = True) -> dict:
    trace, end = load(case, days)
    dgx1, dgx2 = case.cluster_shape()
    cluster = seed_cluster(dgx1, dgx2).with_teams_for(trace)
    ref = packed_queue(trace, cluster.total_gpus, end)
    runs = {}
    for policy in POLICIES:
        started, cpu = time.perf_counter(), time.process_time()
        _, s = replay(
            trace, cluster, policy, checkpoint_interval=checkpoint_interval, end=end, progress=progress, cycle_interval=cycle_interval,
            notice_s=notice_s, policy_options={"las": las},
        )
        s["bench_wall_s"] = time.perf_counter() - started
        s["bench_cpu_s"] = time.process_time() - cpu
        runs[policy] = s
    return {"case": case, "trace": trace, "cluster": cluster, "dgx": (dgx1, dgx2), "ref": ref, "runs": runs}


def _h(seconds):
    return "-" if seconds is None else f"{seconds / 3600:.2f} h"


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"x{a / b:.2f}"


def table(results: list[dict], markdown: bool) -> str:
    head = ["trace (window, cluster, offered load)", "figure", "pool", "static", "fifo", "pool/static", "pool/fifo", "packed queue (ceiling)"]
    rows = []
    for r in results:
        p, s, f = (r["runs"][k] for k in POLICIES)
        dgx1, dgx2 = r["dgx"]
        span = p["replayed_s"]
        span_text = f"{span / DAY:.3g} d" if span >= DAY else f"{span / 3600:.3g} h"
        label = f"{r['case'].name}: {len(r['trace'].jobs)} jobs, {span_text}, {dgx1}xDGX-1 + {dgx2}xDGX-2 = {r['cluster'].total_gpus} GPUs, load {p['offered_load']:.2f}"
        figures = [
            ("jobs finished", lambda x: x["finished"], str, lambda: str(r["ref"].finished)),
            ("unfinished at the end", lambda x: x["unfinished"], str, lambda: "-"),
            ("GPU utilisation", lambda x: x["utilisation"], lambda v: f"{v:.1%}", lambda: f"{r['ref'].utilisation:.1%}"),
            ("mean JCT, finished", lambda x: x["mean_jct_s"], _h, lambda: _h(r["ref"].mean_jct_s)),
            ("mean JCT, unfinished to the end", lambda x: x["mean_jct_with_unfinished_s"], _h, lambda: "-"),
            ("p95 JCT, finished", lambda x: x["p95_jct_s"], _h, lambda: "-"),
            ("preemptions (GPU-h lost)", lambda x: x["preemptions"], None, lambda: "-"),
            ("replay CPU time (wall)", lambda x: x["bench_cpu_s"], None, lambda: "-"),
        ]
        for i, (name, get, fmt, ceil) in enumerate(figures):
            if name.startswith("preemptions"):
                cells = [f"{x['preemptions']} ({x['lost_gpu_hours']:.0f})" for x in (p, s, f)]
                ratios = ["-", "-"]
            elif name.startswith("replay"):
                cells = [f"{x['bench_cpu_s']:.1f} s ({x['bench_wall_s']:.1f} s)" for x in (p, s, f)]
                ratios = ["-", "-"]
            else:
                cells = [fmt(get(x)) if get(x) is not None else "-" for x in (p, s, f)]
                ratios = [_ratio(get(p), get(s)), _ratio(get(p), get(f))]
            rows.append([label if i == 0 else "", name, *cells, *ratios, ceil()])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(row[i])) for row in rows + [head]) for i in range(len(head))]
    widths[0] = min(widths[0], 40)
    out = []
    for row in [head] + rows:
        first = row[0] if len(row[0]) <= widths[0] else row[0][: widths[0] - 1] + "…"
        out.append("  ".join([first.ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]))
    return "\n".join(out)


def team_table(results: list[dict], markdown: bool) -> str:
    """Per team: mean JCT (unfinished counted to the end) under pool and in its static slice."""
    head = ["trace", "team", "quota", "jobs", "pool", "static", "pool/static"]
    rows = []
    for r in results:
        p, s = r["runs"]["pool"], r["runs"]["static"]
        for team in sorted(p["teams"]):
            mine, theirs = p["teams"][team]["mean_jct_with_unfinished_s"], s["teams"].get(team, {}).get("mean_jct_with_unfinished_s")
            quota = r["cluster"].teams[team].quota
            rows.append([r["case"].name, team, f"{quota:g}", str(p["teams"][team]["jobs"]), _h(mine), _h(theirs), _ratio(mine, theirs)])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(row[i])) for row in rows + [head]) for i in range(len(head))]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in [head] + rows)


def targets(r: dict) -> list[str]:
    p, s, f = (r["runs"][k] for k in POLICIES)
    name = r["case"].name
    ceiling = r["ref"].utilisation
    lines = []
    ok = p["utilisation"] >= 0.97 * ceiling
    lines.append(
        f"{name}: pool utilisation {p['utilisation']:.1%} vs ceiling {ceiling:.1%} "
        f"({p['utilisation'] / ceiling:.1%} of it): {'MET' if ok else 'MISSED'} (target: within 3%)"
    )
    for label, key in (("finished", "mean_jct_s"), ("unfinished to the end", "mean_jct_with_unfinished_s")):
        parts = []
        for other, o in (("fifo", f), ("static", s)):
            if p[key] is None or not o[key]:
                parts.append(f"vs {other}: -")
                continue
            cut = 1 - p[key] / o[key]
            where = f"{cut:.0%} below" if cut >= 0 else f"{-cut:.0%} above"
            parts.append(f"{where} {other} {'MET' if cut >= 0.5 else 'MISSED'}")
        lines.append(f"{name}: pool's mean JCT ({label}) is {'; '.join(parts)} (target: at least 50% below both)")
    worse = []
    for team, t in p["teams"].items():
        mine, theirs = t["mean_jct_with_unfinished_s"], s["teams"].get(team, {}).get("mean_jct_with_unfinished_s")
        if mine is not None and theirs is not None and mine > theirs * 1.0001:
            worse.append(f"{team} ({_h(mine)} vs {_h(theirs)} static)")
    lines.append(
        f"{name}: teams worse off under pool than in their static slice (mean JCT, unfinished counted to the end): "
        + (", ".join(worse) + " MISSED" if worse else "none MET")
    )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", action="append", help="replay only these (philly, alibaba, pollux, tiresias; philly-busy runs only when named: minutes)"
    )
    parser.add_argument("--checkpoint-interval", type=float, default=1800.0, help="seconds between checkpoints (default 1800)")
    parser.add_argument(
        "--cycle-interval", type=float, default=0.0, help="at most one scheduling cycle per this many virtual seconds (default 0: every event)"
    )
    parser.add_argument("--days", type=float, help="replay only the first this many days of each window (shorter runs, e.g. to profile)")
    parser.add_argument(
        "--notice", type=float, default=120.0,
        help="seconds a preempted job keeps its GPUs before they go (default 120: the service's Preemption.grace_seconds; 0: at once)",
    )
    parser.add_argument(
        "--no-las", action="store_true",
        help="the pool without least attained service (SchedulerConfig.las_thresholds_gpu_s=()), to compare",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per replay")
    args = parser.parse_args(argv)
    if os.path.isdir(SHARED):
        cases = [c for c in CASES if (c.name in args.only if args.only else not c.slow)]
    else:
        print(f"note: {SHARED} is absent, so the shared traces are skipped; replaying only the shipped Philly sample")
        cases = [SAMPLE]
    results = []
    for case in cases:
        print(f"replaying {case.name}: {case.why} ...", file=sys.stderr, flush=True)
        results.append(run_case(case, args.checkpoint_interval, args.progress, args.cycle_interval, args.notice, args.days, not args.no_las))
    cycles = "a scheduling cycle at every event" if not args.cycle_interval else f"at most one scheduling cycle per {args.cycle_interval:g} s"
    las = "pool without least attained service (--no-las)" if args.no_las else "pool with least attained service (one cut at 16 GPU-hours)"
    print(f"checkpoint interval {args.checkpoint_interval:g} s; {cycles}; preemption notice {args.notice:g} s; {las}; "
          "quotas in proportion to submitted GPU-hours; "
          "static slices of whole GPUs sized by quota")
    for r in results:
        print(f"- {r['case'].name}: {r['case'].why}")
    print()
    print(table(results, args.markdown))
    print()
    print("Mean JCT per team, unfinished jobs counted to the end (the target: pool no higher than static):")
    print()
    print(team_table(results, args.markdown))
    print()
    for r in results:
        for line in targets(r):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
