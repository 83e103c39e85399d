"""The work-conserving bound: the utilisation one perfectly packed queue reaches.

The whole pool is treated as one bin of GPUs with no node boundaries (no
fragmentation, no gang placement across nodes, fractions pack perfectly) and
one queue in submit order that never leaves a GPU idle while any waiting job
fits (greedy backfill), never preempts, and knows nothing of durations. It
replays the same trace on the same number of GPUs over the same window.
Any real policy packs worse (node boundaries) or wastes work (preemption),
so its utilisation of *useful* GPU-time is at or below this figure in
practice; the figure is the ceiling to read each policy's utilisation against.

Elastic jobs run here at the size they ask for. The core may start an
elastic job smaller and grow it later, filling gaps a rigid queue leaves, so
on a trace of elastic jobs (pollux) a policy can exceed this figure: there
it is a reference, not a ceiling. (Starting elastic jobs smaller without
growing them later would lower it instead: a job started on one GPU crawls.)
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

from .trace import Trace


@dataclass(frozen=True)
class PackedQueue:
    utilisation: float  # held GPU-time / capacity over the window: the ceiling
    finished: int  # jobs it finishes inside the window
    mean_jct_s: float | None  # over those jobs (a reference, not a bound: it runs in submit order)


def work_conserving_utilisation(trace: Trace, total_gpus: float, end: float | None = None) -> float:
    """Held GPU-time / capacity over ``[0, end)`` (``end`` None: until the last job finishes)."""
    return packed_queue(trace, total_gpus, end).utilisation


def packed_queue(trace: Trace, total_gpus: float, end: float | None = None) -> PackedQueue:
    """Replay ``trace`` through the one perfectly packed queue described above."""
    jobs = trace.jobs
    free = float(total_gpus)
    # Waiting jobs by size, each in submit order: the earliest job that fits is found in O(sizes).
    waiting: dict[float, deque] = {}
    finishing: list = []  # heap of (finish time, gpus, submitted_at)
    jcts: list[float] = []
    used_gs = held = now = 0.0
    i = 0
    horizon = math.inf if end is None else end
    while i < len(jobs) or finishing:
        t = min(jobs[i].submitted_at if i < len(jobs) else math.inf, finishing[0][0] if finishing else math.inf)
        if t >= horizon:  # the window is [0, end), as in the engine
            break
        used_gs += held * (t - now)
        now = t
        while finishing and finishing[0][0] <= t:
            done_at, g, submitted = heapq.heappop(finishing)
            held -= g
            jcts.append(done_at - submitted)
        while i < len(jobs) and jobs[i].submitted_at <= t:
            if jobs[i].gpus <= total_gpus:  # a job bigger than the pool never runs anywhere
                waiting.setdefault(jobs[i].gpus, deque()).append(i)
            i += 1
        free = total_gpus - held
        while True:
            fits = [q[0] for g, q in waiting.items() if q and g <= free + 1e-9]
            if not fits:
                break
            k = min(fits)  # indices are in submit order
            g = jobs[k].gpus
            waiting[g].popleft()
            free -= g
            held += g
            heapq.heappush(finishing, (now + jobs[k].duration, g, jobs[k].submitted_at))
    stop = now if end is None else end
    used_gs += held * (stop - now)
    return PackedQueue(
        utilisation=used_gs / (total_gpus * stop) if stop > 0 else 0.0,
        finished=len(jcts),
        mean_jct_s=sum(jcts) / len(jcts) if jcts else None,
    )
