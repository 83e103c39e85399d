"""Table-driven tests of the pure idle policy, played over a timeline.

Each case scripts utilisation per GPU as steps, samples it every TICK
seconds the way the agent reports, runs the policy on every tick, applies
its decisions to the state the service would keep, and compares the events
(warned / reclaimed / flagged / withdrawn, and when) with what the policy
settings promise.
"""

from __future__ import annotations

import dataclasses

import pytest

import random

from hub_ext.reclaim import GpuIdle, IdleDefinition, IdlePolicy, PolicyError, PolicySettings, ReclaimState, decide, fold, idle_seconds, observe
from hub_ext.scheduler.model import Allocation, GpuShare, Running, Workload, WorkloadKind

TICK = 15.0
POLICY = IdlePolicy(idle_limit_s=600, grace_s=300, job_flag_after_s=1200)
IDLE = IdleDefinition(threshold_percent=5, stale_after_s=60)


def running(wid, uuids, kind=WorkloadKind.SESSION, team="vision", started_at=0.0):
    shares = tuple(GpuShare(node="n1", gpu_uuid=u) for u in uuids)
    workload = Workload(id=wid, user=f"user-{wid}", team=team, kind=kind, gpus=len(uuids), submitted_at=0.0)
    return Running(workload, Allocation(wid, shares, started_at))


def at(steps, t):
    """Value of a [(from, value)] step function at t (None before the first step)."""
    value = None
    for start, v in steps:
        if t >= start:
            value = v
    return value


def play(workloads, utilisation, until, settings=None, reporting_until=None, waiting=(), missing=()):
    """Run the policy every TICK from 0 to ``until``; return [(t, event, workload_id)].

    ``utilisation``: GPU uuid -> steps; ``reporting_until``: the agent stops
    then; ``missing``: (from, to) windows with no readings; ``waiting``:
    steps of GPUs wanted by pending work, which reclaimed GPUs then serve.
    """
    served = 0.0
    settings = settings or PolicySettings(POLICY, IDLE)
    gpus: dict[str, GpuIdle] = {}
    states: dict[str, ReclaimState] = {}
    events = []
    live = list(workloads)
    t = 0.0
    while t <= until:
        reporting = (reporting_until is None or t <= reporting_until) and not any(a <= t < b for a, b in missing)
        if reporting:
            for uuid, steps in utilisation.items():
                gpus[uuid] = observe(gpus.get(uuid), t, at(steps, t), settings.idle)
        d = decide(live, gpus, states, settings, t, max(0.0, (at(waiting, t) or 0.0) - served))
        for w in d.warnings:
            states[w.workload_id] = dataclasses.replace(states.get(w.workload_id, ReclaimState()), warned_at=t)
            events.append((t, "warned", w.workload_id))
        for f in d.flags:
            states[f.workload_id] = dataclasses.replace(states.get(f.workload_id, ReclaimState()), flagged_at=t)
            events.append((t, "flagged", f.workload_id))
        for w in d.withdrawals:
            field = "warned_at" if w.what == "warning" else "flagged_at"
            states[w.workload_id] = dataclasses.replace(states[w.workload_id], **{field: None})
            events.append((t, f"{w.what} withdrawn", w.workload_id))
        for r in d.reclaims:
            events.append((t, f"reclaimed:{r.action}", r.workload_id))
            served += r.gpus
            live = [x for x in live if x.workload.id != r.workload_id]
        t += TICK
    return events


LIMIT, GRACE = POLICY.idle_limit_s, POLICY.grace_s

