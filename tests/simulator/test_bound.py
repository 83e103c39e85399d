"""The work-conserving bound: one perfectly packed queue on the same trace and GPUs."""

from __future__ import annotations

import pytest

from hub_ext.simulator.bound import packed_queue, work_conserving_utilisation
from .helpers import job, trace


def test_packed_queue_backfills_and_ignores_node_boundaries():
    # 16 GPUs as one bin: a 12-GPU and a 4-GPU job start together; the 2-GPU job waits for them.
    t = trace(job("big", 0, 100, gpus=12), job("small", 0, 100, gpus=4), job("late", 10, 50, gpus=2))
    q = packed_queue(t, 16)
    assert q.finished == 3
    # Busy 16 GPUs for 100 s, then 2 GPUs for 50 s, over 150 s.
    assert q.utilisation == pytest.approx((16 * 100 + 2 * 50) / (16 * 150))


def test_bound_counts_only_the_window():
    t = trace(job("x", 0, 1000, gpus=8))
    assert work_conserving_utilisation(t, 16, end=500) == pytest.approx(0.5)
    assert packed_queue(t, 16, end=500).finished == 0
