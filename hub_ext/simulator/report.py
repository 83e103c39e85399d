"""Figures from a replay: the summary a person reads and the JSON a script reads.

Every job of the trace is accounted for: finished, still running or still
pending when the replay stopped (unfinished), or stopped by a hook. Averages
over finished jobs are shown beside the count of unfinished ones, and the
JCT that counts unfinished jobs as ending at the window's end (a lower bound
on their true JCT) is shown too, so no unfinished job vanishes from the figures.
"""

from __future__ import annotations

import math

from .engine import FINISHED, PENDING, RUNNING, STOPPED, SimulationResult


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(result: SimulationResult, series_points: int = 500) -> dict:
    jobs = result.jobs
    span = max(result.end, 1e-9)
    capacity_gs = result.total_gpus * span
    finished = [j for j in jobs if j.state == FINISHED]
    running = [j for j in jobs if j.state == RUNNING]
    pending = [j for j in jobs if j.state == PENDING]
    stopped = [j for j in jobs if j.state == STOPPED]
    jct = [j.finished_at - j.job.submitted_at for j in finished]
    jct_censored = jct + [result.end - j.job.submitted_at for j in running + pending]
    waits = [j.first_start - j.job.submitted_at for j in jobs if j.first_start is not None]
    # Only work that could be done inside the replayed span counts as offered.
    offered_gs = sum(j.job.gpus * max(0.0, min(j.job.duration, result.end - j.job.submitted_at)) for j in jobs)
    teams = {}
    for team in sorted({j.job.team for j in jobs} | set(result.quotas)):
        mine = [j for j in jobs if j.job.team == team]
        done = [j.finished_at - j.job.submitted_at for j in mine if j.state == FINISHED]
        open_ = [result.end - j.job.submitted_at for j in mine if j.state in (RUNNING, PENDING)]
        held = result.team_gpu_seconds.get(team, 0.0) / span
        quota = result.quotas.get(team)
        teams[team] = {
            "quota": quota,
            "mean_gpus_held": held,
            "share_of_quota": held / quota if quota else None,
            "offered_gpu_hours": sum(j.job.gpu_seconds for j in mine) / 3600,
            "jobs": len(mine),
            "finished": len(done),
            "unfinished": sum(1 for j in mine if j.state in (RUNNING, PENDING)),
            "mean_jct_s": mean(done),
            "mean_jct_with_unfinished_s": mean(done + open_),
            "preemptions": sum(j.preemptions for j in mine),
        }
    return {
        "trace": result.trace.name,
        "format": result.trace.format,
        "origin": result.trace.origin,
        "notes": result.trace.notes,
        "excluded_rows": result.trace.excluded,
        "policy": result.policy,
        "gpus": result.total_gpus,
        "replayed_s": result.end,
        "checkpoint_interval_s": None if math.isinf(result.checkpoint_interval) else result.checkpoint_interval,
        "jobs": len(jobs),
        "finished": len(finished),
        "unfinished": len(running) + len(pending),
        "unfinished_running": len(running),
        "unfinished_pending": len(pending),
        "never_started": sum(1 for j in jobs if j.first_start is None),
        "stopped_by_hook": len(stopped),
        "offered_load": offered_gs / capacity_gs,
        "utilisation": result.allocated_gpu_seconds / capacity_gs,
        "busy_utilisation": result.busy_gpu_seconds / capacity_gs,
        "mean_jct_s": mean(jct),
        "p95_jct_s": percentile(jct, 95),
        "mean_jct_with_unfinished_s": mean(jct_censored),
        "mean_queueing_delay_s": mean(waits),
        "p95_queueing_delay_s": percentile(waits, 95),
        "preemptions": sum(j.preemptions for j in jobs),
        "jobs_preempted": sum(1 for j in jobs if j.preemptions),
        "reclaims": sum(j.reclaims for j in jobs),
        "resizes": sum(j.resizes for j in jobs),
        "lost_gpu_hours": sum(j.lost_gpu_seconds for j in jobs) / 3600,
        "reservations": _reservations(result),
        "teams": teams,
        "cycles": result.cycles,
        "wall_s": result.wall_seconds,
        "series": downsample(result, series_points),
    }


def _reservations(result: SimulationResult) -> dict:
    """GPU-hours that reservations held idle, and the waits of the workloads that held one:
    from first holding a reservation to starting (``wait_from_reservation``), and from submission
    to first start (``wait``)."""
    ids = result.extra.get("ever_reserved", set())
    waits = [j.first_start - j.job.submitted_at for j in result.jobs if j.job.id in ids and j.first_start is not None]
    held = result.extra.get("reservation_waits", [])
    return {
        "idle_gpu_hours": result.extra.get("reserved_idle_gpu_seconds", 0.0) / 3600,
        "reserved_workloads": len(ids),
        "mean_wait_s": mean(waits),
        "p95_wait_s": percentile(waits, 95),
        "mean_wait_from_reservation_s": mean(held),
        "p95_wait_from_reservation_s": percentile(held, 95),
    }


