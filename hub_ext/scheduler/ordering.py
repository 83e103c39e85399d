"""Queue order: who is offered GPUs next.

``fair`` (the default): teams take turns lowest share first (see
fairshare.team_share); inside a team the highest priority goes first, then
the user using the fewest GPUs, then the earliest submitted.

Least attained service (``SchedulerConfig.las_thresholds_gpu_s``, as
Tiresias's discretized 2D-LAS): inside a team, after priority, work that has
held GPUs for less comes first. Attained service (GPU-seconds held so far,
``Workload.attained_gpu_s``) is cut into levels at the thresholds; a level is
a queue served in submit order, so a job that has run long waits behind
newer short work without thrashing against work of its own level, and a
pending workload of a lower level may preempt running work of a higher level
of its own team (preemption.py). With no thresholds every workload is level 0.

``fifo``: one queue in submit order, nothing overtakes (see cycle.py).

Both are kept as sorted lists that events update in place, so a cycle never
sorts the whole queue.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort

from . import aging, las_estimates
from .decay import past_excess, past_user
from .fairshare import team_of, team_share
from .model import SchedulerConfig, Team, UsageHistory, Workload


def las_level(w: Workload, las: tuple[float, ...] = ()) -> int:
    """Which attained-service queue ``w`` is in: 0 below the first threshold."""
    return bisect_right(las, w.attained_gpu_s) if las else 0


def queue_key_for(las: tuple[float, ...] = (), on_estimates: bool = False):
    """The order of one user's pending work: priority, LAS level, submit time
    (with ``on_estimates``, estimated remaining GPU-time before submit time: las_estimates.py)."""
    if on_estimates:
        return las_estimates.queue_key_for(las)
    if not las:
        return queue_key

    def key(w: Workload) -> tuple:
        return (-w.priority, bisect_right(las, w.attained_gpu_s), w.submitted_at, w.id)

    return key


def queue_key(w: Workload) -> tuple:
    return (-w.priority, 0, w.submitted_at, w.id)


def fifo_key(w: Workload) -> tuple:
    return (w.submitted_at, w.id)


def sorted_add(lst: list, w: Workload, key) -> None:
    insort(lst, w, key=key)


def sorted_remove(lst: list, w: Workload, key) -> None:
    i = bisect_left(lst, key(w), key=key)
    while i < len(lst) and lst[i].id != w.id:
        i += 1
    if i < len(lst):
        del lst[i]


class TeamQueue:
    """One team's pending workloads, one sorted list per user."""

    __slots__ = ("users", "count", "key")

    def __init__(self, key=queue_key):
        self.users: dict[str, list[Workload]] = {}
        self.count = 0
        self.key = key

    def add(self, w: Workload) -> None:
        sorted_add(self.users.setdefault(w.user, []), w, self.key)
        self.count += 1

    def remove(self, w: Workload) -> None:
        lst = self.users.get(w.user)
        if lst is None:
            return
        n = len(lst)
        sorted_remove(lst, w, self.key)
        if len(lst) < n:
            self.count -= 1
        if not lst:
            del self.users[w.user]


