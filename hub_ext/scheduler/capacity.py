"""Free capacity of the pool, indexed so that placement never scans the pool.

Every GPU has a free fraction (1.0 = untouched card) and free memory. A
*view* is the part of the pool a workload may use (all GPUs, or only a GPU
model / a minimum card memory); for each view the index keeps, per node, the
number of untouched eligible cards and buckets nodes by that number, plus the
set of partly used eligible cards. Placement asks "the smallest node with at
least k free cards" in O(GPUs per node), whatever the pool's size.

Changes can be remembered and rolled back: a scheduling cycle tries its
decisions on the live index and undoes them at the end, because the caller,
not the core, applies decisions.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter

from .model import EPSILON, GpuShare, Pool

ViewKey = tuple  # (gpu_model or None, min_gpu_memory_mib or None)
ALL: ViewKey = (None, None)


class View:
    """The cards one kind of request may use, bucketed by node."""

    __slots__ = ("key", "classes", "node_free", "node_total", "buckets", "partial", "free_total", "totals_desc")

    def __init__(self, key: ViewKey, classes: frozenset, n_nodes: int, max_per_node: int):
        self.key = key
        self.classes = classes
        self.node_free = [0] * n_nodes  # untouched eligible cards per node
        self.node_total = [0] * n_nodes  # eligible cards per schedulable node
        # buckets[k]: sorted node indexes with exactly k untouched eligible cards (k >= 1)
        self.buckets: list[list[int]] = [[] for _ in range(max_per_node + 1)]
        self.partial: set[int] = set()  # partly used eligible cards (GPU ids)
        self.free_total = 0
        self.totals_desc: list[int] = []  # eligible cards per node, largest first

    def largest_block(self) -> int:
        for k in range(len(self.buckets) - 1, 0, -1):
            if self.buckets[k]:
                return k
        return 0

    def largest_blocks(self, n: int) -> list[int]:
        """Free counts of the ``n`` nodes with most untouched cards."""
        out: list[int] = []
        for k in range(len(self.buckets) - 1, 0, -1):
            for _ in self.buckets[k]:
                out.append(k)
                if len(out) >= n:
                    return out
        return out

    def nodes_needed(self, gpus: int) -> int | None:
        """Fewest nodes that could ever hold ``gpus`` cards; None if the pool is too small."""
        if self.totals_desc and gpus <= self.totals_desc[0]:
            return 1
        total = 0
        for i, t in enumerate(self.totals_desc):
            total += t
            if total >= gpus:
                return i + 1
        return None


class Capacity:
    def __init__(self, pool: Pool, in_use=()):
        """``in_use``: shares already held (indexed once, not one by one)."""
        self.pool = pool
        nodes = pool.nodes
        self.node_names: list[str] = [node.name for node in nodes]
        self.node_index: dict[str, int] = {name: n for n, name in enumerate(self.node_names)}
        self.schedulable: list[bool] = [node.schedulable for node in nodes]
        # Column by column (C-level passes) rather than one GPU at a time: a cold start indexes every GPU.
        gpus = [gpu for node in nodes for gpu in node.gpus]
        self.gpu_node: list[int] = [n for n, node in enumerate(nodes) for _ in node.gpus]
        self.gpu_uuid: list[str] = [gpu.uuid for gpu in gpus]
        self.gpu_index: list[int] = [gpu.index for gpu in gpus]
        self.gpu_model: list[str] = [gpu.model for gpu in gpus]
        self.gpu_mem: list[int] = [gpu.memory_mib for gpu in gpus]
        kinds = list(zip(self.gpu_model, self.gpu_mem))
        class_ids: dict[tuple[str, int], int] = {k: c for c, k in enumerate(dict.fromkeys(kinds))}  # first seen, first numbered
        self.classes: list[tuple[str, int]] = list(class_ids)
        self.gpu_class: list[int] = [class_ids[k] for k in kinds]
        self.free_frac: list[float] = [1.0] * len(gpus)
        self.free_mem: list[float] = [float(m) for m in self.gpu_mem]
        self.gpu_by_uuid: dict[str, int] = dict(zip(self.gpu_uuid, range(len(gpus))))  # a repeated uuid: the last wins, as before
        self.node_gpus: list[list[int]] = []
        g = 0
        for node in nodes:
            k = len(node.gpus)
            self.node_gpus.append(list(range(g, g + k)))
            g += k
        self._whole_shares: list[GpuShare | None] = [None] * len(self.gpu_node)  # shares are immutable: reuse them
        self.max_per_node = max((len(x) for x in self.node_gpus), default=0)
        self.views: dict[ViewKey, View] = {}
        self.class_views: list[list[View]] = [[] for _ in self.classes]
        self.saved: dict[int, tuple[float, float]] | None = None  # first values of GPUs changed since begin()
        # share_gpu and share_amounts, inlined: a cold start indexes every running share here.
        ff, fm, by_uuid, names, gnode, gmem = self.free_frac, self.free_mem, self.gpu_by_uuid, self.node_names, self.gpu_node, self.gpu_mem
        whole = 1.0 - EPSILON
        for s in in_use:
            g = by_uuid.get(s.gpu_uuid)
            if g is None or names[gnode[g]] != s.node:
                continue
            frac = s.fraction
            if frac >= whole:
                mem = float(gmem[g])
                if ff[g] == 1.0 and fm[g] == mem:  # an untouched card (the usual case): what rounding gives
                    ff[g] = 0.0
                    fm[g] = 0.0
                    continue
                frac = 1.0
            else:
                mem = float(s.memory_mib if s.memory_mib is not None else frac * gmem[g])
            ff[g] = round(ff[g] - frac, 9)
            fm[g] = round(fm[g] - mem, 6)
        self.view(ALL)

    # ------------------------------------------------------------ views

    def view(self, key: ViewKey) -> View:
        v = self.views.get(key)
        if v is None:
            model, min_mem = key
            classes = frozenset(
                c for c, (m, mem) in enumerate(self.classes) if (model is None or m == model) and (min_mem is None or mem >= min_mem)
            )
            v = View(key, classes, len(self.node_names), self.max_per_node)
            ff, gc = self.free_frac, self.gpu_class
            for n, ids in enumerate(self.node_gpus):
                if not self.schedulable[n]:
                    continue
                free = 0
                for g in ids:
                    if gc[g] in classes:
                        v.node_total[n] += 1
                        if ff[g] >= 1.0 - EPSILON:
                            free += 1
                        elif ff[g] > EPSILON:
                            v.partial.add(g)
                if free:
                    v.node_free[n] = free
                    v.buckets[free].append(n)  # nodes visited in order: buckets stay sorted
                    v.free_total += free
            v.totals_desc = sorted((t for t in v.node_total if t), reverse=True)
            self.views[key] = v
            for c in classes:
                self.class_views[c].append(v)
        return v

    # ------------------------------------------------------------ changes

    def _apply(self, changes) -> None:
        """Set new free (fraction, memory) for some GPUs.

        Each node moves between buckets once per view however many of its
        cards changed, so a gang (or a whole rollback) costs one move per node.
        """
        ff, fm = self.free_frac, self.free_mem
        gnode, gclass, sched, cviews = self.gpu_node, self.gpu_class, self.schedulable, self.class_views
        moves: dict = {}
        for g, frac, mem in changes:
            # Rounded so that the same allocations give the same numbers whatever
            # order they were made and released in (incremental == from scratch).
            if frac != 0.0 and frac != 1.0:
                frac = round(frac, 9)
                if frac > 1.0 - EPSILON:
                    frac = 1.0
                elif frac < EPSILON:
                    frac = 0.0
            if mem != 0.0:
                mem = round(mem, 6)
            of = ff[g]
            old = 2 if of >= 1.0 - EPSILON else 1 if of > EPSILON else 0
            new = 2 if frac >= 1.0 - EPSILON else 1 if frac > EPSILON else 0
            ff[g] = frac
            fm[g] = mem
            if old == new:
                continue
            n = gnode[g]
            if not sched[n]:
                continue
            d = (new == 2) - (old == 2)
            for v in cviews[gclass[g]]:
                if old == 1:
                    v.partial.discard(g)
                elif new == 1:
                    v.partial.add(g)
                if d:
                    key = (v, n)
                    moves[key] = moves.get(key, 0) + d
        self._move(moves)

    @staticmethod
    def _move(moves: dict) -> None:
        """Move each (view, node) to the bucket of its new untouched-card count."""
        for (v, n), d in moves.items():
            if not d:
                continue
            k = v.node_free[n]
            b = v.buckets
            if k:
                lst = b[k]
                del lst[bisect_left(lst, n)]
            k += d
            v.node_free[n] = k
            v.free_total += d
            if k:
                insort(b[k], n)

    def _remember(self, g: int) -> None:
        if g not in self.saved:
            self.saved[g] = (self.free_frac[g], self.free_mem[g])

    def take(self, g: int, frac: float, mem: float) -> None:
        if self.saved is not None:
            self._remember(g)
        self._apply(((g, self.free_frac[g] - frac, self.free_mem[g] - mem),))

    def give(self, g: int, frac: float, mem: float) -> None:
        if self.saved is not None:
            self._remember(g)
        self._apply(((g, self.free_frac[g] + frac, self.free_mem[g] + mem),))

    def take_cards(self, gids) -> None:
        """Take whole untouched cards (what place_whole returns) in one batch."""
        saved = self.saved
        ff, fm = self.free_frac, self.free_mem
        gnode, gclass, sched, cviews = self.gpu_node, self.gpu_class, self.schedulable, self.class_views
        moves: dict = {}
        for g in gids:
            if saved is not None and g not in saved:
                saved[g] = (ff[g], fm[g])
            ff[g] = 0.0
            fm[g] = 0.0
            n = gnode[g]
            if sched[n]:
                for v in cviews[gclass[g]]:
                    key = (v, n)
                    moves[key] = moves.get(key, 0) - 1
        self._move(moves)

    def begin(self) -> None:
        """Start remembering changes, so that ``rollback`` can undo them."""
        self.saved: dict[int, tuple[float, float]] | None = {}

    def rollback(self) -> None:
        saved, self.saved = self.saved or {}, None
        self._apply([(g, f, m) for g, (f, m) in saved.items()])

    # ------------------------------------------------------------ shares

    def share_gpu(self, share: GpuShare) -> int | None:
        """The GPU id a share names, or None when the pool no longer has it."""
        g = self.gpu_by_uuid.get(share.gpu_uuid)
        if g is None or self.node_names[self.gpu_node[g]] != share.node:
            return None
        return g

    def share_amounts(self, g: int, share: GpuShare) -> tuple[float, float]:
        if share.fraction >= 1.0 - EPSILON:
            return 1.0, float(self.gpu_mem[g])
        mem = share.memory_mib if share.memory_mib is not None else share.fraction * self.gpu_mem[g]
        return share.fraction, float(mem)

    def take_shares(self, shares) -> None:
        for s in shares:
            g = self.share_gpu(s)
            if g is not None:
                frac, mem = self.share_amounts(g, s)
                self.take(g, frac, mem)

    def give_shares(self, shares) -> None:
        for s in shares:
            g = self.share_gpu(s)
            if g is not None:
                frac, mem = self.share_amounts(g, s)
                self.give(g, frac, mem)

    def whole_share(self, g: int) -> GpuShare:
        s = self._whole_shares[g]
        if s is None:
            s = self._whole_shares[g] = GpuShare(node=self.node_names[self.gpu_node[g]], gpu_uuid=self.gpu_uuid[g], fraction=1.0, memory_mib=None)
        return s

    def gang_could_fit(self, v: View, gids, gpus: int) -> bool:
        """Could a gang of ``gpus`` whole cards of ``v`` fit once GPUs ``gids`` were released?

        False only when it surely could not: a gang uses ``v.nodes_needed(gpus)``
        nodes (placement.place_whole), and even the nodes with the most
        untouched cards plus every card of ``gids`` on them hold too few.
        Releasing only some of ``gids`` frees no more, so a room-making search
        over them can stop before its trials."""
        k = v.nodes_needed(gpus)
        if k is None:
            return False
        if v.free_total + len(gids) < gpus:
            return False  # (the test below, at a glance: too few cards even if every one were released)
        ff, gc, gnode, classes = self.free_frac, self.gpu_class, self.gpu_node, v.classes
        held = 1.0 - EPSILON
        if len(classes) == len(self.classes):  # every card is of the view
            touched = [gnode[g] for g in set(gids) if ff[g] < held]
        else:
            touched = [gnode[g] for g in set(gids) if ff[g] < held and gc[g] in classes]
        if v.free_total + len(touched) < gpus:
            return False
        extra = Counter(touched)  # node -> its cards that releasing would untouch
        node_free = v.node_free
        best = [node_free[n] + e for n, e in extra.items()]
        # Nodes without released cards keep what they have: the largest blocks of the buckets.
        best += v.largest_blocks(k)
        best.sort(reverse=True)
        return sum(best[:k]) >= gpus

    def free_cards_on(self, v: View, n: int) -> list[int]:
        """Untouched eligible cards on node ``n``, lowest index first."""
        classes = v.classes
        ff = self.free_frac
        gc = self.gpu_class
        return [g for g in self.node_gpus[n] if ff[g] >= 1.0 - EPSILON and gc[g] in classes]
