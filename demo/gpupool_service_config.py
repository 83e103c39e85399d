"""Configuration of the demo's gpupool service (``gpupool service --config`` loads it).

The pool is this machine's NVIDIA GPUs where NVML finds any, otherwise a
simulated DGX-1 + DGX-2 (the seed's cluster). Two teams with 12 guaranteed
GPUs each; their members come from the hub's groups of the same names.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo.settings import DEMO_QUOTAS, DEMO_SIMULATED_NODES  # noqa: E402

state = Path(os.environ["GPUPOOL_DEMO_STATE"])
c = get_config()  # noqa: F821 - provided by the service when it loads this file

# Its database (SQLite) and the jobs' logs; it listens where the hub's services entry says.
c.GpuPoolService.state_dir = str(state / "pool")

if os.environ.get("GPUPOOL_DEMO_POOL") == "nvml":
    c.Inventory.source = "nvml"
else:
    c.Inventory.source = "declared"
    c.Inventory.nodes = DEMO_SIMULATED_NODES

c.Teams.teams = DEMO_QUOTAS
# A demo shows preemption within seconds, not after half a minute.
c.JobSupervisor.grace_seconds = 10

# Idle reclaim, spelled out so docs/quickstart.md can say what a demo user meets. A session's idle
# time starts when it gets its GPUs, never earlier, so a fresh notebook on a GPU the script keeps
# idle is warned after an hour and, a quarter of an hour later, stopped (files kept) only while
# someone waits for GPUs: nothing happens to it in a demo's first minutes.
c.IdleReclaim.enabled = True
c.IdleReclaim.idle_limit_seconds = 3600
c.IdleReclaim.grace_seconds = 900
c.IdleReclaim.mode = "when_waiting"
c.IdleReclaim.action = "stop"