class FairCursor:
    """Walks the fair order; the caller updates usage for the picks it admits.

    Teams wait in a heap keyed by their share; inside a team, users wait in a
    heap keyed by (priority of their next workload, its LAS level, their
    usage, its submit time). A pick changes the order only when it is admitted (its team's and
    its user's usage grow); usage may also drop (a preemption), so team keys
    are versioned and stale entries skipped.
    """

    def __init__(self, queues: dict[str, dict[str, list[Workload]]], teams: dict[str, Team], usage: dict[str, float], user_usage: dict[tuple[str, str], float], skip_until: float | None = None,
                 history: UsageHistory | None = None, now: float | None = None, config: SchedulerConfig | None = None,
                 las: tuple[float, ...] = (), on_estimates: bool = False):
        self.on_estimates = on_estimates  # las_estimates.py: estimated remaining GPU-time inside a level
        self.history = history  # decayed past usage (decay.py)
        self.now = now
        self.aging = config if config is not None and config.aging_gpus_per_hour > 0 and now is not None else None
        self.queues = queues
        self.las = las
        self.teams = teams
        self.usage = usage
        self.user_usage = user_usage
        self.skip_until = skip_until  # workloads submitted up to then were seen already (starving)
        self.cursors: dict[tuple[str, str], int] = {}
        self.version: dict[str, int] = {}
        self.heap: list = []
        self.users: dict[str, list] = {}  # team -> heap of (key, user)
        self.dropped: set[str] = set()
        self.last: tuple[str, str] | None = None  # the pick waiting for done_with
        self._fixed: dict[str, tuple] = {}  # team -> (Team, past_excess)
        for name in sorted(queues):
            self._push(name)

    def _head(self, team: str, user: str) -> Workload | None:
        lst = self.queues[team][user]
        key = (team, user)
        i = self.cursors.get(key, 0)
        until = self.skip_until
        if until is not None and i < len(lst) and lst[i].submitted_at <= until:
            self.cursors[key] = i = self._past_starving(lst, i, until)
        return lst[i] if i < len(lst) else None

    def _past_starving(self, lst: list[Workload], i: int, until: float) -> int:
        """The first workload from ``i`` on submitted after ``until`` (starving work went first).

        A user's list is in (priority, LAS level, submit time) order, so the starving work of one
        priority and level is a run: jump over it by bisection rather than step through it (on a
        busy pool thousands of starving workloads per user, every cycle)."""
        las = self.las
        n = len(lst)
        if self.on_estimates:  # inside a level the order is by estimate, not submit time: step
            while i < n and lst[i].submitted_at <= until:
                i += 1
            return i
        while i < n and lst[i].submitted_at <= until:
            w = lst[i]
            level = las_level(w, las)
            i = bisect_right(lst, (-w.priority, level, until), lo=i, key=lambda x: (-x.priority, las_level(x, las), x.submitted_at))
        return i

    def _user_key(self, team: str, user: str):
        w = self._head(team, user)
        if w is None:
            return None
        used = self.user_usage.get((team, user), 0.0)
        if self.history is not None:
            used += past_user(self.history, team, user)
        return self._key_of(w, used)

    def _key_of(self, w: Workload, used: float) -> tuple:
        """A user's key in its team's heap with ``w`` next (the one place it is made: pass_over too)."""
        if self.on_estimates:
            return (-w.priority, las_level(w, self.las), used, las_estimates.rank(w), w.submitted_at, w.id)
        return (-w.priority, las_level(w, self.las), used, w.submitted_at, w.id)

    def _user_heap(self, team: str) -> list:
        h = self.users.get(team)
        if h is None:
            h = []
            for user in self.queues[team]:
                key = self._user_key(team, user)
                if key is not None:
                    h.append((key, user))
            heapq.heapify(h)
            self.users[team] = h
        return h

    def _top(self, team: str) -> tuple[str, Workload] | None:
        h = self._user_heap(team)
        while h:
            key, user = h[0]
            w = self._head(team, user)
            if w is None or w.id != key[-1]:
                heapq.heappop(h)  # stale: that user's next workload changed
                continue
            return user, w
        return None

    def _push(self, team: str) -> None:
        if team in self.dropped:
            return
        top = self._top(team)
        if top is None:
            return
        v = self.version.get(team, 0) + 1
        self.version[team] = v
        w = top[1]
        heapq.heappush(self.heap, (self._team_share(team, w), w.submitted_at, team, v))

    def _team_share(self, team: str, w: Workload) -> tuple:
        """The team's key in the fair order with ``w`` next (fairshare.team_share)."""
        fixed = self._fixed.get(team)
        if fixed is None:  # the team and its past use do not change within a cycle
            t = team_of(self.teams, team)
            fixed = self._fixed[team] = (t, past_excess(self.history, team, t.quota))
        credit = aging.credit(self.aging, self.now - w.submitted_at) if self.aging is not None else 0.0
        return team_share(fixed[0], self.usage.get(team, 0.0), w.min_gpus if w.is_elastic else w.gpus, fixed[1], credit)

    def next(self) -> tuple[str, Workload] | None:
        """The next (user, workload) in fair order, or None when all are seen."""
        while self.heap:
            _, _, team, v = heapq.heappop(self.heap)
            if v != self.version.get(team) or team in self.dropped:
                continue
            top = self._top(team)
            if top is None:
                continue
            user, w = top
            heapq.heappop(self.users[team])
            key = (team, user)
            self.cursors[key] = self.cursors.get(key, 0) + 1
            self.last = key
            return user, w
        return None

    def done_with(self, team: str) -> None:
        """Put the last pick's team back in line (after its usage was updated)."""
        if self.last is not None and self.last[0] == team:
            user = self.last[1]
            self.last = None
            h = self.users.get(team)
            if h is not None:  # else it is rebuilt, with this user, when next needed
                key = self._user_key(team, user)
                if key is not None:
                    heapq.heappush(h, (key, user))
        self._push(team)

    def pass_over(self, team: str, passed) -> int:
        """After the last pick (of ``team``) changed nothing, take its team's next picks while
        ``passed(workload)`` says they would change nothing either (a shape that already failed,
        answered without a try) and they are the next picks: what ``done_with`` then ``next`` would
        pick, without putting the team back in line between them. Leaves the last one waiting for
        ``done_with``, as ``next`` does. -> how many were passed over.

        Nothing changes between such picks (no usage, no team dropped), so the order is the one the
        long way walks; a busy pool's fair loop passes thousands of failed shapes a cycle this way."""
        if self.last is None or self.last[0] != team or team in self.dropped:
            return 0
        h = self.users.get(team)
        if h is None:
            return 0
        heap = self.heap
        version = self.version
        dropped = self.dropped
        while heap:  # stale entries go first, as next would skip them (nothing else changes the heap here)
            _, _, other, v = heap[0]
            if v != version.get(other) or other in dropped:
                heapq.heappop(heap)
                continue
            break
        limit = heap[0][:3] if heap else None  # the team goes on while its key is below this one's
        lists = self.queues[team]
        cursors = self.cursors
        until = self.skip_until
        history = self.history
        aging = self.aging is not None
        shares: dict[float, tuple] = {}  # size of its next workload -> the team's share (the same usage throughout)

        def share_of(w: Workload) -> tuple:
            if aging:
                return self._team_share(team, w)
            size = w.gpus if w.min_gpus is None else (w.min_gpus if w.is_elastic else w.gpus)
            share = shares.get(size)
            if share is None:
                share = shares[size] = self._team_share(team, w)
            return share

        user = self.last[1]
        other = None  # (key, user) of the first of the team's other users in line, while known
        n = 0
        while True:
            # The last pick's user: while its next workload stays ahead of the team's other users
            # (done_with would put it back first in line) and the team ahead of the other teams.
            lst = lists[user]
            at = (team, user)
            i = cursors.get(at, 0)
            used = self.user_usage.get(at, 0.0)  # (the same throughout)
            if history is not None:
                used += past_user(history, team, user)
            mine = None
            while True:
                if until is not None and i < len(lst) and lst[i].submitted_at <= until:
                    cursors[at] = i = self._past_starving(lst, i, until)  # (as _head)
                if i >= len(lst):
                    mine = None
                    break
                w = lst[i]
                mine = self._key_of(w, used)
                if other is None:
                    while h:  # (stale entries first go, as _top would drop them)
                        key, u = h[0]
                        x = self._head(team, u)
                        if x is None or x.id != key[-1]:
                            heapq.heappop(h)
                            continue
                        other = h[0]
                        break
                if other is not None and not mine < other[0]:
                    break  # another user is first in line
                if limit is not None and (share_of(w), w.submitted_at, team) > limit or not passed(w):
                    cursors[at] = i
                    return n
                i += 1  # taken, as next would
                n += 1
            cursors[at] = i
            if other is None:
                return n
            # another user of the team is first in line (done_with, then next)
            nxt = other[1]
            w = self._head(team, nxt)
            if limit is not None and (share_of(w), w.submitted_at, team) > limit or not passed(w):
                return n
            if mine is not None:
                heapq.heappush(h, (mine, user))
            heapq.heappop(h)
            other = None
            at = (team, nxt)
            cursors[at] = cursors.get(at, 0) + 1
            self.last = at
            user = nxt
            n += 1

    def usage_changed(self, team: str) -> None:
        """A team's usage dropped (preemption, shrink): re-key it and its users."""
        self.users.pop(team, None)
        if self.last is not None and self.last[0] == team:
            return  # done_with puts it back in line
        if team in self.queues and team in self.version and team not in self.dropped:
            self._push(team)

    def drop(self, team: str) -> None:
        self.dropped.add(team)
        if self.last is not None and self.last[0] == team:
            self.last = None


