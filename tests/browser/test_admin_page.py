"""The hub admin page of the GPU pool, in a real browser against a real hub.

ada (GPU pool admin) reaches the page from the hub's navigation bar, sees
bob's job waiting because team vision is at its quota, moves a GPU of quota
from nlp to vision, and watches the queue react: bob's job starts, one of
carol's jobs (now borrowed GPUs) is preempted back into the queue. alice, a
plain user, finds no link and is refused the page and its data.
"""

from __future__ import annotations

import pytest
import requests

from tests.fixtures.waiting import wait_for
from tests.fixtures.hub import start_hub

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from playwright.sync_api import expect  # noqa: E402

SLOW = 90_000

NAV_CONFIG = """
import hub_ext.service.pages as gpupool_pages
c.JupyterHub.template_paths = [gpupool_pages.HUB_TEMPLATES]
"""


@pytest.fixture(scope="module")
def admin_hub(tmp_path_factory):
    hub = start_hub(tmp_path_factory.mktemp("adminhub"), extra_config=NAV_CONFIG, timeout=240)
    yield hub
    hub.stop()


def state_of(hub, user, job) -> str:
    return hub.client(user).workload(job["id"])["state"]


def test_admin_changes_quotas_and_the_queue_reacts(admin_hub, page_for, screenshot):
    hub = admin_hub
    # Both teams at their quota of 3 on the 6-GPU pool; bob's job has to wait.
    alice_jobs = [hub.client("alice").submit(name=f"vision-{i}", kind="job", command=["sleep", "900"], gpus=1) for i in range(3)]
    carol_jobs = [hub.client("carol").submit(name=f"nlp-{i}", kind="job", command=["sleep", "900"], gpus=1) for i in range(3)]
    for user, job in [("alice", j) for j in alice_jobs] + [("carol", j) for j in carol_jobs]:
        wait_for(lambda: state_of(hub, user, job) == "running", what=f"{job['name']} to run")
    bob_job = hub.client("bob").submit(name="bob-waits", kind="job", command=["sleep", "900"], gpus=1)
    assert state_of(hub, "bob", bob_job) == "pending"

    page = page_for(hub, "ada")
    page.goto(hub.url + "hub/home")
    page.click("#gpupool-admin-link")
    page.wait_for_url("**/services/gpupool/admin**")

    # The pool, the teams, the queue with its reason.
    expect(page.locator("#pool .gpu")).to_have_count(6, timeout=SLOW)
    expect(page.locator("#simulated-banner")).to_be_visible()
    vision = page.locator('#teams tr[data-team="vision"]')
    nlp = page.locator('#teams tr[data-team="nlp"]')
    expect(vision.locator(".usage")).to_have_text("3 GPUs")
    waiting = page.locator(f'#queue tr[data-workload-id="{bob_job["id"]}"]')
    expect(waiting).to_be_visible()
    expect(waiting.locator(".position")).to_have_text("1")
    expect(waiting.locator(".reason")).to_contain_text("vision")

    # Move one GPU of guaranteed quota from nlp to vision.
    vision.locator('input[name="quota"]').fill("4")
    vision.locator('button[data-action="save-team"]').click()
    expect(page.locator("#notice")).to_contain_text("Saved team vision")
    nlp.locator('input[name="quota"]').fill("2")
    nlp.locator('button[data-action="save-team"]').click()
    expect(page.locator("#notice")).to_contain_text("Saved team nlp")

    # The queue reacts: bob's job runs, one of carol's jobs is preempted back into the queue.
    expect(waiting).to_have_count(0, timeout=SLOW)
    expect(page.locator(f'#running tr[data-workload-id="{bob_job["id"]}"]')).to_be_visible(timeout=SLOW)
    expect(page.locator('#queue tr[data-team="nlp"]')).to_have_count(1, timeout=SLOW)
    expect(page.locator('#queue tr[data-team="nlp"] .reason')).not_to_be_empty()
    expect(page.locator('#events tr[data-kind="team-changed"]')).to_have_count(2, timeout=SLOW)
    expect(page.locator('#events tr[data-kind="preempted"]')).to_have_count(1, timeout=SLOW)
    assert state_of(hub, "bob", bob_job) == "running"
    assert sorted(state_of(hub, "carol", j) for j in carol_jobs) == ["pending", "running", "running"]
    teams = {t["name"]: t for t in hub.client("ada").teams()["teams"]}
    assert (teams["vision"]["quota"], teams["nlp"]["quota"]) == (4, 2)

    # Both usage plots know both teams.
    for chart in ("#chart-day", "#chart-40d"):
        expect(page.locator(chart + " svg polygon")).to_have_count(2, timeout=SLOW)
    screenshot(page, "admin-page", full_page=True)


def test_admin_sees_the_services_refusal_of_a_bad_quota(admin_hub, page_for):
    page = page_for(admin_hub, "ada")
    page.goto(admin_hub.pool_url + "admin")
    row = page.locator('#teams tr[data-team="nlp"]')
    expect(row).to_be_visible(timeout=SLOW)
    quota = row.locator('input[name="quota"]').input_value()
    row.locator('input[name="limit"]').fill("0.5")
    row.locator('button[data-action="save-team"]').click()
    notice = page.locator("#notice")
    expect(notice).to_have_class("notice notice-error")
    expect(notice).to_contain_text(f"Could not save team nlp: limit (0.5) is below the quota ({quota})")
    team = next(t for t in admin_hub.client("ada").teams()["teams"] if t["name"] == "nlp")
    assert team["limit"] is None


def test_plain_user_cannot_reach_the_admin_page(admin_hub, page_for):
    hub = admin_hub
    page = page_for(hub, "alice")
    page.goto(hub.url + "hub/home")
    expect(page.locator("#gpupool-admin-link")).to_have_count(0)

    response = page.goto(hub.pool_url + "admin")
    assert response.status == 403
    expect(page.locator("#gpupool-forbidden")).to_contain_text("only for GPU pool administrators")
    expect(page.locator("#teams")).to_have_count(0)

    # Nor can her browser session or her token read the admin-only data behind it.
    r = page.request.get(hub.pool_url + "api/history?window=day")
    assert r.status in (401, 403)
    r = requests.get(hub.pool_url + "api/history", headers={"Authorization": f"token {hub.token('alice')}"}, timeout=30)
    assert r.status_code == 403
    assert "admin" in r.json()["error"]
