"""Cluster files and the static world's slices."""

from __future__ import annotations

import pytest

from hub_ext.simulator.cluster import load_cluster, proportional_split
from hub_ext.simulator.data import CLUSTERS, TRACES, resolve
from hub_ext.simulator.policies import static_slices
from hub_ext.simulator.readers import read_trace
from hub_ext.simulator.trace import TraceError

from .helpers import cluster, job, trace, write


def test_shipped_seed_cluster_has_dgx1_and_dgx2_nodes_and_derives_teams_from_the_trace():
    c = load_cluster(resolve("seed-dgx", CLUSTERS))
    sizes = sorted({len(n.gpus) for n in c.pool.nodes})
    assert sizes == [8, 16]
    assert c.teams is None
    t = read_trace(resolve("philly-sample", TRACES))
    with_teams = c.with_teams_for(t)
    assert set(with_teams.teams) == set(t.teams)
    assert sum(team.quota for team in with_teams.teams.values()) == c.total_gpus
    assert min(team.quota for team in with_teams.teams.values()) >= 1
    # The team that submits the most GPU-hours gets the biggest quota.
    load = {}
    for j in t.jobs:
        load[j.team] = load.get(j.team, 0) + j.gpu_seconds
    assert max(with_teams.teams.values(), key=lambda team: team.quota).name == max(load, key=load.get)


def test_shipped_cluster_with_explicit_teams_lists_every_sample_team():
    c = load_cluster(resolve("seed-dgx-philly", CLUSTERS))
    t = read_trace(resolve("philly-sample", TRACES))
    assert c.with_teams_for(t).teams == c.teams


def test_cluster_file_errors_name_the_problem(tmp_path):
    with pytest.raises(TraceError, match="nodes"):
        load_cluster(write(tmp_path, "c.yaml", "name: x\n"))
    with pytest.raises(TraceError, match=r"nodes\[1\]\.gpus"):
        load_cluster(write(tmp_path, "c.yaml", "nodes:\n  - {name: a, gpus: -1}\n"))
    with pytest.raises(TraceError, match="repeat"):
        load_cluster(write(tmp_path, "c.yaml", "nodes:\n  - {name: a, gpus: 8}\n  - {name: a, gpus: 8}\n"))
    with pytest.raises(TraceError, match=r"teams\[1\]\.quota"):
        load_cluster(write(tmp_path, "c.yaml", "nodes:\n  - {name: a, gpus: 8}\nteams:\n  - {name: t, quota: lots}\n"))
    with pytest.raises(TraceError, match="not valid YAML"):
        load_cluster(write(tmp_path, "c.yaml", "nodes: [\n"))


def test_a_trace_team_missing_from_the_cluster_file_is_an_error_not_a_skip(tmp_path):
    c = load_cluster(write(tmp_path, "c.json", '{"nodes": [{"name": "a", "gpus": 8}], "teams": [{"name": "x", "quota": 8}]}'))
    with pytest.raises(TraceError, match="team.*y"):
        c.with_teams_for(trace(job("1", 0, 10, team="x"), job("2", 0, 10, team="y")))


@pytest.mark.parametrize(
    "weights, total, expected",
    [
        ({"a": 1, "b": 1}, 16, {"a": 8, "b": 8}),
        ({"a": 3, "b": 1}, 16, {"a": 12, "b": 4}),
        ({"a": 100, "b": 0, "c": 0}, 10, {"a": 8, "b": 1, "c": 1}),  # at least one GPU each
        ({"a": 1, "b": 1, "c": 1}, 10, {"a": 4, "b": 3, "c": 3}),  # largest remainder, ties by name
    ],
)
def test_proportional_split(weights, total, expected):
    assert proportional_split(weights, total) == expected


def test_static_slices_are_disjoint_whole_gpus_sized_by_quota():
    c = cluster(nodes=3, gpus_per_node=8, big=12, mid=8, small=4)
    slices = static_slices(c)
    sizes = {team: sum(len(n.gpus) for n in pool.nodes) for team, pool in slices.items()}
    assert sizes == {"big": 12, "mid": 8, "small": 4}
    uuids = [g.uuid for pool in slices.values() for n in pool.nodes for g in n.gpus]
    assert len(uuids) == len(set(uuids)) == 24
    # The biggest slice takes a whole node first.
    assert any(len(n.gpus) == 8 for n in slices["big"].nodes)


@pytest.mark.parametrize(
    "quotas, sizes",
    [
        # The Alibaba trace's derived quotas on 32 GPUs: each slice is exactly the quota
        # (splitting the quotas again, one GPU each first, gave BE and Guaranteed 3 GPUs, LS 21).
        ({"BE": 2, "Burstable": 5, "Guaranteed": 2, "LS": 23}, {"BE": 2, "Burstable": 5, "Guaranteed": 2, "LS": 23}),
        # Quotas that are not whole GPUs or do not add up to the pool: split in proportion.
        ({"a": 1.5, "b": 1.5}, {"a": 16, "b": 16}),
        ({"a": 2, "b": 2}, {"a": 16, "b": 16}),
    ],
)
def test_static_slice_is_the_quota_where_quotas_split_the_pool(quotas, sizes):
    c = cluster(nodes=4, gpus_per_node=8, **quotas)
    got = {team: sum(len(n.gpus) for n in pool.nodes) for team, pool in static_slices(c).items()}
    assert got == sizes
