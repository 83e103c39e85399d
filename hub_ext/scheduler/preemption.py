"""Making room for a workload that does not fit: shrink, then preempt.

Candidates, cheapest loss first:
0. GPUs of work already leaving (see below);
1. GPUs held by a borrower's reservation: for work within its quota (a
   guarantee outranks a borrower's reservation), and for a borrower ahead of
   the reserving team in the fair order (borrowing less per weight, now and in
   the past), where the gang needs part of its nodes' cards (a gang that needs
   whole nodes yields only to fractions: every card taken would restart its
   wait for the whole nodes); and, for a fraction within
   its quota, cards held for another team's reservation (a quota means room on
   a card);
2. GPUs an elastic job received beyond what it asked for (lent GPUs, taken
   back for any workload that may start);
and, only for a workload whose team stays within its quota (a quota
reclaim) and only with preemption on:
3. elastic jobs of over-quota teams shrunk down to their min_gpus;
4. over-quota workloads of other teams, preempted whole: lowest priority
   first, then the team borrowing most per weight, then the newest;
4b. fractions of another team on the cards it holds beyond its quota: a team
   is charged a whole card for each card it holds (a card shared by teams in
   proportion to their shares), since what its fractions leave unused on a
   card is no card for anyone else. As many cards as it holds beyond its quota
   (part of a card counts as one), those it holds alone and emptiest first, may
   be freed whole (``cards_over``): a quota means room on a card, for
   whole-card work too;
and, with least attained service on (``las_thresholds_gpu_s``) and
preemption on, whatever the quota:
5. elastic jobs of the workload's own team at a higher LAS level (more
   attained service) shrunk down to their min_gpus, then such work
   preempted whole: highest level first, then the latest submitted (as Tiresias's
   2D-LAS: short work overtakes long work of its own team, never of another
   team, never work of a higher priority, never a session: a notebook open for
   days holds attained service while its user thinks). Elastic jobs are only shrunk
   unless ``las_preempt_elastic``; new work also shrinks same-level elastic
   jobs that have run, down to a floor (elastic.new_work_victim).

Never candidates: work within its team's quota (so a session within quota is
never preempted; fractions on cards held beyond the quota, 4b, are beyond it), non-preemptible work, work started in this same cycle, work
younger than its team's minimum run-time (minimum_runtime.py), and work
already leaving (preempted with notice in an earlier cycle).

Work already leaving comes first of all (for work within its quota): its GPUs
are as good as free. A workload whose room needs them does not start yet: it
holds that room in this cycle and waits for them (``RoomPlan.awaiting``).

The candidates are released one by one until the workload fits; then each
one is tried back in reverse order and kept running if the workload still
fits without it, so the final set is minimal for that order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .elastic import growth_gpus, is_new, new_work_floor, new_work_victim, new_work_victim_key
from . import las_estimates
from .decay import past_excess
from .fairshare import over_quota, team_of, team_share
from .minimum_runtime import RECLAIM, SHRINK, is_protected, minimum, protected_for
from .model import EPSILON, GpuShare, Preempt, Workload, WorkloadKind

from .ordering import las_level


@dataclass(frozen=True)
class RoomPlan:
    """What making room for one workload takes, as plain data (applied by ``apply_plan``)."""

    holds: tuple[tuple[str, int], ...] = ()  # (borrower's reservation, GPU) taken from it
    shrinks: tuple[tuple[str, GpuShare, str], ...] = ()  # (elastic job, share taken back, "lent" | "shrink")
    victims: tuple[str, ...] = ()  # workloads preempted whole
    awaiting: tuple[str, ...] = ()  # leaving workloads whose GPUs it needs: it waits for them
    las: tuple[str, ...] = ()  # of the shrunk and preempted: those for least attained service, not for a quota


class Unit:
    """One thing that can be released: a held GPU, an elastic GPU, a workload."""

    __slots__ = ("kind", "wid", "share", "gpus", "released", "las")

    def __init__(self, kind: str, wid: str, share=None, gpus=(), las: bool = False):
        self.kind = kind  # "leaving" | "hold" | "lent" | "shrink" | "preempt"
        self.las = las  # shrink/preempt for least attained service, not for a quota
        self.wid = wid
        self.share = share  # GpuShare (lent/shrink) or GPU id (hold)
        self.gpus = gpus  # GPU ids it touches
        self.released: list[tuple[int, float, float]] = []


def candidates(cycle, w: Workload, entitled: bool) -> list[Unit]:
    st = cycle.st
    cap = cycle.cap
    units: list[Unit] = []
    now = cycle.now
    if entitled:
        for wid in sorted(st.leaving):
            units.append(Unit("leaving", wid, None, _gpus(cap, st.running[wid].allocation.shares)))
        for rid in sorted(cycle.reservations):
            res = cycle.reservations[rid]
            if not res.hard:
                units.extend(Unit("hold", rid, g, (g,)) for g in res.held)
        if w.is_fraction:
            # A quota means room on a card: a fraction within its team's quota may take one
            # card held for another team's reservation (a guarantee for a guarantee; the
            # reserved workload gets the card back when the fraction ends).
            for rid in sorted(cycle.reservations):
                res = cycle.reservations[rid]
                if res.hard and res.workload.team != w.team:
                    units.extend(Unit("hold", rid, g, (g,)) for g in res.held)
    elif cycle.reservations:
        # A borrower's reservation protects its gang from teams behind it in the fair order.
        # A borrower ahead of it (borrowing less, now and in the past) may use its cards
        # when the gang needs only part of its nodes, and a fraction of such a borrower
        # always (part of one card). A gang that needs whole nodes fills only once every
        # card of them is free at once: each card taken restarts that wait (on a busy
        # pool, whole-node gangs of teams behind then waited days).
        mine = _borrow_key(cycle, w.team)
        # (A fraction on a held card opens a card: not beyond its quota in cards while
        # another team waits with work within its quota, see Cycle.new_card_waits.)
        for rid in sorted(cycle.reservations if not (w.is_fraction and cycle.new_card_waits(w)) else ()):
            res = cycle.reservations[rid]
            if not res.hard and res.held and res.workload.team != w.team and _borrow_key(cycle, res.workload.team) > mine and (w.is_fraction or _part_of_its_nodes(res)):
                units.extend(Unit("hold", rid, g, (g,)) for g in res.held)
    elastic = [wid for wid in sorted(st.elastic_running) if wid not in cycle.gone and wid not in cycle.started and wid not in st.leaving]
    for wid in elastic:
        r = st.running[wid]
        if is_protected(r, team_of(st.teams, r.workload.team), now, SHRINK):
            continue
        shares = cycle.shares_of(wid)
        lent = growth_gpus(st.running[wid].workload, len(shares))
        for s in reversed(shares[len(shares) - lent:]):
            units.append(Unit("lent", wid, s, _gpus(cap, (s,))))
    if not (entitled and st.config.preemption):
        return units + las_units(cycle, w, entitled)
    if cycle.shortcuts:
        # What a quota reclaim may take of the other teams' work beyond their quotas reads only their
        # work and usage: kept until one of them changes (Cycle.changes counts every change to a team,
        # team_changes those of each).
        key = (w.team, cycle.changes - cycle.team_changes.get(w.team, 0))
        kept = cycle.reclaim_units.get(key)
        if kept is None:
            kept = cycle.reclaim_units[key] = _reclaim_units(cycle, w)
        free_at = kept[2]
        if free_at < math.inf:
            left = free_at - now
            cycle.protected_for = left if cycle.protected_for is None else min(cycle.protected_for, left)
        victim_units, seen = kept[0], kept[1]
    else:
        victim_units, seen, _ = _reclaim_units(cycle, w)
    units += victim_units
    cards = card_victims(cycle, w)
    if cards:
        seen = set(seen)  # (the kept set stays as it is)
    for r in cards:
        if r.workload.id in seen:
            continue
        seen.add(r.workload.id)
        units.append(Unit("preempt", r.workload.id, None, _gpus(cap, cycle.shares_of(r.workload.id))))
    return units + las_units(cycle, w, entitled)


def _reclaim_units(cycle, w: Workload) -> tuple[list[Unit], set, float]:
    """Units of other teams' work beyond their quotas (cheapest loss first) for ``w``'s team, their
    workloads, and when the first protected one may go (inf: none is protected)."""
    st = cycle.st
    cap = cycle.cap
    now = cycle.now
    units: list[Unit] = []
    victims = []
    free_at = math.inf
    for tname in sorted(st.team_running):
        if tname == w.team:
            continue
        team = team_of(st.teams, tname)
        if cycle.usage.get(tname, 0.0) <= team.quota + EPSILON:
            continue
        entries, protected_until = _team_victims(cycle, tname, team)
        victims += entries
        free_at = min(free_at, protected_until)
    if free_at < math.inf:
        # Reasons say how long until the first protected victim may go.
        left = free_at - now
        cycle.protected_for = left if cycle.protected_for is None else min(cycle.protected_for, left)
    victims.sort(key=_first)  # each team's run is in order already: a merge
    for e in victims:
        units += e[2]
    units += [e[3] for e in victims]
    return units, {e[1].workload.id for e in victims}, free_at


def _first(entry: tuple):
    return entry[0]


def _team_victims(cycle, tname: str, team) -> tuple[list[tuple], float]:
    """What a quota reclaim may take of team ``tname`` (over its quota): its victims in the order they
    go, each (sort key, Running, its shrink units, its preempt unit), and when the first of its work
    protected by a minimum run-time (reclaim) stops being protected (inf: none is).

    Rebuilt only when the team changes: in this cycle (``Cycle.team_changes``), or between cycles
    (its running work, usage or team; a protection ending). A busy pool asks for it thousands of
    times a cycle for a few teams; building it every time was a third of a long replay."""
    changes = cycle.team_changes.get(tname, 0)
    kept = cycle.team_victims.get(tname)
    if kept is not None and kept[0] == changes:
        return kept[1]
    st = cycle.st
    now = cycle.now
    ranked = st.ranked(tname)
    usage = cycle.usage[tname]
    memo = st.victims_memo.get(tname) if not changes else None
    if memo is not None and memo[0] is ranked and memo[1] == usage and memo[2] is team and memo[3] is cycle.cap and now < memo[4]:
        out = memo[5]
    else:
        cap = cycle.cap
        weight = team.over_quota_weight if team.over_quota_weight > 0 else EPSILON
        borrowed = (usage - team.quota) / weight
        reclaim_free_at = math.inf  # the first protected victim may go then
        expires = math.inf  # some protection (reclaim or shrink) ends then: the list changes
        entries = []
        for r in over_quota(team, ranked, cycle.gone):
            rw = r.workload
            if not rw.preemptible or rw.id in cycle.started or r.leaving:
                continue
            if protected_for(r, team, now, RECLAIM) > 0:
                until = r.allocation.started_at + minimum(team, RECLAIM)  # (protected_for's own sum: the same seconds left)
                reclaim_free_at = min(reclaim_free_at, until)
                expires = min(expires, until)
                continue
            shrinks = []
            if rw.is_elastic:
                shares = cycle.shares_of(rw.id)
                lent = growth_gpus(rw, len(shares))
                keep = max(rw.min_gpus, len(shares) - lent) if lent else rw.min_gpus
                if protected_for(r, team, now, SHRINK) > 0:
                    expires = min(expires, r.allocation.started_at + minimum(team, SHRINK))
                else:
                    # shrinkable beyond what is lent, down to min_gpus
                    shrinks = [Unit("shrink", rw.id, s, _gpus(cap, (s,))) for s in reversed(shares[keep:len(shares) - lent])]
            preempt = Unit("preempt", rw.id, None, _gpus(cap, cycle.shares_of(rw.id)))
            entries.append(((rw.priority, -borrowed, -r.allocation.started_at, rw.id), r, shrinks, preempt))
        entries.sort(key=_first)
        out = (entries, reclaim_free_at)
        if not changes:
            st.victims_memo[tname] = (ranked, usage, team, cap, expires, out)
    cycle.team_victims[tname] = (changes, out)
    return out


def cards_over(cycle) -> dict[str, dict[int, list]]:
    """Teams whose fractions hold more cards than their quota: team -> {card: its workloads there}
    for as many cards as it holds beyond its quota: those it holds alone first, emptiest first
    (what a quota reclaim may free; a shared card frees only if the rest on it goes too).

    A team is charged a whole card for each card its work holds, a card shared by
    teams in proportion to their shares on it: the part of a card that its
    fractions leave unused is room no one else can use as a card. Memoised until
    the next decision."""
    return _card_charges(cycle)[0]


def cards_held(cycle, team_name: str) -> float:
    """Cards the team's running work holds (whole GPUs, plus a card for each card its fractions
    are on, a card shared by teams in proportion to their shares), as ``cards_over`` charges them."""
    held = _card_charges(cycle)[1]
    return held[team_name] if team_name in held else cycle.usage.get(team_name, 0.0)  # no fractions anywhere: its whole GPUs


def _card_charges(cycle) -> tuple[dict[str, dict[int, list]], dict[str, float]]:
    """(``cards_over``, team -> cards held), memoised until the next decision."""
    version = (len(cycle.starts), len(cycle.preempts))
    memo = getattr(cycle, "_cards_over", None)
    if memo is not None and memo[0] == version:
        return memo[1]
    out: dict[str, dict[int, list]] = {}
    held_cards: dict[str, float] = {}
    cap = cycle.cap
    st = cycle.st
    if cap.view((None, None)).partial:
        card_frac: dict[int, dict[str, float]] = {}
        on_card: dict[int, list] = {}
        whole: dict[str, float] = {}
        for wid, r in st.running.items():
            rw = r.workload
            if wid in cycle.gone:
                continue
            if not rw.is_fraction:
                whole[rw.team] = whole.get(rw.team, 0.0) + cycle.current_gpus(wid)
                continue
            for sh in r.allocation.shares:
                g = cap.share_gpu(sh)
                if g is None:
                    continue
                teams = card_frac.setdefault(g, {})
                teams[rw.team] = teams.get(rw.team, 0.0) + sh.fraction
                on_card.setdefault(g, []).append(r)
        charged: dict[str, float] = {}
        held: dict[str, list[tuple[bool, float, int]]] = {}
        for g, teams in card_frac.items():
            total = sum(teams.values())
            # Alone: nothing else on the card, nor started on it earlier in this cycle.
            alone = len(teams) == 1 and 1.0 - cap.free_frac[g] <= total + EPSILON
            for t, f in teams.items():
                charged[t] = charged.get(t, 0.0) + f / total
                held.setdefault(t, []).append((not alone, f, g))
        held_cards.update(whole)
        for t, c in charged.items():
            team = team_of(st.teams, t)
            cards = held_cards[t] = whole.get(t, 0.0) + c
            over = math.ceil(cards - team.quota - EPSILON)
            if over <= 0:
                continue
            # Cards it holds alone first (freeing them frees a card), emptiest first.
            out[t] = {g: [r for r in on_card[g] if r.workload.team == t] for _, _, g in sorted(held[t])[:over]}
    cycle._cards_over = (version, (out, held_cards))
    return out, held_cards


def card_victims(cycle, w: Workload) -> list:
    """Fractional work of other teams on the cards they hold beyond their quota (``cards_over``),
    whole cards only, emptiest first: a quota means room on a card."""
    st = cycle.st
    out = []
    for tname, cards in sorted(cards_over(cycle).items()):
        if tname == w.team:
            continue
        team = team_of(st.teams, tname)
        for g, rs in cards.items():
            ok = True
            for r in rs:
                rw = r.workload
                if not rw.preemptible or rw.id in cycle.started or rw.id in cycle.gone or r.leaving:
                    ok = False
                    break
                left = protected_for(r, team, cycle.now, RECLAIM)
                if left > 0:
                    cycle.protected_for = left if cycle.protected_for is None else min(cycle.protected_for, left)
                    ok = False
                    break
            if ok:
                out.extend(rs)
    return out


def las_victims(cycle, w: Workload) -> list:
    """Running work of ``w``'s team that least-attained-service lets ``w`` overtake."""
    st = cycle.st
    las = st.config.las_thresholds_gpu_s
    if not (las and st.config.preemption):
        return []
    level = las_level(w, las)
    if level >= st.las_top(w.team) and not (
        cycle.config.new_work_shrinks_elastic and is_new(w) and any(st.running[x].workload.team == w.team for x in st.elastic_running)
    ):
        return []  # nothing of its team is at a higher level, and no elastic job it may shrink as new work
    cut = las[level] if level < len(las) else math.inf  # attained service from which running work is at a higher level
    new = cycle.config.new_work_shrinks_elastic and is_new(w)  # may shrink elastic work of its level (new_work_victim)
    team = team_of(st.teams, w.team)
    out = []
    for r in st.team_running.get(w.team, {}).values():
        rw = r.workload
        higher = rw.attained_gpu_s >= cut and rw.kind is not WorkloadKind.SESSION  # a session's hours are a user's, not a job's
        if not (higher or (new and rw.is_elastic)):
            continue  # (most of a team's running work: the cheap test first)
        if rw.id in cycle.gone or rw.id in cycle.started or not rw.preemptible or rw.priority > w.priority or r.leaving:
            continue
        if is_protected(r, team, cycle.now, RECLAIM):
            continue  # the minimum run-time protects it from its own team's short work too
        rl = las_level(rw, las)
        if higher:
            # As Tiresias: the highest level first, then the latest submitted
            # (a long-running early job keeps its place in its queue).
            out.append(((rw.priority, -rl, -rw.submitted_at, rw.id), r))
        elif new_work_victim(cycle.config, w, rw):
            out.append(((rw.priority, -rl, new_work_victim_key(cycle.config, rw), rw.id), r))  # most attained service (or estimated remaining) first
    out.sort(key=lambda x: x[0])
    return [r for _, r in out]


