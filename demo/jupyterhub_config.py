"""JupyterHub configuration of the demo (started by ``python -m demo``, i.e. ``./dev.sh up``).

Demo users in two teams and an admin log in with shared passwords; notebook
servers are local processes (no system users needed) that take their GPUs
from the gpupool service, which this hub manages. Secrets, ports and the kind
of pool come from ``python -m demo`` through ``GPUPOOL_DEMO_*`` variables, so
this file holds none.
"""

import os
import shutil
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent
REPO = DEMO.parent
sys.path.insert(0, str(REPO))

from demo.settings import DEMO_ADMIN, DEMO_SIMULATED_NODES, DEMO_TEAMS, RUN_MARKER  # noqa: E402
from hub_ext.service.auth import CUSTOM_SCOPES  # noqa: E402
from hub_ext.service.pages import HUB_TEMPLATES  # noqa: E402

env = os.environ
state = Path(env["GPUPOOL_DEMO_STATE"])
port = int(env.get("GPUPOOL_DEMO_PORT", "8000"))
hub_port = int(env["GPUPOOL_DEMO_HUB_PORT"])
proxy_api_port = int(env["GPUPOOL_DEMO_PROXY_API_PORT"])
service_port = int(env["GPUPOOL_DEMO_SERVICE_PORT"])
users = [u for members in DEMO_TEAMS.values() for u in members]
run_id = env.get(RUN_MARKER, "")

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

