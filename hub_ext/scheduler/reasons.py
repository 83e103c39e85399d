"""Why a workload is still pending, in words a user understands.

Reasons name the team, its quota or limit and the numbers that block the
workload, e.g. "team vision is at its quota of 8 GPUs (8 in use) and no GPUs
are idle to borrow" or "needs 8 GPUs on one node; the largest free block is
4". They describe the pool as it will be once the cycle's decisions are
applied.

A cycle with 50,000 pending workloads must not pay for 50,000 sentences it
may never show: ``Decisions.pending`` is a ``LazyPending`` sequence. The
cycle captures a small summary of its end state (team usage, per-view free
blocks, reservations); positions and sentences are computed on first read.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import aging, decay, las_estimates
from .elastic import smallest_size
from .fairshare import AT_LIMIT, NO_BORROWING, NOT_PREEMPTIBLE, check, team_of
from .model import EPSILON, PendingReason, Workload
from .ordering import fair_order
from .ordering import fifo_key, las_level, queue_key_for, sorted_add
from .placement import largest_fraction_room, view_key
from .preemption import fmt
from .reservation import starving


PREEMPTED = "preempted and back in the queue: "
_STILL = "; waiting now: "


def quota_start_reason(team: str, quota: float, over: bool) -> str:
    """The head of a running workload's reason: within its team's quota, or borrowing beyond it."""
    if over:
        return f"borrowed idle GPUs beyond team {team}'s quota of {fmt(quota)} (preemptible)"
    return f"within team {team}'s quota of {fmt(quota)}"


def remarked_reason(reason: str | None, team: str, quota: float, over: bool) -> str:
    """A running workload's reason after its team's quota changed: the quota part says today's
    quota and mark; what followed it (backfilled, elastic, ...) is kept."""
    head = quota_start_reason(team, quota, over)
    if reason:
        for prefix in (f"borrowed idle GPUs beyond team {team}'s quota of ", f"within team {team}'s quota of "):
            if reason.startswith(prefix):
                cut = reason.find(";")
                return head + (reason[cut:] if cut >= 0 else "")
    return head


def pending_reason_after_preemption(previous: str | None, current: str) -> str:
    """A preempted workload keeps saying so until it runs again (not just for the cycle that
    preempted it), followed by why it waits now."""
    if not previous or not previous.startswith(PREEMPTED) or current.startswith(PREEMPTED):
        return current
    why = previous.split(_STILL, 1)[0]
    return why + _STILL + current


def las_words(w: Workload, las: tuple[float, ...]) -> str:
    """Why least attained service puts ``w`` behind its own team's work: it has held GPUs past a threshold."""
    level = las_level(w, las)
    if not level:
        return ""
    return (
        f"; it has held {fmt(round(w.attained_gpu_s / 3600, 2))} GPU-hours ({fmt(round(las[level - 1] / 3600, 2))} or more): "
        f"by least attained service, team {w.team}'s work that has held less goes first"
    )


def is_valid(w: Workload) -> bool:
    if w.gpus <= 0:
        return False
    if w.gpus >= 1 and abs(w.gpus - round(w.gpus)) > EPSILON:
        return False
    if w.is_elastic and not (w.min_gpus >= 1 and w.min_gpus <= w.max_gpus):
        return False
    return True


# Free blocks a reason may quote: a gang spans at most this many nodes in a sentence.
MAX_BLOCKS = 64


class ViewSummary:
    __slots__ = ("free", "blocks", "eligible", "view", "room", "free_with_holds", "blocks_with_holds")

    def __init__(self, cap, v):
        self.view = v
        self.free = v.free_total
        self.blocks = v.largest_blocks(MAX_BLOCKS)
        self.eligible = sum(v.totals_desc)
        self.room = largest_fraction_room(cap, v)
        self.free_with_holds = self.free
        self.blocks_with_holds = self.blocks


def _describe(vk) -> str:
    model, mem = vk
    parts = []
    if model:
        parts.append(f"model {model}")
    if mem:
        parts.append(f"at least {mem} MiB")
    return "GPUs of " + " with ".join(parts) if parts else "GPUs"


