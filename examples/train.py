#!/usr/bin/env python3
"""A small training script that follows gpupool's preemption/resize contract.

    gpupool submit --gpus 2 --min 1 --max 4 -- python examples/train.py --steps 200

The contract (docs/batch-jobs.md):

1. Read the GPUs you were given from the environment on every start:
   ``CUDA_VISIBLE_DEVICES`` (which cards) and ``GPUPOOL_GPUS`` (how many).
2. On SIGTERM (preemption, resize, cancel), finish the current step, write a
   checkpoint, and exit within the grace period. A preempted job finds the
   time of its stop in ``$GPUPOOL_PREEMPT_NOTICE_FILE`` (JSON: ``preempt_at``,
   ``seconds_left``, ``reason``), written just before the SIGTERM.
3. On start, resume from the checkpoint if there is one. After a resize the
   job restarts with a different GPU count: keep the global batch size and
   split it over the GPUs you have now.

It trains a linear model y = w.x + b on synthetic data. With PyTorch
installed it uses torch (on the GPUs it was given, or the CPU); without it,
plain Python does the same arithmetic, so the example runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import time

TRUE_WEIGHTS = [2.0, -3.0, 0.5, 1.5]
TRUE_BIAS = 0.7


class Preempted:
    """Set by SIGTERM; checked between steps so that a step is never half-saved."""

    requested = False

    @classmethod
    def install(cls) -> None:
        def on_term(signum, frame):
            cls.requested = True
            print(f"received signal {signum}: checkpointing at the end of this step", flush=True)
            notice = preemption_notice()
            if notice is not None:
                left = max(0.0, notice["preempt_at"] - time.time())
                print(f"preemption notice: stopped in {left:.0f} s ({notice.get('reason', '')})", flush=True)

        signal.signal(signal.SIGTERM, on_term)


def preemption_notice() -> dict | None:
    """The pool's notice of a coming preemption (None when there is none): when the job will be stopped and why."""
    path = os.environ.get("GPUPOOL_PREEMPT_NOTICE_FILE")
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def gpus_given() -> tuple[float, list[str]]:
    """(GPU count, visible device ids) from the environment the runner set."""
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    count = os.environ.get("GPUPOOL_GPUS")
    try:
        gpus = float(count) if count is not None else float(len(visible))
    except ValueError:
        gpus = float(len(visible))
    return gpus, visible


def default_checkpoint() -> str:
    folder = os.environ.get("GPUPOOL_CHECKPOINT_DIR")
    if folder:
        return os.path.join(folder, "train.ckpt.json")
    job = os.environ.get("GPUPOOL_WORKLOAD_ID", "local")
    return os.path.join(os.getcwd(), f"train-{job}.ckpt.json")


def save_checkpoint(path: str, state: dict) -> None:
    # Written to a temporary file and renamed: a kill in the middle leaves the old checkpoint intact.
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def make_batch(rng: random.Random, size: int) -> list[tuple[list[float], float]]:
    batch = []
    for _ in range(size):
        x = [rng.uniform(-1, 1) for _ in TRUE_WEIGHTS]
        y = sum(w * xi for w, xi in zip(TRUE_WEIGHTS, x)) + TRUE_BIAS + rng.gauss(0, 0.01)
        batch.append((x, y))
    return batch


class PythonModel:
    """Plain-Python SGD for y = w.x + b; the gradient of each shard is averaged as data parallelism would."""

    def __init__(self, weights: list[float], bias: float):
        self.weights = list(weights)
        self.bias = bias

    def step(self, shards: list[list[tuple[list[float], float]]], lr: float) -> float:
        grads_w = [0.0] * len(self.weights)
        grad_b = 0.0
        loss = 0.0
        n = sum(len(s) for s in shards)
        for shard in shards:  # one shard per GPU: what each worker would compute
            for x, y in shard:
                err = sum(w * xi for w, xi in zip(self.weights, x)) + self.bias - y
                loss += err * err
                for i, xi in enumerate(x):
                    grads_w[i] += 2 * err * xi
                grad_b += 2 * err
        self.weights = [w - lr * g / n for w, g in zip(self.weights, grads_w)]
        self.bias -= lr * grad_b / n
        return loss / n

    def state(self) -> dict:
        return {"weights": self.weights, "bias": self.bias}


