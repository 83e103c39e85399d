"""The shared UI kit's pool grid at scale, in a real browser, without a hub.

A 128-GPU pool (16 nodes of 8) must stay one screen tall: each node is one bar
(mine, in use, idle, free) with a count, and a node's GPUs open on demand.
Nodes whose agent is silent or reported errors say so. The page imports the
kit exactly as the admin page does (static/kit/, ES modules).
"""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from tests.fixtures.hub import REPO

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from playwright.sync_api import expect  # noqa: E402

STATIC = REPO / "hub_ext" / "service" / "pages" / "static"

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="kit/kit.css">
<style>:root{--gp-free:#388e3c;--gp-used:#bdbdbd;--gp-mine:#1976d2;--gp-idle:#f57c00;--gp-error:#c62828}
body{font:13px system-ui,sans-serif;margin:12px;width:380px}</style></head>
<body><div id="legend"></div><div id="pool"></div>
<script type="module">
import { poolGrid, legend, poolSummary } from './kit/index.js';
const now = Date.parse('2026-12-04T12:00:00Z');
const nodes = [];
for (let n = 0; n < 16; n++) {
  const gpus = [];
  for (let i = 0; i < 8; i++) {
    const held = (n * 8 + i) % 3 !== 0;
    const holders = held ? [{ workload_id: 'w-' + (n * 8 + i), user: n === 2 && i < 4 ? 'alice' : 'bob', team: 'vision', fraction: 1 }] : [];
    gpus.push({ node: 'dgx-' + n, index: i, uuid: 'GPU-' + n + '-' + i, model: 'H100-80GB', memory_mib: 81920, simulated: false,
                state: held ? 'used' : 'free', used_fraction: held ? 1 : 0, holders, utilization: held ? (i % 2 ? 90 : 0) : null,
                memory_used_mib: null, idle_seconds: held && i % 2 === 0 ? 600 : null });
  }
  nodes.push({ name: 'dgx-' + n, simulated: false, schedulable: true,
               last_reading_at: n === 5 ? '2026-12-04T11:50:00Z' : '2026-12-04T11:59:50Z',
               errors: n === 7 ? ['GPU 3: memory not readable: GPU is lost'] : null, gpus });
}
const pool = { nodes };
const expanded = new Set();
function draw() {
  document.getElementById('pool').replaceChildren(...poolGrid(pool, { me: 'alice', collapseAbove: 32, expanded, now,
    onToggle: name => { expanded.has(name) ? expanded.delete(name) : expanded.add(name); draw(); } }));
}
document.getElementById('legend').replaceChildren(document.createTextNode(poolSummary(pool)), legend());
draw();
window.drawn = true;
</script></body></html>"""


@pytest.fixture(scope="module")
def kit_server(tmp_path_factory):
    """The admin page's static folder over HTTP (ES modules do not load from file://), plus the test page."""
    page_dir = tmp_path_factory.mktemp("kitpage")
    (page_dir / "grid.html").write_text(PAGE)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            if path.startswith("/grid.html"):
                return str(page_dir / "grid.html")
            return str(STATIC / path.lstrip("/").split("?")[0])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(STATIC)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_a_128_gpu_pool_is_one_bar_per_node_with_details_on_demand(browser, kit_server, screenshot):
    page = browser.new_page(viewport={"width": 420, "height": 900})
    try:
        page.goto(kit_server + "grid.html")
        page.wait_for_function("window.drawn === true")
        nodes = page.locator("#pool .gp-Node")
        expect(nodes).to_have_count(16)
        expect(page.locator("#pool .gp-Gpu")).to_have_count(0)
        expect(page.locator("#pool .gp-NodeBar")).to_have_count(16)
        # On dgx-2 alice holds GPUs 0, 1 and 3 (2 is free): 3 of 8 of its bar are hers. On dgx-0,
        # GPUs 0, 3 and 6 are free and the held even ones (2, 4) idle.
        dgx2 = page.locator('#pool .gp-Node[data-node="dgx-2"]')
        expect(dgx2.locator('.gp-Seg[data-look="mine"]')).to_have_attribute("style", "width:37.5%")
        expect(page.locator('#pool .gp-Node[data-node="dgx-0"] .gp-NodeCount')).to_have_text("5/8 held, 2 idle")
        # Health: a silent agent and an agent that reported NVML errors.
        expect(page.locator('#pool .gp-Node[data-node="dgx-5"] .gp-Unhealthy')).to_contain_text("agent silent for 10 min")
        expect(page.locator('#pool .gp-Node[data-node="dgx-7"] .gp-Unhealthy')).to_contain_text("GPU is lost")
        expect(page.locator('#pool .gp-Node[data-health="bad"]')).to_have_count(2)
        # One screen tall: the whole pool fits in the panel's height.
        assert page.locator("#pool").bounding_box()["height"] < 900
        # Details on demand.
        dgx2.locator("button.gp-NodeToggle").click()
        expect(dgx2.locator(".gp-Gpu")).to_have_count(8)
        expect(dgx2.locator('.gp-Gpu[data-look="mine"]')).to_have_count(3)
        expect(page.locator("#pool .gp-Gpu")).to_have_count(8)
        screenshot(page.locator("body"), "pool-128-gpus")
    finally:
        page.close()