# ---------------------------------------------------------------- the hub on 127.0.0.1
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = port
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = hub_port
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [env.get("GPUPOOL_DEMO_PROXY", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
# Ctrl-C stops the servers too: the demo leaves nothing running behind it.
c.JupyterHub.cleanup_servers = True

# Admins get a "GPU pool" link in the hub's navigation bar to the pool's admin page.
c.JupyterHub.template_paths = [HUB_TEMPLATES]

# ---------------------------------------------------------------- people
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = env["GPUPOOL_DEMO_USER_PASSWORD"]
c.SharedPasswordAuthenticator.admin_password = env["GPUPOOL_DEMO_ADMIN_PASSWORD"]
c.Authenticator.admin_users = {DEMO_ADMIN}
c.Authenticator.allowed_users = set(users)
# A team is a JupyterHub group of the same name (the service's Teams.groups_are_teams).
# The admin is in both teams, so their spawn form shows the team choice.
c.JupyterHub.load_groups = {team: {"users": members + [DEMO_ADMIN]} for team, members in DEMO_TEAMS.items()}

# ---------------------------------------------------------------- the pool service
service_url = f"http://127.0.0.1:{service_port}"
pool_url = f"{service_url}/services/gpupool/"
c.JupyterHub.custom_scopes = dict(CUSTOM_SCOPES)
# After a crash the hub restarts the service when it next checks it: every second, not every 30 s.
from hub_ext.service.hub_restart import restart_managed_services_within  # noqa: E402

restart_managed_services_within(1)
c.JupyterHub.services = [
    {
        "name": "gpupool",
        "url": service_url,
        "command": [sys.executable, "-m", "hub_ext.cli.main", "service", "--config", str(DEMO / "gpupool_service_config.py")],
        "environment": {
            "GPUPOOL_DEMO_STATE": str(state),
            "GPUPOOL_DEMO_POOL": env.get("GPUPOOL_DEMO_POOL", "simulated"),
            "GPUPOOL_DEMO_SERVICE_PORT": str(service_port),
            "PYTHONPATH": str(REPO),
            # Jobs inherit the service's PATH: `python` and `gpupool` are the demo's.
            "PATH": env.get("PATH", ""),
            RUN_MARKER: run_id,
        },
        "cwd": str(state),
        "oauth_no_confirm": True,
        # What a browser login to the service may carry: without these the admin page answers 403
        # to the admin and users' browser calls to the API are refused (docs/roles-and-scopes.md).
        "oauth_client_allowed_scopes": ["custom:gpupool:use", "custom:gpupool:admin"],
        "display": True,
    },
    {"name": "gpupool-spawner", "api_token": env["GPUPOOL_DEMO_SPAWNER_TOKEN"]},
    # `python -m demo` itself: at Ctrl-C it stops the servers while the pool service still runs, so
    # their sessions are given back at once (the hub alone would stop the service first).
    {"name": "gpupool-demo", "api_token": env["GPUPOOL_DEMO_HUB_TOKEN"]},
]
# Node agents report what the GPUs are doing (utilisation, memory, processes: idle reclaim, the
# pool page, the lab panel). Real cards: one agent reading NVML on this machine. The simulated
# pool: one agent per declared node, playing demo/simulated_gpus.json (some cards busy, some
# idle, some alternating), so the pages show utilisation and idle markers without hardware.
if env.get("GPUPOOL_DEMO_POOL") == "nvml":
    agents = {"gpupool-agent": ["--backend", "nvml"]}
else:
    agents = {
        f"gpupool-agent-{node['name']}": ["--backend", "simulated", "--script", str(DEMO / "simulated_gpus.json"), "--node", node["name"]]
        for node in DEMO_SIMULATED_NODES
    }
for agent_name, agent_args in agents.items():
    # A managed service: the hub gives each agent its own token ($JUPYTERHUB_API_TOKEN).
    c.JupyterHub.services.append(
        {
            "name": agent_name,
            "command": [sys.executable, "-m", "hub_ext.cli.main", "agent", *agent_args, "--url", pool_url],
            "environment": {"PYTHONPATH": str(REPO), RUN_MARKER: run_id},
        }
    )
c.JupyterHub.load_roles = [
    {"name": "gpupool-user", "groups": list(DEMO_TEAMS), "scopes": ["custom:gpupool:use", "access:services!service=gpupool"]},
    {"name": "gpupool-admin", "users": [DEMO_ADMIN], "scopes": ["custom:gpupool:admin", "access:services!service=gpupool"]},
    {"name": "gpupool-spawner", "services": ["gpupool-spawner"], "scopes": ["custom:gpupool:admin", "access:services!service=gpupool"]},
    {"name": "gpupool-demo", "services": ["gpupool-demo"], "scopes": ["list:users", "read:users", "admin:servers"]},
    {"name": "gpupool-service", "services": ["gpupool"], "scopes": ["read:users", "read:groups", "list:users", "admin:servers", "read:servers"]},
    # custom:gpupool:use lets an agent read the pool: a simulated agent takes its node's cards from
    # it, and any agent attributes processes it cannot inspect by allocation (docs/node-agent.md).
    {"name": "gpupool-agent", "services": list(agents), "scopes": ["custom:gpupool:agent", "custom:gpupool:use", "access:services!service=gpupool"]},
]

# ---------------------------------------------------------------- notebook servers
c.JupyterHub.spawner_class = "spawner.local.SimpleGpuLocalProcessSpawner"
homes = state / "homes"
c.SimpleLocalProcessSpawner.home_dir_template = str(homes / "{username}")
c.PoolAllocationMixin.pool_url = pool_url
c.PoolAllocationMixin.pool_token = env["GPUPOOL_DEMO_SPAWNER_TOKEN"]
c.PoolAllocationMixin.max_whole_gpus = 8
c.PoolAllocationMixin.gpu_fractions = [0.25, 0.5]
c.Spawner.default_url = "/lab"
c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
c.Spawner.environment = {
    "PATH": env.get("PATH", ""),
    "PYTHONPATH": str(REPO),
    RUN_MARKER: run_id,
}
# The server's own token drives `gpupool` in its terminals (JupyterHub keeps only what the user holds).
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "custom:gpupool:use",
    "access:services!service=gpupool",
]
c.Spawner.poll_interval = 10
if os.getuid() == 0:
    # Containers and CI machines often run everything as root; Jupyter refuses that unless told.
    c.Spawner.args = ["--allow-root"]

# Each demo user finds the example training script in their home.
for user in users + [DEMO_ADMIN]:
    examples = homes / user / "examples"
    examples.mkdir(parents=True, exist_ok=True)
    target = examples / "train.py"
    source = REPO / "examples" / "train.py"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
