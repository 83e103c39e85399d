"""GPUs in use per team over time, rebuilt from the event log.

The event log already says when each workload got GPUs (``started``, with
``details.gpus``), changed size (``resized``, ``details.to``) and gave them
back (``preempted``, ``reclaimed``, ``finished``, ``failed``, ``cancelled``).
Replaying it gives every team's allocation as a step function of time; the
admin page plots its average per time bucket (last day, last 40 days). No
extra table to keep in step: the log is written in the same transaction as
the change it describes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .store import EventRow
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
    return {team: [round(s / bucket_s, 4) for s in seconds] for team, seconds in sorted(gpu_seconds.items())}


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
    }
