"""Helpers for tests that drive a real hub with the gpupool spawner (tests/spawner, tests/jobs, benchmarks)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from hub_ext.client import PoolConflict, PoolNotFound
from tests.fixtures.waiting import wait_for  # noqa: F401 - the hub tests import it from here

REPO = Path(__file__).resolve().parents[2]

# Appended to the fixture's jupyterhub_config.py (tests/fixtures/hub.py defines POOL_URL & co).
SPAWNER_CONFIG = """
import os
c.JupyterHub.spawner_class = "spawner.local.SimpleGpuLocalProcessSpawner"
c.PoolAllocationMixin.pool_url = POOL_URL
c.PoolAllocationMixin.pool_token = SPAWNER_TOKEN
c.PoolAllocationMixin.queue_poll_interval = 0.3
c.PoolAllocationMixin.release_check_interval = 0.5
c.PoolAllocationMixin.pool_check_interval = 1
c.SimpleLocalProcessSpawner.home_dir_template = STATE_DIR + "/homes/{username}"
c.Spawner.cmd = [PYTHON, "-m", "jupyterhub.singleuser"]
if os.getuid() == 0:
    c.Spawner.args = ["--allow-root"]
c.Spawner.environment = {"PYTHONPATH": REPO, "PATH": os.path.dirname(PYTHON) + ":" + os.environ.get("PATH", "")}
c.Spawner.server_token_scopes = [
    "users:activity!user", "access:servers!server", "custom:gpupool:use", "access:services!service=gpupool",
]
c.Spawner.http_timeout = 90
c.JupyterHub.concurrent_spawn_limit = 20
"""


def spawn(hub, user: str, **options) -> requests.Response:
    r = hub.hub_api("POST", f"/users/{user}/server", json=options)
    assert r.status_code in (201, 202), r.text
    return r


def server_model(hub, user: str) -> dict | None:
    r = hub.hub_api("GET", f"/users/{user}")
    r.raise_for_status()
    return r.json()["servers"].get("")


def wait_ready(hub, user: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = server_model(hub, user)
        if s and s["ready"]:
            return s
        if s is None and time.monotonic() > deadline - timeout + 5:
            raise AssertionError(f"{user}'s spawn ended without a server; hub log:\n{hub.log_tail(40)}")
        time.sleep(0.3)
    raise AssertionError(f"{user}'s server was not ready within {timeout}s; hub log:\n{hub.log_tail(40)}")


def stop_server(hub, user: str, timeout: float = 60) -> None:
    r = hub.hub_api("DELETE", f"/users/{user}/server")
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + timeout
    while server_model(hub, user) is not None:
        assert time.monotonic() < deadline, f"{user}'s server did not stop"
        time.sleep(0.2)


def pool_admin(hub):
    """A PoolClient with the spawner's admin token: sees every workload."""
    return hub.client(token=hub.spawner_token)


def cancel_active_workloads(client) -> None:
    """Cancel every workload still queued, running or stopping: a test leaves the pool to the next."""
    for w in client.workloads()["workloads"]:
        if w["state"] in ("pending", "running", "stopping"):
            try:
                client.cancel(w["id"])
            except (PoolConflict, PoolNotFound):
                pass  # it ended meanwhile


def workloads_of(hub, user: str, state: str | None = None) -> list[dict]:
    return pool_admin(hub).workloads(user=user, state=state)["workloads"]


def used_gpus(hub) -> float:
    return sum(g["used_fraction"] for n in pool_admin(hub).pool()["nodes"] for g in n["gpus"])


def server_environ(hub, user: str) -> dict[str, str]:
    """The environment of ``user``'s single-user server process on this hub (read from /proc)."""
    hub_port = _hub_port(hub)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
        except OSError:
            continue
        env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
        if env.get("JUPYTERHUB_USER") == user and "JUPYTERHUB_SERVICE_PREFIX" in env and env.get("JUPYTERHUB_API_TOKEN"):
            if f":{hub_port}/" not in env.get("JUPYTERHUB_API_URL", ""):
                continue  # another hub's server (tests run several hubs)
            env["_pid"] = entry.name
            return env
    raise AssertionError(f"no server process of {user} found")


def _hub_port(hub) -> str:
    text = hub.config_path.read_text()
    return text.split("c.JupyterHub.hub_port = ", 1)[1].split("\n", 1)[0].strip()


class ProgressReader:
    """Reads the hub's progress event stream for a user's spawn in a thread; events land in ``events``."""

    def __init__(self, hub, user: str):
        self.events: list[dict] = []
        self._queue: queue.Queue = queue.Queue()
        self._response = requests.get(
            f"{hub.api_url}/users/{user}/server/progress",
            headers={"Authorization": f"token {hub.admin_token}"},
            stream=True,
            timeout=(10, 120),
        )
        assert self._response.status_code == 200, self._response.text
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            for line in self._response.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    self._queue.put(json.loads(line[5:]))
        except (requests.RequestException, ValueError, AttributeError):
            pass
        self._queue.put(None)

    def wait_for(self, predicate, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self._queue.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event is None:
                break
            self.events.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"no matching progress event within {timeout}s; got: {self.events}")

    def close(self):
        self._response.close()


def gpupool_cli(*args, env: dict, cwd=None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the ``gpupool`` command as a user's terminal would (with ``env``'s token and URL)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("GPUPOOL_URL", "JUPYTERHUB_API_TOKEN")}
    full_env.update({k: v for k, v in env.items() if not k.startswith("_")})
    full_env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "hub_ext.cli.main", *args], env=full_env, cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout)
