"""GPUs in use per team over time, rebuilt from the event log (the admin page's plots), measured use and the usage report."""

import pytest

from hub_ext.service.store import EventRow, GpuRow, NodeRow, ShareRow, Store, TeamRow, WorkloadRow
from hub_ext.service.usage_history import (
    AllocationEvent,
    UsageHistory,
    allocation_events,
    report_csv,
    team_holdings,
    team_usage_series,
    usage_report,
)

H = 3600.0


@pytest.mark.parametrize(
    "events, start, end, bucket, expected",
    [
        pytest.param([], 0, 2 * H, H, {}, id="nothing ran: no team"),
        pytest.param(
            [AllocationEvent(0, 1, "vision", 2), AllocationEvent(2 * H, 1, "vision", 0)],
            0, 2 * H, H, {"vision": [2.0, 2.0]},
            id="2 GPUs for the whole window",
        ),
        pytest.param(
            [AllocationEvent(0.5 * H, 1, "vision", 4), AllocationEvent(H, 1, "vision", 0)],
            0, 2 * H, H, {"vision": [2.0, 0.0]},
            id="4 GPUs for half an hour average to 2 in that hour",
        ),
        pytest.param(
            [AllocationEvent(-10 * H, 1, "nlp", 1)],
            0, 2 * H, H, {"nlp": [1.0, 1.0]},
            id="started before the window and still running",
        ),
        pytest.param(
            [AllocationEvent(0, 1, "nlp", 1), AllocationEvent(H, 1, "nlp", 3), AllocationEvent(1.5 * H, 1, "nlp", 0)],
            0, 2 * H, H, {"nlp": [1.0, 1.5]},
            id="resized from 1 to 3 then finished",
        ),
        pytest.param(
            [AllocationEvent(0, 1, "a", 1), AllocationEvent(0, 2, "b", 0.5), AllocationEvent(H, 1, "a", 0)],
            0, 2 * H, H, {"a": [1.0, 0.0], "b": [0.5, 0.5]},
            id="two teams, one with a fraction",
        ),
        pytest.param(
            [AllocationEvent(-5 * H, 1, "a", 2), AllocationEvent(-H, 1, "a", 0)],
            0, 2 * H, H, {},
            id="finished before the window: not shown",
        ),
        pytest.param(
            [AllocationEvent(0, 1, "a", 1), AllocationEvent(3 * H, 1, "a", 0)],
            0, 2 * H, H, {"a": [1.0, 1.0]},
            id="events after the window are ignored",
        ),
    ],
)
def test_team_usage_series(events, start, end, bucket, expected):
    assert team_usage_series(events, start, end, bucket) == expected


def test_preempted_then_restarted_counts_only_while_running():
    rows = [
        (0.0, "submitted", 1, "vision", {}),
        (0.0, "started", 1, "vision", {"gpus": 2}),
        (H, "preempted", 1, "vision", {"for_workload_id": "w-2"}),
        (H, "started", 2, "nlp", {"gpus": 2}),
        (1.5 * H, "started", 1, "vision", {"gpus": 1}),
        (2 * H, "finished", 1, "vision", {"exit_code": 0}),
        (2 * H, "team-changed", None, "vision", {"quota": 3}),
    ]
    series = team_usage_series(allocation_events(rows), 0, 2 * H, H)
    assert series == {"vision": [2.0, 0.5], "nlp": [0.0, 2.0]}


def test_holdings_now_follow_starts_resizes_and_releases():
    events = [
        AllocationEvent(0, 1, "vision", 2),
        AllocationEvent(10, 2, "nlp", 1),
        AllocationEvent(20, 1, "vision", 3),
        AllocationEvent(30, 2, "nlp", 0),
    ]
    assert team_holdings(events, 5) == {"vision": 2}
    assert team_holdings(events, 15) == {"nlp": 1, "vision": 2}
    assert team_holdings(events, 40) == {"vision": 3}


# ---------------------------------------------------------------- measured use and the usage report


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path}/usage.sqlite")
    s.migrate()  # the migrations, 0007 included, make the tables
    yield s
    s.dispose()


