"""Every endpoint refuses whoever may not use it, walked from the OpenAPI document.

The operations come from the service's own document, so an endpoint added
later is checked without anyone remembering to add it here; an operation
without an ``x-gpupool-scope`` fails the test.
"""

from __future__ import annotations

import json
import sys

import pytest
import requests


BODIES = {
    ("post", "/api/workloads"): {"gpus": 1, "command": ["true"]},
    ("post", "/api/workloads/{workload_id}/resize"): {"gpus": 1},
    ("patch", "/api/workloads/{workload_id}"): {"priority": 5},
    ("post", "/api/workloads/{workload_id}/restart"): {"gpus": 1},
    ("put", "/api/teams/{team}"): {"quota": 99},
    ("patch", "/api/teams/{team}"): {"quota": 99},
    ("post", "/api/nodes/{node}/readings"): {"gpus": []},
}


@pytest.fixture(scope="module")
def operations(openapi):
    ops = list(openapi.operations())
    assert len(ops) >= 13, "the document lost operations"
    for template, method, op in ops:
        assert op.get("x-gpupool-scope") in ("use", "owner", "admin", "agent"), f"{method} {template} names no scope"
    return ops


@pytest.fixture(scope="module")
def alices_job(pool_hub):
    from hub_ext.client import PoolClient

    alice = PoolClient(pool_hub.service_url, pool_hub.token("alice"))
    w = alice.submit(command=[sys.executable, "-c", "import time; time.sleep(600)"], gpus=1, min_gpus=1, max_gpus=2)
    yield w
    alice.cancel(w["id"])


def call(hub, template: str, method: str, token: str | None, workload_id: str, **headers):
    path = template.format(workload_id=workload_id, team="vision", node="node-a")
    if token:
        headers["Authorization"] = f"token {token}"
    body = BODIES.get((method, template))
    return requests.request(
        method.upper(),
        hub.service_url + path.lstrip("/"),
        data=json.dumps(body) if body is not None else None,
        headers=headers,
        timeout=30,
        allow_redirects=False,
    )


def refused(r, status: int, openapi, template: str, method: str):
    assert r.status_code == status, f"{method.upper()} {template}: expected {status}, got {r.status_code} {r.text[:200]}"
    assert r.json()["error"], "a refusal says why"
    openapi.check(method, template, status, r.json())


def test_no_token_is_refused_everywhere(pool_hub, openapi, operations, alices_job):
    for template, method, _ in operations:
        r = call(pool_hub, template, method, None, alices_job["id"])
        refused(r, 401, openapi, template, method)


def test_a_token_the_hub_does_not_know_is_refused_everywhere(pool_hub, openapi, operations, alices_job):
    for template, method, _ in operations:
        r = call(pool_hub, template, method, "not-a-real-token", alices_job["id"])
        refused(r, 401, openapi, template, method)


def test_a_hub_user_without_the_pool_role_is_refused_everywhere(pool_hub, openapi, operations, alices_job):
    token = pool_hub.token("dave")
    for template, method, _ in operations:
        refused(call(pool_hub, template, method, token, alices_job["id"]), 403, openapi, template, method)


def test_a_token_without_the_use_scope_is_refused_everywhere(pool_hub, openapi, operations, alices_job):
    token = pool_hub.token("alice", scopes=["access:services!service=gpupool"])
    for template, method, _ in operations:
        refused(call(pool_hub, template, method, token, alices_job["id"]), 403, openapi, template, method)


def test_users_may_not_administer_or_report_readings(pool_hub, openapi, operations, alices_job):
    token = pool_hub.token("alice")
    checked = 0
    for template, method, op in operations:
        if op["x-gpupool-scope"] in ("admin", "agent"):
            refused(call(pool_hub, template, method, token, alices_job["id"]), 403, openapi, template, method)
            checked += 1
    assert checked >= 3
    vision = requests.get(pool_hub.service_url + "api/teams/vision", headers={"Authorization": f"token {token}"}, timeout=10).json()
    assert vision["quota"] != 99, "a refused quota change changed the quota"


def test_nobody_acts_on_another_users_workload(pool_hub, openapi, operations, alices_job):
    token = pool_hub.token("bob")
    checked = 0
    for template, method, op in operations:
        if op["x-gpupool-scope"] == "owner":
            refused(call(pool_hub, template, method, token, alices_job["id"]), 404, openapi, template, method)
            checked += 1
    assert checked >= 4
    mine = requests.get(pool_hub.service_url + f"api/workloads/{alices_job['id']}",
                        headers={"Authorization": f"token {pool_hub.token('alice')}"}, timeout=10).json()
    assert mine["state"] == "running" and mine["gpus"] == alices_job["gpus"], "bob's refused calls changed alice's job"


def test_the_owner_and_admins_are_let_through(pool_hub, operations, alices_job):
    """The positive control: the same calls succeed for those allowed (else the refusals prove nothing)."""
    allowed = {"use": "alice", "owner": "alice", "admin": "ada", "agent": "agent"}
    for template, method, op in operations:
        if method in ("delete", "put", "patch") or template.endswith(("resize", "preempt", "restart")):
            continue  # changes are exercised in test_api.py
        who = allowed[op["x-gpupool-scope"]]
        token = pool_hub.agent_token if who == "agent" else pool_hub.token(who)
        r = call(pool_hub, template, method, token, alices_job["id"])
        assert r.status_code < 300, f"{method.upper()} {template} as {who}: {r.status_code} {r.text[:200]}"
        if op["x-gpupool-scope"] == "owner":
            r = call(pool_hub, template, method, pool_hub.token("ada"), alices_job["id"])
            assert r.status_code < 300, f"an admin may act on anyone's workload: {template} {r.status_code}"


def test_lists_and_events_show_only_own_workloads(pool_hub, alices_job):
    bob = {"Authorization": f"token {pool_hub.token('bob')}"}
    url = pool_hub.service_url
    r = requests.get(url + "api/workloads", headers=bob, params={"user": "alice"}, timeout=10)
    assert r.status_code == 403
    listed = requests.get(url + "api/workloads", headers=bob, timeout=10).json()["workloads"]
    assert all(w["user"] == "bob" for w in listed)
    events = requests.get(url + "api/events", headers=bob, timeout=10).json()["events"]
    assert all(e["user"] in ("bob", None) for e in events)
    assert not any(e["workload_id"] == alices_job["id"] for e in events)


def test_browser_login_through_hub_oauth(pool_hub):
    """A logged-in browser reaches the API through the proxy with the OAuth cookie; cross-site POSTs are refused."""
    s = pool_hub.login("alice")
    r = s.get(pool_hub.pool_url + "api/me", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["user"] == "alice"
    assert s.get(pool_hub.pool_url + "api/pool", timeout=30).status_code == 200
    alice = {"Authorization": f"token {pool_hub.token('alice')}"}
    before = len(requests.get(pool_hub.service_url + "api/workloads", headers=alice, timeout=10).json()["workloads"])
    # A form post from elsewhere carries the cookie but no XSRF token: not authenticated.
    r = s.post(pool_hub.pool_url + "api/workloads", data=json.dumps({"gpus": 1, "command": ["true"]}), timeout=30,
               headers={"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code in (401, 403)
    after = len(requests.get(pool_hub.service_url + "api/workloads", headers=alice, timeout=10).json()["workloads"])
    assert after == before, "a cross-site post must not submit anything"
