"""The GPU pool panel in a real JupyterLab, started by a real hub with a GPU from the pool.

alice (team vision, quota 4, on a pool of 8 GPUs) starts a session with one
GPU through the hub's spawn form, sees it as hers in the panel and the status
bar, submits an elastic job that queues because the pool is full (the queue and
her team's quota show where she stands), is notified when it starts, shrinks
it, reads its log, confirms before stopping it, resubmits it, collapses the
pool into node bars by a setting, is warned about her idle session GPU,
reads the service's own words when it refuses a job, and restarts her session
with two GPUs, her files kept.
"""

from __future__ import annotations

import pytest

from tests.browser.helpers import login
from tests.fixtures.waiting import wait_for

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from playwright.sync_api import expect  # noqa: E402

SLOW = 120_000  # ms: spawning and scheduling on a busy 2-core machine


@pytest.fixture(scope="module")
def alice_lab(browser, lab_hub):
    """alice's JupyterLab, started through the spawn form with 1 GPU, with the GPU pool panel open."""
    page = login(browser, lab_hub, "alice")
    page.goto(lab_hub.url + "hub/spawn")
    page.check('input[name="gpus"][value="1"]')
    page.click('#spawn_form button[type="submit"]')
    page.wait_for_url("**/user/alice/lab**", timeout=300_000)
    page.wait_for_selector(".jp-LabShell", timeout=SLOW)
    page.click('.lm-TabBar-tab[data-id="gpupool-panel"]')
    expect(page.locator("#gpupool-panel")).to_be_visible()
    dismiss_news_toast(page)
    yield page
    page.context.close()


def dismiss_news_toast(page, timeout_ms: int = 8000):
    """JupyterLab asks whether to fetch Jupyter news; answer no so it does not cover the panel."""
    no = page.locator(".Toastify__toast button", has_text="No")
    try:
        no.first.click(timeout=timeout_ms)
    except Exception:
        pass  # not asked (already answered, or news disabled)


def panel_shot(page, screenshot, name: str):
    """A picture of the panel from its top (where warnings and the notice line are)."""
    page.locator("#gpupool-panel").evaluate("e => { e.scrollTop = 0; }")
    screenshot(page.locator("#gpupool-panel"), name)


def alice_session(hub) -> dict:
    sessions = [w for w in hub.client("alice").workloads()["workloads"] if w["kind"] == "session" and w["state"] == "running"]
    assert len(sessions) == 1, sessions
    return sessions[0]


def job_row(page, name: str):
    return page.locator("#gpupool-panel .gp-Row").filter(has=page.locator(".gp-WName", has_text=name))


def test_session_gpu_is_marked_mine_in_the_grid_and_the_status_bar(alice_lab, lab_hub):
    page = alice_lab
    session = alice_session(lab_hub)
    assert session["allocation"]["gpus"] == 1
    uuid = session["allocation"]["shares"][0]["gpu_uuid"]

    mine = page.locator('#gpupool-panel .gp-Gpu[data-look="mine"]')
    expect(mine).to_have_count(1, timeout=SLOW)
    expect(mine).to_have_attribute("data-gpu-uuid", uuid)
    # The other seven simulated GPUs are free, and the pool says it is simulated.
    expect(page.locator('#gpupool-panel .gp-Gpu[data-look="free"]')).to_have_count(7)
    expect(page.locator("#gpupool-panel .gp-Simulated").first).to_be_visible()

    row = page.locator(f'#gpupool-panel .gp-Row[data-workload-id="{session["id"]}"]')
    expect(row).to_have_attribute("data-state", "running")
    expect(row).to_contain_text("this server")
    # What it has held so far (attained service: least attained service orders its team's work by it).
    expect(row).to_contain_text("held <0.1 GPU-h so far", timeout=SLOW)
    expect(page.locator(".gp-Status")).to_have_text("GPU: 1 GPU · no reading")


