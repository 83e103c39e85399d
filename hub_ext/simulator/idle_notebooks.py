"""Idle notebooks in the simulator: how much GPU time reclaiming idle sessions gives back.

The model. Notebook sessions arrive beside a trace's batch jobs (Poisson,
``sessions_per_hour``). A session holds its GPUs for its whole length but
computes only in bursts: busy and idle spells alternate, with exponential
lengths whose means give the session's busy fraction (``mean_busy_fraction``
on average). A session's activity runs on its own clock (time it has held
GPUs), so a session that waited in the queue or was preempted picks up where
it was.

Reclamation uses the service's policy unchanged (``hub_ext.reclaim.decide``):
a session idle on all its GPUs for ``idle_limit_s`` is warned and, still idle
``grace_s`` later, reclaimed ("immediate"), or reclaimed only while work
waits for GPUs ("when_waiting"). A reclaimed session is stopped (its GPUs go
back to the pool); its user comes back when their next busy spell would
have begun and asks for the GPUs again as a new session for the rest of
their work, waiting in the queue like anyone else. A user with no busy
spell left never comes back.

``compare`` replays the same trace twice, reclamation off and on, and
reports side by side: GPU-hours sessions held, computed and held idle, the
GPU-hours reclamation gave back, what users coming back waited, and what
batch jobs gained (queueing delay, completion time, jobs finished).

Uses the engine's extension point: ``call_at`` (look again when a session
may next be warned or reclaimed), ``stop_workload`` (the reclaim),
``submit`` (the user coming back) and ``SimulationHooks`` (what sessions
hold and compute).
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace

from ..reclaim import GpuIdle, IdleDefinition, IdlePolicy, PolicySettings, ReclaimState, decide
from .engine import FINISHED, RUNNING, JobState, Simulation, SimulationHooks, SimulationResult
from .report import mean, percentile, summarise
from .trace import Trace, TraceJob

SESSION_PREFIX = "nb-"
RETURN_MARK = "~"  # nb-12~1: the first return of session nb-12


@dataclass(frozen=True)
class NotebookModel:
    """How notebook sessions arrive and use their GPUs."""

    sessions_per_hour: float = 2.0
    mean_session_hours: float = 6.0
    mean_busy_fraction: float = 0.3
    mean_busy_minutes: float = 20.0  # one burst of work
    gpus: tuple[float, ...] = (1, 1, 1, 2)  # drawn uniformly per session
    seed: int = 0

    def __post_init__(self):
        if self.sessions_per_hour <= 0 or self.mean_session_hours <= 0 or self.mean_busy_minutes <= 0:
            raise ValueError("sessions_per_hour, mean_session_hours and mean_busy_minutes must be > 0")
        if not 0 < self.mean_busy_fraction < 1:
            raise ValueError("mean_busy_fraction must be in (0, 1): an always-busy or never-busy notebook is not this model")
        if not self.gpus or any(g <= 0 for g in self.gpus):
            raise ValueError("gpus must list GPU counts > 0")


@dataclass(frozen=True)
class Activity:
    """Busy spells of a session, in seconds of its own clock: [starts[i], ends[i])."""

    starts: tuple[float, ...]
    ends: tuple[float, ...]
    length: float

    def busy_at(self, p: float) -> bool:
        i = bisect.bisect_right(self.starts, p) - 1
        return i >= 0 and p < self.ends[i]

    def idle_since(self, p: float) -> float:
        """Start of the idle spell ``p`` is in (0 before the first burst)."""
        i = bisect.bisect_right(self.ends, p) - 1
        return self.ends[i] if i >= 0 else 0.0

    def busy_end(self, p: float) -> float:
        i = bisect.bisect_right(self.starts, p) - 1
        return self.ends[i]

    def next_busy(self, p: float) -> float | None:
        i = bisect.bisect_right(self.starts, p)
        return self.starts[i] if i < len(self.starts) else None

    def busy_between(self, a: float, b: float) -> float:
        total = 0.0
        i = max(0, bisect.bisect_right(self.ends, a))
        while i < len(self.starts) and self.starts[i] < b:
            total += max(0.0, min(b, self.ends[i]) - max(a, self.starts[i]))
            i += 1
        return total

    def after(self, p: float) -> Activity:
        """The rest from ``p`` on, on a clock that starts at ``p``."""
        starts, ends = [], []
        for s, e in zip(self.starts, self.ends):
            if e > p:
                starts.append(max(s, p) - p)
                ends.append(e - p)
        return Activity(tuple(starts), tuple(ends), self.length - p)

    @property
    def busy_fraction(self) -> float:
        return self.busy_between(0.0, self.length) / self.length if self.length > 0 else 0.0


def draw_activity(rng: random.Random, length: float, busy_fraction: float, mean_busy_s: float) -> Activity:
    """Alternating busy and idle spells; a session opens busy (its user just asked for GPUs)."""
    mean_idle_s = mean_busy_s * (1 - busy_fraction) / busy_fraction
    starts, ends = [], []
    t = 0.0
    while t < length:
        end = min(length, t + rng.expovariate(1 / mean_busy_s))
        starts.append(t)
        ends.append(end)
        t = end + rng.expovariate(1 / mean_idle_s)
    return Activity(tuple(starts), tuple(ends), length)


def add_notebooks(trace: Trace, model: NotebookModel, until: float) -> tuple[Trace, dict[str, Activity]]:
    """The trace with notebook sessions arriving over [0, until), and each session's activity."""
    rng = random.Random(model.seed)
    teams = trace.teams or ["notebooks"]
    sessions, activities = [], {}
    t, n = 0.0, 0
    while True:
        t += rng.expovariate(model.sessions_per_hour / 3600)
        if t >= until:
            break
        length = rng.expovariate(1 / (model.mean_session_hours * 3600))
        # Per-session busy fraction around the mean (beta keeps it in (0, 1)).
        k = 8.0
        fraction = min(0.95, max(0.02, rng.betavariate(model.mean_busy_fraction * k, (1 - model.mean_busy_fraction) * k)))
        activity = draw_activity(rng, length, fraction, model.mean_busy_minutes * 60)
        team = rng.choice(teams)
        wid = f"{SESSION_PREFIX}{n}"
        sessions.append(
            TraceJob(id=wid, submitted_at=t, duration=length, gpus=rng.choice(model.gpus), team=team,
                     user=f"{team}-nb{n % 7}", kind="session", busy_fraction=activity.busy_fraction)
        )
        activities[wid] = activity
        n += 1
    jobs = sorted(trace.jobs + sessions, key=lambda j: (j.submitted_at, j.id))
    notes = trace.notes + [
        f"{n} notebook sessions added ({model.sessions_per_hour:g}/h, mean {model.mean_session_hours:g} h, "
        f"busy {model.mean_busy_fraction:.0%} of the time in bursts of {model.mean_busy_minutes:g} min; seed {model.seed})"
    ]
    return replace(trace, jobs=jobs, notes=notes), activities