def las_units(cycle, w: Workload, entitled: bool = False) -> list[Unit]:
    """Least attained service's units for ``w`` (its team's running work at higher levels), kept in the
    cycle until its team changes (``Cycle.team_changes``: its starts, preemptions, shrinks, usage): they
    read only that team's work, ``w``'s priority, level and newness (with las_on_estimates, a new workload's
    estimated remaining GPU-time), and, beyond its quota, what leaves."""
    if not cycle.shortcuts:
        return _las_units(cycle, w, entitled)
    config = cycle.config
    las = config.las_thresholds_gpu_s
    if not (las and config.preemption):
        return []  # (as _las_units answers)
    # Between cycles too, while the team's running work (ranked(), rebuilt on any change, attained
    # service included), the team, the configuration and the capacity index are the same and no
    # minimum run-time of its running work has ended.
    new = bool(config.new_work_shrinks_elastic and is_new(w))
    # With las_on_estimates new work shrinks only work estimated to need more than it (new_work_victim): its rank too.
    key = (w.team, not entitled, w.priority, las_level(w, las), new, las_estimates.rank(w) if new and config.las_on_estimates else None)
    changes = cycle.team_changes.get(w.team, 0)
    kept = cycle.las_units_kept.get(key)
    if kept is not None and kept[0] == changes:
        return kept[1]
    st = cycle.st
    team = team_of(st.teams, w.team)
    if not changes:
        memo = st.las_units_memo.get(key)
        ranked = st.ranked(w.team)
        if memo is not None and memo[0] is ranked and memo[1] is team and memo[2] is config and memo[3] is cycle.cap and cycle.now < memo[4]:
            cycle.las_units_kept[key] = (0, memo[5])
            return memo[5]
    units = _las_units(cycle, w, entitled)
    if not changes:
        least = minimum(team, RECLAIM)
        expires = math.inf  # the first minimum run-time of its running work still to end (they protect victims)
        if least > 0:
            for r in ranked:
                until = r.allocation.started_at + least
                if until > cycle.now and until < expires:
                    expires = until
        st.las_units_memo[key] = (ranked, team, config, cycle.cap, expires, units)
    cycle.las_units_kept[key] = (changes, units)
    return units


