"""Small builders shared by the simulator tests."""

from __future__ import annotations

import os

from hub_ext.simulator.cluster import Cluster, make_nodes
from hub_ext.scheduler.model import Pool, Team
from hub_ext.simulator.trace import Trace, TraceJob

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_TRACES = os.path.join(os.path.dirname(REPO), "shared", "traces")
NO_SHARED = f"the shared traces folder ({SHARED_TRACES}) is absent: full-trace tests need ../shared/traces beside the checkout"


def job(id, at, duration, gpus=1, team="a", **kw) -> TraceJob:
    return TraceJob(id=id, submitted_at=float(at), duration=float(duration), gpus=gpus, team=team, user=team, **kw)


def trace(*jobs: TraceJob) -> Trace:
    return Trace(name="synthetic", format="test", jobs=sorted(jobs, key=lambda j: j.submitted_at))


def cluster(nodes: int = 2, gpus_per_node: int = 8, **quotas: float) -> Cluster:
    teams = {name: Team(name=name, quota=q) for name, q in quotas.items()} if quotas else None
    return Cluster(name="test", pool=Pool(nodes=tuple(make_nodes("n{i}", nodes, gpus_per_node, "V100", 16384))), teams=teams)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)