def test_job_queues_starts_resizes_and_stops(alice_lab, lab_hub, screenshot):
    page = alice_lab
    hub = lab_hub
    # Fill the rest of the pool: carol takes nlp's quota (4), bob the rest of vision's (3).
    carol = hub.client("carol").submit(name="carol-train", kind="job", command=["sleep", "900"], gpus=4)
    bob = hub.client("bob").submit(name="bob-train", kind="job", command=["sleep", "900"], gpus=3)
    for user, job in (("carol", carol), ("bob", bob)):
        wait_for(lambda: hub.client(user).workload(job["id"])["state"] == "running", what=f"{job['name']} to run")
    expect(page.locator('#gpupool-panel .gp-Gpu[data-look="free"]')).to_have_count(0, timeout=SLOW)

    # alice submits an elastic job from the panel: the pool is full, so it queues, with a reason.
    form = page.locator("#gpupool-panel form.gp-Form")
    form.locator('input[name="name"]').fill("resnet-elastic")
    form.locator('input[name="command"]').fill("sleep 900")
    form.locator('input[name="gpus"]').fill("2")
    form.locator('input[name="min_gpus"]').fill("1")
    form.locator('input[name="max_gpus"]').fill("2")
    form.locator('input[name="time_limit"]').fill("90")  # no unit: refused in the panel, nothing sent
    form.locator('button[data-action="submit"]').click()
    expect(page.locator("#gpupool-panel .gp-Notice")).to_contain_text("say the unit")
    form.locator('input[name="time_limit"]').fill("2h")
    form.locator('button[data-action="submit"]').click()
    expect(page.locator("#gpupool-panel .gp-Notice")).to_contain_text("Submitted resnet-elastic")
    row = job_row(page, "resnet-elastic")
    submitted = [w for w in hub.client("alice").workloads()["workloads"] if w["name"] == "resnet-elastic"]
    assert [w["time_limit_s"] for w in submitted] == [7200], submitted  # one job, with its time limit
    expect(row).to_have_attribute("data-state", "pending", timeout=SLOW)
    expect(row.locator(".gp-WQueue")).to_have_text("#1")
    expect(row.locator(".gp-WReason")).not_to_be_empty()
    # The whole queue, mine marked, and my team against its quota.
    expect(page.locator(f'#gpupool-panel .gp-QueueList li[data-mine="true"][data-workload-id="{row.get_attribute("data-workload-id")}"]')).to_be_visible()
    expect(page.locator("#gpupool-panel .gp-QueueSummary")).to_contain_text("0 ahead of your first workload")
    expect(page.locator('#gpupool-panel .gp-Team[data-team="vision"]')).to_contain_text("of 4 GPUs quota in use")
    # My work comes before the pool grid.
    order = page.evaluate("""() => [...document.querySelectorAll('#gpupool-panel > .gp-Section')].map(e => [...e.classList].find(c => c.startsWith('gp-') && c !== 'gp-Section'))""")
    assert order.index("gp-MyWork") < order.index("gp-PoolSection"), order
    dismiss_news_toast(page, 1000)
    panel_shot(page, screenshot, "lab-panel-queued")

    # bob stops his job: alice's job starts on 2 GPUs without any reload of the page, and JupyterLab says so.
    hub.client("bob").cancel(bob["id"])
    expect(row).to_have_attribute("data-state", "running", timeout=SLOW)
    expect(page.locator(".Toastify__toast", has_text="resnet-elastic started with 2 GPUs")).to_be_visible(timeout=SLOW)
    expect(row.locator(".gp-WQueue")).to_have_count(0)
    expect(row.locator(".gp-WGpus")).to_contain_text("2 GPUs")
    expect(page.locator('#gpupool-panel .gp-Gpu[data-look="mine"]')).to_have_count(3, timeout=SLOW)
    job_id = row.get_attribute("data-workload-id")
    assert hub.client("alice").workload(job_id)["allocation"]["gpus"] == 2

    # Shrink it to 1 GPU from the panel: one of its cards goes back to the pool.
    row.locator("input.gp-ResizeInput").fill("1")
    row.locator('button[data-action="resize"]').click()
    expect(page.locator("#gpupool-panel .gp-Notice")).to_contain_text("resize resnet-elastic to 1 GPU", ignore_case=True)
    expect(row.locator(".gp-WGpus")).to_contain_text("1 GPU", timeout=SLOW)
    expect(page.locator('#gpupool-panel .gp-Gpu[data-look="mine"]')).to_have_count(2, timeout=SLOW)
    assert hub.client("alice").workload(job_id)["allocation"]["gpus"] == 1
    dismiss_news_toast(page, 1000)
    screenshot(page, "lab-panel")
    panel_shot(page, screenshot, "lab-panel-detail")

    # Its log, read from the panel.
    row.locator('button[data-action="logs"]').click()
    expect(row.locator("pre.gp-Log")).to_be_visible()

    # Stop asks first: "Keep it" keeps it running.
    row.locator('button[data-action="cancel"]').click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Stop resnet-elastic?")
    dialog.locator("button", has_text="Keep it").click()
    expect(dialog).to_have_count(0)
    assert hub.client("alice").workload(job_id)["state"] == "running"

    # Stop it for real: its GPUs go back to the pool, the session keeps its own.
    row.locator('button[data-action="cancel"]').click()
    page.locator(".jp-Dialog button.jp-mod-warn").click()
    expect(row).to_have_attribute("data-state", "cancelled", timeout=SLOW)
    expect(page.locator('#gpupool-panel .gp-Gpu[data-look="mine"]')).to_have_count(1, timeout=SLOW)
    assert hub.client("alice").workload(job_id)["state"] == "cancelled"
    hub.client("carol").cancel(carol["id"])

    # Resubmit the stopped job as it was.
    row.locator('button[data-action="resubmit"]').click()
    expect(page.locator("#gpupool-panel .gp-Notice")).to_contain_text("Resubmitted resnet-elastic")
    again = [w for w in hub.client("alice").workloads()["workloads"] if w["name"] == "resnet-elastic" and w["id"] != job_id]
    assert len(again) == 1 and again[0]["command"] == ["sleep", "900"] and (again[0]["min_gpus"], again[0]["max_gpus"]) == (1, 2)
    hub.client("alice").cancel(again[0]["id"])


