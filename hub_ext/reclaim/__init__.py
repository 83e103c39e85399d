"""Idle GPU reclaim: a pure policy (no clock, no I/O), applied by the service and the simulator."""

from .decide import decide, workload_idle_since
from .decisions import Flag, Reclaim, ReclaimDecisions, ReclaimState, Warn, Withdraw
from .history import Sample, gpu_state, idle_seconds, idle_streak_start
from .settings import ACTIONS, MODES, IdlePolicy, PolicyError, PolicySettings

__all__ = [
    "ACTIONS", "MODES", "Flag", "IdlePolicy", "PolicyError", "PolicySettings", "Reclaim", "ReclaimDecisions",
    "ReclaimState", "Sample", "Warn", "Withdraw", "decide", "gpu_state", "idle_seconds", "idle_streak_start",
    "workload_idle_since",
]