class EndState:
    """What reasons need from a cycle, captured before it is rolled back."""

    @classmethod
    def capture(cls, cycle) -> "EndState":
        st = cycle.st
        e = cls()
        e._said = {}
        e.now = cycle.now
        e.config = st.config
        e.history = st.history
        e.teams = st.teams
        e.usage = dict(cycle.usage)
        e.user_usage = dict(cycle.user_usage)
        e.started = set(cycle.started)
        e.preempted = [st.running[wid].workload for wid in sorted(cycle.gone)]
        e.fifo_blocker = cycle.fifo_blocker
        e.fifo, e.queues = st.share_queues()  # kept as they are: the scheduler copies on change
        # Preempted work is pending again once the decisions are applied.
        e.preempt_reason = {p.workload_id: p.reason for p in cycle.preempts}
        e.awaiting = dict(cycle.awaiting)
        e.protected_for = cycle.protected_for
        if e.preempted:
            e.fifo = list(e.fifo)
        for w in e.preempted:
            sorted_add(e.fifo, w, fifo_key)
            users = e.queues.setdefault(w.team, {})
            lst = list(users.get(w.user, ()))
            sorted_add(lst, w, queue_key_for(e.config.las_thresholds_gpu_s, e.config.las_on_estimates))
            users[w.user] = lst
        e.count = len(st.pending) - len(cycle.started) + len(e.preempted)
        cap = cycle.cap
        e.views = {vk: ViewSummary(cap, v) for vk, v in cap.views.items()}
        e.reservations = {}
        for wid, res in cycle.reservations.items():
            e.reservations[wid] = (res.gpus, len(res.held), [cap.node_names[n] for n in res.nodes], res.workload.submitted_at)
        if any(res.held for res in cycle.reservations.values()):
            for res in cycle.reservations.values():
                for g in res.held:
                    cap.give(g, 1.0, float(cap.gpu_mem[g]))
            for vk, v in cap.views.items():
                e.views[vk].free_with_holds = v.free_total
                e.views[vk].blocks_with_holds = v.largest_blocks(MAX_BLOCKS)
        return e

    # ------------------------------------------------------------ order

    def order(self) -> list[Workload]:
        """Pending work in the order GPUs would be offered (started work left out)."""
        if self.config.ordering == "fifo":
            out = self.fifo
        else:
            first = list(starving(self.fifo, self.now, self.config.reservation_after_s))
            out = fair_order(self.queues, self.teams, self.usage, self.user_usage, first, self.history, self.now, self.config,
                             las=self.config.las_thresholds_gpu_s, on_estimates=self.config.las_on_estimates)
        return [w for w in out if w.id not in self.started]

    # ------------------------------------------------------------ sentences

    def explain(self, w: Workload) -> str:
        if w.id in self.preempt_reason:
            return PREEMPTED + self.preempt_reason[w.id]
        if w.id in self.awaiting:
            return (
                f"starts when {', '.join(self.awaiting[w.id])} (preempted for it, with notice) "
                f"leave the GPUs it will get"
            )
        if w.id in self.reservations:
            gpus, held, nodes, since = self.reservations[w.id]
            where = f" on {', '.join(nodes)}" if nodes else ""
            return (
                f"holds a reservation after waiting {_duration(self.now - since)}: {held} of {gpus} GPUs held{where}; "
                f"starts when the rest free up, and no later work may use them"
            )
        blocker = self.fifo_blocker
        if blocker is not None and w.id != blocker.id:
            return f"first come, first served: waits behind {blocker.id}, submitted earlier, which cannot start yet"
        # Everything else depends only on what the workload asks: thousands of
        # pending workloads share a few hundred sentences.
        sig = (w.team, w.gpus, w.min_gpus, w.max_gpus, w.preemptible, w.gpu_model, w.min_gpu_memory_mib, w.gpu_memory_mib, w.kind)
        text = self._said.get(sig)
        if text is None:
            text = self._said[sig] = self._explain(w)
        if self.config.ordering == "fair" and (self.history is not None or self.config.aging_gpus_per_hour > 0):
            text += self._fair_words(w)
        las = self.config.las_thresholds_gpu_s
        if las and w.attained_gpu_s >= las[0] and self.config.ordering == "fair":  # (cheap test first: every pending workload, every cycle)
            text += las_words(w, las)
        if self.config.las_on_estimates and w.estimate_s is not None and self.config.ordering == "fair":
            text += las_estimates.words(w)
        return text

    def _fair_words(self, w: Workload) -> str:
        """Why a borrower stands where it does in the between-teams order: its team's past, its wait."""
        team = team_of(self.teams, w.team)
        if self.usage.get(w.team, 0.0) + smallest_size(w) <= team.quota + EPSILON:
            return ""  # within quota: first whatever the past
        words = []
        if self.history is not None:
            key = ("past", w.team)
            past = self._said.get(key, False)
            if past is False:
                past = self._said[key] = decay.in_words(self.history, w.team, team.quota)
            if past:
                words.append(past + ", so it borrows after teams that used less")
        waited = aging.in_words(self.config, self.now - w.submitted_at)
        if waited:
            words.append(waited)
        return "".join("; " + x for x in words)

    def _explain(self, w: Workload) -> str:
        if not is_valid(w):
            span = f" (elastic {w.min_gpus}..{w.max_gpus})" if w.min_gpus is not None or w.max_gpus is not None else ""
            return f"asks for {fmt(w.gpus)} GPUs{span}: ask for a whole number of GPUs, or a fraction below 1 of one GPU"
        cfg = self.config
        team = team_of(self.teams, w.team)
        usage = self.usage.get(w.team, 0.0)
        g = smallest_size(w)
        code, over = check(team, usage, g, w, cfg)
        in_use = f"{fmt(usage)} in use"
        if code == AT_LIMIT:
            return f"team {w.team} is at its limit of {fmt(team.limit)} GPUs ({in_use}; this needs {fmt(g)})"
        if code == NO_BORROWING:
            return f"team {w.team} is at its quota of {fmt(team.quota)} GPUs ({in_use}; this needs {fmt(g)}) and borrowing idle GPUs is off"
        if code == NOT_PREEMPTIBLE:
            return f"team {w.team} is at its quota of {fmt(team.quota)} GPUs ({in_use}); a non-preemptible workload runs only within quota"
        vk = view_key(w)
        vs = self.views.get(vk)
        what = _describe(vk)
        if vs is None or vs.eligible == 0:
            return f"no schedulable node has {what}"
        if usage >= team.quota - EPSILON:
            quota_text = f"team {w.team} is at its quota of {fmt(team.quota)} GPUs ({in_use})"
        else:
            quota_text = f"team {w.team} uses {fmt(usage)} of its quota of {fmt(team.quota)} GPUs; this needs {fmt(g)}, more than the {fmt(team.quota - usage)} left,"
        if over and vs.free == 0 and vs.free_with_holds == 0 and (vs.room[0] <= EPSILON or not w.is_fraction):
            return f"{quota_text} and no GPUs are idle to borrow"
        if over:
            prefix = f"{quota_text.rstrip(',')}, so it would borrow idle GPUs, but it "
        else:
            prefix = f"team {w.team} is within its quota ({fmt(usage)} of {fmt(team.quota)} GPUs in use) but it "
            if vs.free == 0 and vs.free_with_holds == 0 and (vs.room[0] <= EPSILON or not w.is_fraction):
                text = f"team {w.team} is within its quota ({fmt(usage)} of {fmt(team.quota)} GPUs in use) but no GPUs are free"
                return text + (self._no_victim() if cfg.preemption else "; preemption is off")
        if w.is_fraction:
            room_frac, room_mem = vs.room
            mem_text = f" with {w.gpu_memory_mib} MiB" if w.gpu_memory_mib is not None else ""
            text = (
                f"{prefix}needs {fmt(w.gpus)} of a GPU{mem_text}; the most room on one card is "
                f"{fmt(room_frac)} of a GPU with {int(room_mem)} MiB free"
            )
        else:
            gi = int(g)
            k = vs.view.nodes_needed(gi)
            if k is None:
                return f"needs {gi} GPUs but the pool has only {vs.eligible} {what} on schedulable nodes"
            blocks = vs.blocks[:k]
            if k == 1:
                text = f"{prefix}needs {gi} {what} on one node; the largest free block is {blocks[0] if blocks else 0}"
            else:
                text = f"{prefix}needs {gi} {what} on {k} nodes; the {k} largest free blocks hold {sum(blocks)}"
            if sum(vs.blocks_with_holds[:k]) >= gi and sum(blocks) < gi and self.reservations:
                oldest = min(self.reservations, key=lambda r: (self.reservations[r][3], r))
                return text + f"; the GPUs that would fit it are reserved for {oldest}, which has waited longest"
            if sum(blocks) >= gi and (k > 1 or (blocks and blocks[0] >= gi)):
                return f"{prefix}would fit on GPUs freed during this cycle after its turn; it starts in a later cycle"
        if not over:
            text += self._no_victim() if cfg.preemption else "; preemption is off"
        return text

    def _no_victim(self) -> str:
        if self.protected_for:
            return (f"; other teams' over-quota work is protected by its minimum run-time for another "
                    f"{_duration(self.protected_for)}, then it can be preempted to make room")
        return "; no other team's over-quota work can be preempted to make room"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


