"""Our scheduler core inside the Pollux (OSDI'21) simulator, beside the published Pollux, Tiresias and Optimus.

    .venv/bin/python benchmarks/bench_pollux.py --simulator ../shared/pollux-simulator \\
        --workloads ../shared/pollux-simulator/workloads --json pollux.json

Makes its own virtual environment for the simulator's pinned dependencies
(``--venv``, default ``.gpupool/bench/pollux-venv``, ignored by git; never the
project's ``.venv``), then runs benchmarks/pollux_adapter.py in it once per
workload file and configuration (rigid, elastic). Writes

    {"workloads": {"workload-1": {"mean_jct_s", "p95_jct_s", "makespan_s", "rigid": {...}, "elastic": {...}}, ...},
     "recommended": "elastic", "published": {...}, "mean": {...}}

where the top-level figures of each workload are those of the recommended
configuration (docs/benchmarks.md says why), and prints our figures beside
the published ones read from ``--results`` (default: ``results-jobload``
beside the simulator, at ``--load``; a load with no published results
prints ours alone). The mapping is in pollux_adapter.py's docstring.

Our core runs its defaults with the recommended overrides, ``RECOMMENDED_CONFIG``
(least attained service on run-time estimates, ``las_on_estimates``; elastic
jobs larger than a node starting on idle GPUs spread over any nodes,
``elastic_spread_start``; running elastic work estimated far longer than work
below its ask suspended for it, ``las_suspend_elastic`` with its ratio, minimum
run and wait bound, never for top-level work, ``las_suspend_top_in_order``; all off in the core's own
defaults), ``--estimate-min-runs 1`` and the Estimator options ``RECOMMENDED_ESTIMATOR`` (``--estimator``:
a job that has run is estimated from its application's past runs longer than what it has run, their mean,
and past every one of them at what it has run plus a quarter of its overrun; estimates.py, off in the
Estimator's defaults and in the live service); ``--config '{}' --estimate-min-runs 3 --estimator '{}'``
runs the core's defaults as they are.

``--oracle`` also runs benchmarks/pollux_oracle.py in the same modes: a
reference that knows each job's remaining work (a bound for fixed batch
sizes, not a policy; never the product). Its columns come last in each
table and its figures go under their own JSON key, ``"oracle"``
({"label", "workloads": {w: {mode: figures}}, "mean", "best",
"best_over_pollux"}); ours are unchanged by it.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADAPTER = os.path.join(REPO, "benchmarks", "pollux_adapter.py")
# The oracle reference (--oracle): knows each job's remaining work; a bound, never the product.
ORACLE = os.path.join(REPO, "benchmarks", "pollux_oracle.py")
ORACLE_LABEL = "oracle (knows remaining work: a bound, not a policy)"
PINNED = ("numpy==1.23.5", "pandas==1.5.3", "scipy==1.10.1", "pymoo==0.4.2.1")
DEFAULT_VENV = os.path.join(REPO, ".gpupool", "bench", "pollux-venv")
MODES = ("rigid", "elastic")
RECOMMENDED = "elastic"
PUBLISHED = ("tiresias", "pollux", "optimus")
# The SchedulerConfig fields that decide this harness's figures, printed with them.
CORE_SWITCHES = ("las_on_estimates", "las_thresholds_gpu_s", "las_preempt_elastic", "elastic_growth_order", "new_work_shrinks_elastic", "new_work_shrink_floor", "las_top_in_submit_order", "las_top_floor_until", "reservation_after_s", "elastic_spread_start", "las_suspend_elastic", "las_suspend_ratio", "las_suspend_min_run_s", "las_suspend_wait_factor", "las_suspend_top_in_order")
# The recommended configuration this harness runs by default (--config and --estimate-min-runs replace it):
# least attained service on run-time estimates, off in the core's defaults (it is measured only here:
# docs/benchmarks.md), with estimates from one past run of an application on (ExpectedStarts.min_runs = 1);
# elastic jobs larger than a node may start on idle GPUs spread over any nodes, off in the core's defaults
# (NCCL across nodes is slower on real machines; a spread placement costs nothing in this simulator's profiles).
RECOMMENDED_CONFIG = {"las_on_estimates": True, "elastic_spread_start": True,
                      "las_suspend_elastic": True, "las_suspend_ratio": 1.5, "las_suspend_min_run_s": 120.0, "las_suspend_wait_factor": 1.0,
                      "las_suspend_top_in_order": True}
RECOMMENDED_MIN_RUNS = 1
# Estimator options of the recommended configuration (--estimator replaces them; '{}': the Estimator's defaults).
# Here: a job that has run is estimated from its application's past runs longer than what it has run (their
# mean), and one past every such run at what it has run and a quarter of its overrun more (estimates.py;
# the live ExpectedStarts estimator keeps its defaults: no option).
RECOMMENDED_ESTIMATOR: dict = {"given_run": "mean", "beyond": "overrun"}
# Targets from issue 15.
POLLUX_SLACK = 0.15


class SetupError(RuntimeError):
    """The simulator or its environment cannot be used here (the message says why)."""


def venv_python(venv: str) -> str:
    return os.path.join(venv, "bin", "python")


def make_venv(venv: str = DEFAULT_VENV, quiet: bool = True) -> str:
    """The simulator's environment, made once (a stamp file records the pins); returns its python."""
    python = venv_python(venv)
    stamp = os.path.join(venv, ".pollux-pins")
    want = "\n".join(PINNED)
    if os.path.exists(python) and os.path.exists(stamp) and open(stamp).read() == want:
        return python
    os.makedirs(os.path.dirname(venv) or ".", exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", venv],
        [python, "-m", "pip", "install", *(["-q"] if quiet else []), *PINNED],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise SetupError(f"could not make the simulator's environment ({' '.join(cmd[:4])} ...): " + " | ".join(tail))
    with open(stamp, "w") as f:
        f.write(want)
    return python


def check_simulator(simulator: str) -> None:
    for name in ("simulator.py", "applications.py", "utils.py", "traces"):
        if not os.path.exists(os.path.join(simulator, name)):
            raise SetupError(f"{simulator} is not the Pollux simulator (no {name})")


def run_one(python: str, simulator: str, workload: str, mode: str, config: dict | None = None, script: str = ADAPTER,
            estimates_by: str = "application", min_runs: int = 3, estimator: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        cmd = [python, script, "--simulator", simulator, "--workload", workload, "--mode", mode, "--json", out]
        if config and script == ADAPTER:
            cmd += ["--config", json.dumps(config)]
        if script == ADAPTER:
            cmd += ["--estimates-by", estimates_by, "--estimate-min-runs", str(min_runs)]
            if estimator:
                cmd += ["--estimator", json.dumps(estimator)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{os.path.basename(workload)} ({mode}) failed:\n{done.stderr[-3000:]}")
        with open(out) as f:
            return json.load(f)


def p95(values) -> float:
    """Nearest-rank 95th percentile."""
    v = sorted(values)
    return float(v[max(0, math.ceil(0.95 * len(v)) - 1)])


def figures(jcts: dict, submits: dict) -> dict:
    vals = list(jcts.values())
    return {
        "mean_jct_s": round(sum(vals) / len(vals), 1),
        "p95_jct_s": round(p95(vals), 1),
        "makespan_s": round(max(submits[k] + v for k, v in jcts.items()) - min(submits[k] for k in jcts), 1),
        "jobs": len(vals),
    }


def submit_times(path: str) -> dict:
    with open(path) as f:
        return {row["name"]: float(row["time"]) for row in csv.DictReader(f)}


def published(results: str | None, load: str, names: list[str], submits: dict) -> dict:
    """{policy: {workload: figures}} from ``results/<policy>-<load>/summary.json`` where present."""
    out = {}
    if not results:
        return out
    for policy in PUBLISHED:
        path = os.path.join(results, f"{policy}-{load}", "summary.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            jcts = json.load(f)["jcts"]
        out[policy] = {n: figures(jcts[n], submits[n]) for n in names if n in jcts}
    return out


def published_jcts(results: str | None, load: str, names: list[str]) -> dict:
    """{policy: {workload: {job: JCT s}}}, the published per-job results (as ``published`` reads them)."""
    out = {}
    for policy in PUBLISHED:
        path = os.path.join(results or "", f"{policy}-{load}", "summary.json")
        if results and os.path.exists(path):
            with open(path) as f:
                jcts = json.load(f)["jcts"]
            out[policy] = {n: jcts[n] for n in names if n in jcts}
    return out


def by_application(names, columns: dict) -> list[str]:
    """Mean JCT per application (the job name's prefix) over ``names``: {column: {workload: {job: JCT}}} -> table."""
    apps = sorted({job.rsplit("-", 1)[0] for d in columns.values() for n in names for job in d.get(n, {})})
    lines = ["Mean JCT per application (s)" + (f", {names[0]}" if len(names) == 1 else f", {len(names)} workloads"),
             "| application | jobs | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for app in apps:
        row, count = [], None
        for d in columns.values():
            vals = [v for n in names for job, v in d.get(n, {}).items() if job.rsplit("-", 1)[0] == app]
            count = count or len(vals)
            row.append(sum(vals) / len(vals) if vals else None)
        lines.append(f"| {app} | {count} | " + " | ".join(fmt_s(v) for v in row) + " |")
    return lines


def fmt_s(x) -> str:
    return "-" if x is None else f"{x:,.0f}"


def table(names, ours, pub, key, title, oracle: dict | None = None) -> list[str]:
    """One markdown table; ``oracle`` ({workload: {mode: figures}}, --oracle) adds its columns last."""
    oracle_modes = [m for m in MODES if oracle and any(m in oracle[n] for n in names)]
    our_modes = [m for m in MODES if any(m in ours[n] for n in names)]
    cols = [f"ours {m}" + (" (recommended)" if m == RECOMMENDED else "") for m in our_modes] + [p.capitalize() for p in PUBLISHED if p in pub]
    cols += [f"oracle {m}" for m in oracle_modes]
    lines = [f"{title}", "| workload | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    sums = {c: [] for c in cols}
    for n in names:
        row = []
        for m in our_modes:
            v = ours[n].get(m, {}).get(key)
            row.append(v)
        for p in PUBLISHED:
            if p in pub:
                row.append(pub[p].get(n, {}).get(key))
        for m in oracle_modes:
            row.append(oracle[n].get(m, {}).get(key))
        for c, v in zip(cols, row):
            sums[c].append(v)
        lines.append(f"| {n} | " + " | ".join(fmt_s(v) for v in row) + " |")
    means = [sum(v) / len(v) if v and None not in v else None for v in sums.values()]
    lines.append("| mean | " + " | ".join(fmt_s(v) for v in means) + " |")
    return lines


def oracle_summary(names, modes, oracle: dict, pollux_mean: float | None) -> dict:
    """Prints the oracle's verdict on the Pollux target; returns its JSON (its own key, beside ours)."""
    out = {"label": ORACLE_LABEL, "workloads": oracle, "mean": {}}
    for m in modes:
        out["mean"][f"oracle-{m}"] = round(sum(oracle[n][m]["mean_jct_s"] for n in names) / len(names), 1)
    print(f"{ORACLE_LABEL}: preemptions / resizes per workload")
    for n in names:
        print(f"  {n}: " + "; ".join(f"{m} {oracle[n][m]['preemptions']} / {oracle[n][m]['resizes']}" for m in modes))
    best = min(out["mean"], key=out["mean"].get)
    out["best"] = best
    if pollux_mean:
        ratio = out["mean"][best] / pollux_mean
        out["best_over_pollux"] = round(ratio, 3)
        limit = pollux_mean * (1 + POLLUX_SLACK)
        verdict = ("below the target: scheduling alone with fixed batch sizes is not ruled out" if out["mean"][best] <= limit
                   else "above the target: x1.15 is unreachable with fixed batch sizes, even knowing remaining work")
        print(f"{ORACLE_LABEL}: best {best} {out['mean'][best]:,.0f} s vs Pollux {pollux_mean:,.0f} s = x{ratio:.2f} "
              f"(target x{1 + POLLUX_SLACK:.2f} = {limit:,.0f} s): {verdict}")
    return out


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    default_sim = os.path.normpath(os.path.join(here, "..", "..", "shared", "pollux-simulator"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulator", default=default_sim, help="the Pollux simulator's folder (default: ../shared/pollux-simulator)")
    ap.add_argument("--workloads", help="folder of workload CSVs (default: the simulator's workloads/)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--results", help="published results (default: results-jobload beside the simulator)")
    ap.add_argument("--load", default="1.0", help="which published load the workloads are (default 1.0)")
    ap.add_argument("--only", help="comma-separated workload names to run (default: every file)")
    ap.add_argument("--modes", default=",".join(MODES), help="configurations to run (default: rigid,elastic)")
    ap.add_argument("--jobs", type=int, default=1, help="simulator processes at once (default 1)")
    ap.add_argument("--venv", default=DEFAULT_VENV, help="where to make the simulator's environment")
    ap.add_argument("--config", default=json.dumps(RECOMMENDED_CONFIG),
                    help=f"SchedulerConfig fields to override, as JSON (default: the recommended {json.dumps(RECOMMENDED_CONFIG)}; '{{}}': the core's defaults)")
    ap.add_argument("--estimates-by", choices=("application", "shape"), default="application",
                    help="run-time history for the estimates (when the configuration uses them) keyed by the job's application "
                         "(default; a live pool sees the program a job runs) or by its shape (GPU count) only")
    ap.add_argument("--estimate-min-runs", type=int, default=RECOMMENDED_MIN_RUNS,
                    help=f"fewest past runs an estimate is made from (default {RECOMMENDED_MIN_RUNS}, recommended here; the live default of ExpectedStarts.min_runs is 3)")
    ap.add_argument("--estimator", default=json.dumps(RECOMMENDED_ESTIMATOR),
                    help=f"estimates.Estimator options, as JSON (default: the recommended {json.dumps(RECOMMENDED_ESTIMATOR)}; '{{}}': its defaults)")
    ap.add_argument("--by-app", action="store_true", help="also print mean JCT per application (ours, the published policies, the oracle)")
    ap.add_argument("--oracle", action="store_true", help="also run the oracle reference (pollux_oracle.py, knows each job's remaining work: a bound, not a policy) in the same --modes")
    args = ap.parse_args(argv)

    simulator = os.path.abspath(args.simulator)
    try:
        check_simulator(simulator)
        python = make_venv(args.venv)
    except SetupError as e:
        print(f"bench_pollux: {e}", file=sys.stderr)
        return 2
    workloads = os.path.abspath(args.workloads or os.path.join(simulator, "workloads"))
    files = sorted(glob.glob(os.path.join(workloads, "*.csv")), key=lambda p: (len(p), p))
    if args.only:
        keep = set(args.only.split(","))
        files = [f for f in files if os.path.basename(f)[:-4] in keep]
    if not files:
        print(f"bench_pollux: no workload CSVs in {workloads}", file=sys.stderr)
        return 2
    modes = [m for m in args.modes.split(",") if m]
    config = json.loads(args.config)
    estimator = json.loads(args.estimator)
    results = args.results if args.results is not None else os.path.join(simulator, "results-jobload")
    names = [os.path.basename(f)[:-4] for f in files]
    submits = {n: submit_times(f) for n, f in zip(names, files)}

    started = time.time()
    tasks = [(f, m, ADAPTER) for f in files for m in modes] + ([(f, m, ORACLE) for f in files for m in modes] if args.oracle else [])
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        done = list(ex.map(lambda t: run_one(python, simulator, t[0], t[1], config, t[2], args.estimates_by, args.estimate_min_runs,
                                      estimator), tasks))
    ours: dict[str, dict] = {n: {} for n in names}
    oracle: dict[str, dict] = {n: {} for n in names}
    raw = []
    per_job: dict[str, dict] = {}  # column -> {workload: {job: JCT}} (--by-app)
    for (f, m, script), r in zip(tasks, done):
        n = os.path.basename(f)[:-4]
        per_job.setdefault(("oracle " if script == ORACLE else "ours ") + m, {})[n] = r["jcts"]
        fig = figures(r["jcts"], submits[n])
        fig.update({k: r[k] for k in ("preemptions", "resizes", "restarts", "cycles", "core_cpu_s", "cpu_s")})
        if script == ORACLE:
            oracle[n][m] = fig
        else:
            ours[n][m] = fig
            raw.append(r)
    pub = published(results, args.load, names, submits)

    print(f"Pollux simulator: {len(files)} workloads, load {args.load}, 16 nodes x 4 GPUs; our core's SchedulerConfig (defaults, overridden as below)")
    print("(mapping: one team, one user per job, TunedJobs batch sizes; rigid = num_replicas GPUs; elastic = 1..num_replicas)")
    used = raw[0]["config"] if raw else {}
    print("core switches: " + ", ".join(f"{k}={used[k]}" for k in CORE_SWITCHES if k in used) + (f"; overridden: {config}" if config else ""))
    if raw and raw[0].get("estimates_by"):
        print(f"run-time estimates: learned from the jobs that ended (median of the last 50 at the same GPU count, from {raw[0].get('estimate_min_runs', 3)} run(s) on; "
              f"run time = attained GPU-s / asked GPUs), keyed by {'application, else the pool' if raw[0]['estimates_by'] == 'application' else 'the pool (GPU count only)'}"
              + (f"; Estimator options: {raw[0]['estimator']}" if raw[0].get("estimator") else ""))
    if args.oracle:
        print(f"columns oracle rigid / oracle elastic: {ORACLE_LABEL}; mapping as ours, order shortest remaining GPU-time first")
    print()
    for key, title in (("mean_jct_s", "Mean JCT (s)"), ("p95_jct_s", "p95 JCT (s)"), ("makespan_s", "Makespan (s)")):
        print("\n".join(table(names, ours, pub, key, title, oracle if args.oracle else None)))
        print()
    if args.by_app:
        cols = {c: per_job[c] for c in per_job if c.startswith("ours")}
        cols.update({p.capitalize(): d for p, d in published_jcts(results, args.load, names).items()})
        cols.update({c: per_job[c] for c in per_job if c.startswith("oracle")})
        print("\n".join(by_application(names, cols)))
        print()
    print("Our runs: preemptions / resizes / core CPU s per workload")
    for n in names:
        print(f"  {n}: " + "; ".join(f"{m} {ours[n][m]['preemptions']} / {ours[n][m]['resizes']} / {ours[n][m]['core_cpu_s']:.2f}" for m in modes))
    rec = RECOMMENDED if RECOMMENDED in modes else modes[0]
    out = {"workloads": {}, "recommended": rec, "published": pub, "mean": {}, "config": config or "default", "estimator": estimator}
    for n in names:
        entry = {k: ours[n][rec][k] for k in ("mean_jct_s", "p95_jct_s", "makespan_s")}
        entry.update({m: ours[n][m] for m in modes})
        out["workloads"][n] = entry
    for m in modes:
        out["mean"][f"ours-{m}"] = round(sum(ours[n][m]["mean_jct_s"] for n in names) / len(names), 1)
    for p, d in pub.items():
        if len(d) == len(names):
            out["mean"][p] = round(sum(d[n]["mean_jct_s"] for n in names) / len(names), 1)
    print()
    if "tiresias" in pub:
        worse = [n for n in names if n in pub["tiresias"] and ours[n][rec]["mean_jct_s"] >= pub["tiresias"][n]["mean_jct_s"]]
        print(f"target: mean JCT below Tiresias on every workload ({rec}): " + ("MET" if not worse else f"MISSED on {', '.join(worse)}"))
        print("  ours / Tiresias per workload: " + ", ".join(
            f"{n.replace('workload-', 'w')} {ours[n][rec]['mean_jct_s'] / pub['tiresias'][n]['mean_jct_s']:.3f}" for n in names if n in pub["tiresias"]))
    if "pollux" in out["mean"]:
        ratio = out["mean"][f"ours-{rec}"] / out["mean"]["pollux"]
        verdict = "MET" if ratio <= 1 + POLLUX_SLACK else "MISSED"
        print(f"target: mean JCT within {POLLUX_SLACK:.0%} of Pollux's: ours {out['mean'][f'ours-{rec}']:,.0f} s vs {out['mean']['pollux']:,.0f} s = x{ratio:.2f}: {verdict}")
    if args.oracle:
        out["oracle"] = oracle_summary(names, modes, oracle, out["mean"].get("pollux"))
    print(f"({time.time() - started:.0f} s wall)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
