"""A declared node with scripted utilisation: GPU facts without hardware.

Tests, the demo pool and machines without GPUs use it behind the same
interface as NVML, so the agent, the service and the reclaim policy run the
same code whether or not a real card is there.

The script says, per GPU, what its utilisation is from a time on (seconds
since the backend started, or since each repetition started)::

    {
      "gpus": [{"model": "V100-SXM2-32GB", "memory_mib": 32768}, {...}],
      "utilization": {
        "0": [[0, 0], [600, 85], [900, 0]],     # idle, busy from 10 min, idle again from 15 min
        "1": [[0, 40]],                          # steady 40%
        "*": [[0, 0]]                            # every GPU not named
      },
      "memory_used_mib": {"0": [[0, 0], [600, 12000]]},
      "processes": {"0": [[600, [4242]], [900, []]]},
      "repeat_s": 1800                           # play the script again every 30 min
    }

A step's value is in force from its time until the next step's. A GPU with
no step in force (before its first step, or not in the script at all) gives
no utilisation figure, as a card that cannot be read: the reclaim policy
treats that as missing data, never as idleness. GPUs are named by index or
by UUID.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .base import GpuBackend, GpuInfo, GpuProcess, GpuReading

DEFAULT_MODEL = "simulated-gpu"  # as the service names a declared card with no model
DEFAULT_MEMORY_MIB = 16384


class ScriptError(ValueError):
    """A utilisation script that cannot be played; the message names the bad part."""


@dataclass(frozen=True)
class Steps:
    """A step function of time: value ``values[i]`` from ``times[i]`` on."""

    times: tuple[float, ...]
    values: tuple

    def at(self, t: float):
        i = bisect.bisect_right(self.times, t) - 1
        return None if i < 0 else self.values[i]


def parse_steps(raw, where: str, check_value: Callable) -> Steps:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ScriptError(f"{where}: expected a list of [from_seconds, value] steps, got {raw!r}")
    pairs = []
    for step in raw:
        if not isinstance(step, Sequence) or isinstance(step, str) or len(step) != 2:
            raise ScriptError(f"{where}: a step is [from_seconds, value], got {step!r}")
        start, value = step
        if not isinstance(start, (int, float)) or isinstance(start, bool) or start < 0:
            raise ScriptError(f"{where}: a step's time must be seconds >= 0, got {start!r}")
        pairs.append((float(start), check_value(value, where)))
    times = [p[0] for p in pairs]
    if times != sorted(times) or len(set(times)) != len(times):
        raise ScriptError(f"{where}: step times must be strictly increasing, got {times}")
    return Steps(tuple(times), tuple(p[1] for p in pairs))


def _percent(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ScriptError(f"{where}: utilisation must be a percentage 0-100, got {value!r}")
    return float(value)


def _mib(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScriptError(f"{where}: memory must be whole MiB >= 0, got {value!r}")
    return value


def _pids(value, where):
    if not isinstance(value, Sequence) or not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in value):
        raise ScriptError(f"{where}: processes are a list of pids, got {value!r}")
    return tuple(value)


class SimulatedBackend(GpuBackend):
    """A declared node whose GPUs follow a script.

    ``clock`` returns seconds; the script's time 0 is the clock's value when
    the backend is made (tests pass a clock they move by hand).
    """

    simulated = True

    def __init__(
        self,
        gpus: Sequence[GpuInfo],
        utilization: Mapping[str, object] | None = None,
        memory_used_mib: Mapping[str, object] | None = None,
        processes: Mapping[str, object] | None = None,
        repeat_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._gpus = tuple(gpus)
        if repeat_s is not None and (isinstance(repeat_s, bool) or not isinstance(repeat_s, (int, float)) or repeat_s <= 0):
            raise ScriptError(f"repeat_s must be a positive number of seconds, got {repeat_s!r}")
        self._repeat_s = repeat_s
        self._clock = clock
        self._t0 = clock()
        self._utilization = self._per_gpu(utilization, "utilization", _percent)
        self._memory = self._per_gpu(memory_used_mib, "memory_used_mib", _mib)
        self._processes = self._per_gpu(processes, "processes", _pids)

    @classmethod
    def from_script(cls, script: Mapping, node: str = "sim", clock: Callable[[], float] = time.monotonic, gpus: Sequence[GpuInfo] | None = None) -> SimulatedBackend:
        """Build from the JSON script format in this module's docstring.

        ``gpus`` are the node's cards when the script declares none (the agent
        passes the cards the pool service has declared for the node, so the
        UUIDs match).
        """
        if not isinstance(script, Mapping):
            raise ScriptError("a simulated GPU script is a JSON object")
        unknown = set(script) - {"gpus", "utilization", "memory_used_mib", "processes", "repeat_s"}
        if unknown:
            raise ScriptError(f"unknown keys in the GPU script: {sorted(unknown)}")
        if "gpus" in script or gpus is None:
            gpus = declared_gpus(script.get("gpus", 1), node)
        return cls(
            gpus,
            utilization=script.get("utilization"),
            memory_used_mib=script.get("memory_used_mib"),
            processes=script.get("processes"),
            repeat_s=script.get("repeat_s"),
            clock=clock,
        )

    @classmethod
    def from_file(cls, path, node: str = "sim", clock: Callable[[], float] = time.monotonic, gpus: Sequence[GpuInfo] | None = None) -> SimulatedBackend:
        try:
            with open(path) as f:
                script = json.load(f)
        except OSError as e:
            raise ScriptError(f"cannot read the GPU script {path}: {e.strerror}") from e
        except json.JSONDecodeError as e:
            raise ScriptError(f"{path}: not valid JSON: {e}") from e
        return cls.from_script(script, node=node, clock=clock, gpus=gpus)

    def _per_gpu(self, raw, what, check) -> dict[str, Steps]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise ScriptError(f"{what}: expected an object keyed by GPU index, UUID or '*'")
        known = {str(g.index) for g in self._gpus} | {g.uuid for g in self._gpus} | {"*"}
        out = {}
        for key, steps in raw.items():
            key = str(key)
            if key not in known:
                raise ScriptError(f"{what}: no GPU {key!r} on this node (GPUs: {', '.join(str(g.index) for g in self._gpus)})")
            out[key] = parse_steps(steps, f"{what}[{key}]", check)
        return out

    def _elapsed(self) -> float:
        t = self._clock() - self._t0
        return t % self._repeat_s if self._repeat_s else t

    @staticmethod
    def _lookup(table: dict[str, Steps], gpu: GpuInfo, t: float):
        steps = table.get(gpu.uuid) or table.get(str(gpu.index)) or table.get("*")
        return None if steps is None else steps.at(t)

    def list_gpus(self) -> tuple[GpuInfo, ...]:
        return self._gpus

    def readings(self) -> tuple[GpuReading, ...]:
        t = self._elapsed()
        out = []
        for gpu in self._gpus:
            pids = self._lookup(self._processes, gpu, t) or ()
            memory = self._lookup(self._memory, gpu, t)
            out.append(
                GpuReading(
                    index=gpu.index,
                    uuid=gpu.uuid,
                    model=gpu.model,
                    memory_total_mib=gpu.memory_mib,
                    memory_used_mib=memory if memory is not None else 0,
                    utilization=self._lookup(self._utilization, gpu, t),
                    processes=tuple(GpuProcess(pid=p, used_memory_mib=None) for p in pids),
                )
            )
        return tuple(out)


def simulated_uuid(node: str, index: int) -> str:
    """The UUID a declared GPU gets when its declaration names none."""
    return f"GPU-sim-{node}-{index}"


def declared_gpus(raw, node: str) -> tuple[GpuInfo, ...]:
    """GPUs from a count, or a list of {"model", "memory_mib", "uuid"} (each optional)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 0:
            raise ScriptError(f"gpus: a count must be >= 0, got {raw}")
        raw = [{}] * raw
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ScriptError(f"gpus: expected a count or a list of GPUs, got {raw!r}")
    gpus = []
    for index, spec in enumerate(raw):
        if not isinstance(spec, Mapping):
            raise ScriptError(f"gpus[{index}]: expected an object, got {spec!r}")
        memory = spec.get("memory_mib", DEFAULT_MEMORY_MIB)
        _mib(memory, f"gpus[{index}].memory_mib")
        gpus.append(
            GpuInfo(
                index=index,
                uuid=str(spec.get("uuid") or simulated_uuid(node, index)),
                model=str(spec.get("model", DEFAULT_MODEL)),
                memory_mib=memory,
            )
        )
    return tuple(gpus)
