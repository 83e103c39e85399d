"""The stateful scheduler: an indexed snapshot kept up to date by events.

``Scheduler`` holds what a cycle needs, indexed: free capacity per node and
view (capacity.py), usage per team and user, each team's queue as sorted
per-user lists and one list in submit order. Events update it in
O(log n) (plus a short list shift); a cycle then costs what the decisions
cost, not what the whole snapshot costs.

``Scheduler(...).cycle(now)`` returns exactly what ``schedule(snapshot)``
returns for the same state (``schedule`` builds a Scheduler from the
snapshot); both are pure: a cycle changes nothing until the caller applies
its decisions.

Applying decisions (the contract for callers):
1. preemptions and shrinking resizes first: the preempted workload stops and
   returns to pending with its original ``submitted_at``; a shrunk job keeps
   the GPUs in its new allocation and releases the others;
2. then starts and growing resizes. Starts in the same Decisions may use
   GPUs released in step 1.
``Scheduler.apply(decisions)`` does exactly this to the scheduler's own
state; a caller that runs real processes reports each change with the event
methods (``submit``, ``cancel``, ``started``, ``finished``, ``resized``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter, defaultdict
from operator import attrgetter

from .capacity import Capacity
from .cycle import run_cycle
from .elastic import smallest_size
from .fairshare import protection_key, team_of
from .model import EPSILON, Allocation, Decisions, Pool, Running, SchedulerConfig, Snapshot, Team, UsageHistory, Workload
from .ordering import TeamQueue, fifo_key, las_level, queue_key, queue_key_for, sorted_add, sorted_remove
from .placement import view_key
from .reasons import is_valid

_submitted = attrgetter("submitted_at")


class Scheduler:
    def __init__(self, pool: Pool, teams: dict[str, Team] | None = None, config: SchedulerConfig | None = None, in_use=()):
        """``in_use``: shares held by running work the caller registers itself (``from_snapshot``)."""
        self.pool = pool
        self.teams: dict[str, Team] = dict(teams or {})
        self.config = config or SchedulerConfig()
        self.capacity = Capacity(pool, in_use)
        self.pending: dict[str, Workload] = {}
        self.queues: dict[str, TeamQueue] = {}
        self.queue_key = queue_key_for(self.config.las_thresholds_gpu_s, self.config.las_on_estimates)
        self.fifo: list[Workload] = []
        self.running: dict[str, Running] = {}
        self.team_running: dict[str, dict[str, Running]] = {}
        self.elastic_running: set[str] = set()
        self.leaving: set[str] = set()  # preempted with notice: still holding GPUs
        self.history: UsageHistory | None = None  # decayed past usage (decay.py), set by the caller
        self.usage: dict[str, float] = {}
        self.user_usage: dict[tuple[str, str], float] = {}
        self._ranked: dict[str, list[Running]] = {}
        self._las_top: dict[str, int] = {}  # team -> highest LAS level of its running work (las_top)
        # team -> what a quota reclaim may take of it, kept between cycles while its running work is
        # unchanged (preemption._team_victims; checked against ranked(), which is rebuilt on any change)
        self.victims_memo: dict[str, tuple] = {}
        # (team, ...) -> least attained service's room-making units for its pending work, kept the same
        # way (preemption.las_units)
        self.las_units_memo: dict[tuple, tuple] = {}
        self.oversized_memo: dict[str, tuple] = {}  # team -> (ranked(), quota, runs work larger than its quota?)
        self._demand: dict[str, dict] = {}  # per team, built from _asks when needed
        self._asks: dict[str, dict[tuple, int]] = {}  # per team: (view, size, fraction?) -> how many wait
        self.invalid: set[str] = set()  # pending workloads that ask for an impossible amount
        self._shapes: dict[str, tuple] = {}  # pending workload -> request_shape
        self._timed: dict[str, int] = {}  # per team: pending work with a time limit (or estimate) that may backfill
        # Pending work submitted up to _starving_until, by request shape, each list of
        # (submitted_at, id, workload) in submit order:
        # built when a cycle first asks (starving_index), then kept up to date by the events.
        self._starving: dict[tuple | None, list[tuple]] | None = None
        self._starving_until = float("-inf")
        # Copy-on-write: a cycle's lazy pending list reads the queue lists as
        # they were; the first change to a list after that copies it.
        self._shared = False
        self._own: set[int] = set()

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> "Scheduler":
        # Index everything at once rather than event by event: same state, less work.
        s = cls(snap.pool, snap.teams, snap.config, in_use=[sh for r in snap.running for sh in r.allocation.shares])
        s.history = snap.history
        s._add_running(snap.running)
        s.submit_many(snap.pending)
        return s

    def _add_running(self, runs) -> None:
        """Register running work whose shares the capacity index already holds."""
        running, team_running, usage, user_usage = self.running, self.team_running, self.usage, self.user_usage
        views = set()
        for r in runs:
            w = r.workload
            if w.id in running or w.id in self.pending:
                raise ValueError(f"workload {w.id} is already known to the scheduler")
            running[w.id] = r
            tr = team_running.get(w.team)
            if tr is None:
                tr = team_running[w.team] = {}
            tr[w.id] = r
            if w.min_gpus is not None and w.is_elastic:
                self.elastic_running.add(w.id)
            if r.leaving:
                self.leaving.add(w.id)
            views.add((w.gpu_model, w.min_gpu_memory_mib))
            g = r.allocation.gpus
            usage[w.team] = round(usage.get(w.team, 0.0) + g, 9)
            key = (w.team, w.user)
            user_usage[key] = round(user_usage.get(key, 0.0) + g, 9)
        self._ranked.clear()
        self._las_top.clear()
        self.victims_memo.clear()
        self.las_units_memo.clear()
        for vk in views:
            self.capacity.view(vk)

    def snapshot(self, now: float) -> Snapshot:
        return Snapshot(
            pool=self.pool,
            teams=dict(self.teams),
            running=tuple(self.running[k] for k in sorted(self.running)),
            pending=tuple(self.fifo),
            now=now,
            config=self.config,
            history=self.history,
        )

    # ------------------------------------------------------------ events

    def submit(self, w: Workload) -> None:
        """A workload joins the queue (new, or back after a preemption)."""
        if w.id in self.pending or w.id in self.running:
            raise ValueError(f"workload {w.id} is already known to the scheduler")
        self.pending[w.id] = w
        if not is_valid(w):
            self.invalid.add(w.id)
        q = self.queues.get(w.team)
        if q is None:
            q = self.queues[w.team] = TeamQueue(self.queue_key)
        self._writable(q, w.user)
        q.add(w)
        sorted_add(self._writable_fifo(), w, fifo_key)
        self.capacity.view(view_key(w))
        self._ask(w, 1)
        self._time(w, 1)
        if self._starving is not None and w.submitted_at <= self._starving_until:
            insort(self._starving.setdefault(self.request_shape(w), []), (w.submitted_at, w.id, w))

    def submit_many(self, workloads) -> None:
        """Submit many workloads at once: one sort instead of one insertion each.

        The same state as ``submit`` one by one; the per-workload work is kept
        to C-level passes (sorts, maps, counters) and what differs between
        workloads is computed once per distinct request (a queue of 50,000
        holds a few hundred)."""
        pending, queues, invalid, running = self.pending, self.queues, self.invalid, self.running
        by_submit = attrgetter("submitted_at", "id")
        incoming = sorted(workloads, key=by_submit)
        if not incoming:
            return
        # What validity, asks, time limits and the order read, judged once per distinct request.
        shape_of = attrgetter("team", "kind", "gpus", "min_gpus", "max_gpus", "gpu_model", "min_gpu_memory_mib", "priority", "time_limit_s", "estimate_s")
        shapes = Counter(map(shape_of, incoming))
        # (-priority, submitted_at, id), as queue_key, with C-level keys: stable sorts.
        if len({shape[7] for shape in shapes}) > 1:
            by_queue = sorted(incoming, key=attrgetter("priority"), reverse=True)
        else:
            by_queue = list(incoming)
        las = self.config.las_thresholds_gpu_s
        if self.config.las_on_estimates or (las and incoming and max(map(attrgetter("attained_gpu_s"), incoming)) >= las[0]):
            by_queue.sort(key=self.queue_key)  # some are above level 0 (all at level 0: already in order)
        ids = list(map(attrgetter("id"), by_queue))
        new = dict(zip(ids, by_queue))
        if len(new) != len(ids) or not pending.keys().isdisjoint(new) or not running.keys().isdisjoint(new):
            seen: set[str] = set()
            for wid in ids:
                if wid in seen or wid in pending or wid in running:
                    raise ValueError(f"workload {wid} is already known to the scheduler")
                seen.add(wid)
        if pending:
            pending.update(new)
        else:
            self.pending = new
        bad = set()
        views = set()
        timed = self._may_backfill
        for shape, n in shapes.items():
            team, kind, g, least, most, model, mem, _, limit, estimate = shape
            w = None
            if least is not None or most is not None or not (0 < g < 1 or (g >= 1 and g == int(g))):
                w = Workload(id="", user="", team=team, kind=kind, gpus=g, submitted_at=0.0, min_gpus=least, max_gpus=most)
                if not is_valid(w):
                    bad.add(shape)
                smallest = smallest_size(w)
            else:
                smallest = g
            views.add((model, mem))
            self._ask_key(team, ((model, mem), smallest, 0 < g < 1), n)
            if limit is not None or estimate is not None:
                w = Workload(id="", user="", team=team, kind=kind, gpus=g, submitted_at=0.0, time_limit_s=limit, estimate_s=estimate)
                if timed(w):
                    self._timed[team] = self._timed.get(team, 0) + n
        if bad:
            invalid.update(w.id for w in by_queue if shape_of(w) in bad)
        groups: defaultdict = defaultdict(list)
        for key, w in zip(map(attrgetter("team", "user"), by_queue), by_queue):
            groups[key].append(w)
        for (team, user), ws in groups.items():
            q = queues.get(team)
            if q is None:
                q = queues[team] = TeamQueue(self.queue_key)
            lst = q.users.get(user)
            if lst is None:
                q.users[user] = ws  # already in queue order
            else:
                lst = self._writable(q, user)
                if len(ws) < 16:  # a few into a long list: insertions, not a sort (keys are unique: the same order)
                    for w in ws:
                        insort(lst, w, key=self.queue_key)
                else:
                    lst.extend(ws)
                    lst.sort(key=self.queue_key)
            q.count += len(ws)
        if self.fifo:
            fifo = self._writable_fifo()
            if len(incoming) < 16:
                for w in incoming:
                    insort(fifo, w, key=by_submit)
            else:
                fifo.extend(incoming)
                fifo.sort(key=by_submit)
        else:
            self.fifo = incoming
        if self._starving is not None:
            for w in incoming[: bisect_right(incoming, self._starving_until, key=_submitted)]:
                insort(self._starving.setdefault(self.request_shape(w), []), (w.submitted_at, w.id, w))
        for vk in views:
            self.capacity.view(vk)

    def cancel(self, workload_id: str) -> Workload | None:
        """A pending workload leaves the queue (cancelled, or started)."""
        w = self.pending.get(workload_id)
        if w is None:
            return None
        if self._starving is not None and w.submitted_at <= self._starving_until:
            shape = self.request_shape(w)
            lst = self._starving[shape]
            del lst[bisect_left(lst, (w.submitted_at, w.id))]
            if not lst:
                del self._starving[shape]
        del self.pending[workload_id]
        self.invalid.discard(workload_id)
        self._shapes.pop(workload_id, None)
        q = self.queues[w.team]
        self._writable(q, w.user)
        q.remove(w)
        if not q.count:
            del self.queues[w.team]
        sorted_remove(self._writable_fifo(), w, fifo_key)
        self._ask(w, -1)
        self._time(w, -1)
        return w

    def started(self, w: Workload, allocation: Allocation, indexed: bool = False, leaving: bool = False) -> None:
        """A workload now holds ``allocation`` (leaves the queue if it was in it)."""
        self.cancel(w.id)
        if w.id in self.running:
            raise ValueError(f"workload {w.id} is already running")
        r = Running(w, allocation, leaving)
        if leaving:
            self.leaving.add(w.id)
        self.running[w.id] = r
        self.team_running.setdefault(w.team, {})[w.id] = r
        self._ranked.pop(w.team, None)
        self._las_top.pop(w.team, None)
        if w.is_elastic:
            self.elastic_running.add(w.id)
        self.capacity.view(view_key(w))
        if not indexed:
            self.capacity.take_shares(allocation.shares)
        self._use(w, allocation.gpus)

    def finished(self, workload_id: str) -> Running | None:
        """A running workload stopped (ended, failed, stopped or preempted)."""
        r = self.running.pop(workload_id, None)
        if r is None:
            return None
        w = r.workload
        tr = self.team_running[w.team]
        del tr[workload_id]
        if not tr:
            del self.team_running[w.team]
        self._ranked.pop(w.team, None)
        self._las_top.pop(w.team, None)
        self.elastic_running.discard(workload_id)
        self.leaving.discard(workload_id)
        self.capacity.give_shares(r.allocation.shares)
        self._use(w, -r.allocation.gpus)
        return r

    def resized(self, workload_id: str, allocation: Allocation) -> None:
        r = self.finished(workload_id)
        if r is None:
            raise KeyError(workload_id)
        self.started(r.workload, allocation)

    def attained(self, w: Workload) -> None:
        """Running ``w`` (same id, team, user and request) reports more attained service: it keeps its GPUs."""
        r = self.running[w.id]
        old = r.workload
        if (old.team, old.user, old.gpus, old.min_gpus, old.max_gpus) != (w.team, w.user, w.gpus, w.min_gpus, w.max_gpus):
            raise ValueError(f"workload {w.id}: only its attained service may change while it runs")
        r = Running(w, r.allocation, r.leaving)
        self.running[w.id] = r
        self.team_running[w.team][w.id] = r
        self._ranked.pop(w.team, None)
        self._las_top.pop(w.team, None)

    def leave(self, workload_id: str) -> None:
        """A running workload was preempted with notice: it keeps its GPUs until ``finished``."""
        r = self.running[workload_id]
        self.finished(workload_id)
        self.started(r.workload, r.allocation, leaving=True)

    def set_team(self, team: Team) -> None:
        """A team's quota, weight or limit changed (or a team was added)."""
        self.teams[team.name] = team
        self._ranked.pop(team.name, None)
        self.victims_memo.pop(team.name, None)

    def remove_team(self, name: str) -> None:
        """A team was removed: its work, if any is left, is ranked as a team of no quota (model.team_of)."""
        self.teams.pop(name, None)
        self._ranked.pop(name, None)
        self.victims_memo.pop(name, None)

    def set_history(self, history: UsageHistory | None) -> None:
        """Decayed past usage for the fair-share order (decay.DecayedUsage keeps it up to date)."""
        self.history = history

    def set_config(self, config: SchedulerConfig) -> None:
        old = self.config.las_thresholds_gpu_s
        old_on_estimates = self.config.las_on_estimates
        self.config = config
        self._shapes.clear()  # a request's shape reads the configuration
        self._las_top.clear()
        self._starving = None
        if config.las_thresholds_gpu_s != old or config.las_on_estimates != old_on_estimates:
            # The order inside each team changes: rebuild the queues.
            self.queue_key = queue_key_for(config.las_thresholds_gpu_s, config.las_on_estimates)
            pending = list(self.fifo)
            for w in pending:
                self.cancel(w.id)
            self.submit_many(pending)

    def set_pool(self, pool: Pool) -> None:
        """Nodes were added, removed or marked (un)schedulable: re-index capacity."""
        self.pool = pool
        self.capacity = Capacity(pool, [sh for r in self.running.values() for sh in r.allocation.shares])
        for w in list(self.pending.values()) + [r.workload for r in self.running.values()]:
            self.capacity.view(view_key(w))

    def apply(self, decisions: Decisions) -> None:
        """Apply decisions in the contract's order, as a caller would."""
        for p in decisions.preemptions:
            r = self.finished(p.workload_id)
            if r is not None:
                self.submit(r.workload)
        grows = []
        for rz in decisions.resizes:
            if rz.allocation.gpus < self.running[rz.workload_id].allocation.gpus - EPSILON:
                self.resized(rz.workload_id, rz.allocation)
            else:
                grows.append(rz)
        for s in decisions.starts:
            self.started(self.pending[s.workload_id], s.allocation)
        for rz in grows:
            self.resized(rz.workload_id, rz.allocation)

    # ------------------------------------------------------------ copy-on-write queues

    def share_queues(self) -> tuple[list[Workload], dict[str, dict[str, list[Workload]]]]:
        """The queues as they are now, for a reader that keeps them (no copy)."""
        self._shared = True
        self._own = set()
        return self.fifo, {t: dict(q.users) for t, q in self.queues.items() if q.count}

    def _writable_fifo(self) -> list[Workload]:
        if self._shared and id(self.fifo) not in self._own:
            self.fifo = list(self.fifo)
            self._own.add(id(self.fifo))
        return self.fifo

    def _writable(self, q: TeamQueue, user: str) -> list[Workload] | None:
        lst = q.users.get(user)
        if lst is not None and self._shared and id(lst) not in self._own:
            lst = q.users[user] = list(lst)
            self._own.add(id(lst))
        return lst

    # ------------------------------------------------------------ the cycle

    def cycle(self, now: float) -> Decisions:
        return run_cycle(self, now)

    # ------------------------------------------------------------ queries for the cycle

    def _use(self, w: Workload, gpus: float) -> None:
        self.usage[w.team] = round(self.usage.get(w.team, 0.0) + gpus, 9)
        key = (w.team, w.user)
        self.user_usage[key] = round(self.user_usage.get(key, 0.0) + gpus, 9)
        if abs(self.usage[w.team]) < EPSILON:
            del self.usage[w.team]
        if abs(self.user_usage[key]) < EPSILON:
            del self.user_usage[key]

    def ranked(self, team: str) -> list[Running]:
        """A team's running work, most protected first (fairshare.protection_key)."""
        r = self._ranked.get(team)
        if r is None:
            r = self._ranked[team] = sorted(self.team_running.get(team, {}).values(), key=protection_key)
        return r

    def any_over_quota(self, gone: set[str]) -> bool:
        """Could a quota reclaim find a victim at all?"""
        for name, rs in self.team_running.items():
            used = self.usage.get(name, 0.0) - sum(rs[w].allocation.gpus for w in gone if w in rs)
            if used > team_of(self.teams, name).quota + EPSILON:
                return True
        return False

    def request_shape(self, w: Workload) -> tuple | None:
        """Everything a failed start attempt reads from ``w`` (not its id,
        user or priority): equal shapes fail alike. None for invalid work."""
        shape = self._shapes.get(w.id)
        if shape is None:
            if w.id in self.invalid:
                return None
            shape = self._shapes[w.id] = (
                w.team, w.kind, w.gpus, w.preemptible, w.min_gpus, w.max_gpus, w.gpu_model, w.min_gpu_memory_mib, w.gpu_memory_mib,
                w.time_limit_s, w.estimate_s if self.config.backfill_on_estimates else None,
                self.las_level(w),
                w.attained_gpu_s <= 0 if self.config.new_work_shrinks_elastic else None,  # new work may shrink elastic work
            )
        return shape

    def starving_index(self, cutoff: float) -> dict[tuple | None, list[tuple]]:
        """Pending work submitted up to at least ``cutoff``, by request shape (None: invalid work),
        each list of (submitted_at, id, workload) in submit order; kept between cycles, extended as
        the cutoff moves on."""
        idx = self._starving
        if idx is None:
            idx = self._starving = {}
            self._starving_until = float("-inf")
        if cutoff > self._starving_until:
            fifo = self.fifo
            lo = bisect_right(fifo, self._starving_until, key=_submitted)
            hi = bisect_right(fifo, cutoff, key=_submitted)
            for w in fifo[lo:hi]:  # all later than what the lists hold: appending keeps them in order
                idx.setdefault(self.request_shape(w), []).append((w.submitted_at, w.id, w))
            self._starving_until = cutoff
        return idx

    def _may_backfill(self, w: Workload) -> bool:
        return w.time_limit_s is not None or (self.config.backfill_on_estimates and w.estimate_s is not None)

    def _time(self, w: Workload, n: int) -> None:
        if self._may_backfill(w):
            left = self._timed.get(w.team, 0) + n
            if left:
                self._timed[w.team] = left
            else:
                self._timed.pop(w.team, None)

    def timed_pending(self, team: str | None = None) -> int:
        """Pending work that may backfill by time: a limit, or an estimate where allowed (all teams, or one)."""
        if team is None:
            return sum(self._timed.values())
        return self._timed.get(team, 0)

    def las_top(self, team: str) -> int:
        """The highest LAS level of ``team``'s running work (0 when LAS is off); kept until its running work changes."""
        top = self._las_top.get(team)
        if top is None:
            top = self._las_top[team] = max((self.las_level(r.workload) for r in self.team_running.get(team, {}).values()), default=0)
        return top

    def las_level(self, w: Workload) -> int:
        """``w``'s least-attained-service queue (0 when LAS is off)."""
        las = self.config.las_thresholds_gpu_s
        return las_level(w, las) if las else 0

    def _ask(self, w: Workload, n: int) -> None:
        self._ask_key(w.team, ((w.gpu_model, w.min_gpu_memory_mib), smallest_size(w), w.is_fraction), n)

    def _ask_key(self, team: str, key: tuple, n: int) -> None:
        asks = self._asks.setdefault(team, {})
        left = asks.get(key, 0) + n
        if left:
            asks[key] = left
        else:
            del asks[key]
            if not asks:
                del self._asks[team]
        self._demand.pop(team, None)

    def demand(self, team: str) -> dict:
        """Per view: (smallest size, smallest whole gang, any fractions) of a team's queue."""
        d = self._demand.get(team)
        if d is None:
            d = {}
            for (vk, g, fraction), _ in self._asks.get(team, {}).items():
                least, whole, frac = d.get(vk, (float("inf"), None, False))
                if fraction:
                    frac = True
                else:
                    whole = g if whole is None else min(whole, g)
                d[vk] = (min(least, g), whole, frac)
            self._demand[team] = d
        return d
