"""The one interface for GPU facts: which cards a node has and what they are doing.

Two implementations sit behind it: ``nvml.py`` reads a real NVIDIA driver,
``simulated.py`` plays a declared pool with scripted utilisation (tests, the
demo pool, machines without GPUs). The node agent only ever sees this
interface, so the same agent code runs on both.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field


class GpuBackendUnavailable(RuntimeError):
    """The backend cannot read GPUs on this machine (no driver, no permission).

    The message says what is missing and what to do instead, because the
    person who sees it is an admin starting the agent on the wrong machine.
    """


@dataclass(frozen=True)
class GpuInfo:
    """What a card is; does not change while the node is up."""

    index: int  # as CUDA_VISIBLE_DEVICES counts (NVML's index)
    uuid: str
    model: str
    memory_mib: int


@dataclass(frozen=True)
class GpuProcess:
    """A process holding a context on a GPU."""

    pid: int
    used_memory_mib: int | None  # None where the driver does not say (e.g. in some containers)


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one moment.

    ``utilization`` is None when the card gave no figure (MIG slices, a
    driver that does not support it): missing data, which the reclaim policy
    must never mistake for an idle card.
    """

    index: int
    uuid: str
    model: str
    memory_total_mib: int
    memory_used_mib: int | None
    utilization: float | None  # percent of time a kernel ran over the driver's last sample period
    processes: tuple[GpuProcess, ...] = field(default=())


class GpuBackend(abc.ABC):
    """GPU facts of one node."""

    #: True for a backend with no hardware behind it; reported to the service
    #: so the pool page can mark such GPUs as simulated.
    simulated: bool = False

    #: What the last ``readings()`` could not read (driver errors), reported as the node's health.
    last_errors: tuple[str, ...] | list[str] = ()

    @abc.abstractmethod
    def list_gpus(self) -> tuple[GpuInfo, ...]:
        """The node's cards, in index order."""

    @abc.abstractmethod
    def readings(self) -> tuple[GpuReading, ...]:
        """Utilisation, memory and processes of every card now, in index order."""

    def close(self) -> None:
        """Release the driver (NVML's handle); safe to call twice."""

    def __enter__(self) -> GpuBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
