"""Checks every Kubernetes object the project renders or builds must pass.

``kubernetes-validate`` checks an object against the OpenAPI schema of one
Kubernetes version (types, required fields, no unknown fields in strict
mode). The API server checks a few more things that the schema cannot
express and that broken templates get wrong in practice: names and label
syntax, and keys that must be unique in a list (env names, volume names,
mount paths). Those are checked here too, the way the API server does.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import yaml
from kubernetes_validate.utils import latest_version, validate

# The newest Kubernetes whose schemas kubernetes-validate ships.
KUBERNETES_VERSION = latest_version()

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Kinds whose names must be DNS labels rather than subdomains.
_LABEL_NAMED_KINDS = {"Service", "Namespace"}


class ManifestError(AssertionError):
    pass


def load_documents(text: str) -> list[dict]:
    """The objects of a rendered YAML stream (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _check_labels(where: str, labels: dict | None) -> None:
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
            raise ManifestError(f"{where}: label key prefix {prefix!r} is not a DNS subdomain")
        if len(name) > 63 or not _LABEL_NAME.match(name):
            raise ManifestError(f"{where}: label key {key!r} is invalid")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            raise ManifestError(f"{where}: label {key}={value!r} is not a valid label value")


def _unique(where: str, items: Iterable[dict] | None, key: str) -> None:
    seen: set = set()
    for item in items or []:
        value = item.get(key)
        if value in seen:
            raise ManifestError(f"{where}: duplicate {key} {value!r}")
        seen.add(value)


def _pod_specs(obj: dict) -> list[tuple[str, dict]]:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return [("spec", spec)]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return [("spec.template.spec", spec["template"]["spec"])]
    if kind == "CronJob":
        return [("spec.jobTemplate.spec.template.spec", spec["jobTemplate"]["spec"]["template"]["spec"])]
    return []


def check_object(obj: dict[str, Any], version: str = KUBERNETES_VERSION) -> None:
    """Raise ``ManifestError`` (or kubernetes-validate's error) unless the API server would accept ``obj``."""
    if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
        raise ManifestError(f"not a Kubernetes object: {obj!r:.200}")
    validate(obj, version, strict=True)
    kind = obj["kind"]
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    where = f"{kind}/{name}"
    pattern = _DNS_LABEL if kind in _LABEL_NAMED_KINDS else _DNS_SUBDOMAIN
    limit = 63 if kind in _LABEL_NAMED_KINDS else 253
    if not name or len(name) > limit or not pattern.match(name):
        raise ManifestError(f"{where}: name {name!r} is not a valid {kind} name")
    _check_labels(where, meta.get("labels"))
    for path, pod in _pod_specs(obj):
        here = f"{where} {path}"
        template_meta = (obj.get("spec", {}).get("template") or {}).get("metadata") or {}
        _check_labels(here, template_meta.get("labels"))
        _unique(here, pod.get("volumes"), "name")
        volume_names = {v["name"] for v in pod.get("volumes") or []}
        # A StatefulSet's claim templates become volumes of its pods.
        volume_names |= {t["metadata"]["name"] for t in (obj.get("spec") or {}).get("volumeClaimTemplates") or []}
        containers = list(pod.get("containers") or []) + list(pod.get("initContainers") or [])
        _unique(here, containers, "name")
        for container in containers:
            cwhere = f"{here} container {container.get('name')}"
            _unique(cwhere, container.get("env"), "name")
            _unique(cwhere, container.get("volumeMounts"), "mountPath")
            for mount in container.get("volumeMounts") or []:
                if mount["name"] not in volume_names:
                    raise ManifestError(f"{cwhere}: mounts volume {mount['name']!r}, which the pod does not define")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        selector = (obj["spec"].get("selector") or {}).get("matchLabels") or {}
        labels = obj["spec"]["template"].get("metadata", {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            raise ManifestError(f"{where}: selector {selector} does not match the pod template's labels {labels}")


def pod_env(pod_spec: dict, container: int = 0) -> dict[str, str]:
    """A container's env as a dict (values only; valueFrom entries map to None)."""
    return {e["name"]: e.get("value") for e in pod_spec["containers"][container].get("env") or []}
