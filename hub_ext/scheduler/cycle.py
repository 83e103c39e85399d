"""One scheduling cycle: compose the decision modules.

Order of work in a cycle (``ordering="fair"``):

1. Starving workloads (pending longer than ``reservation_after_s``), oldest
   first: start if they fit (shrinking/preempting as below), else reserve
   capacity for them (reservation.py). One that would borrow waits while
   some team waits with work within its quota: it goes in step 2 before the
   first borrower.
2. Everyone else in fair order (ordering.py): a workload first passes its
   team's check (fairshare.py: limit, quota, borrowing), then placement
   (placement.py); if it does not fit, room is made by taking back lent
   elastic GPUs and, for work within its team's quota, by shrinking then
   preempting other teams' over-quota work (preemption.py). Otherwise it is
   skipped and later work may start (backfill).
3. Elastic jobs grow into the GPUs still idle (elastic.py).

``ordering="fifo"``: strict first come, first served. Workloads are taken in
submit order and the first that cannot start stops the cycle: nothing
overtakes it (no backfill, hence no reservations either). Work that could
never start (no matching GPUs in the pool, larger than the pool or than its
team's limit, invalid) is passed over rather than blocking the queue forever.
Shrinking and preemption still apply when switched on.

Long queues hold thousands of workloads in a few request shapes: a failed
try changes nothing, so until something is decided a workload shaped like
one that already failed fails at once (``Cycle.attempt``).

The cycle works on the scheduler's live index and undoes everything at the
end: the caller applies the decisions (see cache.py for the contract).
Reasons for pending work are computed only when read (reasons.py).
"""

from __future__ import annotations

from bisect import bisect_left
from heapq import heapify, heappop, heappush

from . import elastic, estimate_suspend, preemption, reservation
from .fairshare import OK, check, quota_used, team_of
from .model import EPSILON, Allocation, Decisions, GpuShare, Preempt, Resize, Start, Workload
from .ordering import FairCursor, las_level
from .placement import may_spread, place_fraction, place_spread, place_whole, view_key
from .preemption import fmt
from .reasons import EndState, LazyPending, quota_start_reason


