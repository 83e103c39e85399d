"""Paths and an offline kube config for the Kubernetes tests (no cluster here)."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHART = REPO / "helm" / "jupyterhub-gpupool"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "offline", "cluster": {"server": server}}],
                "users": [{"name": "offline", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline", "namespace": "jhub"}}],
                "current-context": "offline",
            }
        )
    )
    return path
