"""Work estimated shorter takes GPUs back (``SchedulerConfig.las_estimates_take_back``).

With ``las_on_estimates`` new work shrinks running elastic jobs estimated to
need more than it (elastic.new_work_victim), but only on arrival: a job that
started below its asked size (the room was not there, or it was shrunk) is no
longer new after its first cycle, and from then on only grows into idle GPUs.
In a busy pool there are none for hours, so a job estimated to need minutes
runs at a fraction of its ask while jobs estimated to need hours hold theirs.

With this switch, at the end of a cycle (after idle GPUs were given out), a
running elastic job below its asked size with a usable estimate
(las_estimates.remaining_gpu_s) takes GPUs from its team's running elastic
jobs of its least-attained-service level or a higher one that are estimated
to need more than it (las_estimates.may_shrink: no estimate, or an overrun
one, counts its attained service), the most first, down to their
``min_gpus``, never suspending them (as the shortest-remaining-first oracle
of benchmarks/pollux_oracle.py runs the shortest work on its full ask; down
to ``new_work_shrink_floor`` only, every job of a busy pool sat at that
floor and nothing moved). The
least estimated remaining first takes; never from a job of a higher priority,
one grown or started in the cycle, or one within its minimum run-time, and
never for a job shrunk in the cycle (a resize is a pure shrink or a pure grow).
The core never sees true remaining work: only estimates learned from history.
"""

from __future__ import annotations

from . import elastic, las_estimates
from .minimum_runtime import RECLAIM, is_protected

REASON = "estimated to need less GPU-time than the jobs it took them from (an estimate, from run-time history)"


def takes(cycle) -> list:
    """The running elastic jobs that may take GPUs back, least estimated remaining GPU-time first."""
    st = cycle.st
    out = []
    for wid in st.elastic_running:
        if wid in cycle.gone or wid in st.leaving:
            continue
        r = st.running[wid]
        w = r.workload
        if las_estimates.remaining_gpu_s(w) is None or cycle.current_gpus(wid) >= w.gpus:
            continue
        out.append(r)
    out.sort(key=lambda r: (las_estimates.rank(r.workload), r.workload.submitted_at, r.workload.id))
    return out


def victims(cycle, r, was: dict) -> list:
    """Whom ``r`` may take GPUs from: its team's running elastic jobs estimated to need more, the most first."""
    st = cycle.st
    w = r.workload
    level = st.las_level(w)
    team = elastic.team_of(st.teams, w.team)
    out = []
    for vid in st.elastic_running:
        d = st.running[vid]
        dw = d.workload
        if vid == w.id or dw.team != w.team or vid in cycle.gone or vid in st.leaving or not dw.preemptible:
            continue
        if dw.priority > w.priority or st.las_level(dw) < level or not las_estimates.may_shrink(w, dw):
            continue
        if cycle.current_gpus(vid) > was.get(vid, len(d.allocation.shares)) or vid in cycle.started:
            continue  # grown or started in this cycle
        if cycle.current_gpus(vid) <= dw.min_gpus or is_protected(d, team, cycle.now, RECLAIM):
            continue
        out.append(d)
    out.sort(key=lambda d: (las_estimates.shrink_key(d.workload), -d.workload.submitted_at, d.workload.id))
    return out


def take_back(cycle) -> None:
    st = cycle.st
    cfg = st.config
    if not (cfg.las_estimates_take_back and cfg.las_on_estimates and cfg.las_thresholds_gpu_s and cfg.preemption and cfg.elastic):
        return
    takers = takes(cycle)
    if not takers:
        return
    was = {wid: len(st.running[wid].allocation.shares) for wid in st.elastic_running}
    for r in takers:
        w = r.workload
        if cycle.current_gpus(w.id) < was[w.id]:
            continue  # shrunk in this cycle
        for d in victims(cycle, r, was):
            want = int(w.gpus) - int(cycle.current_gpus(w.id))
            if want <= 0:
                break
            elastic.move_gpus(cycle, d, r, want, d.workload.min_gpus,
                              f"shrunk for {w.id}: {w.id} is {REASON}", f"grew: {REASON}")
