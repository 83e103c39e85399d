"""Idle GPU reclaim: a pure policy (no clock, no I/O), applied by the service and the simulator."""

from .decide import decide, workload_idle_seconds, workload_idle_since
from .decisions import Flag, Reclaim, ReclaimDecisions, ReclaimState, Warn, Withdraw
from .history import NEVER_READ, GpuIdle, Sample, fold, gpu_state, idle_seconds, observe
from .settings import ACTIONS, MODES, POLICY_FIELDS, IdleDefinition, IdlePolicy, PolicyError, PolicySettings

__all__ = [
    "ACTIONS", "MODES", "NEVER_READ", "POLICY_FIELDS", "Flag", "GpuIdle", "IdleDefinition", "IdlePolicy", "PolicyError",
    "PolicySettings", "Reclaim", "ReclaimDecisions", "ReclaimState", "Sample", "Warn", "Withdraw", "decide", "fold",
    "gpu_state", "idle_seconds", "observe", "workload_idle_seconds", "workload_idle_since",
]
