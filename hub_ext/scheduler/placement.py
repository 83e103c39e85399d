"""Where a workload's GPUs go: gang, best-fit, fractions, GPU model.

* Whole GPUs start as a gang: all of them at once or none.
* A gang uses the fewest nodes that could ever hold it (one node whenever
  some node has that many eligible cards); it waits for such a block rather
  than being spread thinner.
* Best fit: the node with the fewest untouched cards that still fits, so
  large free blocks stay free for large work. On several nodes: the largest
  blocks first, the last node best-fit for the remainder.
* A fraction goes onto the partly used card with the least room that still
  fits its compute share and its memory share; only when none fits does it
  open an untouched card (best-fit node). A card never exceeds 100% of its
  compute or its memory.
* With ``SchedulerConfig.elastic_spread_start`` (off by default), an elastic
  job whose asked size is larger than any node, and that does not fit on the
  fewest nodes that could ever hold it, may start on idle cards spread over
  more nodes (``place_spread``: the fewest nodes that hold it as the free
  cards lie now), rather than start smaller or wait. Consolidated placement is still tried first at each size, and
  room-making (preemption.make_room) places consolidated: spreading is over
  idle cards only.
"""

from __future__ import annotations

import math

from .capacity import Capacity, View
from .model import EPSILON, Workload


def view_key(w: Workload) -> tuple:
    return (w.gpu_model, w.min_gpu_memory_mib)


def fraction_memory(w: Workload, card_mib: int) -> float:
    """Memory a fraction holds on a card: its stated share, else its fraction of the card."""
    if w.gpu_memory_mib is not None:
        return float(w.gpu_memory_mib)
    return float(math.ceil(w.gpus * card_mib))


def place_whole(cap: Capacity, v: View, gpus: int) -> list[int] | None:
    """GPU ids for a gang of ``gpus`` whole cards, or None."""
    k_nodes = v.nodes_needed(gpus)
    if k_nodes is None or gpus > v.free_total:
        return None
    return _gang_on(cap, v, gpus, k_nodes)


def may_spread(cfg, w: Workload, v: View) -> bool:
    """May ``w`` start spread over more nodes than the fewest that could hold it (``elastic_spread_start``)?
    An elastic job whose asked size spans nodes anyway (larger than any node of its view): one that fits
    on a node stays on one, as spreading every job left room-making no whole nodes to free."""
    return bool(cfg.elastic_spread_start and w.is_elastic and (v.nodes_needed(int(w.gpus)) or 0) > 1)


def spread_nodes(v: View, gpus: int) -> int | None:
    """Fewest nodes whose untouched cards hold ``gpus`` as the free cards lie now; None if too few are free."""
    if gpus > v.free_total or gpus <= 0:
        return None
    got = 0
    k_nodes = 0
    for k in range(len(v.buckets) - 1, 0, -1):
        for _ in v.buckets[k]:
            got += k
            k_nodes += 1
            if got >= gpus:
                return k_nodes
    return None


def place_spread(cap: Capacity, v: View, gpus: int) -> list[int] | None:
    """GPU ids for ``gpus`` whole cards on whatever nodes hold them now (an elastic start,
    ``elastic_spread_start``): the largest free blocks first, the last node best-fit. None if too few
    cards are free."""
    k_nodes = spread_nodes(v, gpus)
    if k_nodes is None:
        return None
    return _gang_on(cap, v, gpus, k_nodes)


def _gang_on(cap: Capacity, v: View, gpus: int, k_nodes: int) -> list[int] | None:
    """``gpus`` untouched cards on ``k_nodes`` nodes: one node best-fit, or the largest blocks first
    for all but the last node and the last one best-fit."""
    buckets = v.buckets
    top = len(buckets) - 1
    if k_nodes == 1:
        for k in range(gpus, top + 1):
            if buckets[k]:
                return cap.free_cards_on(v, buckets[k][0])[:gpus]
        return None
    # Largest blocks first for all but the last node; the last one best-fit.
    chosen: list[int] = []
    got = 0
    for k in range(top, 0, -1):
        for n in buckets[k]:
            if len(chosen) == k_nodes - 1:
                break
            chosen.append(n)
            got += k
        if len(chosen) == k_nodes - 1:
            break
    rest = gpus - got
    if rest <= 0:
        return None  # cannot happen: fewer nodes would have done
    last = None
    for k in range(rest, top + 1):
        for n in buckets[k]:
            if n not in chosen:
                last = n
                break
        if last is not None:
            break
    if last is None:
        return None
    ids: list[int] = []
    for n in chosen:
        ids.extend(cap.free_cards_on(v, n))
    ids.extend(cap.free_cards_on(v, last)[:rest])
    return ids


def place_fraction(cap: Capacity, v: View, w: Workload) -> tuple[int, float] | None:
    """(GPU id, memory share) for a fractional workload, or None."""
    frac = w.gpus
    best = None
    best_key = None
    ff, fm, mem = cap.free_frac, cap.free_mem, cap.gpu_mem
    for g in v.partial:
        room = ff[g] - frac
        if room < -EPSILON:
            continue
        need = fraction_memory(w, mem[g])
        if fm[g] + EPSILON < need:
            continue
        key = (room, g)
        if best_key is None or key < best_key:
            best, best_key = (g, need), key
    if best is not None:
        return best
    for k in range(1, len(v.buckets)):
        for n in v.buckets[k]:
            for g in cap.free_cards_on(v, n):
                need = fraction_memory(w, mem[g])
                if need <= mem[g] + EPSILON:
                    return g, need
    return None


def largest_fraction_room(cap: Capacity, v: View) -> tuple[float, float]:
    """(most free compute, most free memory) on any one usable card of a view."""
    if v.free_total:
        # an untouched card: report the view's largest card memory (no scan of the pool)
        return 1.0, float(max(cap.classes[c][1] for c in v.classes))
    best = (0.0, 0.0)
    for g in v.partial:
        cand = (cap.free_frac[g], cap.free_mem[g])
        if cand > best:
            best = cand
    return best