def _running(db, seq, team, uuid, fraction=1.0):
    w = WorkloadRow(seq=seq, user="u", team=team, kind="job", state="running", gpus=fraction, submitted_at=0.0)
    w.shares.append(ShareRow(node_name="n", gpu_uuid=uuid, gpu_index=0, fraction=fraction))
    db.add(w)


def test_readings_become_held_and_busy_gpu_seconds_per_team_and_bucket(store):
    usage = UsageHistory(bucket_seconds=300, max_gap_seconds=120, retention_days=1)
    with store.write() as db:
        db.add(NodeRow(name="n", simulated=True, schedulable=True, source="declared"))
        db.add_all([GpuRow(uuid="g0", node_name="n", index=0, model="m", memory_mib=1),
                    GpuRow(uuid="g1", node_name="n", index=1, model="m", memory_mib=1)])
        db.add_all([TeamRow(name="vision", quota=1), TeamRow(name="nlp", quota=1)])
        db.flush()
        _running(db, 1, "vision", "g0")
        _running(db, 2, "nlp", "g1", fraction=0.5)
    with store.write() as db:
        # 60 s since the previous reading: vision's whole GPU at 50%, nlp's half GPU at 100%;
        # a GPU without a previous reading counts for nothing; a 10-minute gap counts 120 s only.
        usage.record_readings(db, [("g0", 50.0, 1000.0 - 60), ("g1", 100.0, 1000.0 - 600)], now=1000.0)
        usage.record_readings(db, [("g0", 0.0, None)], now=1001.0)
    with store.read() as db:
        report = {r["team"]: r for r in usage_report(db, 0.0, 2000.0)}
    assert report["vision"]["gpu_hours_measured"] == pytest.approx(60 / 3600, abs=1e-4)
    assert report["vision"]["busy_percent_of_held"] == 50.0
    assert report["nlp"]["gpu_hours_measured"] == pytest.approx(0.5 * 120 / 3600, abs=1e-4)
    assert report["nlp"]["busy_percent_of_held"] == 100.0
    # Retention: a reading a day and more later drops the old bucket.
    with store.write() as db:
        usage.record_readings(db, [("g0", 50.0, 1000.0 + 2 * 86400 - 60)], now=1000.0 + 2 * 86400)
    with store.read() as db:
        report = {r["team"]: r for r in usage_report(db, 0.0, 2000.0)}
    assert "nlp" not in report and report.get("vision", {}).get("gpu_hours_measured", 0) == 0


def test_the_report_counts_held_hours_reclaims_preemptions_and_waits_from_the_log(store):
    with store.write() as db:
        for at, kind, details in [
            (0.0, "submitted", None),
            (600.0, "started", {"gpus": 2}),  # waited 10 min
            (600.0 + H, "preempted", None),  # held 2 GPUs for an hour
            (700.0 + H, "started", {"gpus": 2}),  # waited 100 s after the preemption
            (700.0 + 2 * H, "reclaimed", None),  # another hour of 2 GPUs
        ]:
            db.add(EventRow(at=at, kind=kind, workload_seq=1, user="u", team="vision", message=kind, details=details))
    with store.read() as db:
        [row] = usage_report(db, 0.0, 4 * H)
        [later] = usage_report(db, H, 4 * H)
    assert row["team"] == "vision"
    assert row["gpu_hours_held"] == pytest.approx(4.0, abs=1e-3)
    assert (row["reclaims"], row["preemptions"], row["starts"]) == (1, 1, 2)
    assert row["mean_wait_minutes"] == pytest.approx((10 + 100 / 60) / 2, abs=0.01)
    assert row["max_wait_minutes"] == 10.0
    assert row["busy_percent_of_held"] is None  # no agent readings: nothing measured, not 0%
    # A period that starts later counts only what happened in it: the last 600 s of the first run, the whole second.
    assert later["gpu_hours_held"] == pytest.approx((600 * 2 + H * 2) / H, abs=1e-3)
    assert (later["starts"], later["preemptions"]) == (1, 1)
    csv_text = report_csv([row])
    assert csv_text.splitlines()[1].startswith("vision,1970-01-01T00:00:00Z,1970-01-01T04:00:00Z,4.0,0.0,,0.0,1,1,2,")
