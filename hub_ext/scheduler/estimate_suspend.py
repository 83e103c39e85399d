"""Work estimated far longer is suspended for work estimated shorter (``SchedulerConfig.las_suspend_elastic``).

Least attained service only shrinks running elastic jobs (``las_preempt_elastic``
is off; new work shrinks them to ``new_work_shrink_floor``; ``las_estimates_take_back``
to their ``min_gpus``): in a busy pool many long jobs then each hold a few GPUs
while work estimated to need minutes runs at a fraction of its ask or waits.
The shortest-remaining-first oracle (benchmarks/pollux_oracle.py) instead runs
the shortest work on its full ask and suspends the longest work whole.

With this switch, at the start of a cycle, for each team: its work below its
asked size with a usable estimate (las_estimates.remaining_gpu_s; pending work,
and running elastic jobs below their ask), least estimated remaining GPU-time
first, first counts on the idle GPUs (up to its team's limit); for what they do not cover, the team's
running elastic jobs estimated to need at least ``las_suspend_ratio`` times as
much GPU-time (las_estimates.rank: no estimate, or an overrun one, counts its
attained service), the most first, are **suspended** (preempted whole: the
work is requeued and resumes later from where it was). A running job below its
ask receives the freed GPUs at once; pending work starts on them in the cycle's
usual order (work estimated shorter first inside a level).

Never a victim: work of a higher priority or of a lower least-attained-service
level than the work it is suspended for, a session, non-preemptible work, work
already leaving, and work that started (or resumed) less than
``las_suspend_min_run_s`` ago (hysteresis: a suspended job that resumed on
GPUs nobody shorter wanted is not suspended again at once). A suspended job
keeps its first submission, so it is starving at once: while its team waits
with work estimated ``las_suspend_ratio`` times shorter it goes after the
cycle's other work (``yields``, as ``Cycle.las_yields``) instead of first,
and resumes once that work is served (without this it took the GPUs back at
once: three times the suspensions, docs/benchmarks.md). A bound keeps a stream
of short work from holding it back for ever: work that has waited
``las_suspend_wait_factor`` times its own run-time estimate (``waited_enough``)
is neither suspended nor yields. With ``las_suspend_top_in_order`` (and
``las_top_in_submit_order``), work above the last cut suspends no one: the
top level goes in submit order, and a top-level job suspending one submitted
before it, which then takes its GPUs back in submit order, was a loop
(docs/benchmarks.md).
The core never sees true remaining work: only estimates learned from history.

``plan`` returns plain data (who is suspended for whom, who grows); ``apply``
records it in the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import las_estimates
from .elastic import _grow_card
from .fairshare import team_of
from .minimum_runtime import RECLAIM, is_protected
from .model import EPSILON, Preempt, WorkloadKind
from .placement import view_key

REASON = "estimated to need far more GPU-time than work waiting for GPUs (estimates, from run-time history)"


@dataclass(frozen=True)
class SuspendPlan:
    """Suspensions as plain data: (victim, the workload it is suspended for), and running jobs grown (job, GPUs)."""

    suspended: tuple[tuple[str, str], ...] = ()
    grows: tuple[tuple[str, int], ...] = ()


def enabled(cfg) -> bool:
    return bool(cfg.las_suspend_elastic and cfg.las_on_estimates and cfg.las_thresholds_gpu_s and cfg.preemption and cfg.elastic)


def wanting(cycle) -> dict[str, list]:
    """Per team, work below its asked size with a usable estimate: (rank, deficit GPUs, workload, running?), least first."""
    st = cycle.st
    out: dict[str, list] = {}
    top = top_level(cycle.config)
    for w in st.pending.values():
        if w.id in st.invalid or w.is_fraction or (top is not None and st.las_level(w) >= top):
            continue
        left = las_estimates.remaining_gpu_s(w)
        if left is None:
            continue
        out.setdefault(w.team, []).append((left, int(w.gpus), w, False))
    for wid in st.elastic_running:
        if wid in st.leaving:
            continue
        w = st.running[wid].workload
        short = int(w.gpus) - int(cycle.current_gpus(wid))
        if short <= 0 or (top is not None and st.las_level(w) >= top):
            continue
        left = las_estimates.remaining_gpu_s(w)
        if left is None:
            continue
        out.setdefault(w.team, []).append((left, short, w, True))
    for lst in out.values():
        lst.sort(key=lambda e: (e[0], e[2].submitted_at, e[2].id))
    return out


def top_level(cfg) -> int | None:
    """The least-attained-service level whose work suspends no one (``las_suspend_top_in_order``): the top one,
    where work goes in submit order (``las_top_in_submit_order``); None: every level's work may."""
    if cfg.las_suspend_top_in_order and cfg.las_top_in_submit_order and cfg.las_thresholds_gpu_s:
        return len(cfg.las_thresholds_gpu_s)
    return None


