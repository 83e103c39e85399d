"""GPU facts behind one interface (``GpuBackend``): NVML (real) or simulated."""

from __future__ import annotations

from .base import GpuBackend, GpuBackendUnavailable, GpuInfo, GpuProcess, GpuReading

BACKENDS = ("nvml", "simulated")


def open_backend(name: str, script_path: str | None = None, node: str = "sim", gpus: tuple[GpuInfo, ...] | None = None) -> GpuBackend:
    """The backend an agent was asked for by name (``--backend``).

    ``gpus``: for the simulated backend, the node's cards when the script
    declares none.
    """
    if name == "nvml":
        from .nvml import NvmlBackend

        return NvmlBackend()
    if name == "simulated":
        from .simulated import SimulatedBackend

        if script_path is None:
            raise GpuBackendUnavailable("the simulated backend needs a GPU script (--script FILE); see docs/node-agent.md")
        return SimulatedBackend.from_file(script_path, node=node, gpus=gpus)
    raise GpuBackendUnavailable(f"unknown GPU backend {name!r}; choose one of: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "GpuBackend", "GpuBackendUnavailable", "GpuInfo", "GpuProcess", "GpuReading", "open_backend"]
