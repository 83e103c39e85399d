"""The parts of a running service, handed to every handler through tornado's settings.

A plain holder, not an application object: each part is configured on its
own (traitlets) and does one job; this only lets handlers reach them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .auth import PoolAuth
from .inventory import Inventory
from .jobs import JobSupervisor
from .loop import SchedulingLoop
from .reclaim import IdleReclaim
from .reconcile import ServerReconcile
from .store import Store
from .teams import Teams
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
    usage: UsageHistory | None = None