def _las_units(cycle, w: Workload, entitled: bool = False) -> list[Unit]:
    cap = cycle.cap
    victims = las_victims(cycle, w)
    units: list[Unit] = []
    level = las_level(w, cycle.config.las_thresholds_gpu_s)
    if not entitled and cycle.st.leaving and cycle.config.las_thresholds_gpu_s and cycle.config.preemption:
        # Work of its own team already leaving (preempted with notice) at a higher level: as good as
        # free, so it waits for it rather than preempting more each cycle of the notice (work within
        # its quota has every leaving workload among its candidates already).
        st = cycle.st
        for wid in sorted(st.leaving):
            r = st.running[wid]
            if r.workload.team == w.team and las_level(r.workload, cycle.config.las_thresholds_gpu_s) > level:
                units.append(Unit("leaving", wid, None, _gpus(cap, r.allocation.shares)))
    for r in victims:
        rw = r.workload
        if rw.is_elastic:
            shares = cycle.shares_of(rw.id)
            lent = growth_gpus(rw, len(shares))
            floor = rw.min_gpus if las_level(rw, cycle.config.las_thresholds_gpu_s) > level else new_work_floor(cycle.config, rw)
            for s in reversed(shares[floor : len(shares) - lent]):
                units.append(Unit("shrink", rw.id, s, _gpus(cap, (s,)), las=True))
    for r in victims:
        if r.workload.is_elastic and not cycle.config.las_preempt_elastic:
            continue  # shrunk to its minimum, never suspended: it keeps progressing
        if las_level(r.workload, cycle.config.las_thresholds_gpu_s) <= level:
            continue  # a victim for new work (elastic.new_work_victim): shrunk only
        units.append(Unit("preempt", r.workload.id, None, _gpus(cap, cycle.shares_of(r.workload.id)), las=True))
    return units


