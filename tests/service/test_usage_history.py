"""GPUs in use per team over time, rebuilt from the event log (the admin page's plots)."""

import pytest

from hub_ext.service.usage_history import AllocationEvent, allocation_events, team_holdings, team_usage_series

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