def fair_order(queues, teams, usage, user_usage, first: list[Workload] = (), history: UsageHistory | None = None,
               now: float | None = None, config: SchedulerConfig | None = None, las: tuple[float, ...] = (),
               on_estimates: bool = False) -> list[Workload]:
    """The whole pending queue in the order GPUs would be offered.

    ``first`` (starving workloads, oldest first) go ahead; the rest follow in
    fair order, each pick counted as if it started: the order a FairCursor
    walks when every pick is admitted, computed with two sorts instead.

    Why sorting gives the same order: a team's key depends only on its own
    picks, and a user's only on their own, so the walk is a merge of
    independent streams. A user's keys never decrease (priority first, then
    LAS level, then usage that only grows), so their merge is a sort. A team's keys may
    dip (a small workload fitting back under the quota); a heap merge emits
    such an item right after its predecessor, which is what sorting by the
    running maximum of the stream's keys (then by position) does.
    """
    skip = {w.id for w in first}
    entries = []
    ages = config if config is not None and config.aging_gpus_per_hour > 0 and now is not None else None
    for team in queues:
        t = team_of(teams, team)
        past = past_excess(history, team, t.quota)
        items = []
        for user, lst in queues[team].items():
            used = user_usage.get((team, user), 0.0) + past_user(history, team, user)
            for w in lst:
                if w.id in skip:
                    continue
                if on_estimates:
                    items.append(((-w.priority, las_level(w, las), used, las_estimates.rank(w), w.submitted_at, w.id), w))
                else:
                    items.append(((-w.priority, las_level(w, las), used, w.submitted_at, w.id), w))
                used = round(used + w.gpus, 9)
        items.sort(key=_first)
        used = usage.get(team, 0.0)
        top = None
        for seq, (_, w) in enumerate(items):
            credit = aging.credit(ages, now - w.submitted_at) if ages is not None else 0.0
            key = (team_share(t, used, w.min_gpus if w.min_gpus is not None and w.is_elastic else w.gpus, past, credit), w.submitted_at, team)
            if top is None or key > top:
                top = key
            entries.append((top, seq, w))
            used = round(used + w.gpus, 9)
    entries.sort(key=_first_two)
    out = list(first)
    out.extend(e[2] for e in entries)
    return out


def _first(item):
    return item[0]


def _first_two(item):
    return item[0], item[1]
