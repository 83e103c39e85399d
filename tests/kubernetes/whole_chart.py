"""Our chart with its Zero to JupyterHub dependency, rendered and run offline.

``../shared/charts/jupyterhub`` is Z2JH 4.4.0 prepared as the chart's
dependency. It is copied into a temporary copy of our chart (``charts/``, as
``helm dependency update`` would put it), so the repository never holds it
twice. The hub side is then set up the way Z2JH's hub pod sees it: every
ConfigMap and Secret the rendered hub Deployment mounts becomes files in a
folder standing for ``/usr/local/etc/jupyterhub``, and its environment is
resolved from the rendered objects (secret keys, the namespace, the
``*_SERVICE_*`` variables Kubernetes gives for each Service).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from k8s_testenv import CHART, REPO

Z2JH = REPO.parent / "shared" / "charts" / "jupyterhub"
HUB_ROOT = "/usr/local/etc/jupyterhub"


def z2jh_missing_reason() -> str | None:
    if not (Z2JH / "Chart.yaml").is_file():
        return f"the Zero to JupyterHub chart is not at {Z2JH.relative_to(REPO.parent)} (../shared/charts/jupyterhub)"
    return None


def chart_with_dependency(folder: Path) -> Path:
    """A copy of our chart in ``folder`` with Z2JH in its ``charts/``."""
    chart = folder / CHART.name
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("charts"))
    shutil.copytree(Z2JH, chart / "charts" / "jupyterhub")
    return chart


def _data(obj: dict) -> dict[str, bytes]:
    if obj["kind"] == "Secret":
        out = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        return out
    return {k: v.encode() for k, v in (obj.get("data") or {}).items()}


def hub_pod_files_and_env(objects: dict[tuple[str, str], dict], root: Path, namespace: str) -> dict[str, str]:
    """Write what the hub container mounts under ``root`` (for ``HUB_ROOT``); return its environment."""
    spec = objects[("Deployment", "hub")]["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "hub")
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container.get("volumeMounts") or []:
        path = mount["mountPath"]
        if not path.startswith(HUB_ROOT):
            continue  # the database volume
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            source = objects[("ConfigMap", volume["configMap"]["name"])]
        elif "secret" in volume:
            source = objects[("Secret", volume["secret"]["secretName"])]
        else:
            continue
        data = _data(source)
        target = root / path[len(HUB_ROOT):].lstrip("/")
        if mount.get("subPath"):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[mount["subPath"]])
        else:
            target.mkdir(parents=True, exist_ok=True)
            for key, value in data.items():
                (target / key).write_bytes(value)
    env: dict[str, str] = {}
    for (kind, name), obj in objects.items():
        if kind == "Service":
            prefix = name.upper().replace("-", "_")
            env[f"{prefix}_SERVICE_HOST"] = "10.96.0.10"
            env[f"{prefix}_SERVICE_PORT"] = str(obj["spec"]["ports"][0]["port"])
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[item["name"]] = _data(objects[("Secret", ref["name"])])[ref["key"]].decode()
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = namespace
    return env


# Run in a fresh interpreter (Z2JH's configuration changes process-wide settings): load
# Z2JH's jupyterhub_config.py the way JupyterHub does, and report what the hub would run.
HUB_LOADER = r'''
import json, os, sys
root, result_path = sys.argv[1], sys.argv[2]
# The two files find their mounts at an absolute path; here that folder is `root`.
for name in ("jupyterhub_config.py", "z2jh.py"):
    path = os.path.join(root, name)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace(HUB_ROOT, root))
# The hub image has pycurl for tornado's curl client; nothing here needs it.
from tornado.httpclient import AsyncHTTPClient
AsyncHTTPClient.configure = classmethod(lambda cls, impl, **kwargs: None)
from traitlets.config.loader import PyFileConfigLoader
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
# What JupyterHub.load_config_file does, then the hub built from the result.
config = PyFileConfigLoader("jupyterhub_config.py", path=root).load_config()
authenticator = config.JupyterHub.get("authenticator_class")
try:
    JupyterHub(config=config)
except Exception:
    # The hub image has OAuthenticator (the example logs in with GitHub); this checkout does not.
    config.JupyterHub.authenticator_class = "dummy"
hub = JupyterHub(config=config)
spawner = hub.spawner_class
result = {
    "authenticator_class": authenticator,
    "spawner_class": f"{spawner.__module__}.{spawner.__name__}",
    "services": hub.services,
    "load_roles": hub.load_roles,
    "custom_scopes": sorted(hub.custom_scopes),
    "load_groups": hub.load_groups,
    "cookie_secret": bool(hub.cookie_secret),
    "hub_connect_url": hub.hub_connect_url,
    "config": json.loads(json.dumps({k: dict(v) for k, v in hub.config.items() if k in (
        "GpuPoolKubeSpawner", "KubernetesGpuPlacement", "KubeSpawner", "Spawner")}, default=repr)),
}
with open(result_path, "w") as f:
    json.dump(result, f, default=repr)
'''.replace("HUB_ROOT", json.dumps(HUB_ROOT))