@dataclass
class NotebookFigures:
    held_gs: float = 0.0
    busy_gs: float = 0.0
    given_back_gs: float = 0.0
    warnings: int = 0
    withdrawn: int = 0
    reclaims: int = 0
    returns: list[str] = field(default_factory=list)


class IdleReclaimHook(SimulationHooks):
    """Measures what sessions hold and compute; with ``reclaim`` on, applies the idle policy."""

    def __init__(self, activities: dict[str, Activity], settings: PolicySettings, reclaim: bool, recheck_s: float = 60.0):
        self.activities = dict(activities)
        self.settings = settings
        self.reclaim = reclaim
        self.recheck_s = recheck_s
        self.states: dict[str, ReclaimState] = {}
        self.figures = NotebookFigures()
        self._run_from: dict[str, float] = {}  # session -> its clock when the current run began
        self._scheduled: set[float] = set()

    # ---------------------------------------------------------------- engine hooks

    def on_start(self, sim, js, now):
        if js.job.id not in self.activities:
            return
        self._run_from[js.job.id] = js.run_done
        if self.reclaim:
            self._plan(sim, now, self._next_look(js, now))

    def on_stop(self, sim, js, now, outcome):
        wid = js.job.id
        if wid not in self.activities or wid not in self._run_from:
            return
        self._account(js, self._run_from.pop(wid), now)
        self.states.pop(wid, None)

    def finish(self, sim: Simulation) -> None:
        """Count the runs still going when the replay stops."""
        for wid in list(self._run_from):
            js = sim.jobs[wid]
            self._account(js, self._run_from.pop(wid), sim.now)

    def _account(self, js: JobState, p0: float, now: float) -> None:
        p1 = js.run_done + js.rate * (now - js.run_start)
        # Sessions are never elastic: they hold what they asked for.
        self.figures.held_gs += max(0.0, p1 - p0) * js.job.gpus
        self.figures.busy_gs += self.activities[js.job.id].busy_between(p0, p1) * js.job.gpus

    # ---------------------------------------------------------------- the policy

    def _clock(self, js: JobState, now: float) -> float:
        return js.run_done + js.rate * (now - js.run_start)

    def _plan(self, sim: Simulation, now: float, t: float | None) -> None:
        if t is None or t in self._scheduled:
            return
        self._scheduled.add(t)
        sim.call_at(t, self._look)

    def _next_look(self, js: JobState, now: float) -> float | None:
        """When this session's state could next change for the policy."""
        wid = js.job.id
        a = self.activities[wid]
        policy = self.settings.for_team(js.job.team)
        p = self._clock(js, now)
        if p >= a.length:
            return None
        state = self.states.get(wid)
        if a.busy_at(p):
            end = a.busy_end(p)
            return max(now + 1e-3, now + (end - p) + policy.idle_limit_s) if end < a.length else None
        idle_since_wall = now - (p - max(a.idle_since(p), self._run_from.get(wid, 0.0)))
        nxt = a.next_busy(p)
        to_busy = now + (nxt - p) if nxt is not None else None
        if state is None or state.warned_at is None:
            t = idle_since_wall + policy.idle_limit_s
        else:
            t = state.warned_at + policy.grace_s
        if t <= now:
            # Due now, yet the policy did nothing: the card is busy with another
            # holder, rounding put the limit a hair ahead, or ("when_waiting")
            # nobody needs the GPUs. Look again a little later, never at now.
            t = now + self.recheck_s
        t = min(t, to_busy) if to_busy is not None else t
        # Session clock and virtual clock round differently: never look again
        # at the same instant (that would loop), a millisecond is enough.
        return max(t, now + 1e-3)

    def _gpu_states(self, sessions, sim: Simulation, now: float) -> dict[str, GpuIdle]:
        """Card-level readings of the sessions' GPUs as an agent would report them: busy if any holder computes."""
        busy: dict[str, bool] = defaultdict(bool)
        since: dict[str, float] = defaultdict(float)
        shared = set()
        for running in sessions:
            wid = running.workload.id
            js = sim.jobs[wid]
            a = self.activities[wid]
            p = self._clock(js, now)
            computing = a.busy_at(p)
            started = None if computing else now - (p - max(a.idle_since(p), self._run_from.get(wid, 0.0)))
            for share in running.allocation.shares:
                if share.fraction < 1:
                    shared.add(share.gpu_uuid)
                if computing:
                    busy[share.gpu_uuid] = True
                else:
                    since[share.gpu_uuid] = max(since[share.gpu_uuid], started)
        if shared:
            # A fraction of a card: a batch job on the rest of it keeps the card busy.
            for wid, running in sim.state.running.items():
                if wid not in self.activities:
                    for share in running.allocation.shares:
                        if share.gpu_uuid in shared:
                            busy[share.gpu_uuid] = True
        out = {}
        for uuid in set(busy) | set(since):
            if busy[uuid]:
                out[uuid] = GpuIdle(reading_at=now, utilization=100.0, idle_since=None)
            else:
                out[uuid] = GpuIdle(reading_at=now, utilization=0.0, idle_since=since[uuid])
        return out

    def _look(self, sim: Simulation) -> None:
        now = sim.now
        self._scheduled.discard(now)
        sessions = [sim.state.running[wid] for wid in self._run_from]
        if not sessions:
            return
        waiting = sum(w.gpus for w in sim.state.pending.values())
        d = decide(sessions, self._gpu_states(sessions, sim, now), self.states, self.settings, now, waiting)
        for w in d.warnings:
            self.states[w.workload_id] = ReclaimState(warned_at=now)
            self.figures.warnings += 1
        for w in d.withdrawals:
            self.states.pop(w.workload_id, None)
            self.figures.withdrawn += 1
        for r in d.reclaims:
            self._reclaim(sim, r.workload_id, now, r.reason)
        for r in sessions:
            wid = r.workload.id
            if sim.jobs[wid].state == RUNNING:
                self._plan(sim, now, self._next_look(sim.jobs[wid], now))

    def _reclaim(self, sim: Simulation, wid: str, now: float, reason: str) -> None:
        js = sim.jobs[wid]
        a = self.activities[wid]
        p = self._clock(js, now)
        back = a.next_busy(p)
        idle_left = (back if back is not None else a.length) - p
        self.figures.given_back_gs += idle_left * js.job.gpus
        self.figures.reclaims += 1
        sim.stop_workload(wid, f"idle reclaim: {reason}", requeue=False)
        if back is None or back >= a.length:
            return  # nothing left to do: the user does not come back
        base, _, n = wid.partition(RETURN_MARK)
        again = f"{base}{RETURN_MARK}{int(n or 0) + 1}"
        self.activities[again] = a.after(back)
        job = replace(js.job, id=again, submitted_at=now + idle_left, duration=a.length - back, busy_fraction=self.activities[again].busy_fraction)
        self.figures.returns.append(again)
        sim.call_at(now + idle_left, lambda s, job=job: s.submit(job))


