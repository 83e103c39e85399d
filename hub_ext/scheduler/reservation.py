"""No starvation: reservations for long-waiting work, backfill around them.

A workload pending longer than ``config.reservation_after_s`` is *starving*.
Each cycle (fair ordering only) starving workloads go first, oldest first
(except work at a higher LAS level than its own team's pending work, which
goes after the fair loop: ``Cycle.las_yields``):
one that fits starts; one that is blocked only by free capacity (its team may
start it) gets a **reservation**, up to ``config.max_reservations`` of them
(default 1, the oldest, as in EASY backfilling: every reservation idles the
GPUs it holds, and the next oldest gets its turn once the first starts): the nodes closest to fitting it (most free
eligible cards; for a gang larger than a node, the fewest such nodes) and
their free cards, up to what it needs, are held for it. Later work in the
same cycle cannot use held cards, so it **backfills** only onto GPUs the
reservation does not need, and never delays it: held cards only accumulate
as running work on those nodes ends, until the workload fits.

**Backfill that uses time (EASY).** The reservation's *expected start* (its
shadow time) is when enough of the running work on its nodes has ended for it
to fit: each running workload ends at its start plus its time limit (and,
with ``config.backfill_on_estimates``, its run-time estimate where it has no
limit; never sooner than estimates.remaining_s allows). Work whose own limit
(or, so allowed, estimate) says it ends before then may start on the held
cards (``backfill``): it cannot delay the reservation. Work with neither,
and any work while the shadow time is not known (some card it needs is held
by work with no limit), is kept off held cards, as before. A job backfilled
on an estimate that turns out too short is preempted back when the reserved
workload's time comes (``overrunning``): it gets the usual notice.

A reservation of work within its team's quota holds against everyone; one of
a borrower (over its quota) yields to work within quota, because a quota is
a guarantee (see preemption.py).

Reservations are recomputed from the snapshot each cycle; a reservation is
kept on the node with most free eligible cards, and the free count of the
node it holds never drops, so the choice settles on one node.
"""

from __future__ import annotations

import math

from .estimates import duration_text, remaining_s
from .model import EPSILON, Running, Workload, WorkloadKind
from .placement import place_whole

_UNKNOWN = object()


class Reservation:
    __slots__ = ("workload", "gpus", "nodes", "held", "hard", "view", "_shadow")

    def __init__(self, workload: Workload, gpus: int, nodes: list[int], held: list[int], hard: bool, view=None):
        self.workload = workload
        self.gpus = gpus
        self.nodes = nodes
        self.held = held
        self.hard = hard
        self.view = view
        self._shadow = _UNKNOWN


def expected_end(cycle, r: Running) -> float | None:
    """When running work is expected to end, for backfill: its time limit, or (where allowed) its estimate."""
    w = r.workload
    started = r.allocation.started_at
    if w.time_limit_s is not None:
        return started + w.time_limit_s
    if cycle.config.backfill_on_estimates and w.estimate_s is not None:
        return cycle.now + remaining_s(w.estimate_s, cycle.now - started)
    return None


def run_time(cycle, w: Workload) -> float | None:
    """How long ``w`` may be trusted to run at most: its limit, or (where allowed) its estimate."""
    if w.time_limit_s is not None:
        return w.time_limit_s
    if cycle.config.backfill_on_estimates:
        return w.estimate_s
    return None


def shadow_time(cycle, res: Reservation) -> float | None:
    """When the reserved workload is expected to fit on its nodes; None when not known."""
    if res._shadow is not _UNKNOWN:
        return res._shadow
    need = res.gpus - len(res.held)
    shadow: float | None = cycle.now
    if need > 0:
        cap = cycle.cap
        nodes = set(res.nodes)
        classes = res.view.classes
        free_at: dict[int, float] = {}
        for wid, r in cycle.st.running.items():
            end = None
            for s in r.allocation.shares:
                g = cap.share_gpu(s)
                if g is None or cap.gpu_node[g] not in nodes or cap.gpu_class[g] not in classes:
                    continue
                if end is None:
                    end = math.inf if wid in cycle.gone else expected_end(cycle, r)
                    end = math.inf if end is None else end
                free_at[g] = max(free_at.get(g, 0.0), end)
        for st in cycle.starts:  # started earlier in this cycle on those nodes
            w = cycle.st.pending.get(st.workload_id)
            d = run_time(cycle, w) if w is not None else None
            for s in st.allocation.shares:
                g = cap.share_gpu(s)
                if g is not None and cap.gpu_node[g] in nodes and cap.gpu_class[g] in classes:
                    free_at[g] = max(free_at.get(g, 0.0), math.inf if d is None else cycle.now + d)
        ends = sorted(free_at.values())
        shadow = ends[need - 1] if len(ends) >= need else None
        if shadow is not None and math.isinf(shadow):
            shadow = None
    res._shadow = shadow
    return shadow