CASES = [
    pytest.param(
        [running("s1", ["g0"])], {"g0": [(0, 0)]}, {}, 2000,
        [(LIMIT, "warned", "s1"), (LIMIT + GRACE, "reclaimed:stop", "s1")],
        id="idle session: warned at the limit, reclaimed after the grace period",
    ),
    pytest.param(
        [running("s1", ["g0"])], {"g0": [(0, 60)]}, {}, 5000, [],
        id="busy session: never warned",
    ),
    pytest.param(
        [running("s1", ["g0"])], {"g0": [(0, 0), (300, 70), (330, 0)]}, {}, 2000,
        [(330 + LIMIT, "warned", "s1"), (330 + LIMIT + GRACE, "reclaimed:stop", "s1")],
        id="a burst of work restarts the idle clock",
    ),
    pytest.param(
        [running("s1", ["g0", "g1"])], {"g0": [(0, 0)], "g1": [(0, 50)]}, {}, 5000, [],
        id="idle on one of two GPUs: not idle",
    ),
    pytest.param(
        [running("s1", ["g0", "g1"])], {"g0": [(0, 0)], "g1": [(0, 50), (210, 1)]}, {}, 2000,
        [(210 + LIMIT, "warned", "s1"), (210 + LIMIT + GRACE, "reclaimed:stop", "s1")],
        id="idle on both GPUs: idle since the later one went quiet",
    ),
    pytest.param(
        [running("s1", ["g0"])], {"g0": [(0, 0)]}, {"reporting_until": 300}, 5000, [],
        id="agent stops reporting: nothing happens",
    ),
    pytest.param(
        [running("s1", ["g0"])], {"g0": [(0, 0)]}, {"reporting_until": LIMIT + 30}, 5000,
        [(LIMIT, "warned", "s1")],
        id="agent stops reporting after the warning: never reclaimed",
    ),
    pytest.param(
        [running("s1", ["g0"])], {"g0": [(0, None)]}, {}, 5000, [],
        id="a GPU with no utilisation figure is not idle",
    ),
    pytest.param(
        [running("s1", ["g0"])], {"g0": [(0, 0), (700, 90)]}, {}, 2000,
        [(LIMIT, "warned", "s1"), (690 + TICK, "warning withdrawn", "s1")],
        id="busy again after the warning: warning withdrawn",
    ),
    pytest.param(
        [running("s1", ["g0"])], {"g0": [(0, 0)]}, {"missing": [(300, 500)]}, 2000,
        [(510 + LIMIT, "warned", "s1"), (510 + LIMIT + GRACE, "reclaimed:stop", "s1")],
        id="a gap in the readings restarts the idle streak",
    ),
    pytest.param(
        [running("s1", ["g0"])], {"g0": [(0, 0)]}, {"missing": [(LIMIT + 60, LIMIT + 200)]}, 3000,
        [(LIMIT, "warned", "s1"), (LIMIT + 210 + LIMIT, "warned", "s1"), (LIMIT + 210 + LIMIT + GRACE, "reclaimed:stop", "s1")],
        id="a warning from before a gap does not count: warned afresh",
    ),
    pytest.param(
        [running("s1", ["g0"], started_at=450)], {"g0": [(0, 0)]}, {}, 2000,
        [(450 + LIMIT, "warned", "s1"), (450 + LIMIT + GRACE, "reclaimed:stop", "s1")],
        id="idle time before the session got the GPU does not count",
    ),
    pytest.param(
        [running("j1", ["g0"], kind=WorkloadKind.JOB)], {"g0": [(0, 0)]}, {}, 5000,
        [(POLICY.job_flag_after_s, "flagged", "j1")],
        id="idle batch job: flagged once to admins, never reclaimed",
    ),
    pytest.param(
        [running("j1", ["g0"], kind=WorkloadKind.JOB)], {"g0": [(0, 0), (1500, 80)]}, {}, 5000,
        [(POLICY.job_flag_after_s, "flagged", "j1"), (1500, "flag withdrawn", "j1")],
        id="flagged job busy again: flag withdrawn",
    ),
]


@pytest.mark.parametrize("workloads, utilisation, options, until, expected", CASES)
def test_policy_timeline(workloads, utilisation, options, until, expected):
    assert play(workloads, utilisation, until, **options) == expected


def test_team_override_shortens_the_limit_for_that_team_only():
    settings = PolicySettings(POLICY, IDLE, teams={"nlp": {"idle_limit_s": 300}})
    events = play([running("v", ["g0"], team="vision"), running("n", ["g1"], team="nlp")], {"g0": [(0, 0)], "g1": [(0, 0)]}, 1200, settings)
    assert (300, "warned", "n") in events and (LIMIT, "warned", "v") in events
    assert (300 + GRACE, "reclaimed:stop", "n") in events and (LIMIT + GRACE, "reclaimed:stop", "v") in events


def test_team_with_reclaim_disabled_keeps_idle_gpus():
    settings = PolicySettings(POLICY, IDLE, teams={"nlp": {"enabled": False}})
    assert play([running("n", ["g0"], team="nlp")], {"g0": [(0, 0)]}, 5000, settings) == []


def test_restart_without_gpus_is_the_action_when_configured():
    settings = PolicySettings(dataclasses.replace(POLICY, action="restart_without_gpus"), IDLE)
    assert (LIMIT + GRACE, "reclaimed:restart_without_gpus", "s1") in play([running("s1", ["g0"])], {"g0": [(0, 0)]}, 2000, settings)


