"""Elastic jobs: start smaller when needed, grow into idle GPUs, shrink first.

* An elastic job (min_gpus..max_gpus) starts with the GPUs it asked for when
  they fit, else with the most that fit, down to min_gpus.
* At the end of a cycle, GPUs nobody pending could use are idle: elastic
  jobs grow into them one GPU at a time, the job of the team with the lowest
  share first (same share rule as fairshare.team_share), up to max_gpus and
  within the team's limit (beyond quota only when borrowing is on); inside a
  team, the job with the least attained service first when LAS is on
  (ordering.py), then the earliest started. A job grows on its own nodes first.
* GPUs beyond what a job asked for are lent: any pending workload that may
  start takes them back by shrinking the job, before anything else happens.
  Shrinking further, down to min_gpus, is a quota reclaim and comes before
  any workload is preempted (see preemption.py).

Under least attained service (SchedulerConfig, with attained service reported):

* growth goes to the job with the least attained service first
  (``elastic_growth_order="attained"``);
* new work (no attained service yet) that does not fit at its asked size
  shrinks its own team's elastic jobs that have run, most attained service
  first, to no less than ``new_work_shrink_floor`` of what each asked, and
  starts at its asked size (``new_work_shrinks_elastic``); it never suspends
  them. Without room at its asked size it starts smaller, as above;
* at the top level (attained service beyond the last cut), work goes in
  submit order, as in Tiresias's last queue: an elastic job below its asked
  size takes GPUs from its team's top-level elastic jobs submitted after it,
  latest first, down to their min_gpus (``las_top_in_submit_order``), or
  down to ``new_work_shrink_floor`` of what they asked while their attained
  service is below ``las_top_floor_until`` times the last cut (work that
  reached the top level only lately, often near its end, as a 4-GPU job
  slowed by shrinking). Without it, whoever grew first into the GPUs keeps
  them: the first long job, shrunk for new work, waited at one GPU while
  later long jobs ran.
* with ``las_on_estimates`` and ``las_estimates_take_back`` (off by
  default), a running job below its asked size with an estimate takes GPUs
  back from work estimated to need more (estimate_takeback.py).
"""

from __future__ import annotations

import heapq
import math

from . import estimate_takeback, las_estimates
from .fairshare import OK, check, team_of, team_share
from .minimum_runtime import RECLAIM, is_protected
from .model import EPSILON, Workload


def start_sizes(w: Workload) -> list[float]:
    """Sizes to try, preferred first."""
    if not w.is_elastic:
        return [w.gpus]
    asked = int(min(max(w.gpus, w.min_gpus), w.max_gpus))
    return [float(g) for g in range(asked, w.min_gpus - 1, -1)]


def smallest_size(w: Workload) -> float:
    return float(w.min_gpus) if w.is_elastic else w.gpus


def growth_gpus(w: Workload, held: int) -> int:
    """GPUs an elastic job holds beyond what it asked for (lent to it)."""
    return max(0, held - int(w.gpus))


def growth_key(w: Workload, level: int, started_at: float, cfg) -> tuple:
    """Order of growth inside a team (after the team's share): see ``SchedulerConfig.elastic_growth_order``."""
    if cfg.elastic_growth_order == "attained":
        if cfg.las_on_estimates:
            return las_estimates.growth_key(w, started_at)
        return (w.attained_gpu_s, started_at)
    return (level, started_at)


def is_new(w: Workload) -> bool:
    """Work that has not held GPUs yet (no attained service)."""
    return w.attained_gpu_s <= 0


def new_work_victim(cfg, w: Workload, rw: Workload) -> bool:
    """May new work ``w`` shrink running ``rw`` of its team (``SchedulerConfig.new_work_shrinks_elastic``)?

    Only an elastic job that has held GPUs, and only down to ``new_work_floor``:
    it keeps running, slower, while the new work starts at the size it asked for."""
    return bool(cfg.new_work_shrinks_elastic and rw.is_elastic and is_new(w) and not is_new(rw) and rw.team == w.team
                and (not cfg.las_on_estimates or las_estimates.may_shrink(w, rw)))


def new_work_victim_key(cfg, rw: Workload) -> float:
    """Which victim new work shrinks first (smaller first): most attained service, or with
    ``las_on_estimates`` the most estimated remaining GPU-time (las_estimates.py)."""
    return las_estimates.shrink_key(rw) if cfg.las_on_estimates else -rw.attained_gpu_s


def new_work_floor(cfg, rw: Workload) -> int:
    """The fewest GPUs new work shrinks ``rw`` to: ``new_work_shrink_floor`` of what it asked, rounded up, at least min_gpus."""
    return int(min(max(rw.min_gpus, math.ceil(cfg.new_work_shrink_floor * rw.gpus - EPSILON)), rw.max_gpus))


def may_take_asked(cfg, w: Workload) -> bool:
    """Should new elastic work make room for the size it asked before starting smaller?"""
    return bool(cfg.new_work_shrinks_elastic and cfg.preemption and w.is_elastic and is_new(w))


