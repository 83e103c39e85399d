"""The idle policy: given what each running workload's GPUs have been doing,
decide whom to warn, whom to reclaim and which jobs to flag.

Pure: no clock, no I/O. The service calls it on every tick with the
readings it has; the trace simulator calls it on its virtual clock.

Rules:
- A session is idle when every GPU it holds is below the threshold; it has
  been idle since the latest of those GPUs' idle streaks began (and not
  before it got them). One busy GPU makes it busy; one GPU with no data
  makes it unknown, and nothing happens to an unknown session.
- Idle for ``idle_limit_s``: warned. Still idle ``grace_s`` after the
  warning, within the same idle streak: reclaimed ("immediate"), or, with
  "when_waiting", reclaimed only while pending work wants GPUs, longest
  idle first, until that demand is covered.
- Busy again after a warning: the warning is withdrawn. A warning from an
  earlier streak (data went missing in between) does not count: the session
  is warned afresh.
- Batch jobs are never reclaimed; one idle for ``job_flag_after_s`` is
  flagged to admins once per idle streak.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hub_ext.scheduler.model import Running, WorkloadKind

from .decisions import Flag, Reclaim, ReclaimDecisions, ReclaimState, Warn, Withdraw
from .history import GpuIdle, gpu_state
from .settings import IdleDefinition, PolicySettings

NO_STATE = ReclaimState()


def workload_idle_since(running: Running, gpus: Mapping[str, GpuIdle], idle: IdleDefinition, now: float) -> tuple[str, float | None]:
    """("idle", since) | ("busy", None) | ("unknown", None) for one workload's GPUs."""
    uuids = tuple(dict.fromkeys(s.gpu_uuid for s in running.allocation.shares))
    if not uuids:
        return "unknown", None
    states = {u: gpu_state(gpus.get(u), idle, now) for u in uuids}
    if "busy" in states.values():
        return "busy", None
    if "unknown" in states.values():
        return "unknown", None
    since = max(gpus[u].idle_since for u in uuids)
    return "idle", max(since, running.allocation.started_at)


def workload_idle_seconds(running: Running, gpus: Mapping[str, GpuIdle], idle: IdleDefinition, now: float) -> float | None:
    """Seconds idle on every GPU the workload holds: 0 when busy, None when unknown."""
    status, since = workload_idle_since(running, gpus, idle, now)
    return (now - since) if status == "idle" else (0.0 if status == "busy" else None)


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def decide(
    running: Sequence[Running],
    gpus: Mapping[str, GpuIdle],
    states: Mapping[str, ReclaimState],
    settings: PolicySettings,
    now: float,
    waiting_gpus: float = 0.0,
) -> ReclaimDecisions:
    """One tick of the idle policy.

    ``gpus`` maps GPU UUID to what we know of it (``history.observe``); ``states`` holds
    what was decided before; ``waiting_gpus`` is how many GPUs pending
    workloads ask for (used by "when_waiting").
    """
    warnings, flags, withdrawals, idle = [], [], [], {}
    due = []  # (idle_seconds, running, policy): sessions whose grace period is over
    for r in running:
        w = r.workload
        policy = settings.for_team(w.team)
        state = states.get(w.id, NO_STATE)
        status, since = workload_idle_since(r, gpus, settings.idle, now)
        idle[w.id] = (now - since) if status == "idle" else (0.0 if status == "busy" else None)
        if status == "busy":
            if w.kind is WorkloadKind.SESSION and state.warned_at is not None:
                withdrawals.append(Withdraw(w.id, "warning", "its GPUs are in use again"))
            if w.kind is WorkloadKind.JOB and state.flagged_at is not None:
                withdrawals.append(Withdraw(w.id, "flag", "its GPUs are in use again"))
            continue
        if status == "unknown" or not policy.enabled:
            continue
        idle_for = now - since
        if w.kind is WorkloadKind.JOB:
            if idle_for >= policy.job_flag_after_s and (state.flagged_at is None or state.flagged_at < since):
                flags.append(Flag(w.id, idle_for, f"job has held {r.allocation.gpus:g} GPU(s) below {settings.idle.threshold_percent:g}% utilisation for {_minutes(idle_for)}"))
            continue
        warned_this_streak = state.warned_at is not None and state.warned_at >= since
        if not warned_this_streak:
            if idle_for >= policy.idle_limit_s:
                reclaim_at = now + policy.grace_s if policy.mode == "immediate" else None
                what = "stopped (your files are kept)" if policy.action == "stop" else "restarted without GPUs"
                if policy.mode == "immediate":
                    then = f"will be {what} in {_minutes(policy.grace_s)} unless they are used"
                else:
                    then = f"will be {what} if they stay unused for {_minutes(policy.grace_s)} while someone is waiting for GPUs"
                warnings.append(Warn(w.id, idle_for, reclaim_at, f"GPUs idle (below {settings.idle.threshold_percent:g}%) for {_minutes(idle_for)}; the session {then}"))
            continue
        if now >= state.warned_at + policy.grace_s:
            due.append((idle_for, r, policy))

    reclaims = []
    demand = waiting_gpus
    for idle_for, r, policy in sorted(due, key=lambda d: (-d[0], d[1].workload.id)):
        gpus = r.allocation.gpus
        if policy.mode == "when_waiting":
            if demand <= 0:
                continue
            demand -= gpus
            why = f"GPUs idle for {_minutes(idle_for)} while others wait for GPUs"
        else:
            why = f"GPUs idle for {_minutes(idle_for)}"
        reclaims.append(Reclaim(r.workload.id, policy.action, idle_for, gpus, why))
    return ReclaimDecisions(tuple(warnings), tuple(reclaims), tuple(flags), tuple(withdrawals), idle)