def test_large_pools_collapse_nodes_into_bars_by_setting(alice_lab, lab_hub, screenshot):
    """The "collapse above" setting (schema/plugin.json): nodes become bars, opened on demand."""
    page = alice_lab
    url = lab_hub.url + "user/alice/lab/api/settings/jupyterlab-gpupool:plugin"
    put = """async ([url, raw]) => {
        const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';
        const r = await fetch(url, {method: 'PUT', headers: {'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf)},
                                    body: JSON.stringify({raw})});
        return r.status;
    }"""
    assert page.evaluate(put, [url, '{"collapseAbove": 4}']) == 204
    try:
        page.reload()
        page.wait_for_selector(".jp-LabShell", timeout=SLOW)
        if not page.locator("#gpupool-panel").is_visible():
            page.click('.lm-TabBar-tab[data-id="gpupool-panel"]')
        node = page.locator('#gpupool-panel .gp-Node[data-node="dgx1"]')
        expect(node).to_have_attribute("data-expanded", "false", timeout=SLOW)
        expect(node.locator(".gp-NodeBar")).to_be_visible()
        expect(node.locator(".gp-Seg[data-look='mine']")).to_have_count(1)
        expect(node.locator(".gp-Gpu")).to_have_count(0)
        dismiss_news_toast(page, 3000)
        panel_shot(page, screenshot, "lab-panel-collapsed")
        node.locator("button.gp-NodeToggle").click()
        expect(node.locator(".gp-Gpu")).to_have_count(8)
    finally:
        page.evaluate(put, [url, "{}"])
        page.reload()
        page.wait_for_selector(".jp-LabShell", timeout=SLOW)
        if not page.locator("#gpupool-panel").is_visible():
            page.click('.lm-TabBar-tab[data-id="gpupool-panel"]')
        dismiss_news_toast(page, 3000)


def test_refusals_are_shown_in_the_services_words(alice_lab):
    page = alice_lab
    form = page.locator("#gpupool-panel form.gp-Form")
    form.locator('input[name="name"]').fill("needs-h100")
    form.locator('input[name="command"]').fill("python train.py")
    form.locator('input[name="gpus"]').fill("1")
    form.locator('input[name="min_gpus"]').fill("")
    form.locator('input[name="max_gpus"]').fill("")
    form.locator('input[name="gpu_model"]').fill("H100-80GB")
    form.locator('button[data-action="submit"]').click()
    notice = page.locator("#gpupool-panel .gp-Notice")
    expect(notice).to_have_class("gp-Notice gp-NoticeError")
    expect(notice).to_contain_text("no GPU in the pool is of model 'H100-80GB'")
    expect(job_row(page, "needs-h100")).to_have_count(0)


