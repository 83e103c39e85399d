"""The discrete-event replay: a virtual clock that only moves from event to event.

Events are arrivals (from the trace, in submit order), finishes (a running
job's remaining work is done) and callbacks registered with ``call_at``. All
events at the same virtual time are applied together, then the policy runs
one scheduling cycle and its decisions are applied: preemptions and shrinks
first, then starts and grows (starts may use GPUs the preemptions freed). The
clock then jumps to the next event; nothing happens between events, so a
replay costs one cycle per distinct event time, not per second. With
``cycle_interval`` > 0 events are still applied at their own times (so GPU
accounting stays exact) but cycles run at most once per interval, as a
service loop with a period would: events in between wait for the next tick.

Work model. A job's work is ``duration`` seconds at the GPUs it asked for; an
elastic job held at g GPUs progresses at g/asked of that speed. Jobs save a
checkpoint every ``checkpoint_interval`` seconds of running; a preempted (or
reclaimed) job keeps only the work up to its last checkpoint and goes back to
the queue with its original submit time. A resize checkpoints first (the
elastic contract), so it loses nothing. ``checkpoint_interval=0`` means work is
never lost; ``math.inf`` means a preempted job starts over.

The scheduler core never sees durations: policies build its ``Workload``
from the trace job without it, and only the engine knows when a job ends.

Attained service. What the core does see, as a live pool would, is each
workload's attained service (``Workload.attained_gpu_s``: GPU-seconds held so
far, over all runs, each size for as long as it was held, a fraction at its
fraction, lost work included). A requeued job re-enters the queue with it. A
running job's workload is replaced only when it crosses one of the policy's
LAS cuts (``las_thresholds_gpu_s``; only with preemption on, the one rule
that reads a running workload's level): an "attained" event at the exact moment
(a resize or stop reschedules it) hands the core the workload one level down
(``Policy.attained``) and marks its team changed. Running elastic workloads,
whose value (not only level) orders growth and new work's shrinks, are
brought up to date before each cycle for the teams the policy decides for
(``Policy.deciding``). Nothing touches every job every cycle.

Invariants the engine checks on every decision (``SimulationError`` if the
core breaks one): a start is for a pending workload, a preemption or resize
for a running one, and no GPU is ever held beyond 100% of it.

Extension point (idle notebook sessions, reclamation). A later model plugs in
without changing this loop:

- ``TraceJob.kind="session"`` with ``busy_fraction`` < 1: a session holds its
  GPUs for its duration but computes only part of the time; the engine
  integrates held GPU-time (``allocated``) and computing GPU-time (``busy``)
  separately, so the report shows how much held capacity sat idle.
- ``Simulation.call_at(t, fn)``: ``fn(sim)`` runs at virtual time ``t``,
  before that moment's cycle (e.g. an idle detector that fires when a session
  has been idle long enough).
- ``Simulation.stop_workload(id, reason, requeue=...)``: stops a running
  workload at the current virtual time and frees its GPUs: ``requeue=True``
  sends it back to the queue with the work since its last checkpoint lost (a
  reclaim); ``requeue=False`` ends it (the user closed the session). It is
  counted under ``reclaims``, apart from the core's preemptions.
- ``SimulationHooks``: ``on_start``/``on_stop`` are told each time a
  workload starts or stops, with the virtual time, to keep its own state.
- ``Simulation.submit(job)``: a job that arrives now but is not in the trace
  (a user coming back to a reclaimed session); it is queued like an arrival.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from ..scheduler.model import EPSILON, Allocation, Running, Workload
from .policies import Policy, QueueState
from .trace import Trace, TraceJob

PENDING, RUNNING, FINISHED, STOPPED = "pending", "running", "finished", "stopped"


class SimulationError(RuntimeError):
    """The scheduler core decided something impossible (double allocation, unknown workload)."""


class SimulationHooks:
    """Override what you need; the engine calls these at the virtual time they happen."""

    def on_start(self, sim: Simulation, job: JobState, now: float) -> None:
        pass

    def on_stop(self, sim: Simulation, job: JobState, now: float, outcome: str) -> None:
        """``outcome``: "finished", "preempted", "reclaimed" or "stopped"."""

    def on_submit(self, sim: Simulation, job: JobState, now: float) -> None:
        """A job of the trace arrived (it is in the queue now, before that moment's cycle)."""


@dataclass
class JobState:
    """One job's life in the replay."""

    job: TraceJob
    workload: Workload
    state: str = PENDING
    done: float = 0.0  # progress saved so far, in seconds of run time at the asked size
    run_start: float = 0.0  # when the current run (or resize) began
    run_done: float = 0.0  # progress at run_start
    rate: float = 1.0  # progress per virtual second in the current run
    held: float = 0.0  # GPUs held now
    first_start: float | None = None
    finished_at: float | None = None
    preemptions: int = 0
    reclaims: int = 0
    resizes: int = 0
    lost_gpu_seconds: float = 0.0  # held GPU-time thrown away by preemptions and reclaims
    version: int = 0  # bumps whenever the finish time changes; stale finish (and LAS crossing) events are ignored
    attained: float = 0.0  # GPU-seconds held up to run_start, over all runs (attained service, lost work included)
    ends_at: float = math.inf  # when the current run finishes unless something changes first
    leaving: bool = False  # preempted with notice: still on its GPUs until the notice ends
    notices: int = 0  # preemptions with notice so far (a notice's end applies to its own notice only)

    def progress_at(self, now: float) -> float:
        return self.run_done + self.rate * (now - self.run_start)

    def attained_at(self, now: float) -> float:
        """GPU-seconds held so far: every run, each size for the time it was held, a fraction at its fraction."""
        return self.attained + self.held * (now - self.run_start) if self.state == RUNNING else self.attained


@dataclass
class Sample:
    time: float
    allocated: float  # GPUs held
    pending: int  # workloads waiting


@dataclass
class SimulationResult:
    trace: Trace
    policy: str
    total_gpus: int
    quotas: dict[str, float]
    end: float  # virtual time the replay stopped
    jobs: list[JobState]
    samples: list[Sample]
    allocated_gpu_seconds: float
    busy_gpu_seconds: float
    team_gpu_seconds: dict[str, float]
    cycles: int
    checkpoint_interval: float
    wall_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class Simulation:
    def __init__(
        self,
        trace: Trace,
        policy: Policy,
        *,
        checkpoint_interval: float = 3600.0,
        end: float | None = None,
        hooks: Iterable[SimulationHooks] = (),
        progress: bool = False,
        cycle_interval: float = 0.0,
        notice_s: float = 0.0,
    ):
        """``end``: stop the clock there (jobs still pending or running are reported unfinished); None: run until
        nothing is left to happen. ``cycle_interval``: at most one scheduling cycle per this many virtual
        seconds, as a service loop with a period would run (0: a cycle at every event time). ``notice_s``:
        a preempted job keeps its GPUs this long before they go, as the service's ``grace_seconds``
        (0: at once)."""
        if notice_s < 0:
            raise ValueError("notice_s must be >= 0 (0: preempted work leaves its GPUs at once)")
        self.notice_s = notice_s
        if checkpoint_interval < 0:
            raise ValueError("checkpoint_interval must be >= 0 (0: never lose work; inf: no checkpoints)")
        self.trace = trace
        self.policy = policy
        self.checkpoint_interval = checkpoint_interval
        self.end = math.inf if end is None else end
        self.hooks = list(hooks)
        self.progress = progress
        self.now = 0.0
        self.jobs: dict[str, JobState] = {}
        self._arrivals = trace.jobs  # sorted by submit time
        self._next_arrival = 0
        self._events: list = []  # (time, seq, kind, payload)
        self._seq = 0
        self._gpu_used: dict[str, float] = {}
        self._changed: set[str] = set()
        self.state = QueueState(pending={}, running={}, pending_by_team={}, running_by_team={})
        self.allocated = 0.0
        self._busy_rate = 0.0  # GPUs computing now (held x busy_fraction)
        self._team_held: dict[str, float] = {}
        self._allocated_gs = 0.0
        self._busy_gs = 0.0
        self._team_gs: dict[str, float] = {}
        self.samples: list[Sample] = []
        self.cycles = 0
        self._reserved_now = 0.0  # GPUs held idle by reservations since the last cycle
        self._reserved_gs = 0.0
        self.ever_reserved: set[str] = set()
        self._reserved_since: dict[str, float] = {}  # pending workload -> when it first held a reservation (this wait)
        self.reservation_waits: list[float] = []  # from first holding a reservation to starting
        if cycle_interval < 0:
            raise ValueError("cycle_interval must be >= 0")
        self.cycle_interval = cycle_interval
        self._next_cycle_at = 0.0
        self._tick_pending = False
        # Attained service (see "Attained service" above): the core's LAS cuts, and the running elastic jobs
        # whose workloads are brought up to date before each cycle. A running workload's level is read only
        # to preempt it for least attained service: without preemption (static, fifo) no crossing events.
        config = getattr(policy, "config", None)
        las = getattr(config, "las_thresholds_gpu_s", ()) if getattr(config, "preemption", False) else ()
        self._las = tuple(las or ())
        self._elastic: dict[str, JobState] = {}
        self.attained_updates = 0  # running workloads handed to the core with more attained service

    # ------------------------------------------------------------ extension point

    def call_at(self, t: float, fn: Callable[[Simulation], None]) -> None:
        """Run ``fn(self)`` at virtual time ``t`` (not before now), before that moment's cycle."""
        self._push(max(t, self.now), "call", fn)

    def submit(self, job: TraceJob) -> None:
        """Queue a job arriving now that is not in the trace (reported in ``jobs`` of the model that made it)."""
        if job.id in self.jobs:
            raise SimulationError(f"cannot submit {job.id}: a job of that id is already in the replay")
        js = JobState(job=job, workload=self.policy.workload(job))
        self.jobs[job.id] = js
        self._enqueue(js)

    def stop_workload(self, workload_id: str, reason: str, requeue: bool = True) -> None:
        """Stop a running workload now: back to the queue (losing work since its checkpoint) or ended."""
        js = self.jobs.get(workload_id)
        if js is None or js.state != RUNNING:
            raise SimulationError(f"cannot stop {workload_id}: it is not running ({reason})")
        self._stop(js, "reclaimed" if requeue else "stopped")

    # ------------------------------------------------------------ the loop

    def run(self) -> SimulationResult:
        import time as wallclock

        started = wallclock.perf_counter()
        bar = self._progress_bar()
        last_t = 0.0
        while True:
            t = self._next_time()
            if t is None or t >= self.end:
                break
            self._advance(t)
            self._apply_events(t)
            if t >= self._next_cycle_at:
                if self._cycle():
                    self._next_cycle_at = t + self.cycle_interval
            elif not self._tick_pending and self._changed:
                self._push(self._next_cycle_at, "tick", None)
                self._tick_pending = True
            if bar is not None and t - last_t >= 3600 and t <= bar.total:
                bar.update(int(t) - int(last_t))
                last_t = t
        if self.end < math.inf:
            self._advance(self.end)
        if bar is not None:
            bar.close()
        return SimulationResult(
            trace=self.trace,
            policy=self.policy.name,
            total_gpus=self.policy.cluster.total_gpus,
            quotas={name: team.quota for name, team in self.policy.cluster.teams.items()},
            end=self.now,
            jobs=[self.jobs[j.id] if j.id in self.jobs else JobState(j, self.policy.workload(j)) for j in self.trace.jobs],
            samples=self.samples,
            allocated_gpu_seconds=self._allocated_gs,
            busy_gpu_seconds=self._busy_gs,
            team_gpu_seconds=dict(self._team_gs),
            cycles=self.cycles,
            checkpoint_interval=self.checkpoint_interval,
            wall_seconds=wallclock.perf_counter() - started,
            extra={"reserved_idle_gpu_seconds": self._reserved_gs, "ever_reserved": set(self.ever_reserved),
                   "reservation_waits": list(self.reservation_waits)},
        )

    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        horizon = self.end if self.end < math.inf else (self.trace.jobs[-1].submitted_at if self.trace.jobs else 0)
        return tqdm(total=int(horizon), unit="s", unit_scale=True, desc=f"replay ({self.policy.name})", leave=False)

    def _push(self, t: float, kind: str, payload) -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, self._seq, kind, payload))

    def _next_time(self) -> float | None:
        t = self._events[0][0] if self._events else None
        if self._next_arrival < len(self._arrivals):
            a = self._arrivals[self._next_arrival].submitted_at
            t = a if t is None or a < t else t
        return t

    def _advance(self, t: float) -> None:
        dt = t - self.now
        if dt > 0:
            self._allocated_gs += self.allocated * dt
            self._busy_gs += self._busy_rate * dt
            self._reserved_gs += self._reserved_now * dt
            gs = self._team_gs
            for team, held in self._team_held.items():
                if held:
                    gs[team] = gs.get(team, 0.0) + held * dt
        self.now = t

    def _apply_events(self, t: float) -> None:
        arrivals = self._arrivals
        while self._next_arrival < len(arrivals) and arrivals[self._next_arrival].submitted_at <= t:
            job = arrivals[self._next_arrival]
            self._next_arrival += 1
            if job.id in self.jobs:
                raise SimulationError(f"{self.trace.name}: job id {job.id} appears twice")
            js = JobState(job=job, workload=self.policy.workload(job))
            self.jobs[job.id] = js
            self._enqueue(js)
            for hook in self.hooks:
                hook.on_submit(self, js, t)
        events = self._events
        while events and events[0][0] <= t:
            _, _, kind, payload = heapq.heappop(events)
            if kind == "finish":
                js, version = payload
                if js.state == RUNNING and js.version == version:
                    self._stop(js, "finished")
            elif kind == "attained":
                js, version, threshold = payload
                if js.state == RUNNING and js.version == version:
                    self._crossed(js, threshold)
            elif kind == "tick":
                self._tick_pending = False
            else:
                payload(self)

    def _cycle(self) -> bool:
        if not self._changed:
            return False
        changed, self._changed = self._changed, set()
        self.cycles += 1
        if self._elastic:
            self._refresh_elastic(changed)
        all_decisions = self.policy.decide(self.state, self.now, changed)
        self._reserved_now = sum(d.reserved_gpus for d in all_decisions)
        for d in all_decisions:
            self.ever_reserved.update(d.reserved)
            for wid in d.reserved:
                self._reserved_since.setdefault(wid, self.now)
        shrunk: set[str] = set()
        noticed: set[str] = set()  # GPUs of work given notice in this cycle (as service/apply.py)
        for d in all_decisions:
            for p in d.preemptions:
                js = self._running_job(p.workload_id, "preempt")
                if self.notice_s > 0:
                    noticed.update(s.gpu_uuid for s in self.state.running[js.job.id].allocation.shares)
                    self._notify(js)
                else:
                    self._stop(js, "preempted")
            for r in d.resizes:
                if r.allocation.gpus < self._running_job(r.workload_id, "resize").held - EPSILON:
                    self._resize(r.workload_id, r.allocation)
                    shrunk.add(r.workload_id)
        for d in all_decisions:
            for s in d.starts:
                if noticed and any(x.gpu_uuid in noticed for x in s.allocation.shares):
                    self._changed.add(self.jobs[s.workload_id].workload.team)
                    continue  # starts once the work given notice has left those GPUs (a later cycle)
                self._start(s.workload_id, s.allocation)
            for r in d.resizes:
                if r.workload_id not in shrunk:
                    if noticed and any(x.gpu_uuid in noticed for x in r.allocation.shares):
                        continue  # grows onto GPUs still held by work with notice: a later cycle
                    self._resize(r.workload_id, r.allocation)
        self.samples.append(Sample(self.now, self.allocated, len(self.state.pending)))
        return True

    # ------------------------------------------------------------ state changes

    def _enqueue(self, js: JobState) -> None:
        w = js.workload
        js.state = PENDING
        self.state.pending[w.id] = w
        self.state.pending_by_team.setdefault(w.team, {})[w.id] = w
        self._changed.add(w.team)
        self.policy.submitted(w)

    def _running_job(self, workload_id: str, what: str) -> JobState:
        js = self.jobs.get(workload_id)
        if js is None or js.state != RUNNING:
            raise SimulationError(f"the scheduler asked to {what} {workload_id}, which is not running")
        return js

    def _take(self, allocation: Allocation, workload_id: str) -> None:
        used = self._gpu_used
        for share in allocation.shares:
            now_used = used.get(share.gpu_uuid, 0.0) + share.fraction
            if now_used > 1.0 + EPSILON or share.fraction <= 0:
                raise SimulationError(
                    f"the scheduler gave {workload_id} {share.fraction:g} of {share.gpu_uuid} on {share.node}, "
                    f"which would then be {now_used:g} used (over 100%)"
                )
            used[share.gpu_uuid] = now_used

    def _release(self, allocation: Allocation) -> None:
        used = self._gpu_used
        for share in allocation.shares:
            left = used[share.gpu_uuid] - share.fraction
            if left <= EPSILON:
                del used[share.gpu_uuid]
            else:
                used[share.gpu_uuid] = left

    def _hold(self, js: JobState, running: Running | None) -> None:
        """Book keeping for the GPUs ``js`` holds: ``running`` None releases them."""
        w = js.workload
        team = js.job.team
        old = js.held
        new = running.allocation.gpus if running else 0.0
        js.held = new
        self.allocated += new - old
        self._busy_rate += (new - old) * js.job.busy_fraction
        self._team_held[team] = self._team_held.get(team, 0.0) + new - old
        if running is None:
            del self.state.running[w.id]
            del self.state.running_by_team[w.team][w.id]
        else:
            self.state.running[w.id] = running
            self.state.running_by_team.setdefault(w.team, {})[w.id] = running
        self._changed.add(w.team)

    def _begin_run(self, js: JobState, gpus: float) -> None:
        asked = js.job.gpus
        js.rate = gpus / asked if js.workload.is_elastic else 1.0
        js.run_start = self.now
        js.run_done = js.done
        js.version += 1
        remaining = max(js.job.duration - js.done, 0.0)
        js.ends_at = self.now + remaining / js.rate
        self._push(js.ends_at, "finish", (js, js.version))
        self._next_crossing(js, js.attained)

    # ------------------------------------------------------------ attained service

    def _next_crossing(self, js: JobState, attained: float) -> None:
        """Schedule the moment running ``js`` reaches the next LAS threshold above ``attained`` (at the size it
        holds now: a resize or stop bumps ``version`` and so cancels it; the new run schedules its own)."""
        las = self._las
        if not las or js.held <= 0:
            return
        i = bisect_right(las, attained)
        if i == len(las):
            return
        t = self.now + (las[i] - attained) / js.held
        if t < js.ends_at:
            self._push(t, "attained", (js, js.version, las[i]))

    def _crossed(self, js: JobState, threshold: float) -> None:
        """``js`` reached an LAS threshold now: the core gets its workload one level down, its team re-decides."""
        attained = max(js.attained_at(self.now), threshold)  # exactly at the cut (float rounding may fall short)
        self._report_attained(js, attained)
        self._changed.add(js.workload.team)
        self._next_crossing(js, attained)

    def _refresh_elastic(self, changed: set[str]) -> None:
        """Bring running elastic workloads' attained service up to now before a cycle that may read it
        (growth order and new work's shrinks read its value, not only its level): all of them when one
        scheduler decides for every team, else those of the teams deciding now."""
        teams = self.policy.deciding(changed)
        for js in self._elastic.values():
            w = js.workload
            if teams is not None and w.team not in teams:
                continue
            attained = js.attained_at(self.now)
            if attained > w.attained_gpu_s:
                self._report_attained(js, attained)

    def _report_attained(self, js: JobState, attained: float) -> None:
        """Hand the core running ``js``'s workload with ``attained`` GPU-seconds of service (it keeps its GPUs)."""
        w = replace(js.workload, attained_gpu_s=attained)
        js.workload = w
        running = replace(self.state.running[w.id], workload=w)
        self.state.running[w.id] = running
        self.state.running_by_team[w.team][w.id] = running
        self.policy.attained(w)
        self.attained_updates += 1

    def _start(self, workload_id: str, allocation: Allocation) -> None:
        js = self.jobs.get(workload_id)
        if js is None or js.state != PENDING:
            raise SimulationError(f"the scheduler started {workload_id}, which is not pending")
        self._take(allocation, workload_id)
        w = js.workload
        del self.state.pending[w.id]
        del self.state.pending_by_team[w.team][w.id]
        js.state = RUNNING
        if js.first_start is None:
            js.first_start = self.now
        since = self._reserved_since.pop(workload_id, None)
        if since is not None:
            self.reservation_waits.append(self.now - since)
        self._hold(js, Running(workload=w, allocation=allocation))
        self.policy.started(w, allocation)
        if w.is_elastic:
            self._elastic[w.id] = js
        self._begin_run(js, allocation.gpus)
        for hook in self.hooks:
            hook.on_start(self, js, self.now)

    def _resize(self, workload_id: str, allocation: Allocation) -> None:
        js = self._running_job(workload_id, "resize")
        old = self.state.running[workload_id].allocation
        self._release(old)
        self._take(allocation, workload_id)
        js.done = min(js.progress_at(self.now), js.job.duration)  # a resize checkpoints first: nothing lost
        js.attained = js.attained_at(self.now)  # held at the old size until now
        js.resizes += 1
        self._hold(js, Running(workload=js.workload, allocation=allocation))
        self.policy.resized(js.workload, allocation)
        self._begin_run(js, allocation.gpus)

    def _notify(self, js: JobState) -> None:
        """Preemption with notice: the job keeps running on its GPUs for ``notice_s``, then goes (unless it
        ends first). The core sees it leaving: never a victim again, its GPUs awaited by whom it goes for."""
        if js.leaving:
            raise SimulationError(f"the scheduler preempted {js.job.id} again during its notice")
        w = js.workload
        js.leaving = True
        js.notices += 1
        notice = js.notices
        running = replace(self.state.running[w.id], leaving=True)
        self.state.running[w.id] = running
        self.state.running_by_team[w.team][w.id] = running
        self._changed.add(w.team)
        self.policy.leaving(w)

        def notice_ends(sim: Simulation) -> None:
            if js.state == RUNNING and js.leaving and js.notices == notice:
                sim._stop(js, "preempted")

        self.call_at(self.now + self.notice_s, notice_ends)

    def _stop(self, js: JobState, outcome: str) -> None:
        """Free the GPUs of a running job: finished, preempted, reclaimed (both requeued) or stopped."""
        js.leaving = False
        running = self.state.running[js.job.id]
        self._release(running.allocation)
        js.attained = js.attained_at(self.now)  # held GPUs count, whether the work is kept or lost
        self._elastic.pop(js.job.id, None)
        ran = self.now - js.run_start
        if outcome == "finished":
            js.done = js.job.duration
        else:
            interval = self.checkpoint_interval
            if interval == 0:
                kept = ran
            elif math.isinf(interval):
                kept = 0.0
            else:
                kept = math.floor(ran / interval + EPSILON) * interval
            js.done = min(js.run_done + js.rate * kept, js.job.duration)
            js.lost_gpu_seconds += (ran - kept) * js.held
        self._hold(js, None)
        self.policy.stopped(js.workload)
        js.version += 1
        if outcome == "finished" or outcome == "stopped":
            js.state = FINISHED if outcome == "finished" else STOPPED
            js.finished_at = self.now
        else:
            if outcome == "preempted":
                js.preemptions += 1
            else:
                js.reclaims += 1
            js.workload = replace(js.workload, attained_gpu_s=js.attained)  # back in the queue with its service
            self._enqueue(js)
        for hook in self.hooks:
            hook.on_stop(self, js, self.now, outcome)


def simulate(trace: Trace, policy: Policy, **kwargs) -> SimulationResult:
    return Simulation(trace, policy, **kwargs).run()
