"""Elastic work may start spread over more nodes (``elastic_spread_start``): when its asked size is larger
than any node and does not fit on the fewest nodes that could hold it, it takes idle cards anywhere
rather than start smaller.
Off (the default): a gang waits for, or shrinks to, a consolidated block (test_placement.py)."""

from __future__ import annotations

import pytest

from hub_ext.scheduler.capacity import Capacity
from hub_ext.scheduler.placement import place_spread, spread_nodes

from .helpers import apply, check_invariants, job, pool, running, schedule, snap, started_ids, teams

T = teams(("vision", 16))
FOUR = [("a", 4), ("b", 4), ("c", 4), ("d", 4)]


def busy(node, *indexes, team="vision"):
    return [running(job(f"busy-{node}-{i}", team, 1, attained_gpu_s=0.0), f"{node}/{i}") for i in indexes]


def elastic(wid, asked, lo=1, at=0.0, **kw):
    return job(wid, "vision", asked, at=at, min_gpus=lo, max_gpus=asked, **kw)


def rigid(wid, gpus):
    return job(wid, "vision", gpus)


SCATTERED = busy("a", 0, 1) + busy("b", 0, 1) + busy("c", 0, 1) + busy("d", 0, 1)  # 2 free on each node
STARTS = [
    # (case, busy cards, request, (GPUs, nodes) it starts on with the switch off, the same with it on; None: waits)
    ("elastic 8, 2 free on each of 4 nodes: 8 on 4 nodes (off: 2 on one node)", SCATTERED, elastic("e", 8), (2, 1), (8, 4)),
    ("elastic 12, 8 free scattered: all 8 idle (off: 2)", SCATTERED, elastic("e", 12), (2, 1), (8, 4)),
    ("elastic 6, 4 free on a and 1 on b, c: 6 on 3 nodes (off: 5 on 2)", busy("b", 0, 1, 2) + busy("c", 0, 1, 2) + busy("d", 0, 1, 2, 3),
     elastic("e", 6), (5, 2), (6, 3)),
    ("elastic 4 that fits on one node: one node, best-fit, either way", busy("a", 0, 1) + busy("b", 0, 1), elastic("e", 4), (4, 1), (4, 1)),
    ("elastic 4, 2 free on each node: 2 on one node either way (an ask that fits a node is never spread)", SCATTERED, elastic("e", 4), (2, 1), (2, 1)),
    ("elastic 8 that fits on two whole nodes: those two, either way", busy("a", 0) + busy("b", 0), elastic("e", 8), (8, 2), (8, 2)),
    ("rigid 8, 2 free on each node: waits either way (the switch is for elastic work)", SCATTERED, rigid("r", 8), None, None),
    ("elastic 8 with min 7, 2 free on each node: 8 on 4 nodes (off: waits)", SCATTERED, elastic("e", 8, lo=7), None, (8, 4)),
]


@pytest.mark.parametrize("case,run,w,off,on", STARTS, ids=[c[0] for c in STARTS])
def test_where_elastic_work_starts(case, run, w, off, on):
    for spread, want in ((False, off), (True, on)):
        s = snap(pool(*FOUR), T, run, [w], elastic_spread_start=spread)
        d = schedule(s)
        if want is None:
            assert started_ids(d) == [], (spread, d.starts)
            continue
        assert started_ids(d) == [w.id], spread
        shares = d.starts[0].allocation.shares
        assert (len(shares), len({x.node for x in shares})) == want, spread
        check_invariants(apply(s, d))


def test_a_spread_start_takes_idle_gpus_and_shrinks_nobody_for_it():
    # "old" (elastic, asked 8, has run) holds a and b; c and d hold 2 busy cards each. New work asking 8
    # would fit consolidated only if old gave back two whole nodes (it gives at most half its ask): it
    # starts on the 4 idle cards of c and d, spread, and old keeps its GPUs. Without the switch it takes
    # the 2 idle cards of one node. Room-making places consolidated either way: spreading it shrank long
    # jobs for every new short one (docs/benchmarks.md).
    old = running(elastic("old", 8, attained_gpu_s=3600.0), *[f"{n}/{i}" for n in "ab" for i in range(4)])
    run = [old] + busy("c", 0, 1) + busy("d", 0, 1)
    new = elastic("new", 8, at=500.0)
    for spread, want in ((False, (2, 1)), (True, (4, 2))):
        s = snap(pool(*FOUR), T, run, [new], elastic_spread_start=spread)
        d = schedule(s)
        assert started_ids(d) == ["new"] and d.resizes == ()
        shares = d.starts[0].allocation.shares
        assert (len(shares), len({x.node for x in shares})) == want
        check_invariants(apply(s, d))


PLACES = [
    # (case, free cards per node, gang, the nodes it takes or None)
    ("largest block, then the best-fit node for the rest", [4, 1, 3, 2], 6, {0, 3}),
    ("the rest best-fit on the smallest block that holds it", [4, 1, 3, 2], 5, {0, 1}),
    ("every free card", [2, 2, 2, 2], 8, {0, 1, 2, 3}),
    ("too few free", [2, 2, 2, 1], 8, None),
    ("one node, best-fit, when one holds it", [1, 3, 4, 0], 3, {1}),
]


@pytest.mark.parametrize("case,free,gpus,want", PLACES, ids=[c[0] for c in PLACES])
def test_place_spread(case, free, gpus, want):
    p = pool(*FOUR)
    cap = Capacity(p)
    for n, f in enumerate(free):
        cap.take_cards(cap.node_gpus[n][f:])
    v = cap.view((None, None))
    assert spread_nodes(v, gpus) == (len(want) if want else None)
    placed = place_spread(cap, v, gpus)
    if want is None:
        assert placed is None
        return
    assert len(placed) == len(set(placed)) == gpus
    assert all(cap.free_frac[g] == 1.0 for g in placed)
    assert {cap.gpu_node[g] for g in placed} == want
