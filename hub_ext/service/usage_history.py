"""GPUs in use per team over time: held (from the event log) and busy (measured).

The event log already says when each workload got GPUs (``started``, with
``details.gpus``), changed size (``resized``, ``details.to``) and gave them
back (``preempted``, ``reclaimed``, ``finished``, ``failed``, ``cancelled``).
Replaying it gives every team's allocation as a step function of time; the
admin page plots its average per time bucket (last day, last 40 days). No
extra table to keep in step: the log is written in the same transaction as
the change it describes.

Held is not used. What the GPUs actually did comes from the node agents'
readings: each reading adds, for the time since the GPU's previous reading,
GPU-seconds held and GPU-seconds busy (held x utilisation) to the team's row
in ``usage_samples``, one row per team and time bucket (``UsageHistory``:
bucket length and retention are settings). The admin page plots held against
busy; the usage report sums both per team and period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from traitlets import Float
from traitlets.config import LoggingConfigurable

from .store import EventRow, ShareRow, UsageSampleRow, WorkloadRow
from .views import iso

#: Event kinds after which a workload holds no GPUs.
RELEASING_KINDS = frozenset({"preempted", "reclaimed", "finished", "failed", "cancelled", "stopped", "released", "requeued"})

#: The windows the admin page plots: name -> (length in seconds, bucket in seconds).
WINDOWS = {
    "day": (24 * 3600.0, 15 * 60.0),
    "40d": (40 * 24 * 3600.0, 24 * 3600.0),
}


@dataclass(frozen=True)
class AllocationEvent:
    """The part of an event that changes how many GPUs a workload holds."""

    at: float
    workload: int
    team: str
    gpus: float  # what the workload holds from ``at`` on


def allocation_events(rows: Iterable[tuple[float, str, int | None, str | None, dict | None]]) -> list[AllocationEvent]:
    """(at, kind, workload seq, team, details) rows -> allocation changes; other kinds are skipped."""
    out = []
    for at, kind, seq, team, details in rows:
        if seq is None or team is None:
            continue
        details = details or {}
        if kind == "started" and isinstance(details.get("gpus"), (int, float)):
            out.append(AllocationEvent(at, seq, team, float(details["gpus"])))
        elif kind == "resized" and isinstance(details.get("to"), (int, float)):
            out.append(AllocationEvent(at, seq, team, float(details["to"])))
        elif kind in RELEASING_KINDS:
            out.append(AllocationEvent(at, seq, team, 0.0))
    return out


def team_usage_series(events: Iterable[AllocationEvent], start: float, end: float, bucket_s: float) -> dict[str, list[float]]:
    """Average GPUs held by each team in each bucket of [start, end).

    A team appears when it held GPUs at some point in the window.
    """
    return {team: [round(s / bucket_s, 4) for s in seconds] for team, seconds in team_gpu_seconds(events, start, end, bucket_s).items()}


def team_gpu_seconds(events: Iterable[AllocationEvent], start: float, end: float, bucket_s: float) -> dict[str, list[float]]:
    """GPU-seconds held by each team in each bucket of [start, end), unrounded."""
    buckets = max(1, int(round((end - start) / bucket_s)))
    held_by_workload: dict[int, tuple[str, float]] = {}
    team_held: dict[str, float] = defaultdict(float)
    gpu_seconds: dict[str, list[float]] = {}
    last = start

    def accumulate(until: float) -> None:
        # Spread the current holdings over [last, until) bucket by bucket.
        nonlocal last
        t = max(last, start)
        until = min(until, end)
        while t < until:
            b = min(buckets - 1, int((t - start) // bucket_s))
            bucket_end = min(until, start + (b + 1) * bucket_s)
            for team, gpus in team_held.items():
                if gpus > 0:
                    gpu_seconds.setdefault(team, [0.0] * buckets)[b] += gpus * (bucket_end - t)
            t = bucket_end
        last = max(last, until)

    for e in sorted(events, key=lambda e: e.at):
        if e.at >= end:
            break
        accumulate(e.at)
        previous = held_by_workload.get(e.workload)
        if previous is not None:
            team_held[previous[0]] -= previous[1]
        if e.gpus > 0:
            held_by_workload[e.workload] = (e.team, e.gpus)
            team_held[e.team] += e.gpus
        else:
            held_by_workload.pop(e.workload, None)
    accumulate(end)
    return dict(sorted(gpu_seconds.items()))


def team_holdings(events: Iterable[AllocationEvent], at: float) -> dict[str, float]:
    """GPUs each team holds at time ``at`` (teams holding none are left out)."""
    held: dict[int, tuple[str, float]] = {}
    for e in sorted(events, key=lambda e: e.at):
        if e.at > at:
            break
        if e.gpus > 0:
            held[e.workload] = (e.team, e.gpus)
        else:
            held.pop(e.workload, None)
    teams: dict[str, float] = defaultdict(float)
    for team, gpus in held.values():
        teams[team] += gpus
    return {team: round(gpus, 4) for team, gpus in sorted(teams.items())}


def usage_history(db: Session, window: str, now: float) -> dict:
    """The admin page's plot data for one window ("day" or "40d")."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}: use one of {', '.join(WINDOWS)}")
    length, bucket_s = WINDOWS[window]
    start = now - length
    rows = db.execute(
        select(EventRow.at, EventRow.kind, EventRow.workload_seq, EventRow.team, EventRow.details)
        .where(EventRow.at < now)
        .order_by(EventRow.at, EventRow.id)
    )
    events = allocation_events(rows)
    series = team_usage_series(events, start, now, bucket_s)
    buckets = max(1, int(round(length / bucket_s)))
    return {
        "window": window,
        "start": iso(start),
        "end": iso(now),
        "bucket_seconds": bucket_s,
        "times": [iso(start + i * bucket_s) for i in range(buckets)],
        "teams": series,
        # Where each curve ends: what the teams hold right now.
        "now": team_holdings(events, now),
        # Measured: average GPUs busy per team and bucket, from the agents' readings.
        "busy": measured_series(db, start, now, bucket_s),
    }


