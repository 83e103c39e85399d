"""The service's one ORM module: what the pool service persists.

The service is the only writer of allocations. Every change that decides who
holds which GPU happens inside ``Store.write()``, which serialises writers
across processes (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level
advisory lock), so two requests racing for the last GPU cannot both win.

Times are seconds since the epoch (floats), like the scheduler core's.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from sqlalchemy import (
    JSON,
    select,
    update,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

# Any constant works; it only has to be the same for every service process.
_PG_WRITE_LOCK_KEY = 0x6770_7530


class Base(DeclarativeBase):
    pass


class NodeRow(Base):
    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    schedulable: Mapped[bool] = mapped_column(Boolean, default=True)
    # "declared" (configuration), "nvml" (discovered here), "agent" (reported by a node agent)
    source: Mapped[str] = mapped_column(String(32), default="declared")
    last_reading_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # What the node's agent could not read with its last readings (NVML errors); None: nothing went wrong.
    agent_errors: Mapped[list | None] = mapped_column(JSON, nullable=True)

    gpus: Mapped[list[GpuRow]] = relationship(back_populates="node", order_by="GpuRow.index", cascade="all, delete-orphan")


class GpuRow(Base):
    __tablename__ = "gpus"

    uuid: Mapped[str] = mapped_column(String(255), primary_key=True)
    node_name: Mapped[str] = mapped_column(ForeignKey("nodes.name", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(255))
    memory_mib: Mapped[int] = mapped_column(Integer)
    # The latest reading (agent or NVML); None until one arrives.
    utilization: Mapped[float | None] = mapped_column(Float, nullable=True)
    memory_used_mib: Mapped[int | None] = mapped_column(Integer, nullable=True)
    processes: Mapped[list | None] = mapped_column(JSON, nullable=True)
    reading_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Since when the card has shown no activity; None while busy or unknown.
    idle_since: Mapped[float | None] = mapped_column(Float, nullable=True)

    node: Mapped[NodeRow] = relationship(back_populates="gpus")


class TeamRow(Base):
    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    quota: Mapped[float] = mapped_column(Float, default=0.0)
    over_quota_weight: Mapped[float] = mapped_column(Float, default=1.0)
    limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class WorkloadRow(Base):
    __tablename__ = "workloads"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    team: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # session | job
    # pending | running | stopping | completed | failed | cancelled
    state: Mapped[str] = mapped_column(String(16), index=True)
    gpus: Mapped[float] = mapped_column(Float)
    min_gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # An elastic job resized by its user holds at most this many GPUs (within
    # min_gpus..max_gpus); None: it may grow up to max_gpus.
    gpus_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gpu_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    min_gpu_memory_mib: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gpu_memory_mib: Mapped[int | None] = mapped_column(Integer, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    preemptible: Mapped[bool] = mapped_column(Boolean, default=True)
    command: Mapped[list | None] = mapped_column(JSON, nullable=True)
    env: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    workdir: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    preemptions: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    over_quota: Mapped[bool] = mapped_column(Boolean, default=False)
    queue_position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expected_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    # What expected_start rests on ("GPUs expected to free up when w-3 ends (median of ...)"), or why it is not known.
    expected_start_basis: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The run-time limit in seconds (jobs: declared or the team's default; sessions: the team's maximum length).
    time_limit_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # When the user was warned that a session nears its maximum length.
    time_warned_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The runner's handle for the job's current process (jobs only).
    runner_handle: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Handles of processes that were told to stop and may still be running
    # (preempted, resized, cancelled): kept until they are gone, so a restart
    # can finish stopping them and no GPU is used twice.
    stop_handles: Mapped[list | None] = mapped_column(JSON, nullable=True)
    log_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Preempted with notice: it keeps its GPUs until then (sessions: their server
    # is stopped then; jobs: SIGTERM at once, SIGKILL then), and why.
    preempt_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    preempt_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set to the writing transaction's global stamp whenever a column the scheduler reads or the shares change
    # (SCHEDULING_COLUMNS, see _bump_revision), and at insert: the scheduling loop reads only rows with a
    # revision above the last it saw (snapshot.KeptSnapshot).
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0", index=True)
    # Attained service (service/attained.py): GPU-seconds held over all past runs and, while the
    # workload holds GPUs, an offset for its current run: held so far = attained_gpu_s + GPUs held
    # x (now - started_at) (a resize folds the old size into it). Read with attained.held_gpu_s.
    attained_gpu_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")

    shares: Mapped[list[ShareRow]] = relationship(
        back_populates="workload", order_by="ShareRow.id", cascade="all, delete-orphan"
    )

    @property
    def id(self) -> str:
        return format_workload_id(self.seq)

    @property
    def allocated_gpus(self) -> float:
        return sum(s.fraction for s in self.shares)


# What the scheduler's snapshot reads of a workload row (service/snapshot.py); queue positions,
# reasons and expected starts are written back every cycle and are not among them.
SCHEDULING_COLUMNS = (
    "user", "team", "kind", "state", "gpus", "submitted_at", "started_at", "priority", "preemptible", "min_gpus",
    "max_gpus", "gpus_cap", "gpu_model", "min_gpu_memory_mib", "gpu_memory_mib", "preempt_at", "time_limit_s",
    "attained_gpu_s",
)


class StampRow(Base):
    """Global, monotonic change stamps: ``workloads`` (WorkloadRow.revision) and ``pool`` (nodes and GPUs).

    A writing transaction that changes what the scheduler reads takes the next stamp once (``next_stamp``)
    and writes it into every row it changes, so a reader finds every change since it last looked with
    ``WHERE revision > last_seen`` (indexed), and knows the pool changed when its stamp moved."""

    __tablename__ = "stamps"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


WORKLOADS_STAMP = "workloads"
POOL_STAMP = "pool"


def next_stamp(connection, session: Session | None, name: str) -> int:
    """This transaction's stamp ``name``: the counter moved on by one, once per transaction.

    Why a counter row and not a sequence: a sequence hands out numbers at once, so on PostgreSQL a
    transaction with stamp 7 could commit after one with stamp 8, and a reader that saw 8 would never
    look at 7. The UPDATE below takes the counter row's lock until commit: a second transaction that
    wants a stamp waits for the first to commit and then gets the next one, so stamps commit in order
    and a reader (at any isolation level) that sees stamp N sees every stamp below it. Writes go through
    ``Store.write`` anyway (one at a time: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL),
    and the scheduling loop reads inside it; the row lock keeps the order for any other writer too."""
    info = session.info if session is not None else None
    key = ("stamp", name)
    if info is not None and key in info:
        return info[key]
    table = StampRow.__table__
    if connection.execute(update(table).where(table.c.name == name).values(value=table.c.value + 1)).rowcount == 0:
        connection.execute(table.insert().values(name=name, value=1))
    value = connection.execute(select(table.c.value).where(table.c.name == name)).scalar_one()
    if info is not None:
        info[key] = value
    return value


@event.listens_for(Session, "after_transaction_end")
def _forget_stamps(session, transaction) -> None:
    if transaction.parent is None and session.info:
        for key in [k for k in session.info if isinstance(k, tuple) and k and k[0] == "stamp"]:
            del session.info[key]


@event.listens_for(WorkloadRow, "before_update")
def _bump_revision(mapper, connection, target) -> None:
    """Every ORM write of a scheduling column or of the workload's shares sets ``revision`` to the
    transaction's workloads stamp (``next_stamp``), in the same UPDATE; so does every insert.

    Bulk UPDATE statements bypass this: they must not set SCHEDULING_COLUMNS (expected.py writes
    only expected starts that way); the loop's periodic full comparison catches a miss."""
    attrs = inspect(target).attrs
    if attrs.shares.history.has_changes() or any(attrs[c].history.has_changes() for c in SCHEDULING_COLUMNS):
        target.revision = next_stamp(connection, Session.object_session(target), WORKLOADS_STAMP)


