"""The Helm chart, rendered offline by Helm's own Go library (helm-python-sdk).

Every rendered object is validated against the Kubernetes API schema. Here
only this chart's own templates are rendered (fast, for each value); the whole
deployment with its Zero to JupyterHub dependency, and Z2JH's hub loading this
chart's configuration, are in test_whole_chart.py.
"""

from __future__ import annotations

import base64
import os
import re

import pytest
import yaml
from k8s_manifests import check_object, load_documents, pod_env
from traitlets.config import Config

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's Go library for Python) is not installed")

from k8s_testenv import CHART  # noqa: E402

EXAMPLE = CHART / "examples" / "two-team-lab.yaml"
OVERLAY = CHART / "examples" / "z2jh-overlay.yaml"


@pytest.fixture(scope="module")
def chart():
    loaded = helm.Chart.load(str(CHART))
    yield loaded
    loaded.close()


def render(chart, values: dict | None = None, namespace: str = "jhub") -> dict[tuple[str, str], dict]:
    """Render, validate every object, and index them by (kind, name)."""
    out = chart.render(values or {}, name="lab", namespace=namespace)
    objects: dict[tuple[str, str], dict] = {}
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            continue
        for obj in load_documents(text):
            check_object(obj)
            key = (obj["kind"], obj["metadata"]["name"])
            assert key not in objects, f"{key} rendered twice"
            objects[key] = obj
    return objects


def example_values() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def secret_value(obj: dict, key: str) -> str:
    return base64.b64decode(obj["data"][key]).decode()


def config_file(objects: dict, configmap: str, key: str) -> str:
    return objects[("ConfigMap", configmap)]["data"][key]


# ---------------------------------------------------------------- rendering


