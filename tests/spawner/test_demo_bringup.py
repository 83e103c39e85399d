"""`python -m demo` (what `./dev.sh up` runs): comes up, logs in with what it prints, stops everything on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hub_ext.client import PoolClient
from tests.fixtures.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(state: Path, port: int) -> tuple[subprocess.Popen, str]:
    if not (Path(sys.executable).parent / "configurable-http-proxy").exists():
        pytest.skip("configurable-http-proxy is not installed beside this Python (./dev.sh up installs it)")
    proc = subprocess.Popen([sys.executable, "-m", "demo", "--state-dir", str(state), "--port", str(port)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("=" * 20) and any("demo is up" in l for l in lines):
            return proc, "".join(lines)
    proc.kill()
    raise AssertionError("the demo did not come up:\n" + "".join(lines) + (state / "jupyterhub.log").read_text()[-3000:])


def stop_demo(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, _ = proc.communicate(timeout=90)
    return out


def processes_of_run(run_id: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"DEMO_GPUPOOL_RUN={run_id}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def login(url: str, user: str, password: str) -> requests.Session:
    s = requests.Session()
    s.get(url + "hub/login", timeout=30)
    r = s.post(url + "hub/login", data={"username": user, "password": password, "_xsrf": s.cookies.get("_xsrf")}, timeout=30)
    assert r.status_code == 200 and "/hub/login" not in r.url, f"login as {user} failed: {r.url}"
    return s


def simulated_readings(client: PoolClient, nodes: set[str]) -> dict:
    """(node, index) -> GPU of api/pool, once every node's agent has reported."""

    def reported():
        pool = client.pool()
        return all(n["name"] not in nodes or n.get("last_reading_at") for n in pool["nodes"]) and pool

    pool = wait_for(reported, timeout=60, what="readings from the demo's simulated agents")
    return {(n["name"], g["index"]): g for n in pool["nodes"] for g in n["gpus"]}


def test_demo_comes_up_with_the_seed_pool_logs_in_and_ctrl_c_stops_everything(tmp_path):
    state = tmp_path / "demo"
    proc, banner = start_demo(state, free_port())
    run_id = None
    try:
        url = re.search(r"demo is up:\s+(\S+)", banner).group(1)
        password = re.search(r"  password: (\S+)", banner).group(1)
        admin_password = re.search(r"admin:\s+admin .*password: (\S+)", banner).group(1)
        assert url.startswith("http://127.0.0.1:")
        assert "alice (vision)" in banner and "carol (nlp)" in banner

        s = login(url, "alice", password)
        form = s.get(url + "hub/spawn", timeout=30).text
        assert "24 GPUs free now (simulated pool" in form or "of 24 GPUs free now" in form
        admin_form = login(url, "admin", admin_password).get(url + "hub/spawn", timeout=30).text
        assert re.search(r'<select[^>]*name="team"', admin_form)  # in both teams: asked which one
        assert '<option value="nlp">' in admin_form and '<option value="vision">' in admin_form

        settings = json.loads((state / "settings.json").read_text())
        admin = PoolClient(url + "services/gpupool/", settings["spawner_token"])
        nodes = {n["name"]: len(n["gpus"]) for n in admin.pool()["nodes"]}
        assert nodes == {"dgx1-1": 8, "dgx2-1": 16}
        assert "utilisation is simulated" in banner
        gpus = simulated_readings(admin, {"dgx1-1", "dgx2-1"})
        for node in ("dgx1-1", "dgx2-1"):
            busy, idle = gpus[(node, 0)], gpus[(node, 5)]  # demo/simulated_gpus.json: 0 busy, 4 and up idle
            assert busy["utilization"] > 50 and busy["idle_seconds"] in (None, 0)
            assert idle["utilization"] == 0 and idle["idle_seconds"] is not None
        # A job that would run for ten minutes: Ctrl-C must not leave it behind.
        job = admin.submit(user="alice", kind="job", gpus=1, command=["sleep", "600"], workdir=str(tmp_path))
        time.sleep(2)
        for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"600" in cmd and b"sleep" in cmd:
                run_id = next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"DEMO_GPUPOOL_RUN=")), None)
        assert run_id, f"{job['id']}'s process does not carry the demo's run marker"
    finally:
        out = stop_demo(proc)
    assert proc.returncode == 0, out
    assert "[demo] stopped" in out
    assert processes_of_run(run_id) == []

    # A second run keeps the passwords and comes up again; the job Ctrl-C stopped is back in the
    # queue and runs again, not "failed: the job's process vanished" (issue 11, bug 10).
    proc, banner2 = start_demo(state, free_port())
    try:
        assert re.search(r"  password: (\S+)", banner2).group(1) == password
        url2 = re.search(r"demo is up:\s+(\S+)", banner2).group(1)
        again = PoolClient(url2 + "services/gpupool/", settings["spawner_token"])
        w = wait_for(lambda: (x := again.workload(job["id"]))["state"] == "running" and x, timeout=30,
                     what=f"{job['id']} to run again after the restart", show=lambda: again.workload(job["id"]))
        kinds = [e["kind"] for e in again.events(workload_id=job["id"])["events"]]
        assert "requeued" in kinds and "failed" not in kinds, (w, kinds)
        again.cancel(job["id"])
    finally:
        stop_demo(proc)
