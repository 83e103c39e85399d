"""The spawn form and the spawn page in a real browser (Debian's chromium through Playwright).

bob (team vision) finds the 2-GPU pool busy: the form greys out whole GPUs
(they would queue) and disables what no node could give; asking for 1 GPU
puts him in the queue, the spawn page says where he stands and why, and its
Stop Server button takes him out of the queue. Once the pool is free, half a
card from the form starts a server that knows its share.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from hub_ext.client import PoolConflict, PoolNotFound
from tests.fixtures.hub import REPO, start_hub
from tests.spawner.hubtools import SPAWNER_CONFIG, pool_admin, server_environ, server_model, stop_server, wait_for, workloads_of

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
POOL = [{"name": "node-a", "gpus": 2, "model": "A100-40GB", "memory_mib": 40960}]
TEAMS = {"vision": {"quota": 1, "over_quota_weight": 1}, "nlp": {"quota": 2, "over_quota_weight": 1}}
USERS = {"bob": ["vision"], "carol": ["nlp"], "ada": []}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = start_hub(tmp_path_factory.mktemp("pagehub"), pool=POOL, teams=TEAMS, users=USERS, admins=("ada",),
                    extra_config=SPAWNER_CONFIG, service_config="c.ExpectedStarts.refresh_seconds = 1")
    yield hub
    for user in USERS:
        if server_model(hub, user) is not None:
            stop_server(hub, user)
    hub.stop()


@pytest.fixture
def page(hub):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        page.set_default_timeout(60_000)
        page.goto(hub.url + "hub/login")
        page.fill("#username_input", "bob")
        page.fill("#password_input", hub.user_password)
        page.click("#login_submit")
        page.wait_for_load_state()
        yield page
        browser.close()


def screenshot(page, tmp_path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("GPUPOOL_UPDATE_SCREENSHOTS") == "1":
        (REPO / "docs" / "screenshots").mkdir(exist_ok=True)
        shutil.copyfile(path, REPO / "docs" / "screenshots" / f"{name}.png")


def test_busy_pool_form_queue_page_and_stop_server(hub, page, tmp_path):
    # carol's team fills the pool within its quota: nothing can be preempted for bob. Her job has a
    # time limit of 25 minutes: bob's expected start follows from it.
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    placeholder = pool_admin(hub).submit(user="carol", kind="job", name="placeholder", gpus=2, command=sleeper, time_limit_s=1500)
    try:
        page.goto(hub.url + "hub/spawn")
        summary = page.locator(".gpupool-summary")
        assert "0 of 2 GPUs free now (simulated pool" in summary.inner_text()
        one = page.locator(".form-check", has=page.locator('input[name="gpus"][value="1"]'))
        assert "gpupool-later" in one.get_attribute("class") and "would queue" in one.inner_text()
        four = page.locator('input[name="gpus"][value="4"]')
        assert four.is_disabled()
        assert "largest node has 2 GPUs" in page.locator(".form-check", has=four).inner_text()
        screenshot(page, tmp_path, "spawn-form-busy")

        page.check('input[name="gpus"][value="1"]')
        page.click('#spawn_form button[type="submit"]')
        page.wait_for_url("**/hub/spawn-pending/bob**")
        message = page.locator("#progress-message")
        sync_api.expect(message).to_contain_text("Queued for 1 GPU for team vision, position 1 in the queue", timeout=30_000)
        assert "waiting because" in message.inner_text()
        # The expected start: labelled an estimate, with its basis (carol's job's time limit).
        sync_api.expect(message).to_contain_text("expected to start in about 25 min", timeout=30_000)
        assert f"an estimate (GPUs expected to free up when {placeholder['id']} ends (its time limit of 25 min))" in message.inner_text()
        screenshot(page, tmp_path, "spawn-queued")
        (queued,) = workloads_of(hub, "bob", state="pending")

        page.click("#stop-server-btn")
        wait_for(lambda: pool_admin(hub).workload(queued["id"])["state"] == "cancelled", 30, "bob's request cancelled")
        wait_for(lambda: server_model(hub, "bob") is None, 30, "bob's spawn gone")
    finally:
        try:
            pool_admin(hub).cancel(placeholder["id"])
        except (PoolConflict, PoolNotFound):
            pass


def test_half_a_card_from_the_form_starts_a_server_that_knows_its_share(hub, page):
    page.goto(hub.url + "hub/spawn")
    assert "2 of 2 GPUs free now" in page.locator(".gpupool-summary").inner_text()
    page.check('input[name="gpus"][value="0.5"]')
    page.click('#spawn_form button[type="submit"]')
    page.wait_for_url("**/user/bob/**", timeout=180_000)
    (session,) = workloads_of(hub, "bob", state="running")
    assert session["allocation"]["gpus"] == 0.5
    env = server_environ(hub, "bob")
    assert env["GPUPOOL_GPU_FRACTION"] == "0.5" and env["GPUPOOL_GPUS"] == "0.5"
    assert env["CUDA_VISIBLE_DEVICES"] == str(session["allocation"]["shares"][0]["index"])
    stop_server(hub, "bob")
