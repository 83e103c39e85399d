"""NVIDIA MPS limits for work on a fraction of a card, in one place.

Under an MPS daemon, a client process's share of a card is enforced by two
variables the CUDA runtime reads at start: ``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE``
(compute) and ``CUDA_MPS_PINNED_DEVICE_MEM_LIMIT`` (memory; refused beyond it,
verified on an H200: see docs/spawner.md). Notebook servers (spawners) and local
batch jobs (service/runners/local.py) get the same limits from ``mps_env``.

An admin starts the daemon on each GPU node (as the user the work runs as, or
root with a shared pipe directory)::

    export CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps CUDA_MPS_LOG_DIRECTORY=/tmp/nvidia-mps-log
    nvidia-cuda-mps-control -d          # start
    echo quit | nvidia-cuda-mps-control # stop
"""

from __future__ import annotations

import os

DEFAULT_PIPE_DIRECTORY = "/tmp/nvidia-mps"  # the daemon's default, unless CUDA_MPS_PIPE_DIRECTORY says otherwise


def pipe_directory(configured: str = "") -> str:
    return configured or os.environ.get("CUDA_MPS_PIPE_DIRECTORY") or DEFAULT_PIPE_DIRECTORY


def daemon_running(configured_pipe_directory: str = "") -> bool:
    """Is an MPS control daemon listening here (its ``control`` pipe exists)?"""
    return os.path.exists(os.path.join(pipe_directory(configured_pipe_directory), "control"))


def mps_env(fraction: float, memory_mib: int | None, pipe_dir: str = "") -> dict[str, str]:
    """The MPS limits for a process on ``fraction`` of one card with ``memory_mib`` of its memory."""
    env = {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": str(max(1, int(round(fraction * 100))))}
    if memory_mib:
        # Device 0 is the first (only) device the process sees.
        env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = f"0={int(memory_mib)}M"
    if pipe_dir:
        env["CUDA_MPS_PIPE_DIRECTORY"] = pipe_dir
    return env