# -------------------------------------------------------------------- the comparison


def replay_with_notebooks(trace: Trace, activities: dict[str, Activity], cluster, policy_name: str, settings: PolicySettings,
                          reclaim: bool, checkpoint_interval: float, end: float | None) -> tuple[SimulationResult, IdleReclaimHook]:
    from .policies import make_policy

    hook = IdleReclaimHook(activities, settings, reclaim)
    sim = Simulation(trace, make_policy(policy_name, cluster), checkpoint_interval=checkpoint_interval, end=end, hooks=[hook])
    result = sim.run()
    hook.finish(sim)
    # Returns are not in the trace: add them so every session is accounted for.
    extra = [js for wid, js in sim.jobs.items() if RETURN_MARK in wid]
    result.jobs = result.jobs + extra
    return result, hook


def _side(result: SimulationResult, hook: IdleReclaimHook) -> dict:
    s = summarise(result)
    jobs = [j for j in result.jobs if not j.job.id.startswith(SESSION_PREFIX)]
    sessions = [j for j in result.jobs if j.job.id.startswith(SESSION_PREFIX) and RETURN_MARK not in j.job.id]
    returns = [j for j in result.jobs if RETURN_MARK in j.job.id]
    job_waits = [j.first_start - j.job.submitted_at for j in jobs if j.first_start is not None]
    job_jct = [j.finished_at - j.job.submitted_at for j in jobs if j.state == FINISHED]
    return_waits = [j.first_start - j.job.submitted_at for j in returns if j.first_start is not None]
    session_waits = [j.first_start - j.job.submitted_at for j in sessions if j.first_start is not None]
    f = hook.figures
    return {
        "session_gpu_hours_held": f.held_gs / 3600,
        "session_gpu_hours_computing": f.busy_gs / 3600,
        "session_gpu_hours_idle": (f.held_gs - f.busy_gs) / 3600,
        "gpu_hours_given_back": f.given_back_gs / 3600,
        "warnings": f.warnings,
        "warnings_withdrawn": f.withdrawn,
        "reclaims": f.reclaims,
        "sessions": len(sessions),
        "session_mean_wait_s": mean(session_waits),
        "returns": len(returns),
        "returns_started": len(return_waits),
        "return_mean_wait_s": mean(return_waits),
        "return_p95_wait_s": percentile(return_waits, 95),
        "jobs": len(jobs),
        "jobs_finished": sum(1 for j in jobs if j.state == FINISHED),
        "job_mean_wait_s": mean(job_waits),
        "job_p95_wait_s": percentile(job_waits, 95),
        "job_mean_jct_s": mean(job_jct),
        "utilisation_held": s["utilisation"],
        "replayed_s": s["replayed_s"],
        "wall_s": result.wall_seconds,
    }


