"""The parts of a running service, handed to every handler through tornado's settings.

A plain holder, not an application object: each part is configured on its
own (traitlets) and does one job; this only lets handlers reach them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .auth import PoolAuth
from .inventory import Inventory
from .jobs import JobSupervisor
from .limits import InputLimits
from .loop import SchedulingLoop
from .reclaim import IdleReclaim
from .reconcile import ServerReconcile
from .store import Store
from .expected import ExpectedStarts
from .teams import Teams
from .time_limits import TimeLimits
from .usage_history import UsageHistory
from .workloads import WorkloadRules


@dataclass
class PoolContext:
    store: Store
    loop: SchedulingLoop
    jobs: JobSupervisor
    rules: WorkloadRules
    teams: Teams
    auth: PoolAuth
    inventory: Inventory
    reclaim: IdleReclaim
    reconcile: ServerReconcile | None = None
    limits: InputLimits = field(default_factory=InputLimits)
    time_limits: TimeLimits | None = None
    expected: ExpectedStarts | None = None
    usage: UsageHistory | None = None
