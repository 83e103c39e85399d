"""The spawn form tells a user what can start now, what would queue and what never could."""

from __future__ import annotations

import re

from spawner.options_form import choice_states, render_options_form


def gpu(node, index, used=0.0, model="V100-SXM2-16GB", simulated=True):
    state = "free" if used == 0 else ("used" if used >= 1 else "partial")
    return {"node": node, "index": index, "uuid": f"GPU-{node}-{index}", "model": model, "memory_mib": 16384,
            "simulated": simulated, "state": state, "used_fraction": used}


def pool(*gpus):
    nodes = {}
    for g in gpus:
        nodes.setdefault(g["node"], []).append(g)
    return {"nodes": [{"name": n, "gpus": gs} for n, gs in nodes.items()]}


def states_by_gpus(**kw):
    return {s.gpus: s for s in choice_states(**kw)}


def test_free_cards_start_now_busy_ones_queue_and_impossible_ones_are_disabled():
    # node a: 4 cards, 2 free; node b: 2 cards, one half used
    p = pool(gpu("a", 0), gpu("a", 1), gpu("a", 2, 1.0), gpu("a", 3, 1.0), gpu("b", 0, 0.5), gpu("b", 1, 1.0))
    s = states_by_gpus(pool=p, teams=[], queue=[], team=None, fractions=[0.5], max_whole=8)
    assert s[0].startable_now and s[0.5].startable_now and s[1].startable_now and s[2].startable_now
    assert not s[3].startable_now and s[3].possible and "would queue: at most 2 free on one node" in s[3].note
    assert not s[4].startable_now and s[4].possible  # node a could give 4 once its cards are free
    assert not s[5].possible and "largest node has 4 GPUs" in s[5].note


def test_a_team_limit_rules_out_bigger_requests():
    p = pool(*[gpu("a", i) for i in range(8)])
    teams = [{"name": "vision", "quota": 2, "limit": 3, "usage": 0}]
    s = states_by_gpus(pool=p, teams=teams, queue=[], team="vision", fractions=[], max_whole=4)
    assert s[3].possible and not s[4].possible
    assert "team vision is limited to 3 GPUs" in s[4].note


def test_a_team_at_its_limit_queues_although_cards_are_free():
    p = pool(*[gpu("a", i) for i in range(8)])
    teams = [{"name": "vision", "quota": 2, "limit": 4, "usage": 3}]
    s = states_by_gpus(pool=p, teams=teams, queue=[], team="vision", fractions=[0.5], max_whole=4)
    assert s[1].startable_now and s[0.5].startable_now
    assert not s[2].startable_now and s[2].possible
    assert "team vision uses 3 of its limit of 4 GPUs" in s[2].note


def test_queued_requests_are_mentioned():
    p = pool(gpu("a", 0, 1.0))
    s = states_by_gpus(pool=p, teams=[], queue=[{"id": "w-1"}, {"id": "w-2"}], team=None, fractions=[0.5], max_whole=1)
    assert not s[1].startable_now and "2 request(s) queued" in s[1].note
    assert "no card has that share free" in s[0.5].note


def test_form_html_greys_queued_choices_disables_impossible_ones_and_offers_teams_and_models():
    p = pool(gpu("a", 0), gpu("a", 1, 1.0, model="A100"), gpu("b", 0, 1.0))
    html = render_options_form(pool=p, teams=[], queue=[], user_teams=["vision", "nlp"], fractions=[0.5],
                               max_whole=3, default_gpus=1, offer_models=True)
    assert "1 of 3 GPUs free now (simulated pool" in html
    assert '<select class="form-select" id="gpupool-team" name="team">' in html
    radios = re.findall(r'<div class="form-check ([^"]*)"><input [^>]*value="([^"]+)"([^>]*)>', html)
    by_value = {value: (css, attrs) for css, value, attrs in radios}
    assert "checked" in by_value["1"][1] and "gpupool-later" not in by_value["1"][0]
    assert "gpupool-later" in by_value["2"][0] and "disabled" not in by_value["2"][1]
    assert "disabled" in by_value["3"][1] and "gpupool-never" in by_value["3"][0]
    assert "A100 (0 of 1 free)" in html and "V100-SXM2-16GB (1 of 2 free)" in html


def test_form_still_works_without_the_pool_service():
    html = render_options_form(pool=None, teams=None, queue=None, user_teams=[], fractions=[0.5],
                               max_whole=2, default_gpus=0, offer_models=True)
    assert "status is not available right now" in html
    assert html.count('type="radio"') == 4 and "disabled" not in html


def test_the_spawner_still_shows_its_form_when_the_pool_is_not_configured_or_down():
    import asyncio

    from spawner.local import SimpleGpuLocalProcessSpawner

    class User:
        name = "alice"
        groups: list = []

    import time

    for url in ("", "http://127.0.0.1:9/services/gpupool/"):  # unset; nothing listening
        began = time.monotonic()
        html = asyncio.run(SimpleGpuLocalProcessSpawner(user=User(), pool_url=url).gpu_options_form())
        assert "status is not available right now" in html and 'value="1"' in html
        # A person waits for this page: not the spawn's 30 s of retries, only form_retry_seconds (3 s).
        assert time.monotonic() - began < 10


def held(node, index, team):
    g = gpu(node, index, 1.0)
    g["holders"] = [{"workload_id": f"w-{node}{index}", "user": "x", "team": team, "kind": "job", "fraction": 1.0}]
    return g


def test_a_team_within_its_quota_starts_at_once_on_gpus_lent_to_another_team():
    """Issue 11, bug 6: every size said "would queue" though the team could take back its quota at once."""
    # The demo's shape: nlp borrows all 8 cards of one node beyond its quota of 4; vision uses nothing.
    p = pool(*[held("dgx1", i, "nlp") for i in range(8)])
    teams = [{"name": "vision", "quota": 4, "usage": 0, "borrowed": 0},
             {"name": "nlp", "quota": 4, "usage": 8, "borrowed": 4}]
    s = states_by_gpus(pool=p, teams=teams, queue=[], team="vision", fractions=[0.5], max_whole=8)
    for gpus in (0.5, 1, 2, 4):
        assert s[gpus].startable_now, (gpus, s[gpus].note)
        assert "takes back GPUs lent to other teams" in s[gpus].note
    # Beyond vision's quota nothing can be taken back: those sizes wait.
    assert not s[5].startable_now and s[5].possible
    # nlp itself has nobody to take GPUs back from.
    mine = states_by_gpus(pool=p, teams=teams, queue=[], team="nlp", fractions=[], max_whole=2)
    assert not mine[1].startable_now