def test_idle_session_gpu_gets_a_reclaim_warning(alice_lab, lab_hub, screenshot):
    from hub_ext.service.app import GpuPoolService
    from hub_ext.service.reclaim import IdleReclaim

    if IdleReclaim not in GpuPoolService.classes:
        pytest.skip("the pool service does not run idle reclaim (IdleReclaim is not wired into GpuPoolService), so nobody is warned")
    page = alice_lab
    hub = lab_hub
    session = alice_session(hub)
    share = session["allocation"]["shares"][0]
    agent = hub.client(token=hub.agent_token)
    reading = {"uuid": share["gpu_uuid"], "index": share["index"], "utilization": 0, "memory_used_mib": 0, "processes": []}
    agent.report_readings(share["node"], [reading])

    def warned():
        agent.report_readings(share["node"], [reading])
        return page.locator(f'#gpupool-panel .gp-Warning[data-workload-id="{session["id"]}"]').count() == 1

    wait_for(warned, timeout=60, interval=2, what="the panel to warn about alice's idle session GPU")
    warning = page.locator(f'#gpupool-panel .gp-Warning[data-workload-id="{session["id"]}"]')
    expect(warning).to_contain_text("Idle GPUs will be reclaimed")
    expect(warning).to_contain_text("go back to the pool")
    expect(page.locator('#gpupool-panel .gp-Events li[data-kind="warned"]').first).to_be_visible()
    # Not only in the panel: a JupyterLab notification, seen wherever alice is working.
    expect(page.locator(".Toastify__toast", has_text="will be reclaimed unless you use them").first).to_be_visible(timeout=SLOW)
    dismiss_news_toast(page, 1000)
    panel_shot(page, screenshot, "lab-panel-warning")

    # Busy again: the service withdraws the warning and the panel drops it.
    expect(page.locator(".gp-Status")).to_have_text("GPU: 1 GPU · 0%")

    # Busy again: the service withdraws the warning, the panel drops it, the status bar says how busy.
    busy = dict(reading, utilization=85)
    agent.report_readings(share["node"], [busy])
    expect(warning).to_have_count(0, timeout=SLOW)
    expect(page.locator(".gp-Status")).to_have_text("GPU: 1 GPU · 85%", timeout=SLOW)


def test_session_restarts_with_other_gpus_and_keeps_its_files(alice_lab, lab_hub):
    """Restart with other GPUs: the hub stops and starts alice's server with 2 GPUs; her files stay."""
    page = alice_lab
    hub = lab_hub
    before = alice_session(hub)
    lab = hub.url + "user/alice/"
    save = """async ([url, text]) => {
        const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';
        const r = await fetch(url, {method: 'PUT', headers: {'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf)},
                                    body: JSON.stringify({type: 'file', format: 'text', content: text})});
        return r.status;
    }"""
    assert page.evaluate(save, [lab + "api/contents/kept.txt", "still here"]) in (200, 201)

    row = page.locator(f'#gpupool-panel .gp-Row[data-workload-id="{before["id"]}"]')
    row.locator('button[data-action="restart"]').click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator('input[name="gpus"]').fill("2")
    dialog.locator("button.jp-mod-accept").click()
    expect(page.locator("#gpupool-panel .gp-Notice")).to_contain_text("Restarting with 2 GPUs")

    # The page follows the server through the hub and comes back to JupyterLab with 2 GPUs.
    page.wait_for_url("**/hub/spawn-pending/alice**", timeout=SLOW)
    page.wait_for_url("**/user/alice/lab**", timeout=300_000)
    page.wait_for_selector(".jp-LabShell", timeout=SLOW)
    expect(page.locator(".gp-Status")).to_contain_text("GPU: 2 GPUs", timeout=SLOW)
    after = alice_session(hub)
    assert after["id"] != before["id"] and after["allocation"]["gpus"] == 2
    r = page.request.get(lab + "api/contents/kept.txt")
    assert r.ok and r.json()["content"] == "still here"
    kinds = [e["kind"] for e in hub.client("alice").events(workload_id=before["id"])["events"]]
    assert "restart-requested" in kinds