# ---------------------------------------------------------------- measured use


class UsageHistory(LoggingConfigurable):
    """How the agents' readings are kept as measured use (held and busy GPU-seconds per team)."""

    bucket_seconds = Float(
        300.0,
        help="""Length of one bucket of measured use, in seconds: readings are summed per team and bucket,
        so the table grows by (teams x 86400 / bucket_seconds) rows a day however often agents report.""",
    ).tag(config=True)

    retention_days = Float(
        40.0,
        help="Days of measured use kept; older buckets are deleted as new readings come in (the admin page plots 40 days).",
    ).tag(config=True)

    max_gap_seconds = Float(
        120.0,
        help="""A GPU's reading counts for the time since its previous reading, but for no more than this:
        after an agent was silent, the silent time is not guessed.""",
    ).tag(config=True)

    def record_readings(self, db: Session, readings: list[tuple[str, float | None, float | None]], now: float) -> None:
        """(gpu uuid, utilisation %, previous reading time) for each GPU of one report, after the report at ``now``."""
        held: dict[str, float] = defaultdict(float)
        busy: dict[str, float] = defaultdict(float)
        uuids = [u for u, _, previous in readings if previous is not None]
        if not uuids:
            return
        fractions = defaultdict(list)
        for uuid, fraction, team in db.execute(
            select(ShareRow.gpu_uuid, ShareRow.fraction, WorkloadRow.team)
            .join(WorkloadRow, ShareRow.workload_seq == WorkloadRow.seq)
            .where(ShareRow.gpu_uuid.in_(uuids))
        ):
            fractions[uuid].append((team, fraction))
        for uuid, utilization, previous in readings:
            if previous is None or uuid not in fractions:
                continue
            seconds = min(max(0.0, now - previous), self.max_gap_seconds)
            for team, fraction in fractions[uuid]:
                held[team] += fraction * seconds
                busy[team] += fraction * seconds * (utilization or 0.0) / 100.0
        if not held:
            return
        bucket = now - now % self.bucket_seconds
        for team in held:
            row = db.get(UsageSampleRow, (bucket, team))
            if row is None:
                row = UsageSampleRow(bucket_start=bucket, team=team, held_gpu_seconds=0.0, busy_gpu_seconds=0.0)
                db.add(row)
            row.held_gpu_seconds += held[team]
            row.busy_gpu_seconds += busy[team]
        db.execute(delete(UsageSampleRow).where(UsageSampleRow.bucket_start < now - self.retention_days * 86400))


