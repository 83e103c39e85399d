"""GPU facts from the NVIDIA driver, through NVML (pynvml).

This is the only module in the project that imports pynvml. It is imported
lazily so that machines without the package or the driver can still import
the rest of hub_ext; constructing ``NvmlBackend`` there raises
``GpuBackendUnavailable`` with a message that says what is missing.

Utilisation: ``nvmlDeviceGetUtilizationRates`` is the busy fraction over the
driver's last sample period (1/6 s to 1 s), a point sample. An agent that
reads every 10-30 s would see a notebook's short bursts only by luck, so we
ask the driver for every utilisation sample since our previous reading
(``nvmlDeviceGetSamples``) and average them; where the driver does not keep
samples we fall back to the point sample.
"""

from __future__ import annotations

import importlib
import warnings

from .base import GpuBackend, GpuBackendUnavailable, GpuInfo, GpuProcess, GpuReading

MIB = 1024 * 1024


def _load_pynvml():
    try:
        with warnings.catch_warnings():
            # The "pynvml" distribution warns that it is deprecated in favour of
            # nvidia-ml-py; both install the same module, so the warning says
            # nothing to an admin.
            warnings.simplefilter("ignore", FutureWarning)
            return importlib.import_module("pynvml")
    except ImportError as e:
        raise GpuBackendUnavailable(
            "the NVML backend needs the Python package nvidia-ml-py (module pynvml): "
            "pip install nvidia-ml-py, or run the agent with the simulated backend"
        ) from e


def _text(value) -> str:
    # Older pynvml releases return bytes, newer ones str.
    return value.decode() if isinstance(value, bytes) else str(value)


def mib(value_bytes: int | None) -> int | None:
    return None if value_bytes is None else int(value_bytes // MIB)


def merge_processes(*process_lists) -> tuple[GpuProcess, ...]:
    """One entry per pid: a process with both a compute and a graphics context
    is listed by NVML twice, and counting it twice would double its memory."""
    by_pid: dict[int, GpuProcess] = {}
    for processes in process_lists:
        for p in processes:
            pid = int(p.pid)
            used = mib(getattr(p, "usedGpuMemory", None))
            known = by_pid.get(pid)
            if known is None or (known.used_memory_mib is None and used is not None):
                by_pid[pid] = GpuProcess(pid=pid, used_memory_mib=used)
    return tuple(sorted(by_pid.values(), key=lambda p: p.pid))


def average_samples(value_type: int, samples, nvml) -> float | None:
    """Mean of NVML samples, decoding the value union by its declared type."""
    field = {
        nvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
        nvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
        nvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    }.get(value_type)
    if field is None or not samples:
        return None
    values = [float(getattr(s.sampleValue, field)) for s in samples]
    return sum(values) / len(values)


class NvmlBackend(GpuBackend):
    """The cards of this machine, as the NVIDIA driver sees them."""

    simulated = False

    def __init__(self):
        self._nvml = nvml = _load_pynvml()
        try:
            nvml.nvmlInit()
        except nvml.NVMLError_LibraryNotFound as e:
            raise GpuBackendUnavailable(
                "no NVIDIA driver on this machine (NVML library libnvidia-ml.so not found): "
                "run the agent on a GPU node, or with --backend simulated"
            ) from e
        except nvml.NVMLError_DriverNotLoaded as e:
            raise GpuBackendUnavailable("the NVIDIA driver is installed but not loaded (is the GPU visible to this host or container?)") from e
        except nvml.NVMLError_NoPermission as e:
            raise GpuBackendUnavailable("no permission to open the NVIDIA driver (run the agent as a user with access to /dev/nvidia*)") from e
        except nvml.NVMLError as e:
            raise GpuBackendUnavailable(f"NVML could not start: {e}") from e
        self._open = True
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        self._gpus = tuple(self._info(i, h) for i, h in enumerate(self._handles))
        # per card: driver timestamp (microseconds) of the last sample we averaged
        self._last_sample_ts = [0] * len(self._handles)
        self.source = ["none"] * len(self._handles)  # which NVML call gave each card's figure (for the probe)

    def _info(self, index, handle) -> GpuInfo:
        nvml = self._nvml
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        return GpuInfo(
            index=index,
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            model=_text(nvml.nvmlDeviceGetName(handle)),
            memory_mib=mib(memory.total),
        )

    @property
    def driver_version(self) -> str:
        return _text(self._nvml.nvmlSystemGetDriverVersion())

    def list_gpus(self) -> tuple[GpuInfo, ...]:
        return self._gpus

    def _utilization(self, i, handle) -> float | None:
        nvml = self._nvml
        try:
            value_type, samples = nvml.nvmlDeviceGetSamples(handle, nvml.NVML_GPU_UTILIZATION_SAMPLES, self._last_sample_ts[i])
            samples = [s for s in samples if s.timeStamp > self._last_sample_ts[i]]
            average = average_samples(value_type, samples, nvml)
            if average is not None:
                self._last_sample_ts[i] = max(s.timeStamp for s in samples)
                self.source[i] = f"nvmlDeviceGetSamples ({len(samples)} samples)"
                return average
        except nvml.NVMLError:
            pass  # not kept on this card or driver: use the point sample
        try:
            rates = nvml.nvmlDeviceGetUtilizationRates(handle)
        except nvml.NVMLError as e:
            # e.g. NotSupported on a MIG-enabled card: no figure, which is not 0%
            self.source[i] = "unavailable"
            if getattr(e, "value", None) != getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3):
                self.last_errors.append(f"GPU {self._gpus[i].index}: utilisation not readable: {e}")
            return None
        self.source[i] = "nvmlDeviceGetUtilizationRates"
        return float(rates.gpu)

    def _processes(self, handle) -> tuple[GpuProcess, ...]:
        nvml = self._nvml
        lists = []
        for call in (nvml.nvmlDeviceGetComputeRunningProcesses, nvml.nvmlDeviceGetGraphicsRunningProcesses):
            try:
                lists.append(call(handle))
            except nvml.NVMLError:
                continue
        return merge_processes(*lists)

    def readings(self) -> tuple[GpuReading, ...]:
        nvml = self._nvml
        out = []
        self.last_errors = []
        for i, (gpu, handle) in enumerate(zip(self._gpus, self._handles)):
            try:
                used = mib(nvml.nvmlDeviceGetMemoryInfo(handle).used)
            except nvml.NVMLError as e:
                used = None
                self.last_errors.append(f"GPU {gpu.index}: memory not readable: {e}")
            out.append(
                GpuReading(
                    index=gpu.index,
                    uuid=gpu.uuid,
                    model=gpu.model,
                    memory_total_mib=gpu.memory_mib,
                    memory_used_mib=used,
                    utilization=self._utilization(i, handle),
                    processes=self._processes(handle),
                )
            )
        return tuple(out)

    def close(self) -> None:
        if getattr(self, "_open", False):
            self._open = False
            self._nvml.nvmlShutdown()