def grow(cycle) -> None:
    """Give idle whole GPUs to running elastic jobs, fairly between teams."""
    st = cycle.st
    cap = cycle.cap
    cfg = st.config
    heap = []
    for wid in sorted(st.elastic_running):
        if wid in cycle.gone or wid in cycle.resize_reason or wid in cycle.st.leaving:
            continue  # shrunk in this cycle: a resize is a pure shrink or a pure grow
        r = st.running[wid]
        w = r.workload
        held = cycle.current_gpus(wid)
        if held >= w.max_gpus or cap.view(cycle.view_key(w)).free_total == 0:
            continue
        share = team_share(team_of(st.teams, w.team), cycle.usage.get(w.team, 0.0))
        heapq.heappush(heap, (share, growth_key(w, st.las_level(w), r.allocation.started_at, cfg), r.allocation.started_at, wid))
    while heap:
        _, level, started, wid = heapq.heappop(heap)
        r = st.running[wid]
        w = r.workload
        team = team_of(st.teams, w.team)
        usage = cycle.usage.get(w.team, 0.0)
        code, _ = check(team, usage, 1.0, w, cfg)
        if code != OK:
            continue
        v = cap.view(cycle.view_key(w))
        if v.free_total == 0:
            continue
        g = _grow_card(cycle, v, wid)
        if g is None:
            continue
        cap.take(g, 1.0, float(cap.gpu_mem[g]))
        cycle.shares_of(wid).append(cap.whole_share(g))
        cycle.add_usage(w.team, w.user, 1.0)
        cycle.resize_reason[wid] = "grew into idle GPUs"
        if cycle.current_gpus(wid) < w.max_gpus - EPSILON:
            heapq.heappush(heap, (team_share(team, cycle.usage[w.team]), level, started, wid))
    top_level_in_order(cycle)
    estimate_takeback.take_back(cycle)


def top_level_in_order(cycle) -> None:
    """At the top LAS level, give an elastic job below its asked size the GPUs of its team's
    top-level elastic jobs submitted after it, latest first, down to their min_gpus, or to
    ``new_work_floor`` below ``las_top_floor_until`` times the last cut
    (``SchedulerConfig.las_top_in_submit_order``; Tiresias runs its last queue in order)."""
    st = cycle.st
    cfg = st.config
    las = cfg.las_thresholds_gpu_s
    if not (cfg.las_top_in_submit_order and las and cfg.preemption and cfg.elastic):
        return
    top = len(las)
    teams: dict[str, list] = {}
    for wid in st.elastic_running:
        if wid in cycle.gone or wid in st.leaving:
            continue
        r = st.running[wid]
        if r.workload.preemptible and st.las_level(r.workload) >= top:
            teams.setdefault(r.workload.team, []).append(r)
    for tname, rs in sorted(teams.items()):
        if len(rs) < 2:
            continue
        rs.sort(key=lambda r: (r.workload.submitted_at, r.workload.id))
        team = team_of(st.teams, tname)
        was = {r.workload.id: len(r.allocation.shares) for r in rs}
        for i, r in enumerate(rs):
            w = r.workload
            if cycle.current_gpus(w.id) < was[w.id]:
                continue  # shrunk in this cycle: a resize is a pure shrink or a pure grow
            for d in reversed(rs[i + 1 :]):
                want = int(w.gpus) - int(cycle.current_gpus(w.id))
                if want <= 0:
                    break
                dw = d.workload
                if cycle.current_gpus(dw.id) > was[dw.id] or dw.priority > w.priority or is_protected(d, team, cycle.now, RECLAIM):
                    continue
                floor = new_work_floor(cfg, dw) if dw.attained_gpu_s < cfg.las_top_floor_until * las[-1] else dw.min_gpus
                move_gpus(cycle, d, r, want, floor, f"shrunk for {w.id}: at the top level of least attained service, work submitted earlier goes first",
                          "grew: at the top level of least attained service, work submitted earlier goes first")


def move_gpus(cycle, d, r, want: int, floor: int, shrunk: str, grew: str) -> None:
    """Move up to ``want`` whole GPUs from running elastic ``d`` (down to ``floor``) to running ``r``
    of the same team, on ``r``'s nodes first; ``shrunk`` and ``grew`` are their resize reasons."""
    w, dw = r.workload, d.workload
    v = cycle.cap.view(cycle.view_key(w))
    while want > 0 and cycle.current_gpus(dw.id) > floor:
        shares = cycle.shares_of(dw.id)
        s = shares.pop()
        g = cycle.cap.share_gpu(s)
        if g is None or cycle.cap.gpu_class[g] not in v.classes:
            shares.append(s)
            break
        cycle.cap.give(g, 1.0, float(cycle.cap.gpu_mem[g]))
        g2 = _grow_card(cycle, v, w.id)
        if g2 is None:  # (not expected: the card just given back is free)
            cycle.cap.take(g, 1.0, float(cycle.cap.gpu_mem[g]))
            shares.append(s)
            break
        cycle.cap.take(g2, 1.0, float(cycle.cap.gpu_mem[g2]))
        cycle.shares_of(w.id).append(cycle.cap.whole_share(g2))
        cycle.add_usage(w.team, dw.user, -1.0)
        cycle.add_usage(w.team, w.user, 1.0)
        cycle.resize_reason[dw.id] = shrunk
        cycle.resize_reason[w.id] = grew
        want -= 1


def _grow_card(cycle, v, wid: str) -> int | None:
    cap = cycle.cap
    mine = sorted({cap.node_index[s.node] for s in cycle.shares_of(wid) if s.node in cap.node_index})
    for n in mine:
        if v.node_free[n]:
            return cap.free_cards_on(v, n)[0]
    for k in range(1, len(v.buckets)):
        if v.buckets[k]:
            return cap.free_cards_on(v, v.buckets[k][0])[0]
    return None