def measured_series(db: Session, start: float, end: float, bucket_s: float) -> dict[str, list[float]]:
    """Average GPUs busy (measured) per team in each bucket of [start, end)."""
    buckets = max(1, int(round((end - start) / bucket_s)))
    out: dict[str, list[float]] = {}
    for at, team, busy in db.execute(
        select(UsageSampleRow.bucket_start, UsageSampleRow.team, UsageSampleRow.busy_gpu_seconds)
        .where(UsageSampleRow.bucket_start >= start - bucket_s, UsageSampleRow.bucket_start < end)
    ):
        b = int((max(at, start) - start) // bucket_s)
        if 0 <= b < buckets:
            out.setdefault(team, [0.0] * buckets)[b] += busy / bucket_s
    return {team: [round(v, 4) for v in values] for team, values in sorted(out.items())}


# ---------------------------------------------------------------- the usage report

REPORT_COLUMNS = (
    "team", "period_start", "period_end", "gpu_hours_held", "gpu_hours_busy", "busy_percent_of_held",
    "gpu_hours_measured", "reclaims", "preemptions", "starts", "mean_wait_minutes", "max_wait_minutes",
)

_QUEUEING_KINDS = frozenset({"submitted", "preempted", "reclaimed"})


def usage_report(db: Session, start: float, end: float) -> list[dict]:
    """One row per team for [start, end): GPU-hours held (allocation) and busy (measured), reclaims, waits."""
    rows = list(db.execute(
        select(EventRow.at, EventRow.kind, EventRow.workload_seq, EventRow.team, EventRow.details)
        .where(EventRow.at < end)
        .order_by(EventRow.at, EventRow.id)
    ))
    held = team_gpu_seconds(allocation_events(rows), start, end, end - start)
    teams: dict[str, dict] = defaultdict(lambda: {"reclaims": 0, "preemptions": 0, "waits": []})
    queued_since: dict[int, float] = {}
    for at, kind, seq, team, _details in rows:
        if seq is None or team is None:
            continue
        if kind in _QUEUEING_KINDS:
            queued_since[seq] = at
        if at < start:
            if kind == "started":
                queued_since.pop(seq, None)
            continue
        if kind == "reclaimed":
            teams[team]["reclaims"] += 1
        elif kind == "preempted":
            teams[team]["preemptions"] += 1
        elif kind == "started" and seq in queued_since:
            teams[team]["waits"].append(at - queued_since.pop(seq))
    measured: dict[str, tuple[float, float]] = defaultdict(lambda: (0.0, 0.0))
    for team, h, b in db.execute(
        select(UsageSampleRow.team, UsageSampleRow.held_gpu_seconds, UsageSampleRow.busy_gpu_seconds)
        .where(UsageSampleRow.bucket_start >= start, UsageSampleRow.bucket_start < end)
    ):
        mh, mb = measured[team]
        measured[team] = (mh + h, mb + b)
    names = sorted(set(held) | set(teams) | set(measured))
    report = []
    for team in names:
        gpu_hours_held = held.get(team, [0.0])[0] / 3600
        measured_held, busy = (v / 3600 for v in measured[team])
        waits = teams[team]["waits"]
        report.append({
            "team": team,
            "period_start": iso(start),
            "period_end": iso(end),
            "gpu_hours_held": round(gpu_hours_held, 4),
            "gpu_hours_busy": round(busy, 4),
            # Of the held time the agents measured, the percentage the GPUs were busy.
            "busy_percent_of_held": round(100 * busy / measured_held, 1) if measured_held > 0 else None,
            "gpu_hours_measured": round(measured_held, 4),
            "reclaims": teams[team]["reclaims"],
            "preemptions": teams[team]["preemptions"],
            "starts": len(waits),
            "mean_wait_minutes": round(sum(waits) / len(waits) / 60, 2) if waits else None,
            "max_wait_minutes": round(max(waits) / 60, 2) if waits else None,
        })
    return report


def report_csv(report: list[dict]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in report:
        writer.writerow({k: "" if row[k] is None else row[k] for k in REPORT_COLUMNS})
    return out.getvalue()
