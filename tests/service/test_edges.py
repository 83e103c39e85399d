"""Hard at the edges (issue 14): what one request may send, and what the service answers to extremes.

Each test here failed before its fix: a request froze everyone, sizes were
unlimited, extreme values were 500s, caps could be bypassed, a GPU UUID on two
nodes was a 500, a start waited for unrelated stops, a retry submitted twice,
and /metrics named users and workloads to anyone.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import pytest
import requests

from hub_ext.client import PoolClient

from .conftest import wait_for
from tests.fixtures.hub import REPO, start_hub

METRICS_TOKEN = "gpupool-edge-tests-metrics-token-0123"
GRACE = 30  # seconds a stopped job may take: long enough to see who waits for it

IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('stubborn', flush=True); time.sleep(600)"


def job(seconds: float = 600, **fields) -> dict:
    return {"command": [sys.executable, "-c", f"import time; time.sleep({seconds})"], **fields}


def start_edge_hub(tmp, **kwargs):
    return start_hub(
        tmp,
        service_config=f"c.JobSupervisor.grace_seconds = {GRACE}\n",
        extra_config=f'''
c.JupyterHub.services.append({{"name": "prometheus", "api_token": {METRICS_TOKEN!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "gpupool-metrics", "services": ["prometheus"], "scopes": ["custom:gpupool:metrics", "access:services!service=gpupool"]}}
)
''',
        **kwargs,
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = start_edge_hub(tmp_path_factory.mktemp("edges"))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def admin(hub):
    return PoolClient(hub.service_url, hub.token("ada"))


@pytest.fixture
def cleanup(admin):
    ids: list[str] = []
    yield ids
    for wid in ids:
        try:
            admin.cancel(wid)
        except Exception:
            pass


def call(hub, user: str | None, method: str, path: str, body=None, raw: str | bytes | None = None, headers=None, timeout=60):
    h = dict(headers or {})
    if user is not None:
        h["Authorization"] = f"token {hub.token(user) if user != 'agent' else hub.agent_token}"
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    return requests.request(method, hub.service_url + path, data=data, headers=h, timeout=timeout)


def refused(r: requests.Response, status: int = 400, words: str = "") -> str:
    assert r.status_code == status, f"{r.status_code}: {r.text[:300]}"
    message = r.json()["error"]
    assert words in message, message
    return message


def count_workloads(admin) -> int:
    return len(admin.workloads()["workloads"])


# ---------------------------------------------------------------- 1. one request must not freeze everyone


def test_a_huge_command_string_is_refused_at_once_and_holds_up_no_one(hub, admin):
    before = count_workloads(admin)
    body = json.dumps({"gpus": 1, "command": "x" * 900_000})
    answer: dict = {}

    def submit():
        answer["r"] = call(hub, "alice", "POST", "api/workloads", raw=body, timeout=120)

    t = threading.Thread(target=submit)
    t.start()
    slowest = 0.0
    while t.is_alive():
        started = time.monotonic()
        assert call(hub, "bob", "GET", "api/me", timeout=120).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
    t.join()
    refused(answer["r"], 400, "at most 65,536")
    assert slowest < 5, f"another user's request waited {slowest:.1f}s behind one submission"
    assert count_workloads(admin) == before


# ---------------------------------------------------------------- 2. sizes


BIG = "x" * 200_000


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"command": ["python", BIG]}, "command is 200,"),  # issue 11, bug 7: failed later with "Argument list too long"
        ({"command": ["true"] * 5000}, "at most 4,096 are accepted"),
        ({"command": ["python", "-c", "print(1)\x00"]}, "NUL"),
        ({"command": ["true"], "env": {f"V{i}": "1" for i in range(300)}}, "at most 256"),
        ({"command": ["true"], "env": {"BIG": "y" * 70_000}}, "at most 65,536"),
        ({"command": ["true"], "env": {"A=B": "1"}}, "not a variable name"),
        ({"command": ["true"], "name": "n" * 201}, "at most 200 characters"),
        ({"command": ["true"], "team": "t" * 300}, "at most 255 characters"),
        ({"command": ["true"], "gpu_model": "m" * 300}, "at most 255 characters"),
        ({"command": ["true"], "workdir": "/tmp/\x00"}, "NUL"),
    ],
    ids=["200kB-argument", "5000-words", "nul-in-command", "300-env", "70kB-env", "bad-env-name", "long-name",
         "long-team", "long-model", "nul-in-workdir"],
)
def test_sizes_beyond_the_limits_are_refused_at_submit_and_nothing_is_stored(hub, admin, fields, words):
    before = count_workloads(admin)
    refused(call(hub, "alice", "POST", "api/workloads", {"gpus": 1, **fields}), 400, words)
    assert count_workloads(admin) == before


def test_a_command_near_the_limit_runs(hub, admin, cleanup, tmp_path):
    alice = PoolClient(hub.service_url, hub.token("alice"))
    arg = "z" * 60_000
    w = alice.submit(command=[sys.executable, "-c", "import sys; print('got', len(sys.argv[1]))", arg], gpus=1, workdir=str(tmp_path))
    cleanup.append(w["id"])
    done = wait_for(lambda: (x := alice.workload(w["id"]))["state"] in ("completed", "failed") and x, what="the job to end")
    assert done["state"] == "completed", done
    assert "got 60000" in alice.logs(w["id"])["text"]


def test_a_body_above_one_mebibyte_is_refused_with_413(hub):
    refused(call(hub, "alice", "POST", "api/workloads", raw=b'{"gpus": 1, "name": "' + b"a" * (1 << 20) + b'"}'), 413, "limit")


# ---------------------------------------------------------------- 3 and 4. extreme values: 4xx, and never a non-JSON answer

HUGE = "1" + "0" * 400


@pytest.mark.parametrize("field", ["gpus", "priority", "min_gpus", "max_gpus", "min_gpu_memory_mib", "gpu_memory_mib"])
def test_a_number_too_large_for_a_float_is_a_400(hub, field):
    raw = '{"command": ["true"], "%s": %s}' % (field, HUGE)
    refused(call(hub, "alice", "POST", "api/workloads", raw=raw), 400, "too large")


@pytest.mark.parametrize("raw, words", [
    ('{"command": ["true"], "gpus": 1e400}', "too large"),
    ('{"command": ["true"], "gpus": NaN}', "NaN"),
    ('{"command": ["true"], "gpus": -Infinity}', "Infinity"),
    ('{"command": ["true"], "gpus": 5000}', "up to 1024"),
    ('{"command": ["true"], "priority": 1e300}', "priority"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"command": ["true"], "env": ' + '{"a": ' * 40 + "1" + "}" * 41, "nested too deeply"),
])
def test_extreme_submissions_are_a_400(hub, raw, words):
    refused(call(hub, "alice", "POST", "api/workloads", raw=raw), 400, words)


def test_extreme_readings_are_a_400(hub):
    uuid = "GPU-sim-node-a-0"
    raw = '{"gpus": [{"uuid": "%s", "index": 0, "utilization": %s}]}' % (uuid, HUGE)
    refused(call(hub, "agent", "POST", "api/nodes/node-a/readings", raw=raw), 400, "too large")
    raw = '{"gpus": [{"uuid": "%s", "index": 0, "memory_used_mib": 1e300}]}' % uuid
    refused(call(hub, "agent", "POST", "api/nodes/node-a/readings", raw=raw), 400, "memory_used_mib")
    refused(call(hub, "agent", "POST", "api/nodes/" + "n" * 300 + "/readings", {"gpus": []}), 400, "node name")


@pytest.mark.parametrize("raw, words", [
    ('{"quota": NaN}', "NaN"),
    ('{"quota": Infinity}', "Infinity"),
    ('{"quota": 1.18e308}', "quota must be a number between 0 and 100,000"),
    ('{"over_quota_weight": null}', "over_quota_weight must be a number"),
    ('{"over_quota_weight": 1.18e308}', "over_quota_weight must be a number between 0 and 1,000"),
    ('{"limit": %s}' % HUGE, "too large"),
])
def test_extreme_team_numbers_are_a_400_and_teams_stay_strict_json(hub, raw, words):
    refused(call(hub, "ada", "PATCH", "api/teams/vision", raw=raw), 400, words)
    r = call(hub, "alice", "GET", "api/teams")
    assert r.status_code == 200

    def strict(name):
        raise AssertionError(f"api/teams is not strict JSON: it contains {name}")

    teams = {t["name"]: t for t in json.loads(r.text, parse_constant=strict)["teams"]}
    assert teams["vision"]["quota"] == 3 and teams["vision"]["over_quota_weight"] == 1


def test_extreme_query_arguments_are_a_400(hub, cleanup):
    alice = PoolClient(hub.service_url, hub.token("alice"))
    w = alice.submit(job(1), gpus=1)
    cleanup.append(w["id"])
    refused(call(hub, "alice", "GET", f"api/workloads/{w['id']}/logs?offset=1{'0' * 30}"), 400, "offset")
    refused(call(hub, "alice", "GET", f"api/events?since=1{'0' * 30}"), 400, "since")
    refused(call(hub, "alice", "GET", "api/workloads/w-99999999999"), 404, "no workload")


# ---------------------------------------------------------------- 5. caps that agree with the document


def test_caps_cannot_be_bypassed_and_the_document_says_the_same(hub, cleanup):
    refused(call(hub, "ada", "GET", "api/events?limit=-1"), 400, "between 1 and 1000")
    refused(call(hub, "ada", "GET", "api/events?limit=1001"), 400, "between 1 and 1000")
    assert call(hub, "ada", "GET", "api/events?limit=1000").status_code == 200
    refused(call(hub, "ada", "GET", "api/workloads?state=running&state=pending"), 400, "once")
    alice = PoolClient(hub.service_url, hub.token("alice"))
    w = alice.submit(job(1), gpus=1)
    cleanup.append(w["id"])
    refused(call(hub, "alice", "GET", f"api/workloads/{w['id']}/logs?offset=-1"), 400, "offset")

    doc = requests.get(hub.service_url + "api/openapi.json", timeout=10).json()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/events"]["get"]["parameters"]}
    assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 1000)
    logs = {p["name"]: p["schema"] for p in doc["paths"]["/api/workloads/{workload_id}/logs"]["get"]["parameters"]}
    assert logs["offset"]["minimum"] == 0


# ---------------------------------------------------------------- 6. a GPU UUID on two nodes


def test_an_agent_reporting_a_card_registered_on_another_node_gets_409_and_the_card_stays(hub, admin, cleanup):
    w = admin.submit(user="alice", command=job()["command"], gpus=1, gpu_model="A100-40GB")
    cleanup.append(w["id"])
    held = w["allocation"]["shares"][0]["gpu_uuid"]
    r = call(hub, "agent", "POST", "api/nodes/copied-agent/readings", {"gpus": [{"uuid": held, "index": 0, "model": "A100-40GB"}]})
    message = refused(r, 409, "already registered on node 'node-a'")
    assert "--node node-a" in message
    pool = admin.pool()
    assert "copied-agent" not in {n["name"] for n in pool["nodes"]}
    card = next(g for n in pool["nodes"] for g in n["gpus"] if g["uuid"] == held)
    assert card["node"] == "node-a" and [h["workload_id"] for h in card["holders"]] == [w["id"]]


# ---------------------------------------------------------------- 7. a start waits only for stops on its own cards


def test_a_start_does_not_wait_for_a_stop_on_other_cards(hub, admin, cleanup):
    alice = PoolClient(hub.service_url, hub.token("alice"), timeout=120)
    stubborn = alice.submit(command=[sys.executable, "-c", IGNORES_TERM], gpus=1, gpu_model="V100-32GB")
    cleanup.append(stubborn["id"])
    # Its SIGTERM handler is in place once it has said so.
    wait_for(lambda: "stubborn" in alice.logs(stubborn["id"])["text"], what="the stubborn job to ignore SIGTERM")
    alice.cancel(stubborn["id"])  # it ignores SIGTERM: it keeps its V100 for the whole grace period
    started = time.monotonic()
    other = PoolClient(hub.service_url, hub.token("carol"), timeout=120).submit(job(), gpus=1, gpu_model="A100-40GB")
    cleanup.append(other["id"])
    took = time.monotonic() - started
    assert other["state"] == "running"
    assert took < GRACE / 2, f"a submit for an A100 waited {took:.0f}s for a V100's job to stop"
    wait_for(lambda: hub.job_processes().get(other["id"]), timeout=GRACE / 2, what="the A100 job's process")
    assert stubborn["id"] in hub.job_processes(), "the stubborn job should still be in its grace period"
    # Its card is free for the next tests once it is gone.
    for pid in hub.job_processes().get(stubborn["id"], []):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: stubborn["id"] not in hub.job_processes(), what="the stubborn job to go")


# ---------------------------------------------------------------- 8. idempotency


def test_a_retried_submission_returns_the_first_workload(hub, admin, cleanup):
    body = {"gpus": 1, **job()}
    first = call(hub, "alice", "POST", "api/workloads", body, headers={"Idempotency-Key": "train-42"})
    assert first.status_code == 201, first.text
    cleanup.append(first.json()["id"])
    again = call(hub, "alice", "POST", "api/workloads", body, headers={"Idempotency-Key": "train-42"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    in_body = call(hub, "alice", "POST", "api/workloads", {**body, "idempotency_key": "train-42"})
    assert in_body.status_code == 200 and in_body.json()["id"] == first.json()["id"]
    refused(call(hub, "alice", "POST", "api/workloads", {**body, "gpus": 2}, headers={"Idempotency-Key": "train-42"}),
            409, "different submission")
    # Keys are per user: bob's "train-42" is his own.
    bobs = call(hub, "bob", "POST", "api/workloads", body, headers={"Idempotency-Key": "train-42"})
    assert bobs.status_code == 201 and bobs.json()["id"] != first.json()["id"]
    cleanup.append(bobs.json()["id"])
    mine = [w for w in admin.workloads(user="alice")["workloads"] if w["id"] == first.json()["id"]]
    assert len(mine) == 1
    # The client sends a key itself; with the same key it gets the same workload back.
    alice = PoolClient(hub.service_url, hub.token("alice"))
    a = alice.submit(job(), gpus=1, idempotency_key="nightly-7")
    b = alice.submit(job(), gpus=1, idempotency_key="nightly-7")
    cleanup.append(a["id"])
    assert a["id"] == b["id"]


# ---------------------------------------------------------------- 9. metrics


def test_metrics_need_the_metrics_scope_and_name_no_user_or_workload(hub, cleanup):
    w = PoolClient(hub.service_url, hub.token("alice")).submit(job(), gpus=1)
    cleanup.append(w["id"])
    refused(call(hub, None, "GET", "metrics"), 401, "authentication required")
    refused(call(hub, "alice", "GET", "metrics"), 403, "custom:gpupool:metrics")
    r = requests.get(hub.service_url + "metrics", headers={"Authorization": f"token {METRICS_TOKEN}"}, timeout=10)
    assert r.status_code == 200 and "gpupool_node_gpus" in r.text
    assert w["id"] not in r.text and "alice" not in r.text
    labels = {part.split("=")[0] for line in r.text.splitlines() if "{" in line and not line.startswith("#")
              for part in line[line.index("{") + 1:line.index("}")].split(",") if "=" in part}
    assert labels <= {"node", "simulated", "team", "kind", "index", "uuid", "le"}, labels


# ---------------------------------------------------------------- 10. clients ride out a restart (last: it kills the service)


def test_the_cli_waits_for_a_restarting_pool_and_says_so(hub):
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("GPUPOOL_RETRY_SECONDS",)}
    env.update(GPUPOOL_URL=hub.pool_url, JUPYTERHUB_API_TOKEN=hub.token("alice"), PYTHONPATH=str(REPO))
    old = hub.service_pid()
    os.kill(old, signal.SIGKILL)
    out = subprocess.run([sys.executable, "-m", "hub_ext.cli.main", "ls"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "gpupool: the pool is restarting" in out.stderr, out.stderr
    hub.wait_for_service(not_pid=old)
