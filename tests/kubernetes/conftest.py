"""Fixtures for the Kubernetes tests: everything offline, no cluster.

KubeSpawner and kubernetes_asyncio load a kube config when they start; a
small one pointing at a local port (nothing listens there unless a test
starts its own API stand-in) keeps them off any real cluster.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8s_testenv import CHART, free_port, write_kubeconfig  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def offline_kubeconfig(tmp_path_factory):
    """A kube config for a cluster that is not there (KubeSpawner reads one in its constructor)."""
    from kubernetes_asyncio.config import kube_config

    path = write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", f"http://127.0.0.1:{free_port()}")
    saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    os.environ["KUBECONFIG"] = str(path)
    # Never the in-cluster config of a machine that happens to run in a pod.
    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    # kubernetes_asyncio reads $KUBECONFIG once, when it is first imported.
    saved_default = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(path)
    yield path
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved_default
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def chart_path() -> Path:
    return CHART
