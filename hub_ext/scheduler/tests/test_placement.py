"""4: gangs start whole or not at all, on as few nodes as possible, best-fit
so that large free blocks stay free; GPU model and memory constraints."""

from __future__ import annotations

import pytest

from .helpers import job, nodes_of, pool, reason, running, schedule, snap, started_ids, teams

T = teams(("vision", 100))


def busy(node, *indexes, team="vision"):
    return [running(job(f"busy-{node}-{i}", team, 1), f"{node}/{i}") for i in indexes]


GANGS = [
    # (case, nodes, busy cards, request, expected nodes or None)
    ("fits one node: one node", [("a", 8), ("b", 16)], [], 4, 1),
    ("8 on 8-GPU nodes: exactly one node", [("a", 8), ("b", 8)], [], 8, 1),
    ("16 on 8-GPU nodes: two nodes, not more", [("a", 8), ("b", 8), ("c", 8)], [], 16, 2),
    ("24 on mixed nodes: a 16 and an 8", [("a", 8), ("b", 8), ("x", 16)], [], 24, 2),
    ("8 when only 4+4 free: waits (no spreading)", [("a", 8), ("b", 8)], busy("a", 0, 1, 2, 3) + busy("b", 0, 1, 2, 3), 8, None),
    ("all or nothing: 6 of 8 free is nothing", [("a", 8)], busy("a", 0, 1), 8, None),
]


@pytest.mark.parametrize("case,nodes,run,gpus,want", GANGS, ids=[c[0] for c in GANGS])
def test_gang_on_fewest_nodes(case, nodes, run, gpus, want):
    d = schedule(snap(pool(*nodes), T, run, [job("g", "vision", gpus)]))
    if want is None:
        assert started_ids(d) == []
        assert "needs" in reason(d, "g")
    else:
        assert len(nodes_of(d, "g")) == want
        assert len(d.starts[0].allocation.shares) == gpus


def test_best_fit_keeps_the_big_block_free():
    # a has 2 free, b has 8 free: a 2-GPU job takes a's, so the 8-GPU job still fits on b
    d = schedule(snap(pool(("a", 8), ("b", 8)), T, busy("a", 0, 1, 2, 3, 4, 5), [job("small", "vision", 2, at=0), job("big", "vision", 8, at=1)]))
    assert nodes_of(d, "small") == ["a"]
    assert nodes_of(d, "big") == ["b"]


def test_single_gpus_fill_partly_used_nodes_first():
    d = schedule(snap(pool(("a", 8), ("b", 8), ("c", 8)), T, busy("b", 0, 1, 2, 3, 4), [job(f"s{i}", "vision", 1, at=i) for i in range(3)]))
    assert {n for i in range(3) for n in nodes_of(d, f"s{i}")} == {"b"}


MODELS = [
    # (case, constraint, expected node or None, reason words)
    ("model picks the node", {"gpu_model": "V100-32GB"}, "dgx2", None),
    ("memory floor picks the node", {"min_gpu_memory_mib": 20000}, "dgx2", None),
    ("absent model never starts", {"gpu_model": "A100"}, None, "no schedulable node has GPUs of model A100"),
    ("too big for matching GPUs", {"gpu_model": "V100-16GB", "gpus": 12}, None, "the pool has only 8"),
]


@pytest.mark.parametrize("case,constraint,node,words", MODELS, ids=[c[0] for c in MODELS])
def test_gpu_model_and_memory(case, constraint, node, words):
    kw = dict(constraint)
    gpus = kw.pop("gpus", 2)
    p = pool(("dgx1", 8, "V100-16GB", 16384), ("dgx2", 16, "V100-32GB", 32768))
    d = schedule(snap(p, T, [], [job("m", "vision", gpus, **kw)]))
    if node:
        assert nodes_of(d, "m") == [node]
    else:
        assert started_ids(d) == []
        assert words in reason(d, "m")


def test_unschedulable_node_gets_no_new_work():
    from hub_ext.scheduler import Node, Pool

    p = pool(("a", 8), ("b", 8))
    p = Pool((Node("a", p.nodes[0].gpus, schedulable=False), p.nodes[1]))
    d = schedule(snap(p, T, [], [job(f"j{i}", "vision", 4, at=i) for i in range(3)]))
    assert sorted(started_ids(d)) == ["j0", "j1"]
    assert all(n == ["b"] for n in (nodes_of(d, "j0"), nodes_of(d, "j1")))