def test_default_values_install_service_agent_tokens_and_hub_config(chart):
    objects = render(chart)
    kinds = {kind for kind, _ in objects}
    assert {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap", "DaemonSet",
            "PersistentVolumeClaim", "NetworkPolicy"} <= kinds
    deployment = objects[("Deployment", "gpupool-service")]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    tokens = objects[("Secret", "gpupool-tokens")]
    values = {k: secret_value(tokens, k) for k in ("service", "agent", "spawner")}
    assert len(set(values.values())) == 3 and all(len(v) >= 32 for v in values.values())
    # SQLite by default, on a volume that outlives the pod.
    assert secret_value(objects[("Secret", "gpupool-database")], "url").startswith("sqlite:////srv/gpupool/")
    claim = objects[("PersistentVolumeClaim", "gpupool-service-data")]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_service_may_only_manage_jobs_pods_and_services_in_its_namespace(chart):
    objects = render(chart)
    role = objects[("Role", "gpupool-service")]
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {("batch", "jobs"), ("", "pods"), ("", "pods/log"), ("", "services")}
    assert not any(kind == "ClusterRole" for kind, _ in objects)
    binding = objects[("RoleBinding", "gpupool-service")]
    deployment = objects[("Deployment", "gpupool-service")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gpupool-service", "namespace": "jhub"}]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "gpupool-service"


def test_agent_runs_on_every_pool_node_and_only_there(chart):
    objects = render(chart, {"pool": {"nodeLabel": {"key": "lab.example.org/gpu-pool", "value": "dgx"},
                                      "taint": {"key": "lab.example.org/gpu-pool", "value": "dgx", "effect": "NoSchedule"}}})
    spec = objects[("DaemonSet", "gpupool-agent")]["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"lab.example.org/gpu-pool": "dgx"}
    assert {"key": "lab.example.org/gpu-pool", "operator": "Equal", "value": "dgx", "effect": "NoSchedule"} in spec["tolerations"]
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"]["value"] == "all"  # the agent reads every card of its node
    assert env["GPUPOOL_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "gpupool-tokens", "key": "agent"}
    assert env["GPUPOOL_URL"]["value"] == "http://gpupool-service.jhub.svc:8080/services/gpupool/"
    assert spec["containers"][0]["command"][:2] == ["gpupool", "agent"]
    # Sessions and jobs pinned by the pool use the same label and taint (see the hub and service config).
    assert "lab.example.org/gpu-pool" in config_file(objects, "gpupool-hub-config", "gpupool.py")


def test_network_policies_only_widen_z2jh_policies_that_exist(chart):
    def policed(objects):
        return {o["spec"]["podSelector"]["matchLabels"]["component"] for (kind, _), o in objects.items() if kind == "NetworkPolicy"}

    assert policed(render(chart)) == {"singleuser-server", "hub", "proxy"}
    # Where Z2JH has no egress policy for the hub, adding one would cut the hub's other traffic.
    assert policed(render(chart, {"jupyterhub": {"hub": {"networkPolicy": {"enabled": False}}}})) == {"singleuser-server", "proxy"}
    for (kind, _), policy in render(chart).items():
        if kind == "NetworkPolicy":
            (rule,) = policy["spec"]["egress"]
            assert rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "service"


def test_agent_can_be_turned_off(chart):
    objects = render(chart, {"agent": {"enabled": False}})
    assert not any(kind == "DaemonSet" for kind, _ in objects)


@pytest.mark.parametrize(
    "database, expect_url, expect_kinds",
    [
        ({"type": "postgresql", "postgresql": {"url": "postgresql+psycopg://gp:pw@db.example.org:5432/gpupool"}},
         "postgresql+psycopg://gp:pw@db.example.org:5432/gpupool", set()),
        ({"type": "in-cluster"}, re.compile(r"^postgresql\+psycopg://gpupool:[A-Za-z0-9]{48}@gpupool-postgresql\.jhub\.svc:5432/gpupool$"),
         {"StatefulSet"}),
    ],
)
def test_database_choices(chart, database, expect_url, expect_kinds):
    objects = render(chart, {"database": database})
    url = secret_value(objects[("Secret", "gpupool-database")], "url")
    if isinstance(expect_url, str):
        assert url == expect_url
    else:
        assert expect_url.match(url), url
    assert expect_kinds <= {kind for kind, _ in objects}
    assert ("PersistentVolumeClaim", "gpupool-service-data") not in objects
    env = {e["name"]: e for e in objects[("Deployment", "gpupool-service")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GPUPOOL_DB_URL"]["valueFrom"]["secretKeyRef"] == {"name": "gpupool-database", "key": "url"}
    if database["type"] == "in-cluster":
        pg = objects[("StatefulSet", "gpupool-postgresql")]["spec"]["template"]["spec"]["containers"][0]
        password = {e["name"]: e for e in pg["env"]}["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": "gpupool-database", "key": "password"}
        assert secret_value(objects[("Secret", "gpupool-database")], "password") in url


def test_existing_database_secret_is_used_as_is(chart):
    objects = render(chart, {"database": {"type": "postgresql", "postgresql": {"existingSecret": "lab-db", "existingSecretKey": "dsn"}}})
    assert ("Secret", "gpupool-database") not in objects
    env = {e["name"]: e for e in objects[("Deployment", "gpupool-service")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GPUPOOL_DB_URL"]["valueFrom"]["secretKeyRef"] == {"name": "lab-db", "key": "dsn"}


def test_postgresql_without_a_url_is_refused_with_a_clear_message(chart):
    with pytest.raises(helm.HelmError, match="database.postgresql.url or database.postgresql.existingSecret is required"):
        chart.render({"database": {"type": "postgresql"}}, name="lab", namespace="jhub")


@pytest.mark.parametrize(
    "values, complaint",
    [
        ({"database": {"type": "mysql"}}, "/database/type"),
        ({"teams": [{"name": "vision", "quota": -2}]}, "/teams/0/quota"),
        ({"pool": {"fractionEnforcement": "wishful"}}, "/pool/fractionEnforcement"),
        ({"sessions": {"gpuFractions": [1.5]}}, "/sessions/gpuFractions/0"),
        ({"agnet": {"enabled": False}}, "agnet"),
    ],
)
def test_schema_refuses_bad_values(chart, values, complaint):
    with pytest.raises(helm.HelmError) as err:
        chart.render(values, name="lab", namespace="jhub")
    assert complaint in str(err.value)


def test_tokens_from_an_existing_secret(chart):
    objects = render(chart, {"tokens": {"existingSecret": "lab-gpupool-tokens"}})
    assert ("Secret", "gpupool-tokens") not in objects
    env = {e["name"]: e for e in objects[("DaemonSet", "gpupool-agent")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GPUPOOL_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "lab-gpupool-tokens"


def test_lint_finds_no_errors():
    result = helm.lint(str(CHART))
    assert result["errors"] == []
    # Severity 3 is an error; 2 (the Z2JH dependency not downloaded here) is a warning.
    problems = [m for m in result["messages"] if m["severity"] >= 3]
    assert problems == []


# ---------------------------------------------------------------- the documented two-team lab


def test_two_team_lab_values_render(chart):
    objects = render(chart, example_values())
    assert ("StatefulSet", "gpupool-postgresql") in objects
    service = config_file(objects, "gpupool-service", "gpupool_service_config.py")
    assert "vision" in service and "nlp" in service


def test_chart_readme_shows_the_tested_two_team_values_file():
    readme = (CHART / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    assert any(yaml.safe_load(b) == example_values() for b in blocks), "README.md must show examples/two-team-lab.yaml"


def test_z2jh_overlay_matches_the_charts_own_hub_values():
    # For a Z2JH release installed separately (jupyterhub.enabled=false): the same hub wiring.
    overlay = yaml.safe_load(OVERLAY.read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["jupyterhub"]["hub"]
    for key in ("extraVolumes", "extraVolumeMounts", "extraEnv"):
        assert overlay["hub"][key] == defaults[key]


# ---------------------------------------------------------------- what the hub and the service load


def exec_config(source: str, env: dict[str, str], preset: Config | None = None) -> Config:
    c = preset or Config()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        exec(compile(source, "rendered-config.py", "exec"), {"c": c})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return c


HUB_ENV = {"GPUPOOL_SERVICE_TOKEN": "s" * 32, "GPUPOOL_AGENT_TOKEN": "a" * 32, "GPUPOOL_SPAWNER_TOKEN": "p" * 32}


def z2jh_like_config() -> Config:
    """What Z2JH's own jupyterhub_config.py has set before it loads jupyterhub_config.d."""
    c = Config()
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    c.JupyterHub.load_groups = {"vision-lab": {"users": ["ada", "grace"]}}
    c.KubeSpawner.image = "registry.example.org/lab/notebook:2026.11"
    return c


def test_hub_config_makes_a_working_hub_with_the_pool_spawner(chart):
    from jupyterhub.app import JupyterHub

    from spawner.kubernetes import GpuPoolKubeSpawner

    objects = render(chart, example_values())
    c = exec_config(config_file(objects, "gpupool-hub-config", "gpupool.py"), HUB_ENV, z2jh_like_config())
    from hub_ext.kube_placement import KubernetesGpuPlacement

    # Every trait the chart sets exists on the class it names: a renamed trait fails here.
    for cls in (GpuPoolKubeSpawner, KubernetesGpuPlacement):
        unknown = set(c[cls.__name__]) - set(cls.class_trait_names(config=True))
        assert not unknown, f"{cls.__name__}: unknown traits {unknown}"
    hub = JupyterHub(config=c)
    assert hub.spawner_class is GpuPoolKubeSpawner
    services = {s["name"]: s for s in hub.services}
    assert services["gpupool"]["url"] == "http://gpupool-service.jhub.svc:8080"
    assert services["gpupool"]["api_token"] == HUB_ENV["GPUPOOL_SERVICE_TOKEN"]
    assert services["gpupool-agent"]["api_token"] == HUB_ENV["GPUPOOL_AGENT_TOKEN"]
    roles = {r["name"]: r for r in hub.load_roles}
    assert roles["gpupool-user"]["groups"] == ["vision-lab", "nlp-lab"]
    assert roles["gpupool-admin"]["users"] == ["ada"]
    assert "custom:gpupool:admin" in roles["gpupool-spawner"]["scopes"]
    assert set(hub.custom_scopes) >= {"custom:gpupool:use", "custom:gpupool:admin", "custom:gpupool:agent"}
    # Team groups exist, and members Z2JH's values gave them are kept.
    assert hub.load_groups["vision-lab"] == {"users": ["ada", "grace"]}
    assert "nlp-lab" in hub.load_groups


@pytest.mark.parametrize("preset", ["unset", "lazily updated"])
def test_hub_config_keeps_team_members_however_they_were_set(chart, preset):
    c = Config()
    if preset == "lazily updated":
        c.JupyterHub.load_groups.update({"nlp-lab": {"users": ["noam"]}})
    objects = render(chart, example_values())
    c = exec_config(config_file(objects, "gpupool-hub-config", "gpupool.py"), HUB_ENV, c)
    groups = c.JupyterHub.load_groups
    assert set(groups) == {"vision-lab", "nlp-lab"}
    assert groups["nlp-lab"] == ({"users": ["noam"]} if preset == "lazily updated" else {"users": []})


async def test_hub_config_reaches_the_spawner_and_its_pods(chart):
    from types import SimpleNamespace

    from kubernetes_asyncio.client import ApiClient

    from spawner.kubernetes import GpuPoolKubeSpawner

    objects = render(chart, example_values())
    c = exec_config(config_file(objects, "gpupool-hub-config", "gpupool.py"), HUB_ENV, z2jh_like_config())
    hub = SimpleNamespace(public_host="", url="http://hub:8081/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api")
    user = SimpleNamespace(name="grace", id=3, url="/user/grace/", escaped_name="grace", groups=[], settings={})
    spawner = GpuPoolKubeSpawner(user=user, hub=hub, namespace="jhub", config=c)
    assert spawner.pool_url == "http://gpupool-service.jhub.svc:8080/services/gpupool/"
    assert spawner.pool_token == HUB_ENV["GPUPOOL_SPAWNER_TOKEN"]
    assert spawner.gpu_fractions == [0.25, 0.5] and spawner.max_whole_gpus == 8
    spawner.load_state({"gpupool_workload_id": "w-5", "gpupool_allocation": {
        "gpus": 0.25, "shares": [{"node": "dgx1", "gpu_uuid": "GPU-0f6a3e2b-1c1d-4e5f-8a9b-0c1d2e3f4a5b", "index": 3, "fraction": 0.25, "memory_mib": 8192}]}})
    pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    pod.update(apiVersion="v1", kind="Pod")
    check_object(pod)
    env = pod_env(pod["spec"])
    assert env["CUDA_DEVICE_MEMORY_LIMIT"] == "8192m"  # the example enforces fractions with HAMi-core
    assert pod["spec"]["containers"][0]["image"] == "registry.example.org/lab/notebook:2026.11"


def test_service_config_configures_the_real_service_classes(chart, tmp_path):
    from hub_ext.service.app import GpuPoolService
    from hub_ext.service.runners.base import JobLaunch
    from hub_ext.kube_placement import KubernetesGpuPlacement
    from hub_ext.service.runners.kubernetes import KubernetesJobRunner

    objects = render(chart, example_values())
    # Loaded the way the service's pod loads it: `gpupool service --config FILE`.
    path = tmp_path / "gpupool_service_config.py"
    path.write_text(config_file(objects, "gpupool-service", "gpupool_service_config.py"))
    app = GpuPoolService()
    app.initialize([f"--config={path}"])
    c = app.config
    assert app.runner_class == "hub_ext.service.runners.kubernetes.KubernetesJobRunner"
    # Every trait the chart sets exists on the class it names: a renamed trait fails here.
    from hub_ext.service import auth, inventory, jobs, loop, teams

    classes = {cls.__name__: cls for cls in (GpuPoolService, KubernetesJobRunner, KubernetesGpuPlacement, auth.PoolAuth,
                                              inventory.Inventory, jobs.JobSupervisor, loop.SchedulingLoop, teams.Teams)}
    for section, traits in c.items():
        assert section in classes, f"the chart configures unknown class {section}"
        known = classes[section].class_trait_names(config=True)
        assert set(traits) <= set(known), f"{section}: unknown traits {set(traits) - set(known)}"
    assert c.GpuPoolService.runner_class == "hub_ext.service.runners.kubernetes.KubernetesJobRunner"
    assert c.Teams.teams == {"vision": {"quota": 10, "over_quota_weight": 1, "limit": 20},
                             "nlp": {"quota": 10, "over_quota_weight": 1, "limit": 20}}
    assert c.Teams.group_teams == {"vision-lab": "vision", "nlp-lab": "nlp"}
    assert c.SchedulingLoop.reservation_after_s == 7200  # service.config passes through
    runner = KubernetesJobRunner(config=c)
    (job,) = runner.build_objects(JobLaunch("w-1", "grace", ("python", "train.py"), {"dgx2": ("GPU-0a1b2c3d-0000-4000-8000-000000000001",)}, 1))
    check_object(job)
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == "registry.example.org/lab/notebook:2026.11"
    assert spec["serviceAccountName"] == "gpupool-job" and ("ServiceAccount", "gpupool-job") in objects
    assert spec["terminationGracePeriodSeconds"] == 300
    assert {"name": "home", "mountPath": "/home/jovyan"} in spec["containers"][0]["volumeMounts"]
    assert runner.namespace == "jhub"
