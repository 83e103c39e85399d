"""Read the database into the scheduler core's ``Snapshot``.

The core sees plain frozen data; nothing it gets can write back to the
database. Built inside the same serialised transaction that applies the
decisions, so the world cannot change between the two.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import itemgetter
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from ..scheduler.model import (
    GPU,
    Allocation,
    GpuShare,
    Node,
    Pool,
    Running,
    SchedulerConfig,
    Snapshot,
    Team,
    UsageHistory,
    Workload,
    WorkloadKind,
)
from ..states import ACTIVE_STATES
from .attained import ATTAINED_STEP, next_point, on_grid
from .gc_pause import paused_gc
from .store import GpuRow, NodeRow, ShareRow, TeamRow, WorkloadRow, format_workload_id
from .store.orm import POOL_STAMP, WORKLOADS_STAMP, StampRow, next_stamp


def workload_model(w: WorkloadRow) -> Workload:
    return Workload(
        id=w.id,
        user=w.user,
        team=w.team,
        kind=WorkloadKind(w.kind),
        gpus=w.gpus,
        submitted_at=w.submitted_at,
        priority=w.priority,
        preemptible=w.preemptible,
        min_gpus=w.min_gpus,
        max_gpus=w.max_gpus if w.gpus_cap is None or w.max_gpus is None else min(w.max_gpus, w.gpus_cap),
        gpu_model=w.gpu_model,
        min_gpu_memory_mib=w.min_gpu_memory_mib,
        gpu_memory_mib=w.gpu_memory_mib,
        time_limit_s=w.time_limit_s,
    )


def allocation_model(w: WorkloadRow) -> Allocation:
    return Allocation(
        workload_id=w.id,
        shares=tuple(GpuShare(node=s.node_name, gpu_uuid=s.gpu_uuid, fraction=s.fraction, memory_mib=s.memory_mib) for s in w.shares),
        started_at=w.started_at or w.submitted_at,
    )


def pool_model(db: Session) -> Pool:
    rows = db.execute(
        select(NodeRow.name, NodeRow.simulated, NodeRow.schedulable, GpuRow.uuid, GpuRow.index, GpuRow.model, GpuRow.memory_mib)
        .outerjoin(GpuRow, GpuRow.node_name == NodeRow.name)
        .order_by(NodeRow.name, GpuRow.index)
    )
    nodes: dict[str, tuple[bool, bool, list[GPU]]] = {}
    for name, simulated, schedulable, uuid, index, model, memory in rows:
        entry = nodes.setdefault(name, (simulated, schedulable, []))
        if uuid is not None:
            entry[2].append(GPU(uuid=uuid, index=index, model=model, memory_mib=memory))
    return Pool(nodes=tuple(Node(name=n, gpus=tuple(g), simulated=sim, schedulable=sch) for n, (sim, sch, g) in nodes.items()))


@dataclass(frozen=True)
class ActiveWorkload:
    """What applying decisions needs to know of a workload in the snapshot, without loading its row."""

    seq: int
    state: str
    queue_position: int | None
    reason: str | None
    allocated: float
    revision: int = 0  # WorkloadRow.revision: changes whenever what the scheduler reads of the row changes


# Columns read for every active workload (a plain select: ORM objects for thousands of rows cost too much per cycle).
_COLUMNS = (
    WorkloadRow.seq, WorkloadRow.user, WorkloadRow.team, WorkloadRow.kind, WorkloadRow.state, WorkloadRow.gpus,
    WorkloadRow.submitted_at, WorkloadRow.started_at, WorkloadRow.priority, WorkloadRow.preemptible,
    WorkloadRow.min_gpus, WorkloadRow.max_gpus, WorkloadRow.gpus_cap, WorkloadRow.gpu_model,
    WorkloadRow.min_gpu_memory_mib, WorkloadRow.gpu_memory_mib, WorkloadRow.queue_position, WorkloadRow.reason,
    WorkloadRow.preempt_at, WorkloadRow.time_limit_s, WorkloadRow.revision, WorkloadRow.attained_gpu_s,
)
ACTIVE = ACTIVE_STATES
# The fields _read_rows sets; if Workload gains one, it falls back to the (slower) constructor.
_FAST_WORKLOAD = {f.name for f in dataclass_fields(Workload)} == {
    "id", "user", "team", "kind", "gpus", "submitted_at", "priority", "preemptible", "min_gpus", "max_gpus", "gpu_model",
    "min_gpu_memory_mib", "gpu_memory_mib", "time_limit_s", "estimate_s", "estimate_basis", "attained_gpu_s"}
# The columns of _COLUMNS the rolling check compares as read (KeptSnapshot._check): all but the queue
# position, the reason and the revision (written without a stamp on purpose, or the stamp itself).
_compared = itemgetter(*(i for i, c in enumerate(_COLUMNS) if c.key not in ("queue_position", "reason", "revision")))
_SHARE_COLUMNS = (ShareRow.workload_seq, ShareRow.node_name, ShareRow.gpu_uuid, ShareRow.fraction, ShareRow.memory_mib)
_BUCKET = 256  # seqs per bucket of the rolling check (KeptSnapshot._check)
_FEW = 2000  # changed rows up to which their shares are read by an IN list (bound parameters) rather than a join


def read_teams(db: Session, preemption=None) -> dict[str, Team]:
    teams = {}
    for name, quota, weight, limit in db.execute(select(TeamRow.name, TeamRow.quota, TeamRow.over_quota_weight, TeamRow.limit)):
        extra = {}
        if preemption is not None:
            rules = preemption.for_team(name)
            extra = {"min_runtime_reclaim_s": rules.min_runtime_reclaim_seconds, "min_runtime_shrink_s": rules.min_runtime_shrink_seconds}
        teams[name] = Team(name=name, quota=quota, over_quota_weight=weight, limit=limit, **extra)
    return teams


class _Row:
    """One active workload as the snapshot holds it, and what recomputes its attained service."""

    __slots__ = ("wid", "state", "workload", "running", "active", "stored_gpu_s", "allocated", "started_at", "recheck_at",
                 "raw", "raw_shares")

    def __init__(self, wid, state, workload, running, active, stored_gpu_s, allocated, started_at):
        self.wid, self.state, self.workload, self.running, self.active = wid, state, workload, running, active
        self.stored_gpu_s, self.allocated, self.started_at = stored_gpu_s, allocated, started_at
        self.recheck_at = 0.0  # running work: when its attained service may next move on the grid


def _same_row(a: _Row, b: _Row) -> bool:
    """Do two reads of one workload hold the same for the scheduler and for applying its decisions?"""
    if a.state != b.state or a.workload.__dict__ != b.workload.__dict__:
        return False
    x, y = a.running, b.running
    if x is None or y is None:
        return x is y
    return x.leaving == y.leaving and x.allocation == y.allocation


def _read_rows(db: Session, now: float, las, attained_step: float, where, with_inactive: bool = False):
    """Decode the workload rows ``where`` selects (and their shares) into ``_Row``s, in (submitted_at, seq) order.

    ``with_inactive``: rows that left the active states come back too, as (wid, None)."""
    shares: dict[int, list[GpuShare]] = {}
    db.flush()  # (the Core connection below does not autoflush: this transaction's own writes first)
    conn = db.connection()  # Core rows, not the ORM session's result layer: a third less per row on 60,000 rows
    workload_filter = where if with_inactive else (where & WorkloadRow.state.in_(ACTIVE))
    share_columns = _SHARE_COLUMNS
    ordered = select(*_COLUMNS).where(workload_filter).order_by(WorkloadRow.submitted_at, WorkloadRow.seq)
    rows = None
    if with_inactive:  # usually a few rows (what changed): their shares by the indexed workload_seq
        rows = conn.execute(ordered).all()
        active = [r[0] for r in rows if r[4] in ACTIVE]
        if len(active) <= _FEW:
            share_rows = conn.execute(select(*share_columns).where(ShareRow.workload_seq.in_(active)).order_by(ShareRow.id)) if active else ()
    if rows is None or len(active) > _FEW:
        share_rows = conn.execute(
            select(*share_columns).join(WorkloadRow, WorkloadRow.seq == ShareRow.workload_seq)
            .where(workload_filter & WorkloadRow.state.in_(ACTIVE)).order_by(ShareRow.id)
        )
    raw_shares: dict[int, list[tuple]] = {}
    for raw in share_rows:
        seq, node, uuid, fraction, memory = raw
        shares.setdefault(seq, []).append(GpuShare(node=node, gpu_uuid=uuid, fraction=fraction, memory_mib=memory))
        raw_shares.setdefault(seq, []).append((node, uuid, fraction, memory))
    if rows is None:
        rows = conn.execute(ordered)
    out = []
    new, kinds = object.__new__, {k.value: k for k in WorkloadKind}
    for raw in rows:
        (seq, user, team, kind, state, gpus, submitted_at, started_at, priority, preemptible,
         min_gpus, max_gpus, gpus_cap, gpu_model, min_mem, gpu_mem, position, reason, preempt_at, time_limit_s, revision,
         stored_gpu_s) = raw
        wid = format_workload_id(seq)
        if state not in ACTIVE:
            out.append((wid, None, revision))
            continue
        if gpus_cap is not None and max_gpus is not None:
            max_gpus = min(max_gpus, gpus_cap)
        held = shares.get(seq)  # (None for pending work, most of the rows)
        allocated = sum(s.fraction for s in held) if held else 0.0
        stored = stored_gpu_s or 0.0
        clock = None
        if state == "pending" or not held or started_at is None:
            served = max(0.0, stored)
        else:  # attained.held_gpu_s, inline: this runs for every running workload every cycle
            x = stored + allocated * max(0.0, now - started_at)
            served = on_grid(x, las, attained_step)
            clock = started_at
        # Workload(...) without the frozen dataclass's __init__ (a field at a time through object.__setattr__):
        # the same object, a quarter of the cost, for 60,000 rows on a cold read.
        fields = {
            "id": wid, "user": user, "team": team, "kind": kinds.get(kind) or WorkloadKind(kind), "gpus": gpus,
            "submitted_at": submitted_at, "priority": priority, "preemptible": preemptible, "min_gpus": min_gpus,
            "max_gpus": max_gpus, "gpu_model": gpu_model, "min_gpu_memory_mib": min_mem, "gpu_memory_mib": gpu_mem,
            "time_limit_s": time_limit_s, "estimate_s": None, "estimate_basis": None, "attained_gpu_s": served,
        }
        if _FAST_WORKLOAD:
            w = new(Workload)
            w.__dict__.update(fields)
        else:  # Workload has fields this does not know: its own constructor (and defaults)
            w = Workload(**{k: v for k, v in fields.items() if k not in ("estimate_s", "estimate_basis")})
        running = None
        if state != "pending" and held:
            allocation = Allocation(workload_id=wid, shares=tuple(held), started_at=started_at or submitted_at)
            running = Running(workload=w, allocation=allocation, leaving=preempt_at is not None)
        active = new(ActiveWorkload)
        active.__dict__.update({"seq": seq, "state": state, "queue_position": position, "reason": reason, "allocated": allocated,
                                "revision": revision})
        row = _Row(wid, state, w, running, active, stored, allocated, clock)
        # The row as read, for the rolling check (its compared columns are picked out there, ~600 rows a cycle).
        row.raw, row.raw_shares = raw, tuple(raw_shares.get(seq, ()))
        if clock is not None and allocated > 0:
            row.recheck_at = clock + (next_point(x, las, attained_step) - stored) / allocated
        out.append((wid, row, revision))
    return out


def build_snapshot(
    db: Session, now: float, config: SchedulerConfig, preemption=None, history: UsageHistory | None = None,
    attained_step: float = ATTAINED_STEP,
) -> tuple[Snapshot, dict[str, ActiveWorkload]]:
    """The snapshot, and what applying needs of each workload in it, by id.

    ``preemption`` (service/preemption.py) gives each team its minimum run-times;
    ``history`` is the decayed past usage (service/usage_decay.py). Every workload
    carries its attained service (service/attained.py): pending work what it held
    in past runs, running work that plus its current run, on the grid of ``attained_step``.
    Everything is read; ``KeptSnapshot`` reads only what changed."""
    teams = read_teams(db, preemption)
    running: list[Running] = []
    pending: list[Workload] = []
    index: dict[str, ActiveWorkload] = {}
    for wid, row, _ in _read_rows(db, now, config.las_thresholds_gpu_s, attained_step, true()):
        index[wid] = row.active
        if row.state == "pending":
            pending.append(row.workload)
        elif row.running is not None:
            running.append(row.running)
    snapshot = Snapshot(pool=pool_model(db), teams=teams, running=tuple(running), pending=tuple(pending), now=now, config=config, history=history)
    return snapshot, index


def _with_attained(w: Workload, served: float) -> Workload:
    # dataclasses.replace re-runs __init__ over every field (as forward._with_estimate).
    copy = object.__new__(Workload)
    copy.__dict__.update(w.__dict__)
    copy.__dict__["attained_gpu_s"] = served
    return copy


class KeptSnapshot:
    """``build_snapshot``'s rows kept between cycles: each cycle reads only the rows whose revision moved.

    ``WorkloadRow.revision`` is a global, monotonic stamp (orm.next_stamp): the rows written since the
    last read are those with a revision above the highest one seen (an indexed range), including rows
    that left the active states (their state change stamps them) and rows whose shares changed. Teams are
    read every time (a few hundred rows; a quota change re-indexes the core anyway), the pool only when
    its stamp moved. Running work's attained service moves with time and no write: it is recomputed for
    every running workload (on the grid, attained.on_grid) and a workload whose value moved counts as changed.

    ``refresh`` returns the snapshot, the ``ActiveWorkload`` index apply.py needs, and what changed since
    the last refresh: workload id -> its ``Running`` or pending ``Workload``, or None where it left (the
    IncrementalCore's ``changed``); None instead of that dict when everything was read (the first refresh,
    or a change of the attained grid)."""

    def __init__(self):
        self.seen: int | None = None  # the highest revision read
        self._grid = None
        self.rows: dict[str, _Row] = {}
        self.index: dict[str, ActiveWorkload] = {}
        self.pending: dict[str, Workload] = {}
        self.running: dict[str, Running] = {}
        self._clock: dict[str, _Row] = {}  # running work whose attained service moves with time
        self.in_use: dict[tuple[str, str], float] = {}  # GPUs held by (team, user): usage_decay.UsageDecay.update
        self._tuples = None  # (running, pending) as the snapshot's tuples, until either changes
        self._pool: Pool | None = None
        self._pool_stamp = None
        self.reads = 0  # rows read by the last refresh
        # The rolling check (``refresh``'s check_every): kept workload ids by seq // _BUCKET, and where it goes on.
        self._buckets: dict[int, set[str]] = {}
        self._check_from = 0  # the first bucket the next check reads
        self.checked = 0  # rows the last rolling check read
        self.misses = 0  # changes the rolling check found that no revision stamp showed (over the kept rows' life)

    def _count(self, row: _Row, sign: float) -> None:
        if row.state in ("running", "stopping") and row.allocated:
            key = (row.workload.team, row.workload.user)
            gpus = round(self.in_use.get(key, 0.0) + sign * row.allocated, 9)
            if gpus > 0:
                self.in_use[key] = gpus
            else:
                self.in_use.pop(key, None)

    def _drop(self, wid: str) -> None:
        row = self.rows.pop(wid, None)
        if row is not None:
            self._tuples = None
            self._count(row, -1.0)
            self.index.pop(wid, None)
            self.pending.pop(wid, None)
            self.running.pop(wid, None)
            self._clock.pop(wid, None)
            bucket = self._buckets.get(row.active.seq // _BUCKET)
            if bucket is not None:
                bucket.discard(wid)
                if not bucket:
                    del self._buckets[row.active.seq // _BUCKET]

    def _add(self, row: _Row) -> None:
        wid = row.wid
        self.rows[wid] = row
        self._tuples = None
        self._count(row, 1.0)
        self.index[wid] = row.active
        self._buckets.setdefault(row.active.seq // _BUCKET, set()).add(wid)
        if row.state == "pending":
            self.pending[wid] = row.workload
        elif row.running is not None:
            self.running[wid] = row.running
            if row.started_at is not None:
                self._clock[wid] = row

    def pool_moved(self, db: Session) -> bool:
        """Has the pool's stamp moved since the kept pool was read?"""
        return db.scalar(select(StampRow.value).where(StampRow.name == POOL_STAMP)) != self._pool_stamp

    def pool(self, db: Session) -> Pool:
        stamp = db.scalar(select(StampRow.value).where(StampRow.name == POOL_STAMP))
        if self._pool is None or stamp is None or stamp != self._pool_stamp:
            self._pool, self._pool_stamp = pool_model(db), stamp
        return self._pool

    def refresh(
        self, db: Session, now: float, config: SchedulerConfig, preemption=None, history: UsageHistory | None = None,
        attained_step: float = ATTAINED_STEP, check_every: int = 0,
    ) -> tuple[Snapshot, dict[str, ActiveWorkload], dict | None]:
        las = config.las_thresholds_gpu_s
        # This transaction's stamp T: every committed row has a revision below it, and what this transaction
        # writes (before this read, or after it when applying the decisions) gets T. So the next refresh reads
        # from T (seen = T - 1): rows the cycle itself writes are read again, none is skipped.
        stamp = next_stamp(db.connection(), db, WORKLOADS_STAMP)
        teams = read_teams(db, preemption)
        pool = self.pool(db)
        changed: dict | None
        if self.seen is None or self._grid != (las, attained_step):
            read = self._read_all(db, now, las, attained_step)
            changed = None
        else:
            read = _read_rows(db, now, las, attained_step, WorkloadRow.revision > self.seen, with_inactive=True)
            changed = {}
            for wid, row, _ in read:
                self._drop(wid)
                if row is None:
                    changed[wid] = None
                    continue
                self._add(row)
                changed[wid] = row.running if row.running is not None else (row.workload if row.state == "pending" else None)
            step = attained_step
            for wid, row in self._clock.items():  # attained.held_gpu_s on the grid, inline, where it may have moved
                if now < row.recheck_at:
                    continue
                x = row.stored_gpu_s + row.allocated * max(0.0, now - row.started_at)
                served = on_grid(x, las, step)
                if row.allocated > 0:
                    row.recheck_at = row.started_at + (next_point(x, las, step) - row.stored_gpu_s) / row.allocated
                r = row.running
                if served != r.workload.attained_gpu_s:
                    w = _with_attained(r.workload, served)
                    row.workload = w
                    row.running = r = Running(workload=w, allocation=r.allocation, leaving=r.leaving)
                    self.running[wid] = r
                    changed[wid] = r
                    self._tuples = None
            if check_every:
                changed.update(self._check(db, now, las, attained_step, check_every))
        self.seen = stamp - 1
        self.reads = len(read)
        return self.snapshot(pool, teams, now, config, history), self.index, changed

    def snapshot(self, pool: Pool, teams: dict[str, Team], now: float, config: SchedulerConfig, history=None) -> Snapshot:
        if self._tuples is None:
            self._tuples = (tuple(self.running.values()), tuple(self.pending.values()))
        return Snapshot(pool=pool, teams=teams, running=self._tuples[0], pending=self._tuples[1], now=now, config=config, history=history)

    def _read_all(self, db: Session, now: float, las, attained_step: float) -> list:
        """Forget the kept rows and read every active one (the garbage collector paused: ``paused_gc``)."""
        kept_pool = (self._pool, self._pool_stamp)
        misses = self.misses
        self.__init__()
        self._pool, self._pool_stamp, self.misses = *kept_pool, misses
        self._grid = (las, attained_step)
        with paused_gc():
            read = _read_rows(db, now, las, attained_step, true())
            for _, row, _ in read:
                self._add(row)
        return read

    def load(
        self, db: Session, now: float, config: SchedulerConfig, preemption=None, history: UsageHistory | None = None,
        attained_step: float = ATTAINED_STEP,
    ) -> Snapshot:
        """Every active row, read outside a write transaction (a service's warm-up before its first cycle:
        ``SchedulingLoop.warm_up``); the next ``refresh`` reads only what was written since.

        The workloads' stamp counter is read before the rows: every row with a revision up to it was
        committed before this read began and is read as it stands (a reader that sees stamp N sees every
        stamp below it: orm.next_stamp); a row written after that has a higher revision and is read again
        by the next refresh, in the cycle's transaction, so a read spread over several statements (as on
        PostgreSQL's read committed, or SQLite without a transaction) misses nothing."""
        stamp = db.scalar(select(StampRow.value).where(StampRow.name == WORKLOADS_STAMP)) or 0
        teams = read_teams(db, preemption)
        pool = self.pool(db)
        self.reads = len(self._read_all(db, now, config.las_thresholds_gpu_s, attained_step))
        self.seen = stamp
        return self.snapshot(pool, teams, now, config, history)

    def _check(self, db: Session, now: float, las, attained_step: float, check_every: int) -> dict:
        """The rolling check: read the next 1/``check_every`` of the kept rows again (a range of seqs, in
        order, wrapping round) and compare them with what is kept; return what differs, applied to the
        kept rows, as ``refresh``'s ``changed`` (counted in ``misses``).

        A row written without its revision stamp (a bulk UPDATE, a manual fix in the database) differs
        here. Every kept row, and any active row inserted between them without a stamp, is read again
        within ``check_every`` cycles, at about 1/``check_every`` of a full read's cost each cycle rather
        than a full read every ``check_every``-th cycle (1 s at 60,000 rows)."""
        buckets = sorted(self._buckets)
        start = bisect_left(buckets, self._check_from)
        take = buckets[start : start + max(1, -(-len(buckets) // check_every))]
        last = start + len(take) >= len(buckets)  # this slice runs to the end: new rows beyond the last are in it
        lo = self._check_from * _BUCKET if start else 0  # from where the last slice ended: rows in empty buckets too
        where = WorkloadRow.seq >= lo
        if take and not last:
            where = where & (WorkloadRow.seq < (take[-1] + 1) * _BUCKET)
        self._check_from = 0 if last else take[-1] + 1
        # Compared as read (the columns and the shares, no objects built): a few microseconds a row.
        db.flush()
        conn = db.connection()
        where = where & WorkloadRow.state.in_(ACTIVE)
        raw_shares: dict[int, list[tuple]] = {}
        for seq, node, uuid, fraction, memory in conn.execute(
            select(*_SHARE_COLUMNS).join(WorkloadRow, WorkloadRow.seq == ShareRow.workload_seq).where(where).order_by(ShareRow.id)
        ):
            raw_shares.setdefault(seq, []).append((node, uuid, fraction, memory))
        read, differ, rows = set(), [], self.rows
        for raw in conn.execute(select(*_COLUMNS).where(where)):
            seq = raw[0]
            wid = format_workload_id(seq)
            read.add(wid)
            old = rows.get(wid)
            if old is None or _compared(old.raw) != _compared(raw) or old.raw_shares != tuple(raw_shares.get(seq, ())):
                differ.append(seq)
        self.checked = len(read)
        missed: dict = {}
        for wid in {w for b in take for w in self._buckets[b]} - read:
            missed[wid] = None
            self._drop(wid)
        if differ:
            for wid, row, _ in _read_rows(db, now, las, attained_step, WorkloadRow.seq.in_(differ)):
                old = self.rows.get(wid)
                if old is not None and _same_row(old, row):  # (as read the same for the scheduler after all)
                    old.raw, old.raw_shares = row.raw, row.raw_shares
                    continue
                self._drop(wid)
                self._add(row)
                missed[wid] = row.running if row.running is not None else (row.workload if row.state == "pending" else None)
        self.misses += len(missed)
        return missed
