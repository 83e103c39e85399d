"""``python -m demo``: the whole product on this machine, for trying it out.

Starts JupyterHub (with its proxy, the gpupool service and the local GPU
spawner) on 127.0.0.1 using ``demo/jupyterhub_config.py``, waits until it
answers, and prints the address and how to log in. Ctrl-C stops everything
it started: the hub, its proxy, the service, notebook servers and batch jobs.

State (the hub's and the pool's databases, demo passwords, job logs, demo
users' homes) lives in ``.gpupool/demo/`` in the repository, so a second run
keeps workloads and passwords and starts fast. ``--reset`` starts afresh.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from demo.settings import DemoSettings, load_or_create_settings

REPO = Path(__file__).resolve().parent.parent
CONFIG = Path(__file__).resolve().parent / "jupyterhub_config.py"
DEFAULT_STATE = REPO / ".gpupool" / "demo"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        # As the proxy binds: a port left in TIME_WAIT by the last run is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float, cancelled=lambda: False) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None or cancelled():
            return False
        try:
            # Only the hub answers 200 here: the proxy alone answers 404 until the hub's route is in.
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def find_proxy() -> str | None:
    """configurable-http-proxy: beside this Python (dev.sh installs it into .venv), else on PATH."""
    beside = Path(sys.executable).parent / "configurable-http-proxy"
    if beside.exists():
        return str(beside)
    return shutil.which("configurable-http-proxy")


def banner(settings: DemoSettings, url: str, pool_note: str) -> str:
    users = ", ".join(f"{u} ({team})" for team, members in settings.teams.items() for u in members)
    return "\n".join(
        [
            "",
            "=" * 72,
            f"  jupyterhub-gpupool demo is up:  {url}",
            "",
            f"  users:    {users}",
            f"  password: {settings.user_password}",
            f"  admin:    {settings.admin_user} (both teams, administers the pool)  password: {settings.admin_password}",
            f"  pool:     {pool_note}",
            "",
            "  In JupyterLab's terminal:  gpupool submit --gpus 1 -- python examples/train.py",
            f"  State lives in {settings.state_dir} (python -m demo --reset starts afresh).",
            "  Ctrl-C stops notebook servers, jobs (requeued at the next start), the pool service and the hub.",
            "=" * 72,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("GPUPOOL_DEMO_PORT", "8000")),
                        help="port of the hub on 127.0.0.1 (default 8000; the next free one if taken)")
    parser.add_argument("--state-dir", default=os.environ.get("GPUPOOL_DEMO_STATE", str(DEFAULT_STATE)),
                        help="where the demo keeps its databases, passwords and homes")
    parser.add_argument("--reset", action="store_true", help="forget all demo state (workloads, passwords) first")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the hub to answer")
    args = parser.parse_args(argv)

    state_dir = Path(args.state_dir).resolve()
    if args.reset and state_dir.exists():
        shutil.rmtree(state_dir)
    settings = load_or_create_settings(state_dir)

    proxy = find_proxy()
    if proxy is None:
        print("configurable-http-proxy was not found: run ./dev.sh up (it installs it), "
              "or npm install -g configurable-http-proxy", file=sys.stderr)
        return 1

    port = args.port
    if not port_is_free(port):
        taken, port = port, free_port()
        print(f"[demo] port {taken} is taken; using {port}", file=sys.stderr)

    env = dict(os.environ)
    env.update(settings.environment())
    env["GPUPOOL_DEMO_PORT"] = str(port)
    # The hub's internal ports: any free ones, so the demo never collides with another hub.
    env["GPUPOOL_DEMO_HUB_PORT"] = str(free_port())
    env["GPUPOOL_DEMO_PROXY_API_PORT"] = str(free_port())
    env["GPUPOOL_DEMO_SERVICE_PORT"] = str(free_port())
    env["GPUPOOL_DEMO_PROXY"] = proxy
    # Servers and jobs find `gpupool` and `python` from this environment.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)

    log_path = state_dir / "jupyterhub.log"
    print(f"[demo] starting JupyterHub on 127.0.0.1:{port} (log: {log_path})", file=sys.stderr)
    log = open(log_path, "ab")
    # Its own process group, so that Ctrl-C reaches the hub once, through us, and
    # everything it started can be stopped together if it does not stop in time.
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
        cwd=state_dir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    stopping = False

    def stop(signum=None, frame=None):
        # Only a note: the main loop stops things in order (servers, then the hub and its service).
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    url = f"http://127.0.0.1:{port}/"
    up = False
    code = 0
    try:
        if not wait_until_up(url + "hub/health", hub, args.timeout, lambda: stopping):
            if not stopping:
                print(f"[demo] the hub did not come up; the end of {log_path}:", file=sys.stderr)
                print(tail(log_path), file=sys.stderr)
                code = 1
        else:
            up = True
            released = release_left_over_sessions(settings, int(env["GPUPOOL_DEMO_SERVICE_PORT"]))
            if released:
                print(f"[demo] gave back the GPUs of {released} notebook session(s) left from the last run", file=sys.stderr)
            print(banner(settings, url, settings.pool_note()), flush=True)
            while hub.poll() is None and not stopping:
                time.sleep(0.2)
            if not stopping:
                code = hub.returncode or 1
                print(f"[demo] the hub exited ({hub.returncode}); the end of {log_path}:", file=sys.stderr)
                print(tail(log_path), file=sys.stderr)
    finally:
        began = time.monotonic()
        if hub.poll() is None:
            print("\n[demo] stopping: notebook servers first (their GPUs go back to the pool), then the hub, "
                  "the pool service and its agents...", file=sys.stderr)
            if up:
                stop_servers(url, settings.hub_token, timeout=30.0)
            hub.send_signal(signal.SIGTERM)
        finish(hub, grace=20.0)
        stopped = settings.stop_leftover_processes()
        if stopped:
            print(f"[demo] stopped {stopped} leftover process(es) started by the demo (running jobs go back "
                  "to the queue at the next start)", file=sys.stderr)
        log.close()
    print(f"[demo] stopped in {time.monotonic() - began:.1f}s", file=sys.stderr)
    return code


def stop_servers(url: str, token: str, timeout: float) -> int:
    """Stop every user's servers through the hub's API and wait (up to ``timeout``) until they are gone.

    The hub, stopping, would stop its managed services first and its servers after, so the
    servers could not give their GPUs back then; stopped here, they do it while the pool
    service still answers.
    """
    import json as _json

    api = url + "hub/api"
    headers = {"Authorization": f"token {token}"}

    def call(method: str, path: str):
        request = urllib.request.Request(api + path, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as r:
            body = r.read()
            return _json.loads(body) if body else None

    def running() -> list[tuple[str, str]]:
        # Ready servers, and those stopping. A spawn still waiting in the pool's queue is left to
        # the hub (the hub refuses to stop a pending spawn; the service cancels its request later).
        users = call("GET", "/users?state=active") or []
        return [(u["name"], name) for u in users for name, server in (u.get("servers") or {}).items()
                if server.get("ready") or server.get("pending") == "stop"]

    try:
        servers = running()
        for user, name in servers:
            try:
                call("DELETE", f"/users/{user}/servers/{name}" if name else f"/users/{user}/server")
            except (urllib.error.URLError, OSError):
                pass
        deadline = time.monotonic() + timeout
        while servers and time.monotonic() < deadline:
            time.sleep(0.3)
            servers = running()
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"[demo] could not stop the servers through the hub ({e}); the hub stops them", file=sys.stderr)
        return 0
    return len(servers)


def release_left_over_sessions(settings: DemoSettings, service_port: int) -> int:
    """Cancel notebook sessions still active in the pool from the last run.

    The hub stops its servers when it stops (cleanup_servers), but it stops the pool
    service first, so those servers could not give their GPUs back then.
    """
    from hub_ext.client import PoolClient, PoolError

    client = PoolClient(f"http://127.0.0.1:{service_port}/services/gpupool/", settings.spawner_token)
    deadline = time.monotonic() + 30
    while True:
        try:
            workloads = client.workloads()["workloads"]
            break
        except PoolError:
            if time.monotonic() > deadline:
                return 0
            time.sleep(0.5)
    released = 0
    for w in workloads:
        if w["kind"] == "session" and w["state"] in ("pending", "running", "stopping"):
            try:
                client.cancel(w["id"])
                released += 1
            except PoolError:
                pass
    return released


def finish(hub: subprocess.Popen, grace: float) -> None:
    try:
        hub.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        print("[demo] the hub did not stop in time; killing it", file=sys.stderr)
    try:
        os.killpg(hub.pid, signal.SIGKILL)  # whatever is left of its process group
    except (ProcessLookupError, PermissionError):
        pass
    hub.wait()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