@event.listens_for(WorkloadRow, "before_insert")
def _stamp_new_workload(mapper, connection, target) -> None:
    target.revision = next_stamp(connection, Session.object_session(target), WORKLOADS_STAMP)


# What the scheduler's pool reads of nodes and GPUs (snapshot.pool_model): a change bumps the pool stamp.
POOL_COLUMNS = {NodeRow: ("name", "simulated", "schedulable"), GpuRow: ("uuid", "node_name", "index", "model", "memory_mib")}


def _bump_pool(mapper, connection, target) -> None:
    next_stamp(connection, Session.object_session(target), POOL_STAMP)


def _bump_pool_on_update(mapper, connection, target) -> None:
    attrs = inspect(target).attrs
    if any(attrs[c].history.has_changes() for c in POOL_COLUMNS[type(target)]):
        _bump_pool(mapper, connection, target)


for _cls in (NodeRow, GpuRow):
    event.listen(_cls, "before_insert", _bump_pool)
    event.listen(_cls, "before_delete", _bump_pool)
    event.listen(_cls, "before_update", _bump_pool_on_update)


class ShareRow(Base):
    """Part (or all) of one GPU held by one workload: the allocation."""

    __tablename__ = "shares"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload_seq: Mapped[int] = mapped_column(ForeignKey("workloads.seq", ondelete="CASCADE"), index=True)
    node_name: Mapped[str] = mapped_column(String(255))
    gpu_uuid: Mapped[str] = mapped_column(String(255), index=True)
    gpu_index: Mapped[int] = mapped_column(Integer)
    fraction: Mapped[float] = mapped_column(Float, default=1.0)
    memory_mib: Mapped[int | None] = mapped_column(Integer, nullable=True)

    workload: Mapped[WorkloadRow] = relationship(back_populates="shares")


