"""No starvation: reservations for long-waiting work, backfill around them.

A workload pending longer than ``config.reservation_after_s`` is *starving*.
Each cycle (fair ordering only) starving workloads go first, oldest first:
one that fits starts; one that is blocked only by free capacity (its team may
start it) gets a **reservation**, up to ``config.max_reservations`` of them
(default 1, the oldest, as in EASY backfilling: every reservation idles the
GPUs it holds, and the next oldest gets its turn once the first starts): the nodes closest to fitting it (most free
eligible cards; for a gang larger than a node, the fewest such nodes) and
their free cards, up to what it needs, are held for it. Later work in the
same cycle cannot use held cards, so it **backfills** only onto GPUs the
reservation does not need, and never delays it: held cards only accumulate
as running work on those nodes ends, until the workload fits.

The core has no run-time estimates, so "does not delay" is conservative:
nothing is placed on held cards at all.

A reservation of work within its team's quota holds against everyone; one of
a borrower (over its quota) yields to work within quota, because a quota is
a guarantee (see preemption.py).

Reservations are recomputed from the snapshot each cycle; a reservation is
kept on the node with most free eligible cards, and the free count of the
node it holds never drops, so the choice settles on one node.
"""

from __future__ import annotations

from .model import Workload


class Reservation:
    __slots__ = ("workload", "gpus", "nodes", "held", "hard")

    def __init__(self, workload: Workload, gpus: int, nodes: list[int], held: list[int], hard: bool):
        self.workload = workload
        self.gpus = gpus
        self.nodes = nodes
        self.held = held
        self.hard = hard


def starving(fifo: list[Workload], now: float, after_s: float | None):
    """Pending workloads waiting longer than ``after_s``, oldest first."""
    if after_s is None:
        return
    cutoff = now - after_s
    for w in fifo:
        if w.submitted_at > cutoff:
            return
        yield w


def reserve(cycle, w: Workload, v, gpus: int, hard: bool) -> Reservation | None:
    limit = cycle.config.max_reservations
    if limit is not None and len(cycle.reservations) >= limit:
        return None
    cap = cycle.cap
    k_nodes = v.nodes_needed(gpus)
    if k_nodes is None:
        return None
    nodes: list[int] = []
    for k in range(len(v.buckets) - 1, 0, -1):
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
    res = Reservation(w, gpus, nodes, held, hard)
    cycle.reservations[w.id] = res
    return res