@pytest.mark.parametrize(
    "waiting_gpus, expected_reclaimed",
    [
        pytest.param(0, [], id="nobody waiting: warned but kept"),
        pytest.param(1, ["s-long"], id="one GPU wanted: only the longest idle session gives it back"),
        pytest.param(2, ["s-long", "s-short"], id="two wanted: both"),
    ],
)
def test_when_waiting_reclaims_only_what_waiting_work_needs(waiting_gpus, expected_reclaimed):
    settings = PolicySettings(dataclasses.replace(POLICY, mode="when_waiting"), IDLE)
    someone_arrives = 2010  # both sessions are past their grace period by then
    events = play(
        [running("s-long", ["g0"]), running("s-short", ["g1"])],
        {"g0": [(0, 0)], "g1": [(0, 60), (105, 0)]},
        3000,
        settings,
        waiting=[(0, 0), (someone_arrives, waiting_gpus)],
    )
    assert [e[2] for e in events if e[1] == "warned"] == ["s-long", "s-short"]
    reclaims = [e for e in events if e[1].startswith("reclaimed")]
    assert [e[2] for e in reclaims] == expected_reclaimed
    assert all(e[0] == someone_arrives for e in reclaims)


def test_warning_says_when_and_what_happens():
    gpus = {"g0": fold([(t, 0.0) for t in range(0, 601, 15)], IDLE)}
    d = decide([running("s1", ["g0"])], gpus, {}, PolicySettings(POLICY, IDLE), 600.0)
    (warn,) = d.warnings
    assert warn.reclaim_at == 600 + GRACE
    assert "stopped" in warn.reason and "files are kept" in warn.reason and "5 min" in warn.reason


def test_idle_seconds_per_session_distinguishes_busy_idle_and_unknown():
    samples = {"g0": [(t, 0.0) for t in range(0, 301, 15)], "g1": [(t, 90.0) for t in range(0, 301, 15)], "g2": [(0, 0.0)]}
    gpus = {u: fold(s, IDLE) for u, s in samples.items()}
    d = decide([running("idle", ["g0"]), running("busy", ["g1"]), running("gone", ["g2"])], gpus, {}, PolicySettings(POLICY, IDLE), 300.0)
    assert d.idle_seconds == {"idle": 300.0, "busy": 0.0, "gone": None}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: IdlePolicy(mode="sometimes"), id="unknown mode"),
        pytest.param(lambda: IdlePolicy(action="delete"), id="unknown action"),
        pytest.param(lambda: IdleDefinition(threshold_percent=0), id="threshold 0"),
        pytest.param(lambda: IdleDefinition(stale_after_s=0), id="stale after 0"),
        pytest.param(lambda: PolicySettings(teams={"nlp": {"threshold_percent": 20}}), id="threshold is pool-wide, not per team"),
        pytest.param(lambda: IdlePolicy(grace_s=-1), id="negative grace"),
        pytest.param(lambda: PolicySettings(teams={"nlp": {"idle_limit": 5}}), id="misspelt team override"),
        pytest.param(lambda: PolicySettings(teams={"nlp": {"mode": "never"}}), id="bad team override value"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(make):
    with pytest.raises(PolicyError):
        make()


def idle_streak_by_rescan(samples, idle, now):
    """The idle streak's start read straight off the whole sample list, from the newest back."""
    if not samples or now - samples[-1][0] > idle.stale_after_s:
        return None
    start = None
    later = None
    for t, u in reversed(samples):
        if u is None or u >= idle.threshold_percent or (later is not None and later - t > idle.stale_after_s):
            break
        start = later = t
    return start


def test_folding_reading_by_reading_agrees_with_rescanning_the_whole_history():
    rng = random.Random(7)
    for _ in range(300):
        t, samples = 0.0, []
        for _ in range(rng.randint(1, 40)):
            t += rng.choice([15, 15, 15, 30, 90])
            samples.append((t, rng.choice([None, 0.0, 1.0, 4.9, 5.0, 50.0, 0.0, 0.0])))
        now = t + rng.choice([0, 30, 61])
        expected = idle_streak_by_rescan(samples, IDLE, now)
        got = idle_seconds(fold(samples, IDLE), IDLE, now)
        if expected is None:
            assert got in (None, 0.0)
        else:
            assert got == now - expected