def victims(cycle, team_name: str) -> list:
    """The team's running elastic jobs that may be suspended, the most estimated remaining GPU-time first."""
    st = cycle.st
    cfg = cycle.config
    team = team_of(st.teams, team_name)
    out = []
    for wid in st.elastic_running:
        r = st.running[wid]
        rw = r.workload
        if rw.team != team_name or not rw.preemptible or rw.kind is WorkloadKind.SESSION or r.leaving or wid in cycle.gone:
            continue
        if cycle.now - r.allocation.started_at < cfg.las_suspend_min_run_s or is_protected(r, team, cycle.now, RECLAIM):
            continue
        if waited_enough(cfg, rw, cycle.now):
            continue
        out.append(r)
    out.sort(key=lambda r: (-las_estimates.rank(r.workload), -r.workload.submitted_at, r.workload.id))
    return out


def plan(cycle) -> SuspendPlan:
    """Who is suspended for whom, and which running jobs grow into the freed GPUs."""
    st = cycle.st
    cfg = cycle.config
    if not enabled(cfg) or not st.elastic_running:
        return SuspendPlan()
    cap = cycle.cap
    suspended: list[tuple[str, str]] = []
    grows: dict[str, int] = {}
    for tname, want in sorted(wanting(cycle).items()):
        cands = victims(cycle, tname)
        if not cands:
            continue
        free: dict[tuple, float] = {}  # view key -> idle GPUs not yet counted for anyone
        gone: set[str] = set()
        # Idle GPUs are the team's to take only up to its limit; a suspension gives back what its
        # beneficiary does not use (the victims are the team's own: their GPUs are inside it).
        limit = team_of(st.teams, tname).limit
        room = float("inf") if limit is None else max(0.0, limit - cycle.usage.get(tname, 0.0))
        for left, deficit, w, is_running in want:
            if w.id in gone:
                continue
            vk = view_key(w)
            v = cap.view(vk)
            if vk not in free:
                free[vk] = float(v.free_total)
            take = min(deficit, int(free[vk]), int(room + EPSILON) if room < float("inf") else deficit)
            free[vk] -= take
            room -= take
            need = deficit - take
            got = take
            level = st.las_level(w)
            for r in cands:
                if need <= 0:
                    break
                rw = r.workload
                if rw.id in gone or rw.id == w.id:
                    continue
                if las_estimates.rank(rw) < cfg.las_suspend_ratio * left:
                    break  # (the most first: none after it qualifies either)
                if rw.priority > w.priority or st.las_level(rw) < level:
                    continue
                cards = sum(1 for s in cycle.shares_of(rw.id) if (g := cap.share_gpu(s)) is not None and cap.gpu_class[g] in v.classes)
                if not cards:
                    continue
                gone.add(rw.id)
                suspended.append((rw.id, w.id))
                use = min(need, cards)
                need -= use
                got += use
                free[vk] += cards - use  # the rest is idle for the next in line
                room += cards - use
            if is_running and got > 0:
                grows[w.id] = got
    return SuspendPlan(tuple(suspended), tuple(sorted(grows.items())))