class TorchModel:
    """The same model in PyTorch, on the first visible GPU when CUDA has one, else the CPU."""

    def __init__(self, torch, weights: list[float], bias: float):
        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        fraction = os.environ.get("GPUPOOL_GPU_FRACTION")
        if fraction and self.device == "cuda":
            # A shared card: stay inside the memory share the pool gave us.
            torch.cuda.set_per_process_memory_fraction(float(fraction))
        self.w = torch.tensor(weights, device=self.device, requires_grad=True)
        self.b = torch.tensor(bias, device=self.device, requires_grad=True)

    def step(self, shards, lr: float) -> float:
        torch = self.torch
        xs = torch.tensor([x for shard in shards for x, _ in shard], device=self.device)
        ys = torch.tensor([y for shard in shards for _, y in shard], device=self.device)
        loss = ((xs @ self.w + self.b - ys) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            self.w -= lr * self.w.grad
            self.b -= lr * self.b.grad
            self.w.grad.zero_()
            self.b.grad.zero_()
        return float(loss)

    def state(self) -> dict:
        return {"weights": [float(v) for v in self.w.detach().cpu()], "bias": float(self.b.detach().cpu())}


def make_model(weights, bias, backend: str):
    if backend in ("auto", "torch"):
        try:
            import torch
        except ImportError:
            if backend == "torch":
                raise SystemExit("--backend torch: PyTorch is not installed (pip install torch)")
        else:
            return TorchModel(torch, weights, bias), "torch"
    return PythonModel(weights, bias), "python"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="total training steps")
    parser.add_argument("--global-batch", type=int, default=64, help="examples per step, over all GPUs")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--step-seconds", type=float, default=0.0, help="sleep per step (to watch preemption in a demo)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (default: per job, see docs/batch-jobs.md)")
    parser.add_argument("--checkpoint-every", type=int, default=10, help="also checkpoint every N steps")
    parser.add_argument("--backend", choices=("auto", "torch", "python"), default="auto")
    args = parser.parse_args(argv)

    Preempted.install()
    path = args.checkpoint or default_checkpoint()
    gpus, visible = gpus_given()
    workers = max(1, int(gpus)) if gpus >= 1 else 1
    per_worker = max(1, args.global_batch // workers)

    saved = load_checkpoint(path)
    start_step = 0
    weights, bias = [0.0] * len(TRUE_WEIGHTS), 0.0
    if saved:
        start_step = int(saved["step"])
        weights, bias = saved["weights"], saved["bias"]
        previous = saved.get("gpus")
        print(f"resumed from step {start_step} (checkpoint {path})", flush=True)
        if previous is not None and float(previous) != gpus:
            print(f"GPU count changed from {float(previous):g} to {gpus:g}: re-sharding the global batch", flush=True)
    model, backend = make_model(weights, bias, args.backend)
    devices = ",".join(visible) if visible else "none"
    print(
        f"training on gpus={gpus:g} (devices {devices}) backend={backend}: "
        f"global batch {args.global_batch} = {workers} x {per_worker}",
        flush=True,
    )

    rng = random.Random(1234 + start_step)  # a resumed run draws new data, not a replay
    loss = math.nan
    step = start_step
    while step < args.steps:
        batch = make_batch(rng, per_worker * workers)
        shards = [batch[i * per_worker : (i + 1) * per_worker] for i in range(workers)]
        loss = model.step(shards, args.lr)
        step += 1
        if args.step_seconds:
            time.sleep(args.step_seconds)
        if step % 10 == 0 or step == args.steps:
            print(f"step {step}/{args.steps} loss {loss:.5f} gpus={gpus:g}", flush=True)
        if Preempted.requested or step % args.checkpoint_every == 0:
            save_checkpoint(path, {"step": step, "gpus": gpus, **model.state()})
        if Preempted.requested:
            print(f"checkpoint saved at step {step}; exiting for preemption/resize", flush=True)
            return 0
    save_checkpoint(path, {"step": step, "gpus": gpus, **model.state()})
    w = model.state()
    error = max(abs(a - b) for a, b in zip(w["weights"] + [w["bias"]], TRUE_WEIGHTS + [TRUE_BIAS]))
    print(f"done: {step} steps (started at step {start_step}), final loss {loss:.5f}, max weight error {error:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
