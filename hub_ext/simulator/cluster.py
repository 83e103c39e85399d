"""Cluster files: the nodes of a simulated pool and its teams with their quotas.

A cluster file is YAML (JSON is YAML too)::

    name: seed-dgx
    nodes:
      - name: dgx1-{i}          # {i} counts 1..count
        count: 4
        gpus: 8
        model: V100-SXM2-16GB
        memory_mib: 16384
      - name: dgx2-{i}
        count: 2
        gpus: 16
        model: V100-SXM3-32GB
        memory_mib: 32768
    teams:                       # optional; see below
      - name: vision
        quota: 16                # guaranteed GPUs
        over_quota_weight: 1     # optional, default 1
        limit: null              # optional hard cap

Without ``teams`` (or with ``teams: from-trace``), each team in the trace
gets a quota in proportion to the GPU-hours it submits, at least one GPU,
whole GPUs summing to the pool's size (largest remainders). With ``teams``,
every team in the trace must be listed: a job of an unknown team is an error,
not a silent skip.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import yaml

from ..scheduler.model import GPU, Node, Pool, Team
from .trace import Trace, TraceError

FROM_TRACE = "from-trace"


@dataclass(frozen=True)
class Cluster:
    name: str
    pool: Pool
    teams: dict[str, Team] | None  # None: derive quotas from the trace (``with_teams_for``)

    @property
    def total_gpus(self) -> int:
        return self.pool.total_gpus

    def describe(self) -> str:
        shapes: dict[tuple[int, str], int] = {}
        for node in self.pool.nodes:
            key = (len(node.gpus), node.gpus[0].model if node.gpus else "-")
            shapes[key] = shapes.get(key, 0) + 1
        parts = [f"{n} x {g}-GPU ({model})" for (g, model), n in shapes.items()]
        return f"{self.name}: {', '.join(parts)} = {self.total_gpus} GPUs"

    def with_teams_for(self, trace: Trace) -> Cluster:
        """This cluster with a team for every team in the trace (checked or derived)."""
        if self.teams is not None:
            missing = sorted(set(trace.teams) - set(self.teams))
            if missing:
                raise TraceError(
                    f"cluster {self.name}: the trace has jobs of team(s) {', '.join(missing)} that the cluster file "
                    f"does not list; add them under 'teams' or leave 'teams' out to derive quotas from the trace"
                )
            return self
        return replace(self, teams=quotas_from_load(trace, self.total_gpus))


def quotas_from_load(trace: Trace, total_gpus: int) -> dict[str, Team]:
    """Whole-GPU quotas in proportion to each team's submitted GPU-hours, at least 1 each."""
    load: dict[str, float] = {}
    for job in trace.jobs:
        load[job.team] = load.get(job.team, 0.0) + job.gpu_seconds
    return {name: Team(name=name, quota=q) for name, q in proportional_split(load, total_gpus).items()}


def proportional_split(weights: dict[str, float], total: int, minimum: int = 1) -> dict[str, int]:
    """Split ``total`` whole units in proportion to ``weights``: ``minimum`` each, the rest by largest remainder."""
    names = sorted(weights)
    if minimum * len(names) > total:
        raise TraceError(f"cannot give {len(names)} teams {minimum} GPU each from a pool of {total} GPUs")
    share = dict.fromkeys(names, minimum)
    rest = total - minimum * len(names)
    weight_sum = sum(weights.values())
    if weight_sum <= 0 or rest == 0:
        for name in names[: rest]:  # nothing to go by: spread evenly
            share[name] += 1
        return share
    exact = {n: rest * weights[n] / weight_sum for n in names}
    for n in names:
        share[n] += math.floor(exact[n])
    left = total - sum(share.values())
    for n in sorted(names, key=lambda n: (-(exact[n] - math.floor(exact[n])), n))[:left]:
        share[n] += 1
    return share


def make_nodes(name: str, count: int, gpus: int, model: str, memory_mib: int, first: int = 1) -> list[Node]:
    nodes = []
    for i in range(first, first + count):
        node_name = name.format(i=i) if "{i}" in name else (name if count == 1 else f"{name}-{i}")
        nodes.append(
            Node(
                name=node_name,
                gpus=tuple(GPU(uuid=f"GPU-{node_name}-{k}", index=k, model=model, memory_mib=memory_mib) for k in range(gpus)),
                simulated=True,
            )
        )
    return nodes


def seed_cluster(dgx1: int, dgx2: int, teams: dict[str, Team] | None = None, name: str | None = None) -> Cluster:
    """The seed's shape: DGX-1s (8 x V100 16 GB) beside DGX-2s (16 x V100 32 GB)."""
    nodes = make_nodes("dgx1-{i}", dgx1, 8, "V100-SXM2-16GB", 16384) + make_nodes("dgx2-{i}", dgx2, 16, "V100-SXM3-32GB", 32768)
    return Cluster(name=name or f"seed-dgx-{dgx1}x8+{dgx2}x16", pool=Pool(nodes=tuple(nodes)), teams=teams)


def load_cluster(path: str) -> Cluster:
    where = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise TraceError(f"{path}: cannot read the cluster file ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise TraceError(f"{where}: not valid YAML/JSON: {e}") from None
    if not isinstance(doc, dict):
        raise TraceError(f"{where}: a cluster file is a mapping with 'nodes' (and optionally 'teams')")
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise TraceError(f"{where}: 'nodes' must be a non-empty list")
    nodes: list[Node] = []
    for n, spec in enumerate(raw_nodes, start=1):
        here = f"{where}: nodes[{n}]"
        if not isinstance(spec, dict) or "name" not in spec or "gpus" not in spec:
            raise TraceError(f"{here}: each node needs 'name' and 'gpus'")
        count = _whole(spec.get("count", 1), f"{here}.count", minimum=1)
        gpus = _whole(spec["gpus"], f"{here}.gpus", minimum=1)
        memory = _whole(spec.get("memory_mib", 16384), f"{here}.memory_mib", minimum=1)
        nodes += make_nodes(str(spec["name"]), count, gpus, str(spec.get("model", "V100-SXM2-16GB")), memory)
    names = [node.name for node in nodes]
    duplicates = sorted({x for x in names if names.count(x) > 1})
    if duplicates:
        raise TraceError(f"{where}: node names repeat: {', '.join(duplicates)}")
    raw_teams = doc.get("teams", FROM_TRACE)
    teams: dict[str, Team] | None = None
    if raw_teams != FROM_TRACE:
        if not isinstance(raw_teams, list):
            raise TraceError(f"{where}: 'teams' must be a list of teams or '{FROM_TRACE}'")
        teams = {}
        for n, spec in enumerate(raw_teams, start=1):
            here = f"{where}: teams[{n}]"
            if not isinstance(spec, dict) or "name" not in spec or "quota" not in spec:
                raise TraceError(f"{here}: each team needs 'name' and 'quota'")
            limit = spec.get("limit")
            teams[str(spec["name"])] = Team(
                name=str(spec["name"]),
                quota=_number(spec["quota"], f"{here}.quota"),
                over_quota_weight=_number(spec.get("over_quota_weight", 1.0), f"{here}.over_quota_weight"),
                limit=None if limit is None else _number(limit, f"{here}.limit"),
            )
    return Cluster(name=str(doc.get("name") or os.path.splitext(where)[0]), pool=Pool(nodes=tuple(nodes)), teams=teams)


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise TraceError(f"{where}: expected a number >= 0, got {value!r}")
    return float(value)


def _whole(value, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TraceError(f"{where}: expected a whole number >= {minimum}, got {value!r}")
    return value
