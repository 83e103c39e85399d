"""examples/train.py on its own: checkpoint on SIGTERM, resume, adapt to a new GPU count."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TRAIN = Path(__file__).resolve().parents[2] / "examples" / "train.py"


def run_env(gpus: str, devices: str) -> dict:
    env = dict(os.environ)
    env.update({"GPUPOOL_GPUS": gpus, "CUDA_VISIBLE_DEVICES": devices, "GPUPOOL_WORKLOAD_ID": "w-test"})
    return env


def test_sigterm_checkpoints_and_a_restart_on_more_gpus_resumes_there(tmp_path):
    args = [sys.executable, "-u", str(TRAIN), "--steps", "60", "--step-seconds", "0.05", "--backend", "python"]
    first = subprocess.Popen(args, cwd=tmp_path, env=run_env("2", "0,1"), stdout=subprocess.PIPE, text=True)
    line = first.stdout.readline()
    assert "gpus=2" in line and "2 x 32" in line
    time.sleep(1.0)
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=20)
    assert first.returncode == 0
    assert "checkpoint saved at step" in out
    checkpoint = json.loads((tmp_path / "train-w-test.ckpt.json").read_text())
    assert 0 < checkpoint["step"] < 60 and checkpoint["gpus"] == 2

    second = subprocess.run(args, cwd=tmp_path, env=run_env("4", "0,1,2,3"), capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert f"resumed from step {checkpoint['step']}" in second.stdout
    assert "GPU count changed from 2 to 4" in second.stdout
    assert "4 x 16" in second.stdout
    assert f"done: 60 steps (started at step {checkpoint['step']})" in second.stdout


def test_it_learns_the_model_without_torch(tmp_path):
    out = subprocess.run([sys.executable, str(TRAIN), "--steps", "150", "--backend", "python"], cwd=tmp_path,
                         env=run_env("1", "0"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    error = float(out.stdout.strip().splitlines()[-1].rsplit("max weight error", 1)[1])
    assert error < 0.05