def _part_of_its_nodes(res) -> bool:
    """Does the reserved gang need only part of the cards of its nodes (not whole nodes)?"""
    # (A reservation is made for whole-GPU work only, and always with its view.)
    if res.view is None:
        return False
    return res.gpus < sum(res.view.node_total[n] for n in res.nodes)


def _borrow_key(cycle, team_name: str) -> float:
    """A borrowing team's place in the fair order (fairshare.team_share's borrower key)."""
    team = team_of(cycle.st.teams, team_name)
    return team_share(team, cycle.usage.get(team_name, 0.0), 0.0, past_excess(cycle.st.history, team_name, team.quota))[1]


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
    elif u.kind == "leaving":
        for s in cycle.st.running[u.wid].allocation.shares:
            g = cap.share_gpu(s)
            if g is not None:
                frac, mem = cap.share_amounts(g, s)
                u.released.append((g, frac, mem))
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
    """Find the fewest candidates whose release lets ``w`` fit: -> (placement, RoomPlan) or None.

    The capacity index is left as if the plan were carried out (the
    candidates' GPUs released); ``apply_plan`` records the rest."""
    if len(v.classes) == len(cycle.cap.classes):  # every card is of the view: the units that touch one
        units = [u for u in candidates(cycle, w, entitled) if u.gpus]
    else:
        units = [u for u in candidates(cycle, w, entitled) if any(cycle.cap.gpu_class[g] in v.classes for g in u.gpus)]
    if not units:
        return None
    if cycle.shortcuts and not w.is_fraction and not cycle.cap.gang_could_fit(v, [g for u in units for g in u.gpus], int(gpus)):
        return None  # releasing every candidate would still leave too few untouched cards: no trials
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
    plan = RoomPlan(
        holds=tuple((u.wid, u.share) for u in needed if u.kind == "hold"),
        shrinks=tuple((u.wid, u.share, u.kind) for u in needed if u.kind in ("lent", "shrink")),
        victims=tuple(u.wid for u in needed if u.kind == "preempt"),
        awaiting=tuple(sorted(u.wid for u in needed if u.kind == "leaving")),
        las=tuple(sorted({u.wid for u in needed if u.las})),
    )
    return cycle.try_place(w, v, gpus), plan