def compare(trace: Trace, cluster, model: NotebookModel, policy: IdlePolicy, idle: IdleDefinition | None = None, *,
            days: float | None = None, policy_name: str = "pool", checkpoint_interval: float = 1800.0) -> dict:
    """Replay ``trace`` plus notebook sessions with reclamation off and on; both sides' figures."""
    last = max((j.submitted_at for j in trace.jobs), default=0.0)
    end = days * 86400 if days is not None else None
    window = end if end is not None else last
    jobs = [j for j in trace.jobs if end is None or j.submitted_at < end]
    trace = replace(trace, jobs=jobs)
    with_notebooks, activities = add_notebooks(trace, model, window)
    cluster = cluster.with_teams_for(with_notebooks)
    settings = PolicySettings(default=policy, idle=idle or IdleDefinition())
    sides = {}
    for label, on in (("reclaim_off", False), ("reclaim_on", True)):
        result, hook = replay_with_notebooks(with_notebooks, activities, cluster, policy_name, settings, on, checkpoint_interval, end)
        sides[label] = _side(result, hook)
    return {
        "trace": trace.name,
        "cluster": cluster.describe(),
        "notes": with_notebooks.notes,
        "policy": {"idle_limit_s": policy.idle_limit_s, "grace_s": policy.grace_s, "mode": policy.mode},
        **sides,
    }


