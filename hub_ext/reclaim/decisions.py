"""What the idle policy decides: plain data, applied by the service or the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReclaimState:
    """What the policy said about a workload before (kept by the caller between ticks)."""

    warned_at: float | None = None  # a session was warned at this time
    flagged_at: float | None = None  # a job was flagged to admins at this time


@dataclass(frozen=True)
class Warn:
    workload_id: str
    idle_seconds: float
    # When the GPUs will be taken back if the session stays idle; None when
    # that waits for someone to need them ("when_waiting").
    reclaim_at: float | None
    reason: str


@dataclass(frozen=True)
class Reclaim:
    workload_id: str
    action: str  # "stop" | "restart_without_gpus"
    idle_seconds: float
    gpus: float  # how many GPUs go back to the pool
    reason: str


@dataclass(frozen=True)
class Flag:
    """A batch job holding idle GPUs for long: shown to admins, never reclaimed."""

    workload_id: str
    idle_seconds: float
    reason: str


@dataclass(frozen=True)
class Withdraw:
    """A warning or flag no longer holds: the GPUs are busy again."""

    workload_id: str
    what: str  # "warning" | "flag"
    reason: str


@dataclass(frozen=True)
class ReclaimDecisions:
    warnings: tuple[Warn, ...] = ()
    reclaims: tuple[Reclaim, ...] = ()
    flags: tuple[Flag, ...] = ()
    withdrawals: tuple[Withdraw, ...] = ()
    # workload id -> seconds idle on every GPU it holds (0 = busy, None = no data)
    idle_seconds: dict[str, float | None] = field(default_factory=dict)