def apply_plan(cycle, w: Workload, plan: RoomPlan) -> None:
    """Record a plan in the cycle: the one place where holds, shrinks and preemptions are decided."""
    st = cycle.st
    preempted = set(plan.victims)
    las = set(plan.las)
    for rid, g in plan.holds:
        cycle.reservations[rid].held.remove(g)
    for wid, share, kind in plan.shrinks:
        shares = cycle.shares_of(wid)
        shares.remove(share)
        rw = st.running[wid].workload
        cycle.add_usage(rw.team, rw.user, -1.0)
        if wid not in preempted:
            why = "lent GPUs taken back" if kind == "lent" else f"team {rw.team} is over its quota"
            if wid in las:
                why = "it has held GPUs longer (least attained service first)"
            cycle.resize_reason[wid] = f"shrunk for {w.id}: {why}"
        cycle.usage_changed(rw.team)
    for wid in plan.victims:
        r = st.running[wid]
        rw = r.workload
        gpus = sum(s.fraction for s in cycle.shares_of(wid))
        cycle.add_usage(rw.team, rw.user, -gpus)
        cycle.gone.add(wid)
        cycle.resize_reason.pop(wid, None)
        team = team_of(st.teams, rw.team)
        wteam = team_of(st.teams, w.team)
        if wid in las:
            reason = (
                f"it has held {fmt(round(rw.attained_gpu_s / 3600, 2))} GPU-hours, {w.id} of the same team "
                f"{fmt(round(w.attained_gpu_s / 3600, 2))}: least attained service goes first within team {rw.team}"
            )
        elif cycle.usage.get(rw.team, 0.0) + gpus <= team.quota + EPSILON:
            reason = (
                f"team {rw.team}'s fractions were holding more cards than its quota of {fmt(team.quota)} GPUs; "
                f"team {wteam.name} reclaims a card within its quota for {w.id}"
            )
        else:
            reason = (
                f"team {rw.team} was using more than its quota of {fmt(team.quota)} GPUs; "
                f"team {wteam.name} reclaims its guaranteed GPUs for {w.id}"
            )
        cycle.preempts.append(Preempt(workload_id=wid, reason=reason, for_workload_id=w.id))
        cycle.usage_changed(rw.team)


def fmt(x: float) -> str:
    """GPU counts as people write them: 8, 0.5, 2.25."""
    if abs(x - round(x)) < 1e-6:
        return str(int(round(x)))
    return f"{x:.2f}".rstrip("0").rstrip(".")
