"""``gpupool agent`` as an admin runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def gpupool(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("GPUPOOL_URL", "JUPYTERHUB_API_TOKEN")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "hub_ext.cli.main", "agent", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_once_print_shows_the_simulated_readings_as_json(tmp_path):
    script = tmp_path / "gpus.json"
    script.write_text(json.dumps({"gpus": [{"model": "A100-SXM4-40GB", "memory_mib": 40960}] * 2, "utilization": {"0": [[0, 88]], "1": [[0, 0]]}}))
    out = gpupool("--once", "--print", "--backend", "simulated", "--script", str(script), "--node", "demo-1")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["node"] == "demo-1" and payload["simulated"] is True
    assert [(g["uuid"], g["model"], g["memory_total_mib"], g["utilization"]) for g in payload["gpus"]] == [
        ("GPU-sim-demo-1-0", "A100-SXM4-40GB", 40960, 88.0),
        ("GPU-sim-demo-1-1", "A100-SXM4-40GB", 40960, 0.0),
    ]


def test_without_a_service_url_it_refuses_to_run_silently(tmp_path):
    out = gpupool("--backend", "simulated", "--script", str(tmp_path / "x.json"))
    assert out.returncode == 2 and "GPUPOOL_URL" in out.stderr


def test_bad_script_is_a_clear_error(tmp_path):
    script = tmp_path / "gpus.json"
    script.write_text(json.dumps({"gpus": 1, "utilization": {"0": [[0, 300]]}}))
    out = gpupool("--once", "--print", "--backend", "simulated", "--script", str(script))
    assert out.returncode == 1 and "percentage" in out.stderr and "Traceback" not in out.stderr


def test_unreachable_service_is_a_clear_error(tmp_path):
    script = tmp_path / "gpus.json"
    script.write_text(json.dumps({"gpus": 1, "utilization": {"0": [[0, 5]]}}))
    with socket.socket() as s:  # a port that was free a moment ago and that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = gpupool("--once", "--backend", "simulated", "--script", str(script), "--url", f"http://127.0.0.1:{port}/services/gpupool/",
                  env_extra={"GPUPOOL_RETRY_SECONDS": "0"})
    assert out.returncode == 1 and "cannot reach the pool service" in out.stderr


def test_nvml_backend_on_a_machine_without_a_driver(tmp_path):
    from hub_ext.gpus import GpuBackendUnavailable, open_backend

    try:
        open_backend("nvml").close()
        pytest.skip("this machine has an NVIDIA driver")
    except GpuBackendUnavailable:
        pass
    out = gpupool("--once", "--print")
    assert out.returncode == 1 and "no NVIDIA driver" in out.stderr and "--backend simulated" in out.stderr
