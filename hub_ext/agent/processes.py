"""Which workload a GPU process belongs to, from the process itself.

Spawners and runners start every session and job with
``GPUPOOL_WORKLOAD_ID`` in its environment. A process on a GPU may be a
grandchild that dropped its environment (a kernel started by a tool that
cleans it), so we also look up the parent chain.

NVML gives PIDs in the host's PID namespace: an agent in a container needs
the host's /proc (``hostPID: true`` in Kubernetes) for these lookups to
find anything; where they find nothing, the workload is attributed by its
allocation instead (see ``agent.attribute``).
"""

from __future__ import annotations

import os

WORKLOAD_ENV = "GPUPOOL_WORKLOAD_ID"
# Enough to go from a CUDA process through a kernel, jupyter-server and a
# shell up to the spawner's process, without walking to init on every pid.
MAX_ANCESTORS = 8


def _environ(pid: int, proc_root: str) -> dict[str, str] | None:
    try:
        with open(os.path.join(proc_root, str(pid), "environ"), "rb") as f:
            raw = f.read()
    except OSError:  # gone, or another user's process and we are not root
        return None
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _parent(pid: int, proc_root: str) -> int | None:
    try:
        with open(os.path.join(proc_root, str(pid), "stat"), "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces
    # and ")"; the fields after the last ")" are fixed.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        ppid = int(fields[1])
    except (IndexError, ValueError):
        return None
    return ppid if ppid > 1 else None


def workload_of_process(pid: int, proc_root: str = "/proc") -> str | None:
    """The workload id in the environment of ``pid`` or its nearest ancestor that has one."""
    current: int | None = pid
    for _ in range(MAX_ANCESTORS + 1):
        if current is None:
            return None
        env = _environ(current, proc_root)
        if env and env.get(WORKLOAD_ENV):
            return env[WORKLOAD_ENV]
        current = _parent(current, proc_root)
    return None
