"""Print, as JSON, what the NVML backend reads on this machine.

Run on a machine with an NVIDIA GPU (the result goes into docs/node-agent.md):

    .venv/bin/python benchmarks/nvml_probe.py            # a few readings, idle cards
    .venv/bin/python benchmarks/nvml_probe.py --load     # also put work on GPU 0 (needs torch or cupy)

With ``--load``, a child process with ``GPUPOOL_WORKLOAD_ID=w-probe`` in its
environment multiplies matrices on GPU 0; the readings taken while it runs
should show utilisation near 100%, its pid among GPU 0's processes, and the
agent attributing it to ``w-probe`` from its environment. Where nvidia-smi
is on the PATH its own figures are printed beside ours as the baseline.
On a machine without a driver it prints the backend's error and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hub_ext.agent import NodeAgent  # noqa: E402
from hub_ext.gpus import GpuBackendUnavailable, open_backend  # noqa: E402

LOAD_SCRIPT = r"""
import sys, time
seconds = float(sys.argv[1])
try:
    import torch
    a = torch.randn(8192, 8192, device="cuda:0")
    end = time.time() + seconds
    while time.time() < end:
        a = (a @ a).clamp_(-1, 1)
    torch.cuda.synchronize()
except ImportError:
    import cupy
    a = cupy.random.randn(8192, 8192, dtype=cupy.float32)
    end = time.time() + seconds
    while time.time() < end:
        a = cupy.clip(a @ a, -1, 1)
    cupy.cuda.Device(0).synchronize()
"""


def nvidia_smi() -> list[dict] | None:
    if not shutil.which("nvidia-smi"):
        return None
    fields = "index,uuid,name,memory.total,memory.used,utilization.gpu"
    out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"], capture_output=True, text=True)
    if out.returncode != 0:
        return [{"error": out.stderr.strip()}]
    rows = []
    for line in out.stdout.strip().splitlines():
        index, uuid, name, total, used, util = [x.strip() for x in line.split(",")]
        rows.append({"index": int(index), "uuid": uuid, "model": name, "memory_total_mib": int(total), "memory_used_mib": int(used), "utilization": float(util)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=3, help="readings to take (default 3)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between readings (default 2)")
    parser.add_argument("--load", action="store_true", help="run a matrix-multiply load on GPU 0 while reading")
    args = parser.parse_args()

    try:
        backend = open_backend("nvml")
    except GpuBackendUnavailable as e:
        print(json.dumps({"error": str(e), "cause": repr(e.__cause__)}, indent=2))
        return 1

    report: dict = {"driver_version": backend.driver_version, "gpus": [vars(g) for g in backend.list_gpus()], "readings": []}
    load = None
    if args.load:
        env = dict(os.environ, GPUPOOL_WORKLOAD_ID="w-probe")
        seconds = args.readings * args.interval + 5
        load = subprocess.Popen([sys.executable, "-c", LOAD_SCRIPT, str(seconds)], env=env)
        report["load_pid"] = load.pid
        time.sleep(4)  # CUDA context creation and the first kernels
    agent = NodeAgent(backend, node="probe")
    with backend:
        for i in range(args.readings):
            started = time.perf_counter()
            payload = agent.collect()
            took = time.perf_counter() - started
            report["readings"].append(
                {
                    "read_seconds": round(took, 4),
                    "gpus": payload["gpus"],
                    "utilization_source": list(backend.source),
                    "nvidia_smi": nvidia_smi(),
                }
            )
            if i + 1 < args.readings:
                time.sleep(args.interval)
    if load is not None:
        report["load_exit_code"] = load.wait()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