def test_lab_outside_the_pool_says_so_in_plain_words(browser, installed_extension, tmp_path):
    """A JupyterLab not started by the gpupool spawner (no GPUPOOL_URL) explains itself instead of failing quietly."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import requests

    from tests.fixtures.hub import free_port

    port, token = free_port(), "browser-test-token"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUPOOL_", "JUPYTERHUB_"))}
    args = [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}"]
    if os.getuid() == 0:
        args.append("--allow-root")
    with open(tmp_path / "lab.log", "wb") as log:
        lab = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}/"

        def up():
            try:
                return requests.get(url + "api/status", params={"token": token}, timeout=2).ok
            except requests.RequestException:
                return False

        wait_for(up, timeout=90, what="a plain JupyterLab to answer")
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        try:
            page.goto(f"{url}lab?token={token}")
            page.wait_for_selector(".jp-LabShell", timeout=SLOW)
            page.click('.lm-TabBar-tab[data-id="gpupool-panel"]')
            error = page.locator("#gpupool-panel .gp-Error")
            expect(error).to_be_visible(timeout=SLOW)
            expect(error).to_contain_text("not connected to a GPU pool")
            expect(page.locator(".gp-Status")).to_have_text("GPU: pool unreachable")
        finally:
            page.close()
    finally:
        lab.terminate()
        lab.wait(30)


def test_the_lab_server_acts_only_as_its_user(alice_lab, lab_hub):
    """alice's server forwards with her own token: it cannot stop bob's job, even when asked directly."""
    hub = lab_hub
    bob_job = hub.client("bob").submit(name="bob-private", kind="job", command=["sleep", "900"], gpus=1)
    try:
        status, body = alice_lab.evaluate(
            """async (id) => {
                const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
                const r = await fetch(`${location.pathname.split('/lab')[0]}/gpupool/api/workloads/${id}`,
                                      {method: 'DELETE', headers: {'X-XSRFToken': decodeURIComponent(xsrf)}});
                return [r.status, await r.json()];
            }""",
            bob_job["id"],
        )
        assert status == 404, body
        assert "of yours" in body["error"]
        assert hub.client("bob").workload(bob_job["id"])["state"] in ("pending", "running")
        # ...and her panel does not list it.
        expect(alice_lab.locator(f'#gpupool-panel .gp-Row[data-workload-id="{bob_job["id"]}"]')).to_have_count(0)
    finally:
        hub.client("bob").cancel(bob_job["id"])


def test_a_preempted_session_is_warned_in_the_panel_before_its_server_stops(alice_lab, lab_hub):
    """Last in this module: alice's session gets notice (and would be stopped 15 min later)."""
    hub = lab_hub
    admin = hub.client(token=hub.spawner_token)
    session = alice_session(hub)
    # vision gives up its quota (alice's GPU becomes borrowed); nlp's quota now covers the whole node.
    admin.set_team("vision", quota=0)
    admin.set_team("nlp", quota=8)
    job = hub.client("carol").submit(name="whole-node", kind="job", command=["sleep", "900"], gpus=8)
    try:
        if not alice_lab.locator("#gpupool-panel").is_visible():  # an earlier test reloaded the lab
            alice_lab.click('.lm-TabBar-tab[data-id="gpupool-panel"]')
        # A JupyterLab notification says so wherever she is working...
        expect(alice_lab.locator(".Toastify__toast", has_text="is being preempted; save your work")).to_be_visible(timeout=SLOW)
        # ...and the panel keeps the warning while the notice runs.
        warning = alice_lab.locator(f'#gpupool-panel .gp-Warning[data-kind="preempting"][data-workload-id="{session["id"]}"]')
        expect(warning).to_be_visible(timeout=SLOW)
        expect(warning).to_contain_text("Preempting:")
        expect(warning).to_contain_text("your files are kept")
        expect(warning).to_contain_text("team vision was using more than its quota")
        # The job waits for alice's GPU; alice's server keeps it meanwhile.
        waiting = hub.client("carol").workload(job["id"])
        assert waiting["state"] == "pending" and f"starts when {session['id']}" in waiting["reason"]
        assert admin.workload(session["id"])["state"] == "running"
    finally:
        hub.client("carol").cancel(job["id"])
        admin.set_team("vision", quota=4)
        admin.set_team("nlp", quota=4)
