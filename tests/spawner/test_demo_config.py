"""The demo's own JupyterHub configuration (demo/jupyterhub_config.py), read as JupyterHub reads it.

The test hub (tests/fixtures/hub.py) writes its own configuration; these checks keep the demo's
from drifting away from what the tests prove works.
"""

from __future__ import annotations

from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

from hub_ext.service.auth import ADMIN_SCOPE, USE_SCOPE

DEMO = Path(__file__).resolve().parents[2] / "demo"


def load_demo_config(tmp_path, monkeypatch):
    env = {
        "GPUPOOL_DEMO_STATE": str(tmp_path), "GPUPOOL_DEMO_PORT": "8000", "GPUPOOL_DEMO_HUB_PORT": "8081",
        "GPUPOOL_DEMO_PROXY_API_PORT": "8001", "GPUPOOL_DEMO_SERVICE_PORT": "10101", "GPUPOOL_DEMO_USER_PASSWORD": "x" * 8,
        "GPUPOOL_DEMO_ADMIN_PASSWORD": "y" * 32, "GPUPOOL_DEMO_SPAWNER_TOKEN": "z" * 32,
        "GPUPOOL_DEMO_HUB_TOKEN": "h" * 32,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(DEMO)).load_config()


def test_browser_logins_to_the_pool_service_may_carry_the_pool_scopes(tmp_path, monkeypatch):
    """Issue 11, bug 1: without the OAuth client's allowed scopes the demo's admin got 403 on the
    admin page, and users' browser calls to the API were refused."""
    c = load_demo_config(tmp_path, monkeypatch)
    service = next(s for s in c.JupyterHub.services if s["name"] == "gpupool")
    allowed = set(service.get("oauth_client_allowed_scopes") or ())
    assert {USE_SCOPE, ADMIN_SCOPE} <= allowed
    # Every pool scope a role hands out to users can reach the service through a browser login.
    for role in c.JupyterHub.load_roles:
        if role.get("users") or role.get("groups"):
            assert {s for s in role["scopes"] if s.startswith("custom:gpupool:")} <= allowed, role["name"]


def test_terminals_keep_the_servers_path(tmp_path, monkeypatch):
    """Issue 11, bug 2: a login shell in JupyterLab's terminal lost the demo's PATH (no gpupool, no python)."""
    from spawner.local import SimpleGpuLocalProcessSpawner

    c = load_demo_config(tmp_path, monkeypatch)
    spawner = SimpleGpuLocalProcessSpawner(config=c)
    args = spawner.get_args()
    terminado = [a for a in args if a.startswith("--ServerApp.terminado_settings=")]
    assert terminado, args
    assert '"-l"' not in terminado[0] and '"-i"' in terminado[0]