class Cycle:
    """The working state of one cycle: usage as decided so far, the starts,
    preemptions and resizes made, reservations, and memos of what did not fit
    (a gang of 8 that found no block stops the search for larger gangs until
    GPUs are freed)."""

    # Shortcuts that skip work whose answer is already known (the fair loop's
    # team_hopeless between tries, make_room's trials that cannot succeed).
    # False runs the long way: tests/simulator/test_replay_shortcuts.py checks
    # that replays decide exactly the same either way.
    shortcuts = True

    def __init__(self, st, now: float):
        self.st = st
        self.now = now
        self.cap = st.capacity
        self.config = st.config
        self.usage = dict(st.usage)
        self.user_usage = dict(st.user_usage)
        self.starts: list[Start] = []
        self.preempts = []
        self.started: set[str] = set()
        self.gone: set[str] = set()  # preempted in this cycle
        self.current: dict[str, list[GpuShare]] = {}  # elastic jobs' shares as resized in this cycle
        self.resize_reason: dict[str, str] = {}
        self.reservations: dict = {}
        self.awaiting: dict[str, tuple[str, ...]] = {}  # waits for these leaving workloads' GPUs
        self.protected_for: float | None = None  # seconds until a victim's minimum run-time ends
        self.starving_first: list[Workload] = []  # (filled by the long way only: nothing reads it)
        # Fractions that would have opened a card beyond their team's quota while another team waited
        # with work within its quota (new_card_waits): tried again once the cycle's other work had its turn.
        self.card_deferred: list[Workload] = []
        self._card_rule = True
        # Starving work that would borrow waits while some team waits with work within its quota
        # (a quota is a guarantee, a borrower's wait is not): it goes after that work, before other borrowers.
        self.deferred: list[Workload] = []
        # The same, as the shortcut walk keeps them (_starving_jumps): runs of one request shape, each
        # (list of (submitted_at, id, workload), first index, end index), so thousands of deferred
        # workloads of a few shapes are neither copied nor sorted.
        self.deferred_runs: list[tuple] = []
        # Starving work that yields to pending work of its own team at a lower LAS level (las_yields):
        # tried once the fair loop is done.
        self.las_deferred: list[Workload] = []
        self.las_deferred_runs: list[tuple] = []  # the same as deferred_runs
        self._lowest_level: dict[str, int] = {}  # team -> lowest LAS level of its pending work (lowest_pending_level)
        self._team_front: dict[str, tuple] = {}  # team -> (len(starts), (-priority, level) of its first pending work)
        self.starving_until: float | None = None  # work submitted up to then is starving
        self.fifo_blocker: Workload | None = None
        self.cursor: FairCursor | None = None
        self.whole_fail: dict[tuple, float] = {}  # view key -> smallest gang that did not fit
        self.room_fail: dict[tuple, float] = {}  # (team, view key, entitled) -> smallest that found no room
        self.view_key = view_key
        self.start_reasons: dict[tuple, str] = {}  # the same few sentences for thousands of starts
        self._lent: bool | None = None  # do elastic jobs hold lent GPUs?
        self._reclaim: bool | None = None  # does any team run over its quota?
        self._entitled: bool | None = None  # does any team wait for work within its quota?
        self._within: dict[str, float] = {}  # team over its quota -> GPUs that count against the quota
        self._started_gpus: dict[str, float] = {}  # team -> GPUs started in this cycle
        self._oversized_started: dict[str, float] = {}  # ... of which by work larger than the quota
        self._oversized_running: dict[str, bool] = {}  # team -> does it run work larger than its quota?
        # Requests that failed since the last start or reservation. A failed
        # try_start changes nothing (make_room undoes its trials), so an
        # identical request fails the same way until something is decided:
        # thousands of queued copies of a few shapes cost one try each.
        self._failed: tuple[set, set] = (set(), set())  # shapes that failed [not starving, starving]
        self._failed_at: tuple = (0, 0)
        self._stuck_at: tuple | None = None  # nothing_can_start() is True as of this version
        # try_start calls so far: between two, nothing in the cycle changes (a
        # failed request answered from _failed changes nothing either).
        self._tries = 0
        self._free_at: tuple | None = None  # ... is False as of this version
        # team -> changes in this cycle to its usage, running work, shares, starts or preemptions
        # (add_usage, usage_changed): what preemption.candidates knows of a team is kept until it changes.
        self.team_changes: dict[str, int] = {}
        self.team_victims: dict[str, tuple] = {}  # team -> (its changes, preemption._team_victims)
        self.las_units_kept: dict[tuple, list] = {}  # preemption.las_units, until its team changes
        self.changes = 0  # add_usage and usage_changed calls: every change to a team in this cycle
        self.reclaim_units: dict[tuple, tuple] = {}  # (team, changes) -> preemption._reclaim_units

    # ------------------------------------------------------------ helpers for the decision modules

    def shares_of(self, wid: str) -> list[GpuShare]:
        cur = self.current.get(wid)
        if cur is None:
            cur = self.current[wid] = list(self.st.running[wid].allocation.shares)
        return cur

    def current_gpus(self, wid: str) -> float:
        if wid in self.current:
            return sum(s.fraction for s in self.current[wid])
        return self.st.running[wid].allocation.gpus

    def add_usage(self, team: str, user: str, gpus: float) -> None:
        self.team_changes[team] = self.team_changes.get(team, 0) + 1
        self.changes += 1
        self.usage[team] = round(self.usage.get(team, 0.0) + gpus, 9)
        self.user_usage[(team, user)] = round(self.user_usage.get((team, user), 0.0) + gpus, 9)

    def quota_used(self, team_name: str) -> float:
        """GPUs of the team's work that count against its quota: its usage, less work larger than the
        whole quota (fairshare.quota_used)."""
        usage = self.usage.get(team_name, 0.0)
        team = team_of(self.st.teams, team_name)
        if usage <= team.quota + EPSILON:
            return usage
        used = self._within.get(team_name)
        if used is None:
            oversized = self._oversized_started.get(team_name, 0.0)
            running = self.st.ranked(team_name)
            big = self._oversized_running.get(team_name)
            if big is None:  # (its running work and quota are the same all cycle, and kept while they are)
                kept = self.st.oversized_memo.get(team_name)
                if kept is not None and kept[0] is running and kept[1] == team.quota:
                    big = kept[2]
                else:
                    big = any(r.allocation.gpus > team.quota + EPSILON for r in running)
                    self.st.oversized_memo[team_name] = (running, team.quota, big)
                self._oversized_running[team_name] = big
            if oversized or big:
                used = quota_used(team, running, self.gone, self.current_gpus) + self._started_gpus.get(team_name, 0.0) - oversized
            else:
                used = usage
            self._within[team_name] = used
        return used

    def usage_changed(self, team: str) -> None:
        self.team_changes[team] = self.team_changes.get(team, 0) + 1
        self.changes += 1
        self._within.pop(team, None)
        self._lent = self._reclaim = self._entitled = None
        self.whole_fail.clear()
        self.room_fail.clear()
        if self.cursor is not None:
            self.cursor.usage_changed(team)

    def try_place(self, w: Workload, v, gpus: float):
        if w.is_fraction:
            return place_fraction(self.cap, v, w)
        return place_whole(self.cap, v, int(gpus))

    def _place(self, w: Workload, v, gpus: float):
        if w.is_fraction:
            if v.free_total == 0 and not v.partial:
                return None
            return place_fraction(self.cap, v, w)
        if gpus >= self.whole_fail.get(v.key, float("inf")):
            # (the memo is of consolidated gangs: a spread start needs only enough free cards)
            return place_spread(self.cap, v, int(gpus)) if self.config.elastic_spread_start and may_spread(self.config, w, v) else None
        placed = place_whole(self.cap, v, int(gpus))
        if placed is None:
            self.whole_fail[v.key] = gpus
            if self.config.elastic_spread_start and may_spread(self.config, w, v):
                placed = place_spread(self.cap, v, int(gpus))
        return placed

    # ------------------------------------------------------------ one workload

    def try_start(self, w: Workload, starving: bool = False) -> bool:
        """Start ``w`` if its team may and it fits (making room if allowed)."""
        if w.id in self.st.invalid:
            return False
        team = self.st.teams.get(w.team) or team_of(self.st.teams, w.team)
        usage = self.usage.get(w.team, 0.0)
        within = self.quota_used(w.team) if usage > team.quota + EPSILON else usage
        if w.min_gpus is None:  # not elastic: one size (the common case, kept short)
            code, over = check(team, usage, w.gpus, w, self.config, within)
            if code != OK:
                return False
            sizes = ((w.gpus, over),)
        else:
            sizes = []
            for g in elastic.start_sizes(w):
                code, over = check(team, usage, g, w, self.config, within)
                if code == OK:
                    sizes.append((g, over))
            if not sizes:
                return False
        v = self.cap.views.get((w.gpu_model, w.min_gpu_memory_mib)) or self.cap.view(view_key(w))
        if w.min_gpus is not None and elastic.may_take_asked(self.config, w):
            done = self._start_asked(w, v, sizes[0], starving)
            if done is not None:
                return done
        for g, over in sizes:
            placed = self._place(w, v, g)
            if placed is not None:
                if w.is_fraction and self._opens_card_beyond_quota(w, team, placed):
                    self.card_deferred.append(w)
                    return False  # borrowing a card: after the other work of this cycle (new_card_waits)
                self._start(w, g, over, placed, starving)
                return True
        lent = self.lent()
        reclaim = self.reclaimable() or self.soft_held()
        held = bool(self.reservations) and self.borrower_held()
        las = self.las_room(w.team)
        for g, over in sizes:
            if not (lent or (reclaim and not over) or (over and held) or las):
                continue
            key = (w.team, v.key, not over, self.st.las_level(w) if las else 0, las and elastic.is_new(w))
            if g >= self.room_fail.get(key, float("inf")):
                continue
            room = preemption.make_room(self, w, v, g, entitled=not over)
            if room is not None:
                placed, plan = room
                preemption.apply_plan(self, w, plan)
                self.whole_fail.clear()
                if plan.awaiting:
                    self._await(w, placed, plan.awaiting)
                    return False
                self._start(w, g, over, placed, starving)
                return True
            self.room_fail[key] = g
        if self.reservations and self.config.time_backfill and not starving and not w.is_fraction and self.backfill_open():
            for g, over in sizes:
                found = reservation.backfill(self, w, int(g))
                if found is not None:
                    placed, why = found
                    self._start(w, g, over, placed, starving)
                    self.starts[-1] = Start(w.id, self.starts[-1].allocation, f"{self.starts[-1].reason.split(';')[0]}; {why}", over)
                    return True
        if starving and not w.is_fraction:
            g, over = sizes[-1]
            res = reservation.reserve(self, w, v, int(g), hard=not over)
            if res is not None and not over:
                self._preempt_overrunning(w, res)
        return False

    def _start_asked(self, w: Workload, v, size, starving: bool) -> bool | None:
        """New elastic work: start at the size it asked for, making room if it must
        (elastic.may_take_asked). None: no room at that size, try smaller sizes."""
        g, over = size
        if g < w.gpus - EPSILON:
            return None
        placed = self._place(w, v, g)
        if placed is None:
            room = preemption.make_room(self, w, v, g, entitled=not over)
            if room is None:
                return None
            placed, plan = room
            preemption.apply_plan(self, w, plan)
            self.whole_fail.clear()
            if plan.awaiting:
                self._await(w, placed, plan.awaiting)
                return False
        self._start(w, g, over, placed, starving)
        return True

    def backfill_open(self) -> bool:
        """Could work with a time limit (or, where allowed, an estimate) start on held cards?"""
        return bool(self.config.time_backfill and self.st.timed_pending() and any(r.held for r in self.reservations.values()))

    def _preempt_overrunning(self, w: Workload, res) -> None:
        """Work backfilled on an estimate that ran past it leaves the reserved GPUs (with the usual notice)."""
        for r in reservation.overrunning(self, res):
            self.gone.add(r.workload.id)
            self.add_usage(r.workload.team, r.workload.user, -r.allocation.gpus)
            self.usage_changed(r.workload.team)
            self.preempts.append(
                Preempt(r.workload.id, f"ran past its run-time estimate on GPUs reserved for {w.id}, which waited longest", w.id)
            )

    def _start(self, w: Workload, gpus: float, over: bool, placed, starving: bool) -> None:
        cap = self.cap
        if w.is_fraction:
            g, mem = placed
            cap.take(g, w.gpus, mem)
            shares = (GpuShare(cap.node_names[cap.gpu_node[g]], cap.gpu_uuid[g], w.gpus, int(round(mem))),)
        else:
            cap.take_cards(placed)
            cached = cap._whole_shares
            shares = tuple([cached[g] or cap.whole_share(g) for g in placed])
        self.add_usage(w.team, w.user, gpus)
        self._started_gpus[w.team] = self._started_gpus.get(w.team, 0.0) + gpus
        if gpus > (self.st.teams.get(w.team) or team_of(self.st.teams, w.team)).quota + EPSILON:
            self._oversized_started[w.team] = self._oversized_started.get(w.team, 0.0) + gpus
        self._within.pop(w.team, None)
        self.started.add(w.id)
        self._entitled = None
        short = w.min_gpus is not None and gpus < w.gpus - EPSILON
        why = (w.team, over, starving, bool(self.reservations), short and (gpus, w.gpus))
        reason = self.start_reasons.get(why)
        if reason is None:
            reason = self.start_reasons[why] = self._start_reason(w, gpus, over, starving, short)
        self.starts.append(Start(workload_id=w.id, allocation=Allocation(w.id, shares, self.now), reason=reason, over_quota=over))

    def _await(self, w: Workload, placed, leaving: tuple[str, ...]) -> None:
        """``w`` needs GPUs of work preempted with notice: hold them in this cycle, start once they are free."""
        cap = self.cap
        if w.is_fraction:
            g, mem = placed
            cap.take(g, w.gpus, mem)
            mine = {g: (w.gpus, mem)}
        else:
            cap.take_cards(placed)
            mine = {g: (1.0, float(cap.gpu_mem[g])) for g in placed}
        # make_room released all the leaving work's GPUs: what w does not hold stays theirs
        # until they are gone (no card used twice, not even by work started later in this cycle).
        still: dict[int, list[float]] = {}
        for wid in leaving:
            for sh in self.st.running[wid].allocation.shares:
                g = cap.share_gpu(sh)
                if g is not None:
                    frac, mem = cap.share_amounts(g, sh)
                    acc = still.setdefault(g, [0.0, 0.0])
                    acc[0] += frac
                    acc[1] += mem
        for g, (frac, mem) in still.items():
            held_frac, held_mem = mine.get(g, (0.0, 0.0))
            frac, mem = max(0.0, frac - held_frac), max(0.0, mem - held_mem)
            if frac > EPSILON or mem > EPSILON:
                cap.take(g, frac, mem)
        self.awaiting[w.id] = leaving
        self.usage_changed(w.team)

    def _start_reason(self, w: Workload, gpus: float, over: bool, starving: bool, short: bool) -> str:
        team = team_of(self.st.teams, w.team)
        reason = quota_start_reason(w.team, team.quota, over)
        if starving:
            reason += f"; waited longer than {fmt(self.config.reservation_after_s)} s, so it went first"
        elif self.reservations:
            reason += "; backfilled around a reservation"
        if short:
            reason += f"; elastic: started with {fmt(gpus)} of the {fmt(w.gpus)} GPUs asked"
        return reason

    def attempt(self, w: Workload, starving: bool = False) -> bool:
        """``try_start``, answering at once for a request shaped like one that
        already failed with nothing decided since (the same answer)."""
        # (starts, reservations) changes whenever a decision changes the state:
        # preemptions and shrinks come with a start, a reservation holds cards.
        version = (len(self.starts), len(self.reservations))
        if version != self._failed_at:
            self._failed[0].clear()
            self._failed[1].clear()
            self._failed_at = version
        failed = self._failed[starving]
        key = self.st.request_shape(w)
        if key is not None and key in failed:
            return False
        self._tries += 1
        if self.try_start(w, starving):
            return True
        if key is not None and (len(self.starts), len(self.reservations)) == version:
            failed.add(key)
        return False

    # ------------------------------------------------------------ the whole cycle

    def never_starts(self, w: Workload) -> bool:
        """Could not start even on an empty pool: invalid, too big, beyond its team's limit."""
        if w.id in self.st.invalid:
            return True
        limit = team_of(self.st.teams, w.team).limit
        g = elastic.smallest_size(w)
        if limit is not None and g > limit + EPSILON:
            return True
        v = self.cap.view(view_key(w))
        if w.is_fraction:
            return not v.totals_desc or (w.gpu_memory_mib or 0) > max(m for c, (_, m) in enumerate(self.cap.classes) if c in v.classes)
        return v.nodes_needed(int(g)) is None

    def nothing_can_start(self) -> bool:
        """No free capacity and no way to make any: the rest only needs reasons."""
        version = (len(self.starts), len(self.reservations))
        if version == self._free_at:
            return False
        if version == self._stuck_at:
            return True
        v = self.cap.view((None, None))
        if v.free_total or v.partial:
            self._free_at = version
            return False
        stuck = not self.lent() and not ((self.reclaimable() or self.soft_held()) and self.anyone_entitled()) and not self.borrower_held()
        if stuck and self.config.las_thresholds_gpu_s:
            stuck = not any(self.las_room(t) for t, q in self.st.queues.items() if q.count)
        if stuck:
            self._stuck_at = version
        else:
            self._free_at = version
        return stuck

    def anyone_entitled(self) -> bool:
        """Does any team wait for work that fits within its quota (and so may reclaim)?"""
        if self._entitled is None:
            st = self.st
            self._entitled = False
            for name, q in st.queues.items():
                if not q.count:
                    continue
                smallest = min(d[0] for d in st.demand(name).values())
                if self.quota_used(name) + smallest <= team_of(st.teams, name).quota + EPSILON:
                    self._entitled = True
                    break
        return self._entitled

    def new_work_room(self, team: str) -> bool:
        """Does ``team`` run elastic jobs that new work may shrink (elastic.new_work_victim)? Once per team and cycle."""
        memo = getattr(self, "_new_room", None)
        if memo is None:
            memo = self._new_room = {}
        room = memo.get(team)
        if room is None:
            running = self.st.running
            room = memo[team] = any(
                r.workload.team == team and not elastic.is_new(r.workload) and r.allocation.gpus > r.workload.min_gpus
                for r in (running[wid] for wid in self.st.elastic_running)
            )
        return room

    def lent(self) -> bool:
        """Do elastic jobs hold lent GPUs (which any workload that may start can take back)?"""
        if self._lent is None:
            st = self.st
            self._lent = any(
                wid not in self.gone and elastic.growth_gpus(st.running[wid].workload, len(self.shares_of(wid))) for wid in st.elastic_running
            )
        return self._lent

    def las_room(self, team: str) -> bool:
        """Could least attained service let some pending work of ``team`` preempt its own team's running work?"""
        cfg = self.config
        if cfg.new_work_shrinks_elastic and self.st.elastic_running and cfg.las_thresholds_gpu_s and cfg.preemption and self.new_work_room(team):
            return True  # or shrink it for new work (elastic.new_work_victim)
        if not (cfg.las_thresholds_gpu_s and cfg.preemption):
            return False
        top = self.st.las_top(team)
        return top > 0 and self.lowest_pending_level(team) < top  # only lower-level work overtakes

    def lowest_pending_level(self, team: str) -> int:
        """The lowest LAS level of ``team``'s pending work as the cycle began (the work that starts
        in the cycle only raises it: a stale answer is too low, never too high)."""
        lo = self._lowest_level.get(team)
        if lo is None:
            las = self.config.las_thresholds_gpu_s
            lo = len(las) + 1
            q = self.st.queues.get(team)
            for lst in q.users.values() if q is not None else ():
                # each user's work in queue order (priority, level, ...): its first has the lowest level
                # unless its priorities differ
                level = las_level(lst[0], las) if lst[0].priority == lst[-1].priority else min(las_level(p, las) for p in lst)
                if level < lo:
                    lo = level
                    if not lo:
                        break
            self._lowest_level[team] = lo
        return lo

    def soft_held(self) -> bool:
        """Does a borrower's reservation hold GPUs, or work preempted with notice (which work within quota may take)?"""
        # (Hard holds too: a fraction within its quota may take one card of them, see preemption.py.)
        return bool(self.st.leaving) or any(r.held for r in self.reservations.values())

    def borrower_held(self) -> bool:
        """Does a borrower's reservation hold cards (which a fraction of a borrower ahead of its team may take)?"""
        return any(not r.hard and r.held for r in self.reservations.values())

    def reclaimable(self) -> bool:
        """Could work within its quota preempt anything at all?"""
        if self._reclaim is None:
            self._reclaim = self.config.preemption and (self.st.any_over_quota(self.gone) or bool(preemption.cards_over(self)))
        return self._reclaim

    def team_hopeless(self, team_name: str) -> bool:
        """Nothing left in this team's queue can start in this cycle."""
        if self.backfill_open() and self.st.timed_pending(team_name):
            return False
        team = team_of(self.st.teams, team_name)
        usage = self.usage.get(team_name, 0.0)
        demand = self.st.demand(team_name)
        smallest = min(d[0] for d in demand.values())
        if team.limit is not None and usage + smallest > team.limit + EPSILON:
            return True
        quota_used = self.quota_used(team_name)
        within = quota_used + smallest <= team.quota + EPSILON
        if not within and not self.config.borrowing:
            return True
        lent = self.lent()
        reclaim = self.reclaimable() or self.soft_held()
        if self.las_room(team_name):
            return False  # some of its work may overtake its own longer-running work
        inf = float("inf")
        for vk, (least, least_whole, has_fraction) in demand.items():
            v = self.cap.view(vk)
            if has_fraction and (v.free_total or v.partial):
                return False
            if least_whole is not None and (least_whole < self.whole_fail.get(vk, inf) or self.config.elastic_spread_start) and v.free_total >= least_whole:
                return False  # (spread starts: the memo of consolidated gangs does not say, enough free cards may)
            entitled = quota_used + least <= team.quota + EPSILON
            if (lent or (reclaim and entitled) or (not entitled and self.borrower_held())) and least < self.room_fail.get((team_name, vk, entitled), inf):
                return False
        return True

    def run(self) -> Decisions:
        st = self.st
        cfg = self.config
        self.cap.begin()
        try:
            estimate_suspend.suspend(self)  # (las_suspend_elastic; nothing when off)
            if cfg.ordering == "fifo":
                for w in st.fifo:
                    if self.never_starts(w):
                        continue  # would block the queue forever
                    if self.nothing_can_start() or not self.try_start(w):
                        self.fifo_blocker = w
                        break
            else:
                self._starving_loop()
                self._fair_loop()
                if self.deferred or self.deferred_runs:
                    self._deferred_loop()
                if self.las_deferred or self.las_deferred_runs:
                    self.deferred, self.las_deferred = self.las_deferred, []
                    self.deferred_runs, self.las_deferred_runs = self.las_deferred_runs, []
                    self._deferred_loop()
                if self.card_deferred:
                    self._card_deferred_loop()
            if cfg.elastic and st.elastic_running:
                elastic.grow(self)
            end = EndState.capture(self)
        finally:
            self.cap.rollback()
        resizes = []
        for wid in sorted(self.resize_reason):
            if wid in self.gone:
                continue
            shares = tuple(self.current[wid])
            if shares == st.running[wid].allocation.shares:
                continue
            old = st.running[wid].allocation
            resizes.append(Resize(workload_id=wid, allocation=Allocation(wid, shares, old.started_at), reason=self.resize_reason[wid]))
        return Decisions(
            starts=tuple(self.starts), preemptions=tuple(self.preempts), resizes=tuple(resizes), pending=LazyPending(end),
            reserved=tuple(self.reservations), reserved_gpus=float(sum(len(r.held) for r in self.reservations.values())),
        )

    def _starving_loop(self) -> None:
        """Starving workloads first, oldest first (reservation.starving); those at a higher LAS
        level than their team's pending work after the fair loop (``las_yields``).

        Thousands may wait in a few shapes: one whose shape already failed
        with nothing decided since costs a few comparisons here (the same
        answer as ``attempt``, without the call)."""
        after = self.config.reservation_after_s
        if after is None:
            return
        cutoff = self.now - after
        self.starving_until = cutoff
        starts, reservations, shapes, failed = self.starts, self.reservations, self.st._shapes, self._failed[1]
        if self.shortcuts:
            self._starving_jumps(cutoff)
            return
        first = self.starving_first
        seen = None
        for w in self.st.fifo:
            if w.submitted_at > cutoff:
                return
            version = (len(starts), len(reservations))
            if version != seen:
                # nothing_can_start() changes only with a decision
                seen = version
                if self.nothing_can_start():
                    return  # the fair loop stops at once too: same state
            first.append(w)
            if version == self._failed_at and shapes.get(w.id) in failed:
                continue
            if self.las_yields(w) or estimate_suspend.yields(self, w):
                self.las_deferred.append(w)
                continue
            if self._borrows(w) and self.anyone_entitled():
                self.deferred.append(w)  # after work within quota (_fair_loop)
                continue
            self.attempt(w, starving=True)

    def _starving_jumps(self, cutoff: float) -> None:
        """``_starving_loop``'s walk, without stepping over the workloads whose
        shapes already failed: from the starving work indexed by shape
        (``Scheduler.starving_index``), a heap holds each shape's next workload
        not yet passed, and a failed shape leaves it until something is decided
        (then the heap is rebuilt from where the walk is). The same workloads
        are tried in the same order."""
        st = self.st
        fifo = st.fifo
        if not fifo or fifo[0].submitted_at > cutoff:
            return
        index = st.starving_index(cutoff)
        starts, reservations, failed = self.starts, self.reservations, self._failed[1]
        at = (float("-inf"), "")  # the walk has passed every workload before this (submitted_at, id)
        heap = None
        seen = None
        # A shape whose workload was deferred (a borrower while work within quota waits) has all
        # its later workloads deferred too until something is decided (its team's quota use and
        # whether anyone waits within quota change only with a decision): shape -> its first
        # deferred index; they are deferred as one run, then put back in submit order.
        runs: dict = {}
        deferred: list = []
        las_runs: dict = {}  # the same for starving work that yields to its team's lower LAS levels (las_yields)
        las_deferred: list = []

        def defer_runs(upto) -> None:
            for shape, k0 in runs.items():
                lst = index[shape]
                k1 = bisect_left(lst, upto, k0)
                if k1 > k0:
                    self.deferred_runs.append((lst, k0, k1))
            runs.clear()
            for shape, k0 in las_runs.items():
                lst = index[shape]
                k1 = bisect_left(lst, upto, k0)
                if k1 > k0:
                    self.las_deferred_runs.append((lst, k0, k1))
            las_runs.clear()

        while True:
            version = (len(starts), len(reservations))
            if version != seen:
                seen = version  # nothing_can_start() changes only with a decision
                if runs or las_runs:
                    defer_runs(at)
                if self.nothing_can_start():
                    break  # the fair loop stops at once too: same state
                heap = None
            if heap is None:
                skip = failed if version == self._failed_at else ()
                heap = []
                for shape, lst in index.items():
                    if shape not in skip:
                        k = bisect_left(lst, at)
                        if k < len(lst):
                            heap.append((lst[k], k, shape))
                heapify(heap)
            if not heap:
                break
            entry, k, shape = heappop(heap)
            if entry[0] > cutoff:
                break
            w = entry[2]
            at = (entry[0], entry[1] + "\0")  # just after w and before anything submitted after it
            if self.las_yields(w):
                if shape is not None:
                    las_runs[shape] = k  # (las_yields reads the team's queue and starts: constant until a decision)
                    continue
                las_deferred.append(entry)
            elif estimate_suspend.yields(self, w):
                las_deferred.append(entry)  # (per workload: its estimate, not its shape)
            elif self._borrows(w) and self.anyone_entitled():
                # after work within quota (_fair_loop), as in _starving_loop
                if shape is not None:
                    runs[shape] = k  # and the rest of its shape, until something is decided
                    continue
                deferred.append(entry)
            else:
                self.attempt(w, starving=True)
            if (len(starts), len(reservations)) == version and shape not in failed:
                lst = index[shape]  # invalid work (no shape) fails without being remembered: its next one
                if k + 1 < len(lst):
                    heappush(heap, (lst[k + 1], k + 1, shape))
        if runs or las_runs:
            # The walk ended with nothing decided since: a stop (nothing can start) ends it where
            # it is, the end of the starving work defers each run to the cutoff.
            defer_runs(at if self.nothing_can_start() else (cutoff, "\U0010ffff"))
        if deferred:
            self.deferred_runs.append((deferred, 0, len(deferred)))  # invalid work, in the walk's (submit) order
        if las_deferred:
            self.las_deferred_runs.append((las_deferred, 0, len(las_deferred)))

    def las_yields(self, w: Workload) -> bool:
        """Does starving ``w`` go after the fair loop, as its team waits with work of a lower least-attained-
        service level (and no lower priority)? Its wait counts from its first submission: a job preempted
        for least attained service would be starving at once and take back the GPUs freed for the work it
        was preempted for (again each time that work preempted another), for as long as that work waited."""
        las = self.config.las_thresholds_gpu_s
        if not las or w.attained_gpu_s < las[0]:
            return False
        version = len(self.starts)
        front = self._team_front.get(w.team)
        if front is None or front[0] != version:
            best = None
            q = self.st.queues.get(w.team)
            started = self.started
            for lst in q.users.values() if q is not None else ():
                for p in lst:  # each user's pending work in queue order: its first not started yet
                    if p.id not in started:
                        k = (-p.priority, las_level(p, las))
                        if best is None or k < best:
                            best = k
                        break
            front = self._team_front[w.team] = (version, best)
        return front[1] is not None and front[1] < (-w.priority, las_level(w, las))

    def _opens_card_beyond_quota(self, w: Workload, team, placed) -> bool:
        """Would fraction ``w``, placed on an empty card, borrow that card (``new_card_waits``)?"""
        if self.cap.free_frac[placed[0]] < 1.0 - EPSILON:
            return False  # on a card its team (or another) already holds part of
        return self.new_card_waits(w, team)

    def new_card_waits(self, w: Workload, team=None) -> bool:
        """Must fraction ``w`` wait rather than open a card? So while its team would then hold
        more cards than its quota (preemption.cards_held) and another team waits with work
        within its quota: such a card is borrowed, and the card rule (preemption.card_victims)
        would take it back at once (a requeued fraction must not jump back onto a card freed,
        or held by a reservation, while work within quota waits for one). It goes after the
        rest of the cycle's work (``_card_deferred_loop``)."""
        if not self._card_rule:
            return False
        team = team or team_of(self.st.teams, w.team)
        cards = preemption.cards_held(self, w.team) + self._started_gpus.get(w.team, 0.0)
        if cards + 1.0 <= team.quota + EPSILON:
            return False
        return self.others_entitled(w.team)

    def others_entitled(self, team_name: str) -> bool:
        """Does a team other than ``team_name`` wait for work that fits within its quota?"""
        if not self.anyone_entitled():
            return False
        st = self.st
        for name, q in st.queues.items():
            if name == team_name or not q.count:
                continue
            smallest = min(d[0] for d in st.demand(name).values())
            if self.quota_used(name) + smallest <= team_of(st.teams, name).quota + EPSILON:
                return True
        return False

    def _borrows(self, w: Workload) -> bool:
        """Would ``w`` start beyond its team's quota (borrowing)?"""
        team = self.st.teams.get(w.team) or team_of(self.st.teams, w.team)
        return self.quota_used(w.team) + elastic.smallest_size(w) > team.quota + EPSILON

    def _card_deferred_loop(self) -> None:
        """Fractions that waited rather than open a card (new_card_waits): now, in the order they
        came, once every other workload had its turn (the card may still be free: nobody within
        quota could use it)."""
        deferred, self.card_deferred = self.card_deferred, []
        self._card_rule = False
        shapes = set()
        for w in deferred:
            # The first of each shape only: later ones of a shape that already failed were
            # answered without a try (attempt), so the list depends on the shortcuts; its
            # first workload of each shape does not.
            shape = self.st.request_shape(w)
            if shape in shapes:
                continue
            shapes.add(shape)
            if w.id not in self.started and not self.nothing_can_start():
                self.try_start(w, w.submitted_at <= (self.starving_until if self.starving_until is not None else float("-inf")))

    def _deferred_loop(self) -> None:
        """Starving borrowers held back while work within its quota waited: now, oldest first."""
        if self.deferred_runs:
            runs, self.deferred_runs = self.deferred_runs, []
            self._deferred_jumps(runs)
        deferred, self.deferred = self.deferred, []
        started, starts, reservations = self.started, self.starts, self.reservations
        shapes, failed = self.st._shapes, self._failed[1]
        for w in deferred:
            if w.id in started:
                continue
            # attempt()'s answer for a shape that failed with nothing decided since, without the call
            if self.shortcuts and (len(starts), len(reservations)) == self._failed_at and shapes.get(w.id) in failed:
                continue
            self.attempt(w, starving=True)

    def _deferred_jumps(self, runs: list[tuple]) -> None:
        """``_deferred_loop`` over the shortcut walk's runs: the runs merged in submit order by a heap;
        a run whose shape failed with nothing decided since is parked (its workloads would each be
        answered "no" without a call) until something is decided, then resumes where the walk is.
        The same workloads are tried in the same order as the flat loop."""
        started, starts, reservations = self.started, self.starts, self.reservations
        shapes, failed = self.st._shapes, self._failed[1]
        heap = [(lst[k0], i, k0) for i, (lst, k0, _) in enumerate(runs)]
        heapify(heap)
        parked: dict[int, int] = {}  # run -> its next index, while its shape is known to fail
        parked_at = None
        at = None
        while True:
            version = (len(starts), len(reservations))
            if parked and version != parked_at:
                for i, k in parked.items():  # something was decided: every parked run resumes after ``at``
                    lst, _, k1 = runs[i]
                    k = bisect_left(lst, at, k, k1)
                    if k < k1:
                        heappush(heap, (lst[k], i, k))
                parked.clear()
            if not heap:
                return
            entry, i, k = heappop(heap)
            w = entry[2]
            at = (entry[0], entry[1] + "\0")  # just after w
            nxt = k + 1
            if w.id not in started:
                if version == self._failed_at and shapes.get(w.id) in failed:
                    parked[i] = nxt
                    parked_at = version
                    continue
                self.attempt(w, starving=True)
            if nxt < runs[i][2]:
                heappush(heap, (runs[i][0][nxt], i, nxt))

    def _fair_loop(self) -> None:
        st = self.st
        queues = {t: q.users for t, q in st.queues.items() if q.count}
        # Starving work (submitted up to starving_until) went first: skipped here.
        everything = self.cap.view((None, None))
        if self.shortcuts and not (everything.free_total or everything.partial) and self.nothing_can_start() and not self.backfill_open():
            return  # the loop below would stop before its first pick: no cursor to build
        self.cursor = cur = FairCursor(queues, st.teams, self.usage, self.user_usage, skip_until=self.starving_until,
                                       history=st.history, now=self.now, config=self.config, las=self.config.las_thresholds_gpu_s,
                                       on_estimates=self.config.las_on_estimates)
        # team -> (self._tries, team_hopeless answer): the answer holds until the next try_start.
        hopeless_at: dict[str, tuple[int, bool]] = {}
        failed, shapes, shape = self._failed[0], st._shapes, st.request_shape

        def passed(w: Workload) -> bool:  # attempt() would answer at once (a failed shape)
            known = shapes.get(w.id)
            return (known if known is not None else shape(w)) in failed
        while True:
            if not (everything.free_total or everything.partial) and self.nothing_can_start() and not self.backfill_open():
                return
            pick = cur.next()
            if pick is None:
                return
            _, w = pick
            if (self.deferred or self.deferred_runs) and self._borrows(w):
                self._deferred_loop()  # starving borrowers before the other borrowers
            if not self.attempt(w):
                known = hopeless_at.get(w.team)
                if known is not None and known[0] == self._tries and self.shortcuts:
                    hopeless = known[1]
                else:
                    hopeless = self.team_hopeless(w.team)
                    hopeless_at[w.team] = (self._tries, hopeless)
                if hopeless:
                    cur.drop(w.team)
                    continue
                if self.shortcuts and not (self.deferred or self.deferred_runs) and self._failed_at == (len(self.starts), len(self.reservations)) and not (
                    not (everything.free_total or everything.partial) and self.nothing_can_start() and not self.backfill_open()
                ):
                    # The team's next picks whose shapes failed would each be answered at once, with the
                    # same answers here (not hopeless, nothing to stop for): passed over in one go.
                    cur.pass_over(w.team, passed)
            cur.done_with(w.team)


def run_cycle(st, now: float) -> Decisions:
    return Cycle(st, now).run()