def _dur(seconds):
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_comparison(c: dict) -> str:
    off, on = c["reclaim_off"], c["reclaim_on"]
    p = c["policy"]
    rows = [
        ("notebook sessions (first visits)", off["sessions"], on["sessions"]),
        ("GPU-hours sessions held", f"{off['session_gpu_hours_held']:.0f}", f"{on['session_gpu_hours_held']:.0f}"),
        ("  of which computing", f"{off['session_gpu_hours_computing']:.0f}", f"{on['session_gpu_hours_computing']:.0f}"),
        ("  of which idle", f"{off['session_gpu_hours_idle']:.0f}", f"{on['session_gpu_hours_idle']:.0f}"),
        ("GPU-hours given back by reclaims", "-", f"{on['gpu_hours_given_back']:.0f}"),
        ("warnings (withdrawn: user busy again)", "-", f"{on['warnings']} ({on['warnings_withdrawn']})"),
        ("sessions reclaimed", "-", on["reclaims"]),
        ("users coming back / started again", "-", f"{on['returns']} / {on['returns_started']}"),
        ("  their wait for GPUs, mean / p95", "-", f"{_dur(on['return_mean_wait_s'])} / {_dur(on['return_p95_wait_s'])}"),
        ("session wait at first start, mean", _dur(off["session_mean_wait_s"]), _dur(on["session_mean_wait_s"])),
        ("batch jobs finished (of submitted)", f"{off['jobs_finished']} of {off['jobs']}", f"{on['jobs_finished']} of {on['jobs']}"),
        ("batch job queueing delay, mean", _dur(off["job_mean_wait_s"]), _dur(on["job_mean_wait_s"])),
        ("batch job queueing delay, p95", _dur(off["job_p95_wait_s"]), _dur(on["job_p95_wait_s"])),
        ("batch job completion time, mean", _dur(off["job_mean_jct_s"]), _dur(on["job_mean_jct_s"])),
        ("pool GPUs held (utilisation)", f"{off['utilisation_held']:.1%}", f"{on['utilisation_held']:.1%}"),
        ("replay wall time", f"{off['wall_s']:.1f} s", f"{on['wall_s']:.1f} s"),
    ]
    width = max(len(str(r[0])) for r in rows)
    lines = [
        f"idle notebooks on {c['trace']} ({c['cluster']}), {_dur(off['replayed_s'])} replayed",
        *(f"  note: {n}" for n in c["notes"]),
        f"  reclaim: warn after {_dur(p['idle_limit_s'])} idle, reclaim {_dur(p['grace_s'])} later, mode {p['mode']}",
        "",
        f"  {'':<{width}}  {'reclaim off':>14}  {'reclaim on':>14}",
    ]
    lines += [f"  {str(name):<{width}}  {str(a):>14}  {str(b):>14}" for name, a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .cluster import load_cluster
    from .data import CLUSTERS, TRACES, resolve
    from .readers import read_trace
    from .trace import TraceError

    parser = argparse.ArgumentParser(prog="python -m hub_ext.simulator.idle_notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("--trace", default="philly-sample", help="trace CSV or 'philly-sample' (default)")
    parser.add_argument("--cluster", default="seed-dgx", help="cluster file or 'seed-dgx' (default)")
    parser.add_argument("--days", type=float, default=None, help="replay this many days (default: the whole trace)")
    parser.add_argument("--sessions-per-hour", type=float, default=NotebookModel.sessions_per_hour)
    parser.add_argument("--session-hours", type=float, default=NotebookModel.mean_session_hours, help="mean session length")
    parser.add_argument("--busy-fraction", type=float, default=NotebookModel.mean_busy_fraction, help="mean share of a session's time computing")
    parser.add_argument("--idle-limit", type=float, default=3600.0, help="seconds idle before the warning (default 3600)")
    parser.add_argument("--grace", type=float, default=900.0, help="seconds from warning to reclaim (default 900)")
    parser.add_argument("--mode", choices=["immediate", "when_waiting"], default="when_waiting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="OUT", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    try:
        trace = read_trace(resolve(args.trace, TRACES))
        cluster = load_cluster(resolve(args.cluster, CLUSTERS))
        model = NotebookModel(sessions_per_hour=args.sessions_per_hour, mean_session_hours=args.session_hours,
                              mean_busy_fraction=args.busy_fraction, seed=args.seed)
        policy = IdlePolicy(idle_limit_s=args.idle_limit, grace_s=args.grace, mode=args.mode)
    except (TraceError, ValueError) as e:
        print(f"idle_notebooks: {e}", file=sys.stderr)
        return 2
    c = compare(trace, cluster, model, policy, days=args.days)
    print(format_comparison(c))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(c, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