def backfill(cycle, w: Workload, gpus: int):
    """Place ``w`` on cards held by a reservation it cannot delay (EASY); the cards, or None."""
    d = run_time(cycle, w)
    if d is None or d <= 0:
        return None
    cap = cycle.cap
    for res in cycle.reservations.values():
        if not res.held or res.view is None or len(res.nodes) != 1:
            continue  # a gang over several nodes is placed by most free cards: backfill could move it
        shadow = shadow_time(cycle, res)
        if shadow is None or cycle.now + d > shadow + EPSILON:
            continue
        # Lend the held cards, place, take back what was not used.
        mem = cap.gpu_mem
        for g in res.held:
            cap.give(g, 1.0, float(mem[g]))
        v = cap.view((w.gpu_model, w.min_gpu_memory_mib))
        placed = place_whole(cap, v, gpus)
        used = set(placed or ())
        for g in res.held:
            if g not in used:
                cap.take(g, 1.0, float(mem[g]))
        if placed is None:
            continue
        res.held = [g for g in res.held if g not in used]
        basis = "time limit" if w.time_limit_s is not None else "run-time estimate"
        return placed, (
            f"backfilled onto GPUs held for {res.workload.id}: its {basis} ({duration_text(d)}) ends it "
            f"before {res.workload.id} is expected to start (in {duration_text(max(0.0, shadow - cycle.now))})"
        )
    return None


def overrunning(cycle, res: Reservation) -> list[Running]:
    """Work on the reservation's nodes started on an estimate that has run past it: preempted back."""
    if not cycle.config.backfill_on_estimates:
        return []
    cap = cycle.cap
    nodes = set(res.nodes)
    found = []
    for wid, r in cycle.st.running.items():
        w = r.workload
        if wid in cycle.gone or w.kind is not WorkloadKind.JOB or w.time_limit_s is not None or w.estimate_s is None or not w.preemptible:
            continue
        # Started after the reserved workload began to starve: it could only have been backfilled.
        if r.allocation.started_at <= res.workload.submitted_at + (cycle.config.reservation_after_s or 0.0):
            continue
        if r.allocation.started_at + w.estimate_s > cycle.now:
            continue
        if any((g := cap.share_gpu(s)) is not None and cap.gpu_node[g] in nodes for s in r.allocation.shares):
            found.append(r)
    return found


def starving(fifo: list[Workload], now: float, after_s: float | None):
    """Pending workloads waiting longer than ``after_s``, oldest first."""
    if after_s is None:
        return
    cutoff = now - after_s
    for w in fifo:
        if w.submitted_at > cutoff:
            return
        yield w


def _earliest_node(cycle, v, gpus: int) -> int | None:
    """With time limits known: the node where ``gpus`` cards are expected free soonest (EASY's
    reservation), so work backfilled by time on one node does not send the reservation elsewhere.
    None when no node's time is known (the most-free node is chosen then)."""
    cap = cycle.cap
    classes = v.classes
    ends: dict[int, float] = {}
    known = False
    for wid, r in cycle.st.running.items():
        end = None
        for s in r.allocation.shares:
            g = cap.share_gpu(s)
            if g is None or cap.gpu_class[g] not in classes:
                continue
            if end is None:
                end = None if wid in cycle.gone else expected_end(cycle, r)
                known = known or end is not None
                end = math.inf if end is None else end
            ends[g] = max(ends.get(g, 0.0), end)
    if not known:
        return None
    for st in cycle.starts:
        w = cycle.st.pending.get(st.workload_id)
        d = run_time(cycle, w) if w is not None else None
        for s in st.allocation.shares:
            g = cap.share_gpu(s)
            if g is not None:
                ends[g] = max(ends.get(g, 0.0), math.inf if d is None else cycle.now + d)
    best, best_key = None, None
    ff = cap.free_frac
    for n, ids in enumerate(cap.node_gpus):
        if not cap.schedulable[n] or v.node_total[n] < gpus:
            continue
        times = sorted(cycle.now if ff[g] >= 1.0 - EPSILON else ends.get(g, math.inf) for g in ids if cap.gpu_class[g] in classes)
        key = (times[gpus - 1], -v.node_free[n], n)
        if best_key is None or key < best_key:
            best, best_key = n, key
    if best is None or math.isinf(best_key[0]):
        return None
    return best


def reserve(cycle, w: Workload, v, gpus: int, hard: bool) -> Reservation | None:
    limit = cycle.config.max_reservations
    if limit is not None and len(cycle.reservations) >= limit:
        return None
    cap = cycle.cap
    k_nodes = v.nodes_needed(gpus)
    if k_nodes is None:
        return None
    nodes: list[int] = []
    if k_nodes == 1 and cycle.config.time_backfill and cycle.st.timed_pending():
        # Only where something may backfill by time does the choice of node matter (and cost a scan).
        n = _earliest_node(cycle, v, gpus)
        if n is not None:
            nodes.append(n)
    for k in range(len(v.buckets) - 1, 0, -1):
        if len(nodes) == k_nodes:
            break
        for n in v.buckets[k]:
            if k_nodes == 1 and v.node_total[n] < gpus:
                continue
            nodes.append(n)
            if len(nodes) == k_nodes:
                break
        if len(nodes) == k_nodes:
            break
    held: list[int] = []
    for n in nodes:
        for g in cap.free_cards_on(v, n)[: gpus - len(held)]:
            cap.take(g, 1.0, float(cap.gpu_mem[g]))
            held.append(g)
    if not held and cycle.reservations:
        # Nothing free to hold: only the oldest such workload is marked; it
        # gets the next GPUs that free up anyway (starving work goes first).
        return None
    res = Reservation(w, gpus, nodes, held, hard, v)
    cycle.reservations[w.id] = res
    return res