def downsample(result: SimulationResult, points: int) -> dict:
    """Utilisation (time-weighted mean) and queue length (maximum) in ``points`` equal time bins."""
    span = result.end
    samples = result.samples
    if not samples or span <= 0:
        return {"time_s": [], "utilisation": [], "queue": []}
    width = span / points
    held_gs = [0.0] * points
    queue = [0] * points
    for k, s in enumerate(samples):
        t = s.time
        until = min(samples[k + 1].time if k + 1 < len(samples) else span, span)
        b = min(int(t / width), points - 1)
        queue[b] = max(queue[b], s.pending)
        while t < until:
            edge = min(until, (b + 1) * width) if b < points - 1 else until
            held_gs[b] += s.allocated * (edge - t)
            queue[b] = max(queue[b], s.pending)
            t = edge
            b += 1
    return {
        "time_s": [round((b + 0.5) * width, 1) for b in range(points)],
        "utilisation": [round(g / (width * result.total_gpus), 5) for g in held_gs],
        "queue": queue,
    }


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def format_summary(s: dict) -> str:
    lines = [
        f"trace {s['trace']} ({s['format']}, from {s['origin']}), policy {s['policy']}, {s['gpus']} GPUs, "
        f"replayed {_dur(s['replayed_s'])} of virtual time",
    ]
    lines += [f"  note: {n}" for n in s["notes"]]
    for why, n in s["excluded_rows"].items():
        lines.append(f"  left out of the trace: {n} x {why}")
    rows = [
        ("jobs", f"{s['jobs']}"),
        ("finished", f"{s['finished']}"),
        ("unfinished at the end", f"{s['unfinished']} ({s['unfinished_running']} running, {s['unfinished_pending']} pending; "
         f"{s['never_started']} never started)"),
        ("offered load", f"{s['offered_load']:.1%} of capacity (GPU-hours submitted that fit in the span / GPU-hours available)"),
        ("GPU utilisation", f"{s['utilisation']:.1%} held" + (f", {s['busy_utilisation']:.1%} computing" if abs(s['busy_utilisation'] - s['utilisation']) > 1e-9 else "")),
        ("JCT, finished jobs", f"mean {_dur(s['mean_jct_s'])}, p95 {_dur(s['p95_jct_s'])}"),
        ("JCT, unfinished counted to the end", f"mean {_dur(s['mean_jct_with_unfinished_s'])} (a lower bound)"),
        ("queueing delay (to first start)", f"mean {_dur(s['mean_queueing_delay_s'])}, p95 {_dur(s['p95_queueing_delay_s'])}"),
        ("preemptions", f"{s['preemptions']} ({s['jobs_preempted']} jobs; {s['lost_gpu_hours']:.1f} GPU-hours of work lost)"),
    ]
    res = s.get("reservations") or {}
    if res.get("reserved_workloads"):
        rows.append(("reservations", f"{res['reserved_workloads']} workloads held one; {res['idle_gpu_hours']:.1f} GPU-hours held idle; "
                     f"from reservation to start mean {_dur(res['mean_wait_from_reservation_s'])}, "
                     f"p95 {_dur(res['p95_wait_from_reservation_s'])}"))
    sp = s.get("start_prediction")
    if sp:
        if sp["predictions"]:
            rows.append(("expected start (estimate) vs real", f"{sp['predictions']} jobs that waited > {sp['min_wait_s'] / 60:.0f} min: "
                         f"median error {_dur(sp['median_abs_error_s'])}, p90 {_dur(sp['p90_abs_error_s'])}, "
                         f"{sp['within_50pct']:.0%} within half their wait; naive baselines' median "
                         f"{_dur(sp['baseline_median_abs_error_s'])} (position x mean run time), "
                         f"{_dur(sp.get('throughput_baseline_median_abs_error_s'))} (position x time between completions)"
                         + (f"; {sp['not_known']} not known" if sp["not_known"] else "")))
        else:
            rows.append(("expected start (estimate) vs real", f"no predicted job waited over {sp['min_wait_s'] / 60:.0f} min"))
    if s["resizes"]:
        rows.append(("elastic resizes", f"{s['resizes']}"))
    if s["reclaims"] or s["stopped_by_hook"]:
        rows.append(("reclaims / stopped", f"{s['reclaims']} / {s['stopped_by_hook']}"))
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    lines.append(f"  {'team':<12} {'quota':>6} {'mean held':>10} {'of quota':>9} {'jobs':>6} {'done':>6} {'unfin.':>6} {'mean JCT':>10} {'preempt':>8}")
    for name, t in s["teams"].items():
        quota = "-" if t["quota"] is None else f"{t['quota']:g}"
        share = "-" if t["share_of_quota"] is None else f"{t['share_of_quota']:.0%}"
        lines.append(
            f"  {name:<12} {quota:>6} {t['mean_gpus_held']:>10.1f} {share:>9} {t['jobs']:>6} {t['finished']:>6} "
            f"{t['unfinished']:>6} {_dur(t['mean_jct_s']):>10} {t['preemptions']:>8}"
        )
    lines.append(f"  ({s['cycles']} scheduling cycles in {s['wall_s']:.2f} s of wall time)")
    return "\n".join(lines)
