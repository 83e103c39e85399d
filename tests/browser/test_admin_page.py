"""The hub admin page of the GPU pool, in a real browser against a real hub.

ada (GPU pool admin) reaches the page from the hub's navigation bar, sees
bob's job waiting because team vision is at its quota, moves a GPU of quota
from nlp to vision, and watches the queue react: bob's job starts, one of
carol's jobs (now borrowed GPUs) is preempted back into the queue. She
changes a job's priority, preempts it and stops it from the page, finds her
actions in the event search, reads the usage report and downloads it as CSV,
and is warned of a quota above the pool. alice, a plain user, finds no link
and is refused the page and its data.
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
    expect(page.locator("#pool .gp-Gpu")).to_have_count(6, timeout=SLOW)
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
    page.add_style_tag(content=".topbar { position: static; }")  # a full-page picture without the sticky bar in its middle
    screenshot(page, "admin-page", full_page=True)


def test_admin_acts_on_workloads_searches_events_and_reads_the_report(admin_hub, page_for, screenshot):
    """Preempt, reprioritise and stop from the page (each confirmed and recorded); find it in the events; the CSV report."""
    hub = admin_hub
    for user in ("alice", "bob", "carol"):  # the pool to itself: the first test filled it
        for w in hub.client(user).workloads()["workloads"]:
            if w["state"] in ("pending", "running"):
                hub.client(user).cancel(w["id"])
    job = hub.client("alice").submit(name="admin-acts-on-me", kind="job", command=["sleep", "900"], gpus=1)
    page = page_for(hub, "ada")
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations before preempt and stop
    page.goto(hub.pool_url + "admin")

    # Wherever it is (running or queued), change its priority; the event says who did it.
    row = page.locator(f'tr[data-workload-id="{job["id"]}"]')
    expect(row).to_be_visible(timeout=SLOW)
    row.locator('input[name="priority"]').fill("5")
    row.locator('button[data-action="set-priority"]').click()
    expect(page.locator("#notice")).to_contain_text("set to 5")
    assert hub.client("alice").workload(job["id"])["priority"] == 5

    wait_for(lambda: state_of(hub, "alice", job) == "running", what="alice's job to run")
    running = page.locator(f'#running tr[data-workload-id="{job["id"]}"]')
    expect(running).to_be_visible(timeout=SLOW)
    expect(running.locator(".attained")).to_contain_text("held <0.1 GPU-h", timeout=SLOW)  # its attained service
    running.locator('button[data-action="preempt"]').click()
    expect(page.locator("#notice")).to_contain_text("it has its notice")
    wait_for(lambda: hub.client("alice").workload(job["id"])["preemptions"] == 1, what="alice's job back in the queue after its notice")

    # The events: search finds the admin's actions; paging goes further back than one page.
    page.fill('#event-search input[name="q"]', "by admin ada")
    page.click('button[data-action="search-events"]')
    expect(page.locator('#events tr[data-kind="priority-changed"]')).to_have_count(1, timeout=SLOW)
    expect(page.locator('#events tr[data-kind="preempted"]')).to_have_count(1)
    page.click('button[data-action="clear-search"]')
    expect(page.locator("#events tbody tr").first).to_be_visible()

    # The usage report: shown per team.
    page.click('button[data-action="show-report"]')
    expect(page.locator('#report tr[data-team="vision"] .held')).not_to_have_text("0.00", timeout=SLOW)

    # A quota above the pool is flagged.
    hub.client("ada").set_team("nlp", quota=10)
    try:
        expect(page.locator("#quota-warnings")).to_contain_text("Team nlp has a quota of 10 GPUs, more than the pool's 6 GPUs", timeout=SLOW)
        expect(page.locator(f'#running tr[data-workload-id="{job["id"]}"]')).to_be_visible(timeout=SLOW)
        page.add_style_tag(content=".topbar { position: static; }")  # a full-page picture without the sticky bar in its middle
        screenshot(page, "admin-page-actions", full_page=True)
    finally:
        hub.client("ada").set_team("nlp", quota=2)
    expect(page.locator("#quota-warnings")).to_be_hidden(timeout=SLOW)

    # Stop it from the page.
    row = page.locator(f'tr[data-workload-id="{job["id"]}"]').first
    expect(row.locator('button[data-action="stop"]')).to_be_visible(timeout=SLOW)
    row.locator('button[data-action="stop"]').click()
    wait_for(lambda: state_of(hub, "alice", job) == "cancelled", what="alice's job to be stopped by ada")

    # The report as CSV.
    with page.expect_download() as download:
        page.click('#report-csv')
    csv_text = open(download.value.path()).read()
    assert csv_text.startswith("team,period_start,period_end,gpu_hours_held,gpu_hours_busy")
    assert "\nvision," in csv_text


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

    # Nor can her browser session or her token read the admin-only data behind it (the usage report
    # of every team); the usage history shows her only her own team (gpupool usage).
    r = page.request.get(hub.pool_url + "api/report")
    assert r.status in (401, 403)
    r = requests.get(hub.pool_url + "api/report", headers={"Authorization": f"token {hub.token('alice')}"}, timeout=30)
    assert r.status_code == 403
    assert "admin" in r.json()["error"]
    r = requests.get(hub.pool_url + "api/history", headers={"Authorization": f"token {hub.token('alice')}"}, timeout=30)
    assert r.status_code == 200 and set(r.json()["teams"]) <= {"vision"}, r.json()["teams"]
