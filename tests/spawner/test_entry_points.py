"""The spawners are found as JupyterHub finds other spawners: by entry-point name."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, module, cls",
    [
        ("gpupool-local", "spawner.local", "GpuLocalProcessSpawner"),
        ("gpupool-simple-local", "spawner.local", "SimpleGpuLocalProcessSpawner"),
        ("gpupool-kubernetes", "spawner.kubernetes", "GpuPoolKubeSpawner"),
    ],
)
def test_spawner_class_by_entry_point_name(name, module, cls):
    import importlib

    from jupyterhub.app import JupyterHub

    if module == "spawner.kubernetes":
        pytest.importorskip("kubespawner", reason="jupyterhub-kubespawner is not installed")
    hub = JupyterHub()
    hub.spawner_class = name  # what c.JupyterHub.spawner_class = "gpupool-local" does
    assert hub.spawner_class is getattr(importlib.import_module(module), cls)


def test_nvml_comes_from_nvidias_own_package():
    """nvidia-ml-py (module pynvml), not the deprecated "pynvml" distribution."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in deps}
    assert "nvidia-ml-py" in names and "pynvml" not in names
