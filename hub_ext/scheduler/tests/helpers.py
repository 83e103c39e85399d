"""Small builders so that each test reads like the situation it describes."""

from __future__ import annotations

from hub_ext.scheduler import (
    GPU,
    Allocation,
    GpuShare,
    Node,
    Pool,
    Running,
    SchedulerConfig,
    Snapshot,
    Team,
    Workload,
    WorkloadKind,
    schedule,
)
from hub_ext.scheduler.model import EPSILON

JOB = WorkloadKind.JOB
SESSION = WorkloadKind.SESSION


def pool(*nodes: tuple) -> Pool:
    """pool(("dgx1-a", 8), ("dgx2-a", 16, "V100-32GB", 32768), ...)"""
    out = []
    for spec in nodes:
        name, count = spec[0], spec[1]
        model = spec[2] if len(spec) > 2 else "V100-16GB"
        mem = spec[3] if len(spec) > 3 else 16384
        out.append(Node(name, tuple(GPU(f"{name}/{i}", i, model, mem) for i in range(count))))
    return Pool(tuple(out))


def teams(*specs) -> dict[str, Team]:
    """teams(("vision", 8), ("nlp", 4, 2.0), ("bio", 0, 1.0, 6))"""
    out = {}
    for spec in specs:
        name, quota = spec[0], spec[1]
        weight = spec[2] if len(spec) > 2 else 1.0
        limit = spec[3] if len(spec) > 3 else None
        out[name] = Team(name, float(quota), weight, limit)
    return out


def job(wid, team, gpus, at=0.0, user="alice", **kw) -> Workload:
    return Workload(wid, user, team, kw.pop("kind", JOB), float(gpus), float(at), **kw)


def session(wid, team, gpus, at=0.0, user="alice", **kw) -> Workload:
    return Workload(wid, user, team, SESSION, float(gpus), float(at), **kw)


def running(w: Workload, *gpus: str, started=None, fraction=None, memory=None) -> Running:
    """running(w, "a/0", "a/1"): w holds those cards (uuid "node/index")."""
    shares = tuple(GpuShare(u.split("/")[0], u, fraction if fraction is not None else 1.0, memory) for u in gpus)
    return Running(w, Allocation(w.id, shares, w.submitted_at if started is None else started))


def snap(p, t, run=(), pend=(), now=1000.0, **cfg) -> Snapshot:
    return Snapshot(p, t, tuple(run), tuple(pend), now, SchedulerConfig(**cfg))


def started_ids(d) -> list[str]:
    return [s.workload_id for s in d.starts]


def preempted_ids(d) -> list[str]:
    return [p.workload_id for p in d.preemptions]


def nodes_of(d, wid) -> list[str]:
    for s in d.starts:
        if s.workload_id == wid:
            return sorted(set(x.node for x in s.allocation.shares))
    raise AssertionError(f"{wid} did not start")


def reason(d, wid) -> str:
    for p in d.pending:
        if p.workload_id == wid:
            return p.reason
    raise AssertionError(f"{wid} is not pending")


def apply(snapshot: Snapshot, d) -> Snapshot:
    """The snapshot after a caller applied ``d`` by the contract."""
    gone = set(preempted_ids(d))
    resized = {r.workload_id: r.allocation for r in d.resizes}
    run = []
    back = []
    for r in snapshot.running:
        if r.workload.id in gone:
            back.append(r.workload)
        elif r.workload.id in resized:
            run.append(Running(r.workload, resized[r.workload.id]))
        else:
            run.append(r)
    by_id = {w.id: w for w in snapshot.pending}
    started = set()
    for s in d.starts:
        run.append(Running(by_id[s.workload_id], s.allocation))
        started.add(s.workload_id)
    pend = [w for w in snapshot.pending if w.id not in started] + back
    return Snapshot(snapshot.pool, snapshot.teams, tuple(run), tuple(pend), snapshot.now, snapshot.config)


def check_invariants(snapshot: Snapshot) -> None:
    """No card beyond 100% compute or memory; no team beyond its limit."""
    mem = {g.uuid: g.memory_mib for n in snapshot.pool.nodes for g in n.gpus}
    used: dict[str, float] = {}
    used_mem: dict[str, float] = {}
    team_use: dict[str, float] = {}
    for r in snapshot.running:
        team_use[r.workload.team] = team_use.get(r.workload.team, 0.0) + r.allocation.gpus
        for s in r.allocation.shares:
            used[s.gpu_uuid] = used.get(s.gpu_uuid, 0.0) + s.fraction
            used_mem[s.gpu_uuid] = used_mem.get(s.gpu_uuid, 0.0) + (mem[s.gpu_uuid] if s.memory_mib is None else s.memory_mib)
    for u, f in used.items():
        assert f <= 1.0 + EPSILON, f"GPU {u} is allocated {f:.3f} of its compute"
        assert used_mem[u] <= mem[u] + 1e-6, f"GPU {u} is allocated {used_mem[u]} MiB of {mem[u]}"
    for name, t in snapshot.teams.items():
        if t.limit is not None:
            assert team_use.get(name, 0.0) <= t.limit + EPSILON, f"team {name} uses {team_use[name]} over its limit {t.limit}"


__all__ = [name for name in dir() if not name.startswith("_")] + ["schedule"]
