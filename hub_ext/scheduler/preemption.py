"""Making room for a workload that does not fit: shrink, then preempt.

Candidates, cheapest loss first:
1. GPUs held by a borrower's reservation (only for work within its quota:
   a guarantee outranks a borrower's reservation);
2. GPUs an elastic job received beyond what it asked for (lent GPUs, taken
   back for any workload that may start);
and, only for a workload whose team stays within its quota (a quota
reclaim) and only with preemption on:
3. elastic jobs of over-quota teams shrunk down to their min_gpus;
4. over-quota workloads of other teams, preempted whole: lowest priority
   first, then the team borrowing most per weight, then the newest;
and, with least attained service on (``las_thresholds_gpu_s``) and
preemption on, whatever the quota:
5. elastic jobs of the workload's own team at a higher LAS level (more
   attained service) shrunk down to their min_gpus, then such work
   preempted whole: highest level first, then the latest submitted (as Tiresias's
   2D-LAS: short work overtakes long work of its own team, never of another
   team, and never work of a higher priority).

Never candidates: work within its team's quota (so a session within quota is
never preempted), non-preemptible work, work started in this same cycle.

The candidates are released one by one until the workload fits; then each
one is tried back in reverse order and kept running if the workload still
fits without it, so the final set is minimal for that order.
"""

from __future__ import annotations

from .elastic import growth_gpus
from .fairshare import over_quota, team_of
from .model import EPSILON, Preempt, Workload
from .ordering import las_level


class Unit:
    """One thing that can be released: a held GPU, an elastic GPU, a workload."""

    __slots__ = ("kind", "wid", "share", "gpus", "released", "las")

    def __init__(self, kind: str, wid: str, share=None, gpus=(), las: bool = False):
        self.kind = kind  # "hold" | "lent" | "shrink" | "preempt"
        self.las = las  # shrink/preempt for least attained service, not for a quota
        self.wid = wid
        self.share = share  # GpuShare (lent/shrink) or GPU id (hold)
        self.gpus = gpus  # GPU ids it touches
        self.released: list[tuple[int, float, float]] = []


def candidates(cycle, w: Workload, entitled: bool) -> list[Unit]:
    st = cycle.st
    cap = cycle.cap
    units: list[Unit] = []
    if entitled:
        for rid in sorted(cycle.reservations):
            res = cycle.reservations[rid]
            if not res.hard:
                units.extend(Unit("hold", rid, g, (g,)) for g in res.held)
    elastic = [wid for wid in sorted(st.elastic_running) if wid not in cycle.gone and wid not in cycle.started]
    for wid in elastic:
        shares = cycle.shares_of(wid)
        lent = growth_gpus(st.running[wid].workload, len(shares))
        for s in reversed(shares[len(shares) - lent:]):
            units.append(Unit("lent", wid, s, _gpus(cap, (s,))))
    if not (entitled and st.config.preemption):
        return units + las_units(cycle, w)
    victims = []
    for tname in sorted(st.team_running):
        if tname == w.team:
            continue
        team = team_of(st.teams, tname)
        if cycle.usage.get(tname, 0.0) <= team.quota + EPSILON:
            continue
        weight = team.over_quota_weight if team.over_quota_weight > 0 else EPSILON
        borrowed = (cycle.usage[tname] - team.quota) / weight
        for r in over_quota(team, st.ranked(tname), cycle.gone):
            rw = r.workload
            if not rw.preemptible or rw.id in cycle.started:
                continue
            victims.append(((rw.priority, -borrowed, -r.allocation.started_at, rw.id), r))
    victims.sort(key=lambda x: x[0])
    for _, r in victims:
        rw = r.workload
        if rw.is_elastic:
            shares = cycle.shares_of(rw.id)
            lent = growth_gpus(rw, len(shares))
            keep = max(rw.min_gpus, len(shares) - lent) if lent else rw.min_gpus
            # shrinkable beyond what is lent, down to min_gpus
            for s in reversed(shares[keep:len(shares) - lent]):
                units.append(Unit("shrink", rw.id, s, _gpus(cap, (s,))))
    for _, r in victims:
        units.append(Unit("preempt", r.workload.id, None, _gpus(cap, cycle.shares_of(r.workload.id))))
    return units + las_units(cycle, w)


def las_victims(cycle, w: Workload) -> list:
    """Running work of ``w``'s team that least-attained-service lets ``w`` overtake."""
    st = cycle.st
    las = st.config.las_thresholds_gpu_s
    if not (las and st.config.preemption):
        return []
    level = las_level(w, las)
    out = []
    for r in st.team_running.get(w.team, {}).values():
        rw = r.workload
        if rw.id in cycle.gone or rw.id in cycle.started or not rw.preemptible or rw.priority > w.priority:
            continue
        rl = las_level(rw, las)
        if rl > level:
            # As Tiresias: the highest level first, then the latest submitted
            # (a long-running early job keeps its place in its queue).
            out.append(((rw.priority, -rl, -rw.submitted_at, rw.id), r))
    out.sort(key=lambda x: x[0])
    return [r for _, r in out]