def apply(cycle, p: SuspendPlan) -> None:
    """Record suspensions (preempted whole, requeued) and the growth of running jobs into the freed GPUs."""
    st = cycle.st
    cap = cycle.cap
    for vid, for_id in p.suspended:
        r = st.running[vid]
        rw = r.workload
        shares = cycle.shares_of(vid)
        gpus = sum(s.fraction for s in shares)
        cap.give_shares(shares)
        cycle.add_usage(rw.team, rw.user, -gpus)
        cycle.gone.add(vid)
        cycle.resize_reason.pop(vid, None)
        left = las_estimates.rank(rw) / 3600.0
        reason = (f"suspended for {for_id}: it is {REASON} (about {left:.1f} more GPU-hours); "
                  f"it resumes, from where it was, once work estimated shorter has its GPUs")
        cycle.preempts.append(Preempt(workload_id=vid, reason=reason, for_workload_id=for_id))
        cycle.usage_changed(rw.team)
    for wid, n in p.grows:
        w = st.running[wid].workload
        v = cap.view(view_key(w))
        for _ in range(n):
            if cycle.current_gpus(wid) >= w.gpus - EPSILON:
                break
            g = _grow_card(cycle, v, wid)
            if g is None:
                break
            cap.take(g, 1.0, float(cap.gpu_mem[g]))
            cycle.shares_of(wid).append(cap.whole_share(g))
            cycle.add_usage(w.team, w.user, 1.0)
            cycle.resize_reason[wid] = f"grew into GPUs of work suspended for it: it is estimated to need far less GPU-time (an estimate, from run-time history)"
            cycle.usage_changed(w.team)


def suspend(cycle) -> None:
    """The cycle's hook: plan and apply (nothing when the switch is off)."""
    if not enabled(cycle.config):
        return
    p = plan(cycle)
    if p.suspended:
        apply(cycle, p)


def waited_enough(cfg, w, now: float) -> bool:
    """Has ``w`` waited at least ``las_suspend_wait_factor`` times its own run-time estimate? Its wait: the time
    since its submission less what its attained service is worth at its asked size (attained GPU-seconds / asked
    GPUs). Such work is neither suspended nor yields: a bound on how long work is held back for shorter work."""
    f = cfg.las_suspend_wait_factor
    if f <= 0 or w.estimate_s is None:
        return False
    return (now - w.submitted_at) - w.attained_gpu_s / max(w.gpus, 1.0) >= f * w.estimate_s


def yields(cycle, w) -> bool:
    """Does starving ``w`` go after the fair loop, as its team waits with work estimated to need at least
    ``las_suspend_ratio`` times less GPU-time? A suspended job keeps its first submission, so it is
    starving at once: without this it would take back, first of all, the GPUs freed for shorter work."""
    if not enabled(cycle.config):
        return False
    mine = las_estimates.rank(w)
    if mine <= 0 or waited_enough(cycle.config, w, cycle.now):
        return False
    least = least_pending(cycle, w.team)
    return least is not None and least * cycle.config.las_suspend_ratio <= mine


def least_pending(cycle, team_name: str) -> float | None:
    """The least estimated remaining GPU-time of ``team_name``'s pending work not started in the cycle
    (None: none has a usable estimate); memoised until the next start."""
    memo = getattr(cycle, "_least_pending", None)
    if memo is None:
        memo = cycle._least_pending = {}
    version = len(cycle.starts)
    kept = memo.get(team_name)
    if kept is not None and kept[0] == version:
        return kept[1]
    least = None
    started = cycle.started
    for p in cycle.st.pending.values():
        if p.team != team_name or p.id in started:
            continue
        left = las_estimates.remaining_gpu_s(p)
        if left is not None and (least is None or left < least):
            least = left
    memo[team_name] = (version, least)
    return least
