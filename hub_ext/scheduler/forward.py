"""Expected start times: run the queue forward with the same core.

Given a snapshot whose workloads carry run-time estimates
(``Workload.estimate_s``, at most the time limit; estimates.py), the forward
run replays the future on a copy of the scheduler: each running workload
ends when its remaining time (``estimates.remaining_s``) has passed, each
workload the core starts ends after its estimate, and at every end the core
runs a cycle, exactly as the live pool would. The time the core starts a
pending workload is its expected start.

No new arrivals are imagined, so the answer is what happens if nobody else
submits (later submissions of higher priority or of a team under its quota
can overtake). A workload with no estimate and no limit never ends in the
forward run: work waiting on its GPUs gets no expected start ("not known"),
rather than an invented one.

Attained service grows in the forward run as in the live pool: a running job
crosses each least-attained-service threshold at the moment its GPU-seconds
reach it (a moment of the run, like an end), so work of its team that it was
ahead of may overtake it then, as the live core would decide.

Bounded: the run stops after ``max_cycles`` cycles or beyond ``horizon_s``.
End times close together are handled in one cycle: within ``resolution_s``,
or within ``far_share`` of how far ahead they are (ends 10 h ahead are
grouped by the hour: an estimate that far out is no finer than that).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .cache import Scheduler
from .estimates import Estimate, duration_text, remaining_s
from .model import Running, Snapshot, Workload, WorkloadKind

DEFAULT_HORIZON_S = 30 * 86400.0


@dataclass(frozen=True)
class Forecast:
    at: float | None  # expected start (seconds since the epoch); None: not known
    basis: str  # what it rests on, for a person


def run_forward(
    snapshot: Snapshot,
    bases: Mapping[str, str] | None = None,
    *,
    horizon_s: float = DEFAULT_HORIZON_S,
    max_cycles: int = 2000,
    resolution_s: float = 60.0,
    far_share: float = 0.1,
    until: str | None = None,
) -> dict[str, Forecast]:
    """Forecasts for every pending workload of ``snapshot`` (by id).

    ``bases``: per workload id, the basis of its estimate, quoted in the
    forecast of the work that starts when it ends. ``until``: only this
    workload's start is wanted: the run stops once it has started (the
    others' forecasts are then incomplete).
    """
    bases = bases or {}
    now = snapshot.now
    # Starvation reservations depend on waiting times the forward run cannot
    # age faithfully; the cycle at each moment still applies them as they stand.
    s = Scheduler.from_snapshot(snapshot)
    ends: list[tuple[float, int, str, int]] = []
    version: dict[str, int] = {}
    seq = 0
    unknown_running = 0
    for r in snapshot.running:
        w = r.workload
        left = remaining_s(w.estimate_s, now - r.allocation.started_at, w.time_limit_s)
        if left is None:
            unknown_running += 1
            continue
        version[w.id] = 0
        seq += 1
        ends.append((now + left, seq, w.id, 0))
    heapq.heapify(ends)
    crossings = _Crossings(s, snapshot)
    for r in snapshot.running:
        if r.workload.id in version:  # its end is known (work with no end known is not imagined to cross either)
            crossings.started(r.workload.id, now)
    pending_ids = {w.id for w in snapshot.pending}
    out: dict[str, Forecast] = {}
    t = now
    why = "the GPUs it needs are free now"
    cycles = 0
    while s.pending and cycles < max_cycles:
        d = s.cycle(t)
        cycles += 1
        s.apply(d)
        for p in d.preemptions:
            version[p.workload_id] = version.get(p.workload_id, 0) + 1
            crossings.stopped(p.workload_id)
        for rz in d.resizes:
            crossings.resized(rz.workload_id, t)
        for st in d.starts:
            wid = st.workload_id
            if wid in pending_ids and wid not in out:
                out[wid] = Forecast(t, why)
            w = s.running[wid].workload
            if w.estimate_s is not None:
                v = version[wid] = version.get(wid, 0) + 1
                seq += 1
                heapq.heappush(ends, (t + w.estimate_s, seq, wid, v))
                crossings.started(wid, t)
        if until is not None and until in out:
            return out
        # The next moment something ends (stale ends of preempted work skipped).
        while ends and version.get(ends[0][2]) != ends[0][3]:
            heapq.heappop(ends)
        crossing = crossings.next_at()
        if crossing is not None and crossing <= now + horizon_s and (not ends or crossing < ends[0][0]):
            # A running job reaches a threshold before anything ends: the core decides again then.
            t = crossing
            crossed = crossings.cross(t)
            why = f"{crossed} is expected to have held its GPUs long enough that work of its team goes first (least attained service)"
            continue
        if not ends or ends[0][0] > now + horizon_s:
            break
        first = ends[0][0]
        window = max(resolution_s, far_share * (first - now))
        ended: list[str] = []
        while ends and ends[0][0] <= first + window:
            at, _, wid, v = heapq.heappop(ends)
            if version.get(wid) == v and wid in s.running:
                s.finished(wid)
                crossings.stopped(wid)
                version[wid] = v + 1
                ended.append(wid)
                t = at
        if ended:
            basis = bases.get(ended[0])
            why = f"GPUs expected to free up when {ended[0]} ends" + (f" ({basis})" if basis else "")
    horizon = duration_text(horizon_s)
    for wid in pending_ids - out.keys():
        if cycles >= max_cycles:
            text = "not known: the forward run of the queue stopped before it started (too long a queue to look that far)"
        elif ends and ends[0][0] > now + horizon_s:
            text = f"not known: not expected to start within {horizon}"
        elif unknown_running or any(r.workload.estimate_s is None for r in s.running.values()):
            text = "not known: the GPUs it waits for are held by work with no time limit and no run-time history"
        else:
            text = "not known: it would not start even once the running work ends (see its reason)"
        out[wid] = Forecast(None, text)
    return out


def with_estimates(snapshot: Snapshot, estimate_of) -> Snapshot:
    """The snapshot with ``estimate_s`` set on every workload from ``estimate_of(w) -> seconds | None``.

    ``estimate_of`` may return an ``estimates.Estimate`` instead: its basis is kept too
    (``Workload.estimate_basis``, quoted where an estimate places work: las_estimates.py)."""
    pending = tuple(_with_estimate(w, estimate_of(w)) for w in snapshot.pending)
    running = tuple(Running(_with_estimate(r.workload, estimate_of(r.workload)), r.allocation, r.leaving) for r in snapshot.running)
    return replace(snapshot, pending=pending, running=running)


def _with_estimate(w: Workload, seconds) -> Workload:
    # dataclasses.replace re-runs __init__ over every field: 10x slower for thousands of workloads.
    copy = object.__new__(Workload)
    copy.__dict__.update(w.__dict__)
    if isinstance(seconds, Estimate):
        copy.__dict__["estimate_basis"] = seconds.basis if seconds.seconds is not None else None
        seconds = seconds.seconds
    copy.__dict__["estimate_s"] = seconds
    return copy


class _Crossings:
    """When running jobs reach the next least-attained-service threshold (a heap of moments): the
    forward run hands the core the job with its attained service then (``Scheduler.attained``).
    Sessions are left out: least attained service never preempts one. So is work whose end is not known
    (no estimate, no limit): a crossing would make the start of what waits for it an invented time."""

    def __init__(self, s: Scheduler, snapshot: Snapshot):
        cfg = snapshot.config
        self.s = s
        self.cuts = tuple(cfg.las_thresholds_gpu_s) if cfg.las_thresholds_gpu_s and cfg.preemption else ()
        self.heap: list[tuple[float, str, int, float]] = []  # (when, job, version, the threshold it reaches)
        self.base: dict[str, tuple[float, float, float]] = {}  # job -> (attained, at, GPUs held since then)
        self.version: dict[str, int] = {}

    def started(self, wid: str, t: float) -> None:
        if not self.cuts:
            return
        r = self.s.running[wid]
        if r.workload.kind is WorkloadKind.SESSION:
            return
        self.base[wid] = (r.workload.attained_gpu_s, t, r.allocation.gpus)
        self._schedule(wid)

    def resized(self, wid: str, t: float) -> None:
        if wid in self.base:
            attained, at, gpus = self.base[wid]
            self.base[wid] = (attained + gpus * (t - at), t, self.s.running[wid].allocation.gpus)
            self._schedule(wid)

    def stopped(self, wid: str) -> None:
        if self.base.pop(wid, None) is not None:
            self.version[wid] = self.version.get(wid, 0) + 1

    def _schedule(self, wid: str) -> None:
        attained, at, gpus = self.base[wid]
        v = self.version[wid] = self.version.get(wid, 0) + 1
        nxt = next((c for c in self.cuts if c > attained), None)
        if nxt is not None and gpus > 0:
            heapq.heappush(self.heap, (at + (nxt - attained) / gpus, wid, v, nxt))

    def next_at(self) -> float | None:
        heap = self.heap
        while heap and self.version.get(heap[0][1]) != heap[0][2]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def cross(self, t: float) -> str:
        """Hand the core every job whose crossing is due by ``t``; the first one's id."""
        first = None
        while self.next_at() is not None and self.heap[0][0] <= t:
            _, wid, _, cut = heapq.heappop(self.heap)
            attained, at, gpus = self.base[wid]
            now_attained = max(attained + gpus * (t - at), cut)  # at least the threshold (rounding must not undershoot it)
            self.s.attained(replace(self.s.running[wid].workload, attained_gpu_s=now_attained))
            self.base[wid] = (now_attained, t, gpus)
            self._schedule(wid)
            first = first or wid
        return first
