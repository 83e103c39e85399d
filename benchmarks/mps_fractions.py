"""On a real NVIDIA card with MPS: two fractional jobs through the local runner, each refused memory beyond its share.

    .venv/bin/python benchmarks/mps_fractions.py            # needs a GPU, torch, nvidia-cuda-mps-control

Starts an MPS control daemon in a temporary pipe directory, runs two batch jobs
on 0.25 of card 0 each (a quarter of its memory) through ``LocalRunner`` with
``mps="on"`` (the same limits a notebook server on a fraction gets), and has each
job allocate first within its share (must succeed) and then twice its share (must
be refused). Prints one line per job and stops the daemon. Exits 1 when a share was
not enforced, 2 when the machine cannot run the check (no GPU, torch or MPS).

Not yet run on a GPU from this repository (no device was available when it was
written); MPS itself was verified on an H200 (../shared/setup-facts.md).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hub_ext.service.runners.base import JobLaunch  # noqa: E402
from hub_ext.service.runners.local import LocalRunner  # noqa: E402

JOB = """
import os, torch
share = int(os.environ["GPUPOOL_GPU_MEMORY_MIB"])
def alloc(mib):
    try:
        x = torch.empty(mib * 1024 * 1024, dtype=torch.uint8, device="cuda")
        del x; torch.cuda.empty_cache()
        return "allowed"
    except torch.cuda.OutOfMemoryError:
        return "refused"
print("RESULT", os.environ["GPUPOOL_WORKLOAD_ID"], "limit", os.environ.get("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"),
      "half share", alloc(share // 2), "twice share", alloc(share * 2), flush=True)
"""


def total_memory_mib() -> int | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=30)
        return int(out.stdout.strip().splitlines()[0])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


async def main() -> int:
    control = shutil.which("nvidia-cuda-mps-control") or ("/usr/local/nvidia/bin/nvidia-cuda-mps-control" if os.path.exists("/usr/local/nvidia/bin/nvidia-cuda-mps-control") else None)
    total = total_memory_mib()
    if control is None or total is None:
        print("cannot run: needs nvidia-smi, a GPU and nvidia-cuda-mps-control")
        return 2
    tmp = tempfile.mkdtemp(prefix="gpupool-mps-")
    pipes, logs = os.path.join(tmp, "pipes"), os.path.join(tmp, "logs")
    os.makedirs(pipes)
    os.makedirs(logs)
    env = dict(os.environ, CUDA_MPS_PIPE_DIRECTORY=pipes, CUDA_MPS_LOG_DIRECTORY=logs)
    subprocess.run([control, "-d"], env=env, check=True)
    try:
        runner = LocalRunner(state_dir=os.path.join(tmp, "state"), mps="on", mps_pipe_directory=pipes)
        share = total // 4
        handles = []
        for wid in ("w-1", "w-2"):
            launch = JobLaunch(workload_id=wid, user=os.environ.get("USER", "gpupool"), command=(sys.executable, "-c", JOB),
                               gpus_by_node={"local": ("0",)}, gpu_count=0.25,
                               env={"GPUPOOL_WORKLOAD_ID": wid, "GPUPOOL_GPUS": "0.25", "GPUPOOL_GPU_MEMORY_MIB": str(share)})
            handles.append((wid, await runner.start(launch)))
        ok = True
        for wid, handle in handles:
            await runner.wait(handle)
            log = open(runner.log_path_for(wid)).read()
            line = next((x for x in log.splitlines() if x.startswith("RESULT")), f"RESULT {wid}: no result; log:\n{log[-2000:]}")
            print(line)
            ok = ok and "half share allowed" in line and "twice share refused" in line
        print("MPS shares enforced for both jobs" if ok else "a share was NOT enforced")
        return 0 if ok else 1
    finally:
        subprocess.run([control], input="quit\n", text=True, env=env)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