class LazyPending(Sequence):
    """``Decisions.pending``: every still-pending workload in queue order, built on first read."""

    def __init__(self, end: EndState):
        self._end = end
        self._items: tuple[PendingReason, ...] | None = None

    def _build(self) -> tuple[PendingReason, ...]:
        if self._items is None:
            e = self._end
            res = e.reservations
            self._items = tuple(PendingReason(w.id, i, e.explain(w), w.id in res) for i, w in enumerate(e.order(), start=1))
        return self._items

    def __len__(self) -> int:
        return self._end.count

    def __getitem__(self, i):
        return self._build()[i]

    def __iter__(self):
        return iter(self._build())

    def __eq__(self, other):
        if isinstance(other, (LazyPending, tuple, list)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self):
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"LazyPending({len(self)} workloads)"

    def position_of(self, workload_id: str) -> int | None:
        """One workload's 1-based queue position (the order is computed once, without the reasons)."""
        positions = getattr(self, "_positions", None)
        if positions is None:
            if self._items is not None:
                positions = {p.workload_id: p.position for p in self._items}
            else:
                positions = {w.id: i for i, w in enumerate(self._end.order(), start=1)}
            self._positions = positions
        return positions.get(workload_id)

    def reason_of(self, workload_id: str) -> str | None:
        """One workload's reason, by id (indexed once: for many lookups on one cycle's queue)."""
        waiting = getattr(self, "_waiting", None)
        if waiting is None:
            waiting = self._waiting = {w.id: w for w in self._end.fifo if w.id not in self._end.started}
        w = waiting.get(workload_id)
        return None if w is None else self._end.explain(w)

    def reason(self, workload_id: str) -> str | None:
        """One workload's reason without building the whole list."""
        for w in self._end.fifo:
            if w.id == workload_id and w.id not in self._end.started:
                return self._end.explain(w)
        return None
