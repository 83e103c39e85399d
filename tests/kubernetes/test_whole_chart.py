"""The whole deployment: our chart with Zero to JupyterHub 4.4.0, rendered by Helm's Go library.

Every object is validated against the Kubernetes versions we support (1.32
to 1.34) for the default values, the documented examples and each GPU mode;
then Z2JH's own hub configuration runs against what the chart renders.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
import yaml
from k8s_manifests import check_object, load_documents
from whole_chart import HUB_LOADER, Z2JH, chart_with_dependency, hub_pod_files_and_env, z2jh_missing_reason

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's Go library for Python) is not installed")

from k8s_testenv import CHART  # noqa: E402

if z2jh_missing_reason():
    pytest.skip(z2jh_missing_reason(), allow_module_level=True)

SUPPORTED = ("1.32.0", "1.33.0", "1.34.0")
NAMESPACE = "jhub"


def shipped_versions() -> set[str]:
    import kubernetes_validate

    folder = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    return {name[1:].removesuffix("-local-strict") for name in os.listdir(folder) if name.endswith("-local-strict")}


EXAMPLE = yaml.safe_load((CHART / "examples" / "two-team-lab.yaml").read_text())
DRA = {"pool": {"deviceListStrategy": "dra"}, "kubernetesVersion": "1.34.0"}
CASES = {
    "defaults": {},
    "two-team-lab example": EXAMPLE,
    "volume-mounts": {"pool": {"deviceListStrategy": "volume-mounts"}},
    "dra": DRA,
    "dra, HAMi-core fractions": {**DRA, "pool": {"deviceListStrategy": "dra", "fractionEnforcement": "hami-core"}},
    "mps fractions": {"pool": {"fractionEnforcement": "mps"}},
}
# The hub is loaded once (a fresh interpreter takes seconds): the documented lab, in DRA mode.
LAB_DRA = {**EXAMPLE, "kubernetesVersion": "1.34.0", "pool": {**EXAMPLE.get("pool", {}), "deviceListStrategy": "dra"}}
CASES["two-team-lab example, dra"] = LAB_DRA


@pytest.fixture(scope="module")
def whole_chart(tmp_path_factory):
    loaded = helm.Chart.load(str(chart_with_dependency(tmp_path_factory.mktemp("chart"))))
    yield loaded
    loaded.close()


_rendered: dict[str, dict] = {}


def render(chart, case: str) -> dict[tuple[str, str], dict]:
    if case not in _rendered:
        out = chart.render(CASES[case], name="lab", namespace=NAMESPACE)
        objects: dict[tuple[str, str], dict] = {}
        for path, text in out.items():
            if path.endswith("NOTES.txt"):
                continue
            for obj in load_documents(text):
                key = (obj["kind"], obj["metadata"]["name"])
                assert key not in objects, f"{key} rendered twice"
                objects[key] = obj
        _rendered[case] = objects
    return _rendered[case]


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("case", list(CASES))
def test_every_object_of_the_whole_deployment_validates(whole_chart, case, version):
    if version not in shipped_versions():
        pytest.skip(f"kubernetes-validate {version} schemas are not installed (it ships {sorted(shipped_versions())})")
    objects = render(whole_chart, case)
    # Z2JH's hub, proxy and user scheduler beside the pool's service, agent and hub configuration.
    assert {("Deployment", "hub"), ("Deployment", "proxy"), ("Deployment", "user-scheduler"),
            ("Deployment", "gpupool-service"), ("DaemonSet", "gpupool-agent"), ("ConfigMap", "gpupool-hub-config")} <= set(objects)
    for obj in objects.values():
        key = (version, json.dumps(obj, sort_keys=True))
        if key not in _valid:  # most objects (all of Z2JH's) are the same in every case
            check_object(obj, version)
            _valid.add(key)


_valid: set[tuple[str, str]] = set()


def test_the_hub_mounts_the_pool_configuration_and_tokens(whole_chart):
    objects = render(whole_chart, "defaults")
    hub = objects[("Deployment", "hub")]["spec"]["template"]["spec"]
    (container,) = [c for c in hub["containers"] if c["name"] == "hub"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/usr/local/etc/jupyterhub/jupyterhub_config.d/gpupool.py"]["subPath"] == "gpupool.py"
    env = {e["name"]: e for e in container["env"]}
    assert env["GPUPOOL_SPAWNER_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "gpupool-tokens", "key": "spawner"}
    # Our values reached Z2JH: its hub and notebook images are ours.
    assert container["image"].startswith("jupyterhub-gpupool:")
    values = yaml.safe_load(base64.b64decode(objects[("Secret", "hub")]["data"]["values.yaml"]))
    assert values["singleuser"]["image"]["name"] == "jupyterhub-gpupool-notebook"


def test_dra_mode_grants_claims_to_the_service_and_the_hub_only_then(whole_chart):
    def claim_rules(objects, role):
        return [r for r in objects[("Role", role)]["rules"] if "resource.k8s.io" in r["apiGroups"]] if ("Role", role) in objects else []

    plain, dra = render(whole_chart, "defaults"), render(whole_chart, "dra")
    assert claim_rules(plain, "gpupool-service") == [] and ("Role", "gpupool-hub-claims") not in plain
    (service_rule,) = claim_rules(dra, "gpupool-service")
    assert {"resourceclaims", "resourceclaimtemplates"} <= set(service_rule["resources"])
    assert {"create", "delete"} <= set(service_rule["verbs"])
    (hub_rule,) = claim_rules(dra, "gpupool-hub-claims")
    assert hub_rule["resources"] == ["resourceclaims"]
    binding = dra[("RoleBinding", "gpupool-hub-claims")]
    # The subject is Z2JH's own hub ServiceAccount, as rendered.
    assert ("ServiceAccount", binding["subjects"][0]["name"]) in dra
    assert binding["subjects"][0]["name"] == dra[("Deployment", "hub")]["spec"]["template"]["spec"]["serviceAccountName"]


@pytest.mark.parametrize(
    "values, says",
    [
        ({"pool": {"deviceListStrategy": "dra"}, "kubernetesVersion": "1.33.4"},
         "dra needs Kubernetes 1.34 or newer (resource.k8s.io/v1), and this cluster is 1.33.4: upgrade the cluster, "
         "or set pool.deviceListStrategy to envvar"),
        ({"pool": {"deviceListStrategy": "cdi"}}, 'pool.deviceListStrategy "cdi" is not known: set envvar or volume-mounts'),
    ],
)
def test_values_that_cannot_work_fail_the_render_saying_what_to_change(whole_chart, values, says):
    with pytest.raises(helm.HelmError) as err:
        whole_chart.render(values, name="lab", namespace=NAMESPACE)
    assert says in str(err.value)


def test_z2jh_overlay_wires_a_separately_installed_z2jh(tmp_path):
    # examples/z2jh-overlay.yaml on Z2JH alone (jupyterhub.enabled=false beside it): the same hub wiring.
    z2jh = helm.Chart.load(str(Z2JH))
    try:
        out = z2jh.render(yaml.safe_load((CHART / "examples" / "z2jh-overlay.yaml").read_text()), name="jhub", namespace=NAMESPACE)
    finally:
        z2jh.close()
    objects = {(o["kind"], o["metadata"]["name"]): o for p, t in out.items() if not p.endswith("NOTES.txt") for o in load_documents(t)}
    for obj in objects.values():
        check_object(obj, "1.34.0")
    hub = objects[("Deployment", "hub")]["spec"]["template"]["spec"]
    assert {"name": "gpupool-hub-config", "configMap": {"name": "gpupool-hub-config"}} in hub["volumes"]


# ---------------------------------------------------------------- the hub, as Z2JH runs it


def load_hub(objects: dict, tmp_path) -> dict:
    root = tmp_path / "etc-jupyterhub"
    env = hub_pod_files_and_env(objects, root, NAMESPACE)
    result = tmp_path / "hub.json"
    script = tmp_path / "load_hub.py"
    script.write_text(HUB_LOADER)
    repo = str(CHART.parent.parent)
    # The hub image has jupyterhub-gpupool installed; here the checkout stands for it.
    run_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": repo, **env}
    done = subprocess.run([sys.executable, str(script), str(root), str(result)], env=run_env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(result.read_text())


def test_z2jh_hub_configuration_loads_with_the_pool(whole_chart, tmp_path):
    objects = render(whole_chart, "two-team-lab example, dra")
    hub = load_hub(objects, tmp_path)
    tokens = {k: base64.b64decode(v).decode() for k, v in objects[("Secret", "gpupool-tokens")]["data"].items()}
    assert hub["spawner_class"] == "spawner.kubernetes.GpuPoolKubeSpawner"
    assert hub["cookie_secret"]  # Z2JH's own secrets came through
    assert hub["hub_connect_url"] == "http://hub:8081"
    services = {s["name"]: s for s in hub["services"]}
    assert services["gpupool"]["url"] == f"http://gpupool-service.{NAMESPACE}.svc:8080"
    assert services["gpupool"]["api_token"] == tokens["service"]
    assert services["gpupool-agent"]["api_token"] == tokens["agent"]
    assert services["gpupool-spawner"]["api_token"] == tokens["spawner"]
    roles = {r["name"]: r for r in hub["load_roles"]}
    assert "custom:gpupool:admin" in roles["gpupool-spawner"]["scopes"]
    assert roles["gpupool-service"]["services"] == ["gpupool"]
    assert {"custom:gpupool:use", "custom:gpupool:admin", "custom:gpupool:agent"} <= set(hub["custom_scopes"])
    spawner = hub["config"]["GpuPoolKubeSpawner"]
    assert spawner["pool_token"] == tokens["spawner"]
    placement = hub["config"]["KubernetesGpuPlacement"]
    assert placement["device_list_strategy"] == "dra" and placement["dra_device_class_name"] == "gpu.nvidia.com"
    assert placement["fraction_enforcement"] == "hami-core"
    assert roles["gpupool-user"]["groups"] == ["vision-lab", "nlp-lab"]
    assert roles["gpupool-admin"]["users"] == ["ada"]
    assert set(hub["load_groups"]) >= {"vision-lab", "nlp-lab"}
    assert hub["authenticator_class"] == EXAMPLE["jupyterhub"]["hub"]["config"]["JupyterHub"]["authenticator_class"]
    # Z2JH's KubeSpawner settings (from singleuser) stay beside ours.
    image = EXAMPLE["jupyterhub"]["singleuser"]["image"]
    assert hub["config"]["KubeSpawner"]["image"] == f"{image['name']}:{image['tag']}"
