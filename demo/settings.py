"""The demo's people, passwords and tokens, kept in its state folder between runs.

``python -m demo`` creates them once and hands them to the hub's
configuration through environment variables (``environment()``), so the
configuration file itself holds no secrets and a second run logs in with the
same password.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Two teams sharing the seed's cluster (a DGX-1 and a DGX-2: 24 GPUs).
DEMO_TEAMS = {"vision": ["alice", "bob"], "nlp": ["carol", "dave"]}
DEMO_QUOTAS = {"vision": {"quota": 12, "over_quota_weight": 1.0}, "nlp": {"quota": 12, "over_quota_weight": 1.0}}
DEMO_ADMIN = "admin"
# The seed's cluster, declared when this machine has no NVIDIA GPU (hub_ext.simulator.cluster.seed_cluster's shapes).
DEMO_SIMULATED_NODES = [
    {"name": "dgx1-1", "gpus": 8, "model": "V100-SXM2-16GB", "memory_mib": 16384},
    {"name": "dgx2-1", "gpus": 16, "model": "V100-SXM3-32GB", "memory_mib": 32768},
]

ENV_PREFIX = "GPUPOOL_DEMO_"
# Every process the demo starts carries this variable, so Ctrl-C can find the ones that
# outlive the hub (batch jobs run in their own session by design). Not GPUPOOL_-prefixed:
# the local runner keeps the service's GPUPOOL_ variables out of jobs.
RUN_MARKER = "DEMO_GPUPOOL_RUN"


@dataclass
class DemoSettings:
    state_dir: str
    user_password: str
    admin_password: str
    spawner_token: str
    hub_token: str = ""  # the demo's own hub API token: stops the servers before the hub at Ctrl-C
    run_id: str = ""
    real_gpus: list = field(default_factory=list)  # this machine's cards, where NVML finds any
    teams: dict = field(default_factory=lambda: dict(DEMO_TEAMS))
    admin_user: str = DEMO_ADMIN

    def environment(self) -> dict[str, str]:
        return {
            ENV_PREFIX + "STATE": self.state_dir,
            ENV_PREFIX + "USER_PASSWORD": self.user_password,
            ENV_PREFIX + "ADMIN_PASSWORD": self.admin_password,
            ENV_PREFIX + "SPAWNER_TOKEN": self.spawner_token,
            ENV_PREFIX + "HUB_TOKEN": self.hub_token,
            RUN_MARKER: self.run_id,
            ENV_PREFIX + "POOL": "nvml" if self.real_gpus else "simulated",
        }

    def pool_note(self) -> str:
        if self.real_gpus:
            models = sorted({g["model"] for g in self.real_gpus})
            return f"this machine's {len(self.real_gpus)} NVIDIA GPU(s) ({', '.join(models)}), found through NVML"
        nodes = ", ".join(f"{n['name']} ({n['gpus']} x {n['model']})" for n in DEMO_SIMULATED_NODES)
        return (f"simulated (no NVIDIA GPU found here): {nodes};\n"
                "            utilisation is simulated too (demo/simulated_gpus.json: GPUs 0-1 of each node busy, 2-3 alternating, the rest idle)")

    def stop_leftover_processes(self) -> int:
        """SIGKILL processes this run started that outlived the hub (they carry our run id)."""
        if not self.run_id:
            return 0
        needle = f"{RUN_MARKER}={self.run_id}".encode()
        me = os.getpid()
        killed = 0
        for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if needle in environ.split(b"\0"):
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
        return killed


def load_or_create_settings(state_dir: Path) -> DemoSettings:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "settings.json"
    saved = {}
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except ValueError:
            saved = {}
    settings = DemoSettings(
        state_dir=str(state_dir),
        # Short enough to type; SharedPasswordAuthenticator wants 8+ (users) and 32+ (admins) characters.
        user_password=saved.get("user_password") or f"gpupool-{secrets.token_hex(3)}",
        admin_password=saved.get("admin_password") or f"admin-{secrets.token_hex(16)}",
        spawner_token=saved.get("spawner_token") or secrets.token_hex(32),
        hub_token=saved.get("hub_token") or secrets.token_hex(32),
    )
    stored = {k: v for k, v in asdict(settings).items() if k in ("user_password", "admin_password", "spawner_token", "hub_token")}
    if stored != saved:
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    settings.run_id = secrets.token_hex(8)
    settings.real_gpus = find_real_gpus()
    return settings


def find_real_gpus() -> list[dict]:
    """This machine's NVIDIA cards through the project's one GPU interface; [] without a driver."""
    try:
        from hub_ext.gpus import GpuBackendUnavailable, open_backend

        backend = open_backend("nvml")
    except (ImportError, GpuBackendUnavailable):
        return []
    except Exception:  # a broken driver install: the demo still runs, on the simulated pool
        return []
    with backend:
        return [{"index": g.index, "uuid": g.uuid, "model": g.model} for g in backend.list_gpus()]