def _stamp_share_holder(mapper, connection, target) -> None:
    """A share written on its own (not through its workload's ``shares``) stamps its workload too."""
    if target.workload_seq is not None:
        table = WorkloadRow.__table__
        stamp = next_stamp(connection, Session.object_session(target), WORKLOADS_STAMP)
        connection.execute(update(table).where(table.c.seq == target.workload_seq, table.c.revision != stamp).values(revision=stamp))


for _when in ("after_insert", "after_update", "after_delete"):
    event.listen(ShareRow, _when, _stamp_share_holder)


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    # submitted | started | preempted | resized | reclaimed | finished | cancelled | failed | team-changed | ...
    kind: Mapped[str] = mapped_column(String(32))
    workload_seq: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    user: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    team: Mapped[str | None] = mapped_column(String(255), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class UsageHistoryRow(Base):
    """Decayed past GPU usage of a team (user "") or of one user in a team (see scheduler/decay.py)."""

    __tablename__ = "usage_history"
    team: Mapped[str] = mapped_column(String(255), primary_key=True)
    user: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    average_gpus: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[float] = mapped_column(Float)


def format_workload_id(seq: int) -> str:
    return f"w-{seq}"


def parse_workload_id(workload_id: str) -> int | None:
    """``"w-12"`` (or ``"12"``) -> 12; None for anything else."""
    text_id = workload_id[2:] if workload_id.startswith("w-") else workload_id
    if not text_id.isdigit() or len(text_id) > 18:
        return None
    seq = int(text_id)
    # The column is a 32-bit integer on PostgreSQL: a larger id names no workload.
    return seq if seq < 2**31 else None


class SubmitKeyRow(Base):
    """An idempotency key a user sent with a submission: a retry with it returns the same workload."""

    __tablename__ = "submit_keys"

    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    workload_seq: Mapped[int] = mapped_column(ForeignKey("workloads.seq", ondelete="CASCADE"), index=True)
    # sha256 of the submission as checked: the same key with a different submission is refused.
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


# ---------------------------------------------------------------- engine and sessions


def _sqlite_serialised_writes(engine: Engine, wal: bool) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE``.

    pysqlite's default defers the write lock to the first write, so two
    transactions can both read "one GPU free" and both try to take it; an
    immediate transaction takes the write lock up front.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if wal:  # readers do not wait for the writer
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Store.read: a deferred BEGIN takes no lock until a write (none comes); in WAL mode it reads one
        # consistent view while a writer works.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("gpupool_unlocked_read") else "BEGIN IMMEDIATE")


class Store:
    """The database: an engine, sessions, and the serialised write transaction."""

    def __init__(self, url: str, echo: bool = False):
        self.url = url
        kwargs: dict = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            _sqlite_serialised_writes(self.engine, wal=":memory:" not in url and url != "sqlite://")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Counts this process's committed writes: views computed at the same
        # generation are still right (see api/pool.py).
        self.generation = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction, always rolled back: it must not write. On SQLite it waits for no writer and
        holds none up: a deferred ``BEGIN``, which in WAL mode reads one consistent view while a writer
        works (every other transaction there begins ``IMMEDIATE``: an API read, or the warm-up's read
        of every row, used to take the write lock, so cycles and submits waited for it, and it for them)."""
        with self.engine.connect() as conn:
            conn.execution_options(gpupool_unlocked_read=True)
            with Session(bind=conn, expire_on_commit=False) as session:
                try:
                    yield session
                finally:
                    session.rollback()

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One serialised transaction: committed if the block returns, rolled back if it raises."""
        with self._sessions() as session:
            with session.begin():
                if self.dialect == "postgresql":
                    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_WRITE_LOCK_KEY})
                yield session
        self.generation += 1

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (run at every start)."""
        from .migrate import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def default_db_url(state_dir: str) -> str:
    return "sqlite:///" + os.path.join(os.path.abspath(state_dir), "gpupool.sqlite")


class UsageSampleRow(Base):
    """Measured use, downsampled: per time bucket and team, GPU-seconds held and GPU-seconds busy.

    Written from the node agents' readings (``usage_history.record_readings``);
    older buckets are dropped after ``UsageHistory.retention_days``.
    """

    __tablename__ = "usage_samples"

    bucket_start: Mapped[float] = mapped_column(Float, primary_key=True)
    team: Mapped[str] = mapped_column(String(255), primary_key=True)
    held_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    busy_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