def las_units(cycle, w: Workload) -> list[Unit]:
    cap = cycle.cap
    victims = las_victims(cycle, w)
    units: list[Unit] = []
    for r in victims:
        rw = r.workload
        if rw.is_elastic:
            shares = cycle.shares_of(rw.id)
            lent = growth_gpus(rw, len(shares))
            for s in reversed(shares[rw.min_gpus : len(shares) - lent]):
                units.append(Unit("shrink", rw.id, s, _gpus(cap, (s,)), las=True))
    for r in victims:
        units.append(Unit("preempt", r.workload.id, None, _gpus(cap, cycle.shares_of(r.workload.id)), las=True))
    return units


def _gpus(cap, shares) -> tuple[int, ...]:
    out = []
    for s in shares:
        g = cap.share_gpu(s)
        if g is not None:
            out.append(g)
    return tuple(out)


def _release(cycle, u: Unit, freed_by: dict[str, set]) -> None:
    cap = cycle.cap
    u.released = []
    if u.kind == "hold":
        u.released.append((u.share, 1.0, float(cap.gpu_mem[u.share])))
    elif u.kind in ("lent", "shrink"):
        g = u.gpus[0] if u.gpus else None
        if g is not None:
            u.released.append((g, 1.0, float(cap.gpu_mem[g])))
        freed_by.setdefault(u.wid, set()).add(u.share.gpu_uuid)
    else:
        done = freed_by.get(u.wid, set())
        for s in cycle.shares_of(u.wid):
            if s.gpu_uuid in done:
                continue
            g = cap.share_gpu(s)
            if g is not None:
                frac, mem = cap.share_amounts(g, s)
                u.released.append((g, frac, mem))
    for g, frac, mem in u.released:
        cap.give(g, frac, mem)


def _retake(cycle, u: Unit, freed_by: dict[str, set]) -> None:
    for g, frac, mem in u.released:
        cycle.cap.take(g, frac, mem)
    if u.kind in ("lent", "shrink"):
        freed_by[u.wid].discard(u.share.gpu_uuid)


def make_room(cycle, w: Workload, v, gpus: float, entitled: bool):
    """Release the fewest candidates so that ``w`` fits; returns its placement or None."""
    units = [u for u in candidates(cycle, w, entitled) if any(cycle.cap.gpu_class[g] in v.classes for g in u.gpus)]
    if not units:
        return None
    freed_by: dict[str, set] = {}
    released: list[Unit] = []
    placed = None
    for u in units:
        _release(cycle, u, freed_by)
        released.append(u)
        placed = cycle.try_place(w, v, gpus)
        if placed is not None:
            break
    if placed is None:
        for u in reversed(released):
            _retake(cycle, u, freed_by)
        return None
    needed = [released[-1]]
    preempting = {released[-1].wid} if released[-1].kind == "preempt" else set()
    for u in reversed(released[:-1]):
        if u.kind in ("lent", "shrink") and u.wid in preempting:
            needed.append(u)  # its job goes anyway: its GPUs stay free
            continue
        _retake(cycle, u, freed_by)
        if cycle.try_place(w, v, gpus) is None:
            _release(cycle, u, freed_by)
            needed.append(u)
            if u.kind == "preempt":
                preempting.add(u.wid)
    _commit(cycle, w, needed)
    return cycle.try_place(w, v, gpus)


def _commit(cycle, w: Workload, needed: list[Unit]) -> None:
    st = cycle.st
    preempted = {u.wid for u in needed if u.kind == "preempt"}
    for u in needed:
        if u.kind == "hold":
            cycle.reservations[u.wid].held.remove(u.share)
        elif u.kind in ("lent", "shrink"):
            shares = cycle.shares_of(u.wid)
            shares.remove(u.share)
            rw = st.running[u.wid].workload
            cycle.add_usage(rw.team, rw.user, -1.0)
            if u.wid not in preempted:
                why = "lent GPUs taken back" if u.kind == "lent" else f"team {rw.team} is over its quota"
                if u.las:
                    why = "it has held GPUs longer (least attained service first)"
                cycle.resize_reason[u.wid] = f"shrunk for {w.id}: {why}"
            cycle.usage_changed(rw.team)
    for u in needed:
        if u.kind != "preempt":
            continue
        r = st.running[u.wid]
        rw = r.workload
        gpus = sum(s.fraction for s in cycle.shares_of(u.wid))
        cycle.add_usage(rw.team, rw.user, -gpus)
        cycle.gone.add(u.wid)
        cycle.resize_reason.pop(u.wid, None)
        team = team_of(st.teams, rw.team)
        wteam = team_of(st.teams, w.team)
        if u.las:
            reason = (
                f"it has held {fmt(round(rw.attained_gpu_s / 3600, 2))} GPU-hours, {w.id} of the same team "
                f"{fmt(round(w.attained_gpu_s / 3600, 2))}: least attained service goes first within team {rw.team}"
            )
        else:
            reason = (
                f"team {rw.team} was using more than its quota of {fmt(team.quota)} GPUs; "
                f"team {wteam.name} reclaims its guaranteed GPUs for {w.id}"
            )
        cycle.preempts.append(Preempt(workload_id=u.wid, reason=reason, for_workload_id=w.id))
        cycle.usage_changed(rw.team)


def fmt(x: float) -> str:
    """GPU counts as people write them: 8, 0.5, 2.25."""
    if abs(x - round(x)) < 1e-6:
        return str(int(round(x)))
    return f"{x:.2f}".rstrip("0").rstrip(".")
